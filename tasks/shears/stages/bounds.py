"""One-sided confidence bounds for the search: how good a trial is at least (or how bad at most), not by luck.

The search keeps the smallest trial that passes the gates, and the smallest pass is the one most likely to have
passed by luck (the winner's curse): on Fashion-MNIST a fixed margin on the validation split still let one night
in three publish a model that failed on the test split. So a trial is judged by a bound at a stated confidence:

* accuracy: the Wilson score lower bound (a binomial proportion; no normal approximation of the point itself);
* how much worse than the baseline, for accuracy: both models are scored on the same rows, so only the rows
  where they disagree carry information; conditional on those, the baseline-only wins are binomial, and the
  Clopper–Pearson upper bound of their share bounds the drop (the one-sided form of McNemar's exact test);
* any other metric (MSE, MAE, log-loss, AUC, R²): a percentile bootstrap of the rows (paired with the baseline
  for the change), fixed seed, in the metric's direction.

Every bound is one-sided at `confidence` (0.9: a trial that truly misses a gate passes it about one time in ten).

A bound of the true metric is not what a run is judged by: evaluate measures the winner on a finite test split,
which samples too, so a model truly at the floor fails it one night in two. With `judged_rows` (the test split's
row count, known before anything trains; its rows stay unread) a bound predicts what such a split will measure:
both samples' variances add, p(1-p)(1/n + 1/m) for a proportion, so every bound's distance from the point
estimate widens by sqrt(1 + n/m) (the Wilson score prediction bound for a proportion, and the same widening of
the paired and bootstrap bounds). No free parameter: n and m are the two splits' row counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shears.task import Task, drop, metric_info

BOOTSTRAP_RESAMPLES = 2_000
BOOTSTRAP_SEED = 0


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(confidence))


def wilson_lower(successes: int, n: int, confidence: float) -> float:
    """The one-sided Wilson score lower bound of a proportion (0 without rows)."""
    if n <= 0:
        return 0.0
    z = _z(confidence)
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, (centre - spread) / (1 + z * z / n)))


def clopper_pearson_upper(successes: int, n: int, confidence: float) -> float:
    """The one-sided exact (Clopper–Pearson) upper bound of a proportion (1 without rows)."""
    if n <= 0 or successes >= n:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(confidence, successes + 1, n - successes))


def paired_drop_upper(baseline_correct: np.ndarray, trial_correct: np.ndarray, confidence: float) -> float:
    """An upper bound, in percentage points, of how much less accurate the trial is than the baseline on the
    same rows: (n_d / n) * (2 * p_hi - 1), p_hi the Clopper–Pearson upper bound of the baseline-only share of
    the n_d rows where exactly one of them is right. Negative when the trial is surely better."""
    b = np.asarray(baseline_correct, dtype=bool)
    t = np.asarray(trial_correct, dtype=bool)
    n = b.size
    if n == 0:
        return 0.0
    base_only = int(np.count_nonzero(b & ~t))
    discordant = base_only + int(np.count_nonzero(t & ~b))
    if discordant == 0:
        return 0.0
    p_hi = clopper_pearson_upper(base_only, discordant, confidence)
    return float(discordant / n * (2 * p_hi - 1) * 100)


def prediction_widening(rows: int, judged_rows: int | None) -> float:
    """How much farther from the point estimate a bound of what `judged_rows` fresh rows will measure lies than
    a bound of the true metric (1 without a judged split)."""
    if not judged_rows or rows <= 0:
        return 1.0
    return float(np.sqrt(1 + rows / judged_rows))


def _widened(point: float, bound: float, widening: float) -> float:
    return point + (bound - point) * widening


def bootstrap_quantile(rows: int, statistic: Callable[[np.ndarray], float], q: float, *,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> float:
    """The q-quantile of `statistic(indices)` over bootstrap resamples of `rows` row indices (fixed seed)."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, rows, size=rows)) for _ in range(resamples)]
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    return float(np.quantile(finite, q)) if finite.size else float("nan")


@dataclass(frozen=True)
class Bounded:
    """A trial's primary metric on some rows, with its bounds at the run's confidence.

    `bound`: the metric at its plausible worst (lower for accuracy, AUC, R²; upper for MSE, MAE, log-loss).
    `worse_bound`: how much worse than the baseline on the same rows, at its plausible worst, in the metric's
    unit (pp for accuracy-like metrics, % of the baseline for errors). None: no baseline to compare with.
    """

    score: float
    bound: float
    worse_bound: float | None
    rows: int
    confidence: float
    judged_rows: int | None = None  # the bounds predict what a split of this many rows will measure (None: the truth)


def bound_metric(task: Task, outputs: np.ndarray, y: np.ndarray, confidence: float,
                 baseline_outputs: np.ndarray | None = None, judged_rows: int | None = None) -> Bounded:
    """The task's primary metric of `outputs` on (`y`), with its one-sided bounds (and, given the baseline's
    outputs on the same rows, the bound of how much worse than the baseline it is). With `judged_rows`, the
    bounds are of what a fresh split of that many rows will measure (module docstring)."""
    primary, metrics = task.primary, task.metrics
    n = len(y)
    w = prediction_widening(n, judged_rows)
    score = float(metrics(outputs, y)[primary])
    info = metric_info(primary)
    if primary == "accuracy":
        right = np.asarray(task.predict(outputs)).reshape(n) == np.asarray(y).reshape(n)
        bound = max(0.0, _widened(score, wilson_lower(int(right.sum()), n, confidence), w))
        worse = None
        if baseline_outputs is not None:
            base_right = np.asarray(task.predict(baseline_outputs)).reshape(n) == np.asarray(y).reshape(n)
            point = float(base_right.mean() - right.mean()) * 100
            worse = _widened(point, paired_drop_upper(base_right, right, confidence), w)
        return Bounded(score, round(bound, 6), None if worse is None else round(worse, 4), n, confidence,
                       judged_rows)

    def stat(idx: np.ndarray, out: np.ndarray = outputs) -> float:
        return float(metrics(out[idx], y[idx])[primary])

    worst_q = confidence if info.direction == "lower" else 1 - confidence
    bound = _widened(score, bootstrap_quantile(n, stat, worst_q), w)
    worse = None
    if baseline_outputs is not None:
        base_score = float(metrics(baseline_outputs, y)[primary])
        point = drop(primary, base_score, score)

        def change(idx: np.ndarray) -> float:
            return drop(primary, float(metrics(baseline_outputs[idx], y[idx])[primary]), stat(idx))

        worse = bootstrap_quantile(n, change, confidence)
        worse = _widened(point, worse, w) if np.isfinite(worse) else point
    return Bounded(score, round(bound, 6), None if worse is None else round(float(worse), 4), n, confidence,
                   judged_rows)
