"""Records of the search: sensitivity per layer, every trial, the winner and the frontier."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field

from shears.records.base import Record, Split, _Model
from shears.records.model import Recipe


class SensitivityPoint(_Model):
    """The primary metric with one layer pruned to `sparsity`, and how much worse than the baseline it is
    (percentage points for accuracy-like metrics, percent for errors; `SensitivityRecord.unit`)."""

    sparsity: float
    score: float = Field(validation_alias=AliasChoices("score", "accuracy"))
    drop: float = Field(validation_alias=AliasChoices("drop", "drop_pp"))


class LayerSensitivityRecord(_Model):
    """One layer pruned alone (magnitude, no fine-tune) at each sparsity of the ladder."""

    layer: str
    weights: int
    points: list[SensitivityPoint]


class SensitivityRecord(Record, schema="shears.sensitivity/v1", file="sensitivity.json"):
    split: Split = "validation"
    method: str = "magnitude pruning of one layer at a time, no fine-tune"
    baseline_score: float = Field(validation_alias=AliasChoices("baseline_score", "baseline_accuracy"))
    metric: str = "accuracy"
    unit: Literal["pp", "%"] = "pp"
    ladder: list[float]
    layers: list[LayerSensitivityRecord]


class TensorCheckRecord(_Model):
    """What the .tflite itself holds for one compressed layer: zeros and distinct values, vs the recipe."""

    layer: str
    weight: str | None = None  # which of the layer's weights, when it has several (kernel, recurrent_kernel)
    tensor: str
    weights: int
    zero_fraction: float
    expected_sparsity: float | None
    distinct: int  # distinct values (per output channel, the largest, when quantized per channel)
    expected_clusters: int | None
    passed: bool


class TrialRecord(Record, schema="shears.trial/v1"):
    """One trial of the search: its recipe, what it scored on the validation split, and why it passes or not."""

    number: int
    round: int
    # "recipe" (trial 0: the configured recipe), "seed" (from sensitivity), "bisect" (the ladder) or "sampler"
    origin: str
    recipe: Recipe
    params: dict[str, Any] = Field(default_factory=dict)  # the search parameters that made the recipe
    state: Literal["planned", "complete", "failed"] = "planned"
    split: Split = "validation"
    score: float | None = Field(None, validation_alias=AliasChoices("score", "accuracy"))  # the primary metric
    # its bounds at the search's confidence (shears.stages.bounds): the metric at its plausible worst, and how
    # much worse than the baseline on the same rows at worst (pp, or % of the baseline for errors)
    bound: float | None = None
    worse_bound: float | None = None
    # the second look: the same on the selection slice (feasible trials, one per allocation, largest first)
    selection_score: float | None = None
    selection_bound: float | None = None
    selection_worse_bound: float | None = None
    selection_feasible: bool | None = None
    selection_violations: list[str] = Field(default_factory=list)
    gzip_bytes: int | None = None
    raw_bytes: int | None = None
    structure_gzip_bytes: int | None = None
    # the same .tflite before convert.trim (equal to the above when trim is off or changed nothing)
    untrimmed_gzip_bytes: int | None = None
    untrimmed_structure_gzip_bytes: int | None = None
    feasible: bool = False
    violations: list[str] = Field(default_factory=list)
    constraints: list[float] = Field(default_factory=list)  # <= 0 each when feasible (Optuna's convention)
    checks: list[TensorCheckRecord] = Field(default_factory=list)
    output_problem: str | None = None  # a regressor's .tflite outputs collapsed or saturated (then infeasible)
    seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None  # a failure that was not a recipe the model cannot take: where it was raised


class SearchRecord(Record, schema="shears.search/v1", file="search.json"):
    """search.json: every trial, the winner, the frontier; every figure here is on the validation split."""

    enabled: bool
    split: Split = "validation"
    objective: str = "gzip bytes of the deployable .tflite (minimize)"
    sampler: str
    budget: dict[str, float]
    metric: str = "accuracy"  # the primary metric every `score` here is
    baseline_score: float = Field(validation_alias=AliasChoices("baseline_score", "baseline_accuracy"))
    baseline_gzip_bytes: int
    # the no-skill answer's primary metric on the validation split (the majority class for classifiers)
    no_skill_score: float = Field(validation_alias=AliasChoices("no_skill_score", "majority_rate"))
    trials: list[TrialRecord]
    winner: int | None
    winner_feasible: bool
    frontier: list[int]  # trial numbers on the size/score Pareto frontier, smallest first
    seconds: dict[str, float] = Field(default_factory=dict)  # per phase
    note: str = ""
    # what the search left out because the model cannot take it (QAT, int8, clustering a layer), and why
    fitted: list[str] = Field(default_factory=list)
    confidence: float | None = None  # the bounds' one-sided confidence (None: before bounds, a point estimate)
    # the bounds predict what evaluate measures on a test split of this many rows (None: bounds of the true metric)
    judged_rows: int | None = None
    selection_rows: int | None = None  # rows of the selection slice of the second look (None: no second look)
    second_look: list[int] = Field(default_factory=list)  # the trials re-scored there, in order: largest first
