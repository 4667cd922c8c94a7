"""Records of the models: the baseline, the recipe applied to it, the pruning and the sparsity it reached."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from shears.records.base import Record, Split, Variant, _Model


def _was(*old: str) -> AliasChoices:
    """A field renamed when metrics got directions: records written before still load under the old key."""
    return AliasChoices(*old)


class LayerPlanRecord(_Model):
    """One top-level layer with weights: what tfmot prunes of it, or why it stays dense (shears.keras.prunable)."""

    layer: str
    class_name: str
    weights: dict[str, int] = Field(default_factory=dict)  # prunable weight -> elements ({}: kept dense)
    kept: str | None = None  # why it is not pruned
    cluster: str | None = None  # a pruned layer tfmot cannot cluster: why (None: it can)


class ModelSupportRecord(_Model):
    """What the model can take, found once at baseline by asking tfmot and the converter's known limits; the
    search leaves out what a model cannot take (recorded in search.json), a configured recipe asking for it is
    a config error."""

    layers: list[LayerPlanRecord] = Field(default_factory=list)
    qat: str | None = None  # why quantization-aware training cannot apply (None: it can, or was not asked for)
    qat_probed: bool = False
    int8: str | None = None  # why no full-integer int8 .tflite can be built (None: it can)
    fixed_batch: str | None = None  # why the .tflite must be converted with a fixed batch of one (None: need not)


class BaselineRecord(Record, schema="shears.baseline/v1", file="baseline.json"):
    # the task's primary metric (`metric`; `accuracy` before tasks had kinds) on `split`
    score: float = Field(validation_alias=_was("score", "accuracy"))
    metric: str = "accuracy"
    builder: str | None
    pretrained: str | None
    history: dict[str, list[float]] = Field(default_factory=dict)
    params: int
    split: Split = "test"  # where `score` was measured (Shears 0.1: test; since the search: validation)
    gzip_bytes: int | None = None  # of the baseline .h5 without optimizer (the search's compression reference)
    prunable_layers: dict[str, int] = Field(default_factory=dict)  # layer -> kernel weights
    # where the model came from: "trained here", "Keras 2 .h5", "Keras 3 .keras", ...
    origin: str = "trained here"
    # a Keras 3 model rebuilt in tf_keras: the largest |output difference| of the two on `conversion_samples`
    # rows of the run's training data (must be <= conversion_tolerance, else the run stops)
    conversion_max_abs_diff: float | None = None
    conversion_samples: int | None = None
    conversion_tolerance: float | None = None
    support: ModelSupportRecord | None = None  # None: written before layer plans were recorded


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
    # the threshold that allocated `sparsity` (search trials), in the primary metric's unit (pp or %)
    tolerated_drop_pp: float | None = None
    # every fine-tune distilled from the baseline: soft targets at the temperature, alpha on the hard labels
    distill: bool = False
    distill_temperature: float = 4.0
    distill_alpha: float = 0.5

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
        if self.distill:
            parts.append(f"distilled (T {self.distill_temperature:g}, α {self.distill_alpha:g})")
        parts.append(self.variant + (" batch-1" if self.fixed_batch else ""))
        return "; ".join(parts)


class Schedule(_Model):
    """The pruning schedule as derived from the data (shears.stages.schedule) and as prune.json records it."""

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

    def sparsity_at(self, step: int) -> float:
        """The target sparsity tfmot applies at `step` (0 before begin_step); for plots and checks."""
        if step < self.begin_step:
            return 0.0
        if self.kind == "constant_sparsity":
            return self.final_sparsity
        frac = min(1.0, (min(step, self.end_step) - self.begin_step) / max(1, self.end_step - self.begin_step))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1 - frac) ** self.power

    def mask_updates(self) -> list[int]:
        """Steps at which masks are recomputed during the fine-tune."""
        last = min(self.end_step, self.total_steps - 1)
        return list(range(self.begin_step, last + 1, self.frequency))


class PruneRecord(Record, schema="shears.prune/v1", file="prune.json"):
    score: float = Field(validation_alias=_was("score", "accuracy"))  # the primary metric, on `split`
    metric: str = "accuracy"
    pruned_layers: list[str]
    schedule: Schedule
    mask_update_steps: list[int]
    sparsity_by_step: list[tuple[int, float]]
    history: dict[str, list[float]] = Field(default_factory=dict)
    split: Split = "test"  # where `score` was measured
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
    # a layer with several prunable weights (an RNN's kernel and recurrent kernel): each one's sparsity; each
    # must reach the target (tfmot prunes each weight to it), `sparsity` is theirs together
    parts: dict[str, float] = Field(default_factory=dict)


class SparsityRecord(Record, schema="shears.sparsity/v1", file="sparsity.json"):
    target: float
    tolerance: float
    passed: bool
    layers: list[LayerSparsityRecord]
