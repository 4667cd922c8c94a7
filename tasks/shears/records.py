"""One typed model per JSON record a run writes, each with a `schema` version; every reader goes through them.

Records written before the `schema` key existed (Shears 0.1, see tests/fixtures/store_v0) still load: the
key defaults to the current version. Unknown keys are refused, so a typo in a writer or a hand-edited
record is found, not silently ignored. `to_bytes` is the one canonical JSON encoding (sorted keys, so the
same content always hashes the same) and `from_bytes` the one parser (a RecordError names the file).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shears.errors import RecordError, first_line

RunStatus = Literal["passed", "rejected"]

# What a run id may be (keys are built from it): the one definition, shears.store.layout validates with it.
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
RUN_ID_RE = re.compile(RUN_ID_PATTERN)
RunId = Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN)]


def dumps(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, 2-space indent, trailing newline) for any JSON-able value."""
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """'field.path: message; ...' for the first few errors, never echoing the (possibly huge) input."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)


class Record(_Model):
    """Base of every top-level record: a `schema` key naming the record type and its version."""

    SCHEMA: ClassVar[str] = ""
    FILE: ClassVar[str] = ""  # the file name inside a run folder (tasks' store layout uses the same names)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_bytes(self) -> bytes:
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, obj: Any, where: str = "") -> Self:
        where = where or cls.FILE or cls.__name__
        if not isinstance(obj, dict):
            raise RecordError(f"{where} is not a {cls.SCHEMA} record: not a JSON object")
        found = obj.get("schema", cls.SCHEMA)
        if found != cls.SCHEMA:
            raise RecordError(f"{where} has schema {str(found)[:80]!r}; this Shears reads {cls.SCHEMA}")
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise RecordError(f"{where} is not a valid {cls.SCHEMA} record: {describe_validation_error(exc)}") from None

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "") -> Self:
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise RecordError(f"{where or cls.FILE} is not valid JSON: {first_line(exc)}") from None
        return cls.from_json(obj, where)


# --------------------------------------------------------------------------------------------- validation


class CheckRecord(_Model):
    """One data expectation: what was expected, what was observed, and whether it held."""

    name: str
    expectation: str
    success: bool
    observed: Any
    expected: str


class ValidationRecord(Record):
    SCHEMA: ClassVar[str] = "shears.validation/v1"
    FILE: ClassVar[str] = "validation.json"
    schema_: Literal["shears.validation/v1"] = Field("shears.validation/v1", alias="schema")
    dataset: str
    dataset_sha256: str
    kind: str
    rows: int
    test_rows: int
    num_classes: int
    feature_shape: list[int]
    checks: list[CheckRecord] = Field(default_factory=list)
    success: bool
    # integer images divided by this before anything else sees them (None: used as read); the deployed
    # model expects inputs scaled the same way
    input_scale: float | None = None
    input_dtype: str | None = None
    # labels given as class names: class id i is class_names[i] (sorted by name); published as models/labels.txt
    class_names: list[str] | None = None
    # images without a channel axis for a model that wants (H, W, 1): "added" (or "dropped" in the reverse case)
    channel_axis: Literal["added", "dropped"] | None = None
    model_input_shape: list[int] | None = None  # of a pre-trained model, read from its file

    @property
    def failed(self) -> list[CheckRecord]:
        return [c for c in self.checks if not c.success]

    def summary(self) -> str:
        """One line naming every failed check and its observed value."""
        if self.success:
            return f"data valid: {len(self.checks)} checks passed"
        parts = [f"{c.name} (observed {c.observed}; expected {c.expected})" for c in self.failed]
        return "data failed validation: " + "; ".join(parts)


# --------------------------------------------------------------------------------------------- training


class BaselineRecord(Record):
    SCHEMA: ClassVar[str] = "shears.baseline/v1"
    FILE: ClassVar[str] = "baseline.json"
    schema_: Literal["shears.baseline/v1"] = Field("shears.baseline/v1", alias="schema")
    accuracy: float
    builder: str | None
    pretrained: str | None
    history: dict[str, list[float]] = Field(default_factory=dict)
    params: int
    split: Split = "test"  # where `accuracy` was measured (Shears 0.1: test; since the search: validation)
    gzip_bytes: int | None = None  # of the baseline .h5 without optimizer (the search's compression reference)
    prunable_layers: dict[str, int] = Field(default_factory=dict)  # layer -> kernel weights
    # where the model came from: "trained here", "Keras 2 .h5", "Keras 3 .keras", ...
    origin: str = "trained here"
    # a Keras 3 model rebuilt in tf_keras: the largest |output difference| of the two on `conversion_samples`
    # rows of the run's training data (must be <= conversion_tolerance, else the run stops)
    conversion_max_abs_diff: float | None = None
    conversion_samples: int | None = None
    conversion_tolerance: float | None = None


class ScheduleRecord(_Model):
    kind: str
    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    power: float
    total_steps: int
    steps_per_epoch: int
    derived: bool


class PruneRecord(Record):
    SCHEMA: ClassVar[str] = "shears.prune/v1"
    FILE: ClassVar[str] = "prune.json"
    schema_: Literal["shears.prune/v1"] = Field("shears.prune/v1", alias="schema")
    accuracy: float
    pruned_layers: list[str]
    schedule: ScheduleRecord
    mask_update_steps: list[int]
    sparsity_by_step: list[tuple[int, float]]
    history: dict[str, list[float]] = Field(default_factory=dict)
    split: Split = "test"  # where `accuracy` was measured
    layer_sparsity: dict[str, float] = Field(default_factory=dict)  # per-layer targets (a recipe may differ per layer)
    recipe: Recipe | None = None
    trial: int | None = None  # the search trial this run published


class LayerSparsityRecord(_Model):
    layer: str
    weights: int
    zeros: int
    sparsity: float
    target: float | None  # None: the layer was not pruned
    passed: bool
    clusters: int | None = None  # expected clusters (zero included) for a clustered layer
    distinct: int | None = None  # distinct kernel values measured


class SparsityRecord(Record):
    SCHEMA: ClassVar[str] = "shears.sparsity/v1"
    FILE: ClassVar[str] = "sparsity.json"
    schema_: Literal["shears.sparsity/v1"] = Field("shears.sparsity/v1", alias="schema")
    target: float
    tolerance: float
    passed: bool
    layers: list[LayerSparsityRecord]


# --------------------------------------------------------------------------------------------- recipes and search

Variant = Literal["float32", "dynamic_range", "int8", "float16"]
Split = Literal["train", "validation", "test"]


class Recipe(_Model):
    """One fully resolved compression recipe: what a trial (or the run, with the search off) applies."""

    sparsity: dict[str, float]  # per prunable layer; a layer not listed is not pruned
    prune_epochs: int
    clusters: dict[str, int] = Field(default_factory=dict)  # per layer (the zero cluster counts); {} = none
    cluster_epochs: int = 1
    cluster_learning_rate: float = 1e-4
    qat: bool = False
    qat_epochs: int = 1
    qat_learning_rate: float = 1e-4
    variant: Variant = "dynamic_range"
    fixed_batch: bool = False
    tolerated_drop_pp: float | None = None  # the threshold that allocated `sparsity` (search trials)

    @property
    def qat_scheme(self) -> str | None:
        """tfmot's collaborative scheme: PQAT keeps sparsity, CQAT clusters, PCQAT both."""
        if not self.qat:
            return None
        if self.clusters:
            return "pcqat" if self.sparsity else "cqat"
        return "pqat" if self.sparsity else "qat"

    def describe(self) -> str:
        parts = [", ".join(f"{k} {v:.2f}" for k, v in sorted(self.sparsity.items())) or "no pruning",
                 f"{self.prune_epochs} ep"]
        if self.clusters:
            parts.append("clusters " + ", ".join(f"{k} {v}" for k, v in sorted(self.clusters.items())))
        if self.qat_scheme:
            parts.append(self.qat_scheme.upper())
        parts.append(self.variant + (" batch-1" if self.fixed_batch else ""))
        return "; ".join(parts)


