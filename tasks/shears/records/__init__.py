"""One typed model per JSON record a run writes, each with a `schema` version; every reader goes through them.

By domain: `data` (validation), `model` (baseline, recipe, pruning schedule, sparsity), `search` (sensitivity,
trials), `evaluation` (artifacts, latency, timings, machines), `gates` (verdicts, champion comparison, policy,
failure), `release` (manifest, champion pointer, claim) and `card` (the model card); `base` holds what they
share. `to_bytes` is the one canonical JSON encoding (sorted keys, so the same content always hashes the
same) and `from_bytes` the one parser (a RecordError names the file). Everything is importable from here.
"""

from __future__ import annotations

from shears.records.base import (
    MAX_RECORD_BYTES,
    RUN_ID_PATTERN,
    RUN_ID_RE,
    Record,
    RunId,
    RunStatus,
    Split,
    Variant,
    describe_validation_error,
    dumps,
)
from shears.records.card import (
    CardArtifact,
    CardBaseline,
    CardChampion,
    CardConversion,
    CardData,
    CardGates,
    CardPruning,
    CardRecipe,
    CardSignature,
    ModelCardRecord,
)
from shears.records.data import CheckRecord, TaskRecord, ValidationRecord
from shears.records.evaluation import (
    ArtifactRecord,
    LatencyRecord,
    MachineInfo,
    MachineRecord,
    MetricsRecord,
    MicroRecord,
    RuntimeRef,
    TimingRecord,
    TrimRecord,
)
from shears.records.gates import (
    ChampionComparisonRecord,
    ChampionSeen,
    FailureRecord,
    GateRecord,
    GatesRecord,
    PolicyFloorsRecord,
)
from shears.records.model import (
    BaselineRecord,
    LayerPlanRecord,
    LayerSparsityRecord,
    ModelSupportRecord,
    PruneRecord,
    Recipe,
    Schedule,
    SparsityRecord,
)
from shears.records.release import (
    ChampionRecord,
    ClaimRecord,
    DatasetRef,
    DeployableRef,
    FileEntry,
    HolderRecord,
    ManifestRecord,
    SignatureRef,
)
from shears.records.search import (
    LayerSensitivityRecord,
    SearchRecord,
    SensitivityPoint,
    SensitivityRecord,
    TensorCheckRecord,
    TrialRecord,
)

# Every record a run folder can hold, by file name (readers that walk a run folder use this map).
RUN_RECORDS: dict[str, type[Record]] = {
    m.FILE: m
    for m in (ValidationRecord, BaselineRecord, PruneRecord, SparsityRecord, MetricsRecord, LatencyRecord,
              GatesRecord, FailureRecord, ManifestRecord, ClaimRecord, SensitivityRecord, SearchRecord,
              ModelCardRecord)
}

__all__ = [
    "MAX_RECORD_BYTES",
    "RUN_ID_PATTERN",
    "RUN_ID_RE",
    "RUN_RECORDS",
    "ArtifactRecord",
    "BaselineRecord",
    "CardArtifact",
    "CardBaseline",
    "CardChampion",
    "CardConversion",
    "CardData",
    "CardGates",
    "CardPruning",
    "CardRecipe",
    "CardSignature",
    "ChampionComparisonRecord",
    "ChampionRecord",
    "ChampionSeen",
    "CheckRecord",
    "ClaimRecord",
    "DatasetRef",
    "DeployableRef",
    "FailureRecord",
    "FileEntry",
    "GateRecord",
    "GatesRecord",
    "HolderRecord",
    "LatencyRecord",
    "LayerPlanRecord",
    "LayerSensitivityRecord",
    "LayerSparsityRecord",
    "MachineInfo",
    "MachineRecord",
    "ManifestRecord",
    "MetricsRecord",
    "MicroRecord",
    "ModelCardRecord",
    "ModelSupportRecord",
    "PolicyFloorsRecord",
    "PruneRecord",
    "Recipe",
    "Record",
    "RunId",
    "RunStatus",
    "RuntimeRef",
    "Schedule",
    "SearchRecord",
    "SensitivityPoint",
    "SensitivityRecord",
    "SignatureRef",
    "SparsityRecord",
    "Split",
    "TaskRecord",
    "TensorCheckRecord",
    "TimingRecord",
    "TrialRecord",
    "TrimRecord",
    "ValidationRecord",
    "Variant",
    "describe_validation_error",
    "dumps",
]
