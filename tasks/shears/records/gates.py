"""Records of the verdict: every gate, the champion comparison, the policy floors, why a run stopped."""

from __future__ import annotations

from typing import Literal

from shears.records.base import Record, RunId, Split, _Model


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
    # by task: what was compared (accuracy for classifiers; a regressor's mean per-row loss, MSE or MAE)
    task: str = "multiclass"
    metric: str = "accuracy"
    challenger_score: float | None = None  # regression: mean per-row loss of each on these rows
    champion_score: float | None = None
    difference: float | None = None  # challenger - champion, in the metric's units (positive: worse)
    ci_low: float | None = None  # 95% paired bootstrap interval of `difference`
    ci_high: float | None = None
    change_pct: float | None = None  # difference in % of the champion's
    ci_low_pct: float | None = None
    ci_high_pct: float | None = None
    wilcoxon_p: float | None = None  # two-sided signed-rank test of the per-row loss differences
    # binary: ΔAUC (challenger - champion) on these rows and its paired bootstrap interval
    auc_difference: float | None = None
    auc_ci_low: float | None = None
    auc_ci_high: float | None = None


class PolicyFloorsRecord(_Model):
    """The deployment's floors that applied to a run's gates (shears.policy): where they came from, each floor."""

    source: str  # the policy file, or "built-in"
    gates: dict[str, float | None]
    signing_required: bool


class GatesRecord(Record, schema="shears.gates/v1", file="gates.json"):
    passed: bool
    summary: str
    champion: ChampionSeen | None = None
    gates: list[GateRecord]
    comparison: ChampionComparisonRecord | None = None
    policy: PolicyFloorsRecord | None = None  # None in runs of Shears 0.2 and older


class FailureRecord(Record, schema="shears.failure/v1", file="failure.json"):
    """Why a run stopped: the step, the reason (one line) and the exit code it maps to."""

    run_id: RunId
    stage: str
    exit_code: int
    reason: str
    at: str