class SensitivityPoint(_Model):
    sparsity: float
    accuracy: float
    drop_pp: float


class LayerSensitivityRecord(_Model):
    """One layer pruned alone (magnitude, no fine-tune) at each sparsity of the ladder."""

    layer: str
    weights: int
    points: list[SensitivityPoint]


class SensitivityRecord(Record):
    SCHEMA: ClassVar[str] = "shears.sensitivity/v1"
    FILE: ClassVar[str] = "sensitivity.json"
    schema_: Literal["shears.sensitivity/v1"] = Field("shears.sensitivity/v1", alias="schema")
    split: Split = "validation"
    method: str = "magnitude pruning of one layer at a time, no fine-tune"
    baseline_accuracy: float
    ladder: list[float]
    layers: list[LayerSensitivityRecord]


class TensorCheckRecord(_Model):
    """What the .tflite itself holds for one compressed layer: zeros and distinct values, vs the recipe."""

    layer: str
    tensor: str
    weights: int
    zero_fraction: float
    expected_sparsity: float | None
    distinct: int  # distinct values (per output channel, the largest, when quantized per channel)
    expected_clusters: int | None
    passed: bool


class TrialRecord(Record):
    """One trial of the search: its recipe, what it scored on the validation split, and why it passes or not."""

    SCHEMA: ClassVar[str] = "shears.trial/v1"
    schema_: Literal["shears.trial/v1"] = Field("shears.trial/v1", alias="schema")
    number: int
    round: int
    origin: str  # "recipe" (trial 0: the configured recipe), "seed" (from sensitivity) or "sampler"
    recipe: Recipe
    params: dict[str, Any] = Field(default_factory=dict)  # the search parameters that made the recipe
    state: Literal["planned", "complete", "failed"] = "planned"
    split: Split = "validation"
    accuracy: float | None = None
    gzip_bytes: int | None = None
    raw_bytes: int | None = None
    structure_gzip_bytes: int | None = None
    feasible: bool = False
    violations: list[str] = Field(default_factory=list)
    constraints: list[float] = Field(default_factory=list)  # <= 0 each when feasible (Optuna's convention)
    checks: list[TensorCheckRecord] = Field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


