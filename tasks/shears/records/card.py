"""The model card record: one page for reviewers, built only from a run's typed records."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shears.records.base import Record, RunId, RunStatus, Split, _Model
from shears.records.evaluation import MachineInfo, MicroRecord, TrimRecord
from shears.records.gates import GateRecord
from shears.records.model import LayerSparsityRecord, Schedule
from shears.records.release import DeployableRef


class CardData(_Model):
    """What the model was trained and tested on (from validation.json and the config)."""

    uri: str | None  # as configured; None: the bundled sklearn digits
    name: str | None
    sha256: str | None
    rows: int | None
    test_rows: int | None  # rows of the test split the run measured on (the source's own, or Shears' split)
    num_classes: int | None
    feature_shape: list[int] | None
    validation_passed: bool | None
    validation_checks: int
    validation_failed: list[str] = Field(default_factory=list)  # "name (observed X; expected Y)"
    # without a test split in the source: the seeded stratified split Shears made (else both None)
    test_fraction: float | None = None
    split_seed: int | None = None
    train_rows: int | None = None  # of the training split (the search's training data)
    validation_rows: int | None = None  # of the validation split (every choice of the search)


class CardBaseline(_Model):
    source: Literal["trained", "pretrained"]
    builder: str | None
    pretrained: str | None
    params: int | None
    epochs: int | None  # None for a pre-trained model (not trained here)
    batch_size: int | None
    learning_rate: float | None
    seed: int | None
    accuracy: float | None  # the primary metric (`metric`) on `accuracy_split` (named before metrics had kinds)
    accuracy_split: Split | None = None  # where `accuracy` was measured (validation since the search)
    test_accuracy: float | None = None  # of the baseline .h5 on the test split (metrics.json)
    metric: str = "accuracy"  # what `accuracy` and `test_accuracy` are


class CardPruning(_Model):
    """The recipe that was published (prune.json's: the search's winner, or the config's with the search off)."""

    schedule: Schedule | None
    pruned_layers: list[str]
    target_sparsity: float  # the highest per-layer target of the published recipe
    tolerance: float
    epochs: int  # pruning fine-tune epochs of the published recipe
    seed: int
    accuracy_after_finetune: float | None  # the primary metric (`metric`) on `accuracy_split`
    metric: str = "accuracy"
    layers: list[LayerSparsityRecord]  # achieved sparsity per layer after strip
    sparsity_passed: bool | None
    accuracy_split: Split | None = None
    layer_targets: dict[str, float] = Field(default_factory=dict)  # per pruned layer
    clusters: dict[str, int] = Field(default_factory=dict)  # weight clusters per layer (zero included); {} none
    qat: str | None = None  # tfmot's quantization-aware scheme (qat, pqat, cqat, pcqat); None: no QAT
    distill: str | None = None  # "temperature 4, alpha 0.5": fine-tuned with the baseline as teacher; None: not
    trial: int | None = None  # the search trial that was published
    recipe: str | None = None  # the recipe in one line (Recipe.describe())


class CardConversion(_Model):
    variants: list[str]  # the TFLite variants measured (metrics.json)
    deployable: str  # the variant published as the deployable
    representative_samples: int
    fixed_batch: bool = False  # the deployable takes one sample per call


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
    accuracy: float | None  # classifiers; a regressor's figures are in `metrics`
    latency_ms: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    deployable: bool = False
    note: str = ""
    runtime: str | None = None  # where it runs (LiteRT, TFLite Micro, TF Serving, Keras 3, Keras (tf_keras))
    arena_bytes: int | None = None  # TFLite Micro's tensor arena


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


class ModelCardRecord(Record, schema="shears.model_card/v1", file="model_card.json"):
    """model_card.json: a one-page description of a run for reviewers, built only from the run's typed records.

    model_card.md is rendered from exactly this record (shears.report.card). Both are listed in the
    manifest and covered by the signature. Deterministic for a run's records (no timestamps: the manifest's
    created_at dates the run), so a retried publish writes identical bytes. Schema changes bump the
    version; fields are only added.
    """

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
    micro: MicroRecord | None = None  # whether the deployable runs on TFLite Micro, with what arena (None: not run)
    trim: TrimRecord | None = None  # the deployable before and after convert.trim (None: not trimmed)