class SearchRecord(Record):
    """search.json: every trial, the winner, the frontier; every figure here is on the validation split."""

    SCHEMA: ClassVar[str] = "shears.search/v1"
    FILE: ClassVar[str] = "search.json"
    schema_: Literal["shears.search/v1"] = Field("shears.search/v1", alias="schema")
    enabled: bool
    split: Split = "validation"
    objective: str = "gzip bytes of the deployable .tflite (minimize)"
    sampler: str
    budget: dict[str, float]
    baseline_accuracy: float
    baseline_gzip_bytes: int
    majority_rate: float
    trials: list[TrialRecord]
    winner: int | None
    winner_feasible: bool
    frontier: list[int]  # trial numbers on the size/accuracy Pareto frontier, smallest first
    seconds: dict[str, float] = Field(default_factory=dict)  # per phase
    note: str = ""


# --------------------------------------------------------------------------------------------- measuring


class ArtifactRecord(_Model):
    """One artifact's measurements: bytes as stored, gzipped bytes (deterministic), test accuracy."""

    name: str
    file: str
    kind: str  # "keras" or "tflite"
    raw_bytes: int
    gzip_bytes: int
    accuracy: float
    note: str = ""
    # .tflite only: gzip of the file with every weight zeroed (the flatbuffer's structure); the rest is weights
    structure_gzip_bytes: int | None = None


class MetricsRecord(Record):
    SCHEMA: ClassVar[str] = "shears.metrics/v1"
    FILE: ClassVar[str] = "metrics.json"
    schema_: Literal["shears.metrics/v1"] = Field("shears.metrics/v1", alias="schema")
    deployable: str
    artifacts: list[ArtifactRecord]
    # accuracy of always answering the test split's most frequent class (the no-skill baseline)
    test_majority_rate: float | None = None
    split: Split = "test"

    def artifact(self, name: str) -> ArtifactRecord | None:
        return next((a for a in self.artifacts if a.name == name), None)

    @property
    def deployable_artifact(self) -> ArtifactRecord:
        found = self.artifact(self.deployable)
        if found is None:
            raise RecordError(f"{self.FILE}: deployable {self.deployable!r} is not among its artifacts")
        return found

    @property
    def baseline(self) -> ArtifactRecord:
        found = self.artifact("baseline")
        if found is None:
            raise RecordError(f"{self.FILE}: no 'baseline' artifact")
        return found


class LatencyRecord(Record):
    SCHEMA: ClassVar[str] = "shears.latency/v1"
    FILE: ClassVar[str] = "latency.json"
    schema_: Literal["shears.latency/v1"] = Field("shears.latency/v1", alias="schema")
    unit: str
    batch: int
    median_of: int
    latency: dict[str, float]


class TimingRecord(Record):
    """What one step took, and the files it wrote to staging (what the publish step may publish)."""

    SCHEMA: ClassVar[str] = "shears.timing/v1"
    schema_: Literal["shears.timing/v1"] = Field("shears.timing/v1", alias="schema")
    step: str
    seconds: float
    outputs: list[str] = Field(default_factory=list)
    started_at: str | None = None


# --------------------------------------------------------------------------------------------- gates


class GateRecord(_Model):
    """A gate's verdict. Gates return these; only callers decide to raise."""

    name: str
    threshold: float | None
    observed: float | None
    passed: bool
    reason: str
    compared_to: str | None = None  # e.g. "baseline" or "champion <run_id>"


class ChampionSeen(_Model):
    """The champion a run's gates compared against, and the etag of the pointer as read then."""

    run_id: RunId
    etag: str


class ChampionComparisonRecord(_Model):
    """The challenger and the champion scored on this run's test split (the same rows, the same code path)."""

    run_id: RunId
    comparable: bool
    reason: str  # why it could not be compared, or what was compared
    tampered: bool = False  # a champion file no longer matches its manifest: never skipped, whatever the config
    rule: Literal["point", "confident"] = "point"
    split: Split = "test"
    n: int | None = None
    challenger_accuracy: float | None = None
    champion_accuracy: float | None = None  # on this run's test split
    champion_recorded_accuracy: float | None = None  # what its own manifest says (its own data)
    difference_pp: float | None = None  # challenger - champion
    ci_low_pp: float | None = None
    ci_high_pp: float | None = None
    ci_method: str = "paired percentile bootstrap, 10,000 resamples, seed 0, 95%"
    challenger_only: int | None = None  # discordant pairs (McNemar's b and c)
    champion_only: int | None = None
    both_right: int | None = None
    both_wrong: int | None = None
    mcnemar_p: float | None = None
    challenger_gzip_bytes: int | None = None
    champion_gzip_bytes: int | None = None  # its deployable, gzipped by the same function
    same_data: bool | None = None  # the champion was trained on this run's dataset (same sha256)
    champion_dataset_sha256: str | None = None


class GatesRecord(Record):
    SCHEMA: ClassVar[str] = "shears.gates/v1"
    FILE: ClassVar[str] = "gates.json"
    schema_: Literal["shears.gates/v1"] = Field("shears.gates/v1", alias="schema")
    passed: bool
    summary: str
    champion: ChampionSeen | None = None
    gates: list[GateRecord]
    comparison: ChampionComparisonRecord | None = None


class FailureRecord(Record):
    """Why a run stopped: the step, the reason (one line) and the exit code it maps to."""

    SCHEMA: ClassVar[str] = "shears.failure/v1"
    FILE: ClassVar[str] = "failure.json"
    schema_: Literal["shears.failure/v1"] = Field("shears.failure/v1", alias="schema")
    run_id: RunId
    stage: str
    exit_code: int
    reason: str
    at: str


# --------------------------------------------------------------------------------------------- publishing


class FileEntry(_Model):
    sha256: str
    bytes: int


class DatasetRef(_Model):
    name: str | None
    sha256: str | None
    rows: int | None


class DeployableRef(_Model):
    """The deployable artifact as the manifest and the champion pointer record it."""

    name: str
    file: str
    accuracy: float
    gzip_bytes: int
    raw_bytes: int


class MachineInfo(_Model):
    """The machine a TensorFlow step ran on: what decides the last digits of sizes and accuracies.

    With op determinism on, the same commit, data, config and seeds still give slightly different
    figures on CPUs whose kernels differ (ISA, oneDNN on/off, thread counts), so figures are
    reproducible per machine, and these fields say which machine. Collected by shears.keras.machine.
    """

    cpu_model: str
    arch: str
    # The ISA extensions TensorFlow's CPU feature guard checks (SSE…AVX-512, AMX, FMA) that this CPU has,
    # in TensorFlow's spelling (e.g. "AVX2", "AVX512F", "FMA").
    isa: list[str]
    onednn: bool  # oneDNN custom operations on (TensorFlow's own answer at run time)
    onednn_env: str | None  # TF_ENABLE_ONEDNN_OPTS as set (None: unset, TensorFlow's default applies)
    intra_op_threads: int  # 0: TensorFlow picks (all available cores)
    inter_op_threads: int
    cpus_available: int
    thread_env: dict[str, str] = Field(default_factory=dict)  # OMP_NUM_THREADS, TF_NUM_*_THREADS when set
    steps: list[str] = Field(default_factory=list)  # the steps that ran on it (filled in the manifest)

    def same_machine(self, other: MachineInfo) -> bool:
        return self.model_dump(exclude={"steps"}) == other.model_dump(exclude={"steps"})


class MachineRecord(Record):
    """staging/<id>/machine/<step>.json: the machine one TensorFlow step ran on (merged into the manifest)."""

    SCHEMA: ClassVar[str] = "shears.machine/v1"
    schema_: Literal["shears.machine/v1"] = Field("shears.machine/v1", alias="schema")
    step: str
    at: str  # when the step finished (UTC, ISO 8601): orders the steps across workers
    machine: MachineInfo


class SignatureRef(_Model):
    """The manifest's declaration that the run folder is signed: which file, which key, which format.

    The signature covers every file of the folder, manifest.json included, so it cannot be listed in
    the manifest's `files`; this declaration (signed with the rest) says it must be there.
    """

    file: str
    key_id: str  # sha256 of the public key's PEM: model-signing's public-key hint
    format: str = "model-signing/v1.0 sigstore bundle (DSSE, in-toto), elliptic-curve key"


class ManifestRecord(Record):
    """What a run published, from what, by which code; written last (no manifest = incomplete)."""

    SCHEMA: ClassVar[str] = "shears.manifest/v1"
    FILE: ClassVar[str] = "manifest.json"
    schema_: Literal["shears.manifest/v1"] = Field("shears.manifest/v1", alias="schema")
    run_id: RunId
    status: RunStatus
    created_at: str
    files: dict[str, FileEntry]
    # the config as the run resolved it, kept verbatim: a later Shears may have a different config model
    config: dict[str, Any]
    dataset: DatasetRef
    versions: dict[str, str]
    git_commit: str | None
    timings: dict[str, float]
    gates_passed: bool
    deployable: DeployableRef | None
    champion_compared: str | None = None
    machines: list[MachineInfo] = Field(default_factory=list)  # where the TensorFlow steps ran
    signature: SignatureRef | None = None  # None: the run folder is not signed


class ChampionRecord(Record):
    """champion.json and each champions/<seq>.json history entry (the same bytes at promotion)."""

    SCHEMA: ClassVar[str] = "shears.champion/v1"
    FILE: ClassVar[str] = "champion.json"
    schema_: Literal["shears.champion/v1"] = Field("shears.champion/v1", alias="schema")
    run_id: RunId
    manifest_sha256: str
    seq: int = Field(ge=1)
    action: Literal["promote", "rollback"]
    by: str
    at: str
    previous: RunId | None
    deployable: DeployableRef | None = None


class HolderRecord(_Model):
    """Who holds a run id's claim: a process (host, pid and its start time) or an Airflow DAG run."""

    kind: Literal["cli", "airflow"]
    host: str
    pid: int
    pid_started: str | None = None  # /proc/<pid>/stat start time: tells a reused pid from the holder
    user: str | None = None
    airflow_run: str | None = None  # "<dag_id>/<run_id>" for kind "airflow"

    def describe(self) -> str:
        who = f"Airflow run {self.airflow_run}" if self.airflow_run else "shears"
        return f"{who} (pid {self.pid} on {self.host})"


class ClaimRecord(Record):
    """claims/<run_id>.json: the one writer of a run id, kept fresh by its heartbeat; copied into the run."""

    SCHEMA: ClassVar[str] = "shears.claim/v1"
    FILE: ClassVar[str] = "claim.json"
    schema_: Literal["shears.claim/v1"] = Field("shears.claim/v1", alias="schema")
    run_id: RunId
    holder: HolderRecord
    claimed_at: str
    heartbeat_at: str
    stale_after_s: float
    took_over: HolderRecord | None = None  # the stale holder this claim replaced (--force-claim)
    took_over_why: str | None = None
    reclaimed: int = 0  # times the same Airflow run took its own claim again (a cleared run)


# --------------------------------------------------------------------------------------------- model card


class CardData(_Model):
    """What the model was trained and tested on (from validation.json and the config)."""

    uri: str | None  # as configured; None: the bundled sklearn digits
    name: str | None
    sha256: str | None
    rows: int | None
    test_rows: int | None
    num_classes: int | None
    feature_shape: list[int] | None
    validation_passed: bool | None
    validation_checks: int
    validation_failed: list[str] = Field(default_factory=list)  # "name (observed X; expected Y)"
    # without a test split in the source: the seeded stratified split Shears made (else both None)
    test_fraction: float | None = None
    split_seed: int | None = None


class CardBaseline(_Model):
    source: Literal["trained", "pretrained"]
    builder: str | None
    pretrained: str | None
    params: int | None
    epochs: int | None  # None for a pre-trained model (not trained here)
    batch_size: int | None
    learning_rate: float | None
    seed: int | None
    accuracy: float | None


class CardPruning(_Model):
    schedule: ScheduleRecord | None
    pruned_layers: list[str]
    target_sparsity: float
    tolerance: float
    epochs: int
    seed: int
    accuracy_after_finetune: float | None
    layers: list[LayerSparsityRecord]  # achieved sparsity per layer after strip
    sparsity_passed: bool | None


class CardConversion(_Model):
    variants: list[str]
    deployable: str
    representative_samples: int


class CardRecipe(_Model):
    baseline: CardBaseline | None
    pruning: CardPruning | None
    conversion: CardConversion | None


class CardArtifact(_Model):
    name: str
    file: str
    kind: str
    raw_bytes: int
    gzip_bytes: int
    accuracy: float
    latency_ms: float | None = None
    deployable: bool = False
    note: str = ""


class CardGates(_Model):
    passed: bool
    summary: str
    gates: list[GateRecord]


class CardChampion(_Model):
    """The champion the gates compared against (None: there was none) and the champion gates' verdicts."""

    run_id: str | None
    gates: list[GateRecord] = Field(default_factory=list)


class CardSignature(_Model):
    status: Literal["signed", "unsigned"]
    key_id: str | None = None
    file: str | None = None
    format: str | None = None


class ModelCardRecord(Record):
    """model_card.json: a one-page description of a run for reviewers, built only from the run's typed records.

    model_card.md is rendered from exactly this record (shears.report.card). Both are listed in the
    manifest and covered by the signature. Deterministic for a run's records (no timestamps: the manifest's
    created_at dates the run), so a retried publish writes identical bytes. Schema changes bump the
    version; fields are only added.
    """

    SCHEMA: ClassVar[str] = "shears.model_card/v1"
    FILE: ClassVar[str] = "model_card.json"
    schema_: Literal["shears.model_card/v1"] = Field("shears.model_card/v1", alias="schema")
    run_id: RunId
    status: RunStatus
    intended_use: str | None
    deployable: DeployableRef | None
    data: CardData
    recipe: CardRecipe
    artifacts: list[CardArtifact]
    gates: CardGates | None
    champion: CardChampion
    versions: dict[str, str]
    git_commit: str | None
    machines: list[MachineInfo]
    signature: CardSignature


# Every record a run folder can hold, by file name (readers that walk a run folder use this map).
RUN_RECORDS: dict[str, type[Record]] = {
    m.FILE: m
    for m in (ValidationRecord, BaselineRecord, PruneRecord, SparsityRecord, MetricsRecord, LatencyRecord,
              GatesRecord, FailureRecord, ManifestRecord, ClaimRecord, SensitivityRecord, SearchRecord,
              ModelCardRecord)
}
