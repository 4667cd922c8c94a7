"""Challenger vs champion on the same test examples: the paired accuracy difference, its interval, McNemar.

Both models are scored on the same rows, so the comparison is paired: what matters is where they disagree.
The interval of the difference is a paired percentile bootstrap (rows resampled together, 10,000 resamples,
fixed seed): it needs no normal approximation, behaves with few disagreements, and the fixed seed makes it
the same number on every rerun. Significance is McNemar's exact test (a two-sided binomial test on the
discordant pairs), the standard test for two classifiers on one test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class PairedStats:
    n: int
    challenger_accuracy: float
    champion_accuracy: float
    difference_pp: float  # challenger - champion
    ci_low_pp: float  # 95% interval of the difference
    ci_high_pp: float
    challenger_only: int  # rows only the challenger gets right (McNemar's b)
    champion_only: int  # rows only the champion gets right (c)
    both_right: int
    both_wrong: int
    mcnemar_p: float


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial(b + c, 1/2) on the discordant pairs (1.0 without any)."""
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue)


def paired_comparison(challenger_correct: np.ndarray, champion_correct: np.ndarray, *,
                      resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedStats:
    """Paired statistics of two models' per-example correctness on the same rows."""
    a = np.asarray(challenger_correct, dtype=bool)
    c = np.asarray(champion_correct, dtype=bool)
    if a.shape != c.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("both models must be scored on the same, non-empty set of rows")
    n = a.size
    delta = a.astype(np.int8) - c.astype(np.int8)  # +1 challenger only, -1 champion only, 0 agree
    lo, hi = paired_bootstrap_mean(delta * 100.0, resamples=resamples, seed=seed)  # in pp
    b = int(np.count_nonzero(a & ~c))
    cc = int(np.count_nonzero(~a & c))
    return PairedStats(
        n=n, challenger_accuracy=round(float(a.mean()), 6), champion_accuracy=round(float(c.mean()), 6),
        difference_pp=round(float(delta.mean() * 100), 4), ci_low_pp=round(float(lo), 4),
        ci_high_pp=round(float(hi), 4), challenger_only=b, champion_only=cc,
        both_right=int(np.count_nonzero(a & c)), both_wrong=int(np.count_nonzero(~a & ~c)),
        mcnemar_p=float(f"{mcnemar_exact(b, cc):.4g}"),  # significant digits: tiny p-values stay readable
    )


@dataclass(frozen=True)
class PairedLossStats:
    """Two regressors' per-row losses (squared or absolute error) on the same rows."""

    n: int
    challenger_mean: float  # mean per-row loss: MSE (squared) or MAE (absolute)
    champion_mean: float
    difference: float  # challenger - champion (positive: the challenger is worse)
    ci_low: float  # 95% paired percentile bootstrap interval of the difference
    ci_high: float
    wilcoxon_p: float  # two-sided Wilcoxon signed-rank test of the per-row differences

    @property
    def change_pct(self) -> float:
        return self.difference / max(abs(self.champion_mean), 1e-12) * 100

    @property
    def ci_low_pct(self) -> float:
        return self.ci_low / max(abs(self.champion_mean), 1e-12) * 100

    @property
    def ci_high_pct(self) -> float:
        return self.ci_high / max(abs(self.champion_mean), 1e-12) * 100


def paired_bootstrap_mean(delta: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                          seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95% percentile interval of the mean of per-row differences, rows resampled (fixed seed)."""
    n = delta.size
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    chunk = max(1, 4_000_000 // n)
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        means[start : start + len(idx)] = delta[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def paired_loss_comparison(challenger_loss: np.ndarray, champion_loss: np.ndarray, *,
                           resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedLossStats:
    """Paired statistics of per-row losses: the mean difference, its bootstrap interval, Wilcoxon's p."""
    a = np.asarray(challenger_loss, dtype=np.float64)
    c = np.asarray(champion_loss, dtype=np.float64)
    if a.shape != c.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("both models must be scored on the same, non-empty set of rows")
    delta = a - c
    lo, hi = paired_bootstrap_mean(delta, resamples=resamples, seed=seed)
    if np.any(delta != 0):
        from scipy.stats import wilcoxon

        p = float(wilcoxon(delta, zero_method="wilcox", alternative="two-sided").pvalue)
    else:
        p = 1.0
    return PairedLossStats(n=a.size, challenger_mean=round(float(a.mean()), 6), champion_mean=round(float(c.mean()), 6),
                           difference=round(float(delta.mean()), 6), ci_low=round(lo, 6), ci_high=round(hi, 6),
                           wilcoxon_p=float(f"{p:.4g}"))


def paired_auc_difference(y: np.ndarray, challenger_score: np.ndarray, champion_score: np.ndarray, *,
                          resamples: int = 2_000, seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """ΔAUC (challenger - champion) on the same rows, and its 95% paired bootstrap interval (fixed seed)."""
    from shears.task import roc_auc

    y = np.asarray(y).astype(bool)
    a, c = np.asarray(challenger_score, dtype=np.float64), np.asarray(champion_score, dtype=np.float64)
    point_a, point_c = roc_auc(y, a), roc_auc(y, c)
    if point_a is None or point_c is None:
        raise ValueError("ΔAUC needs both classes among the rows")
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        idx = rng.integers(0, y.size, size=y.size)
        da, dc = roc_auc(y[idx], a[idx]), roc_auc(y[idx], c[idx])
        if da is not None and dc is not None:
            diffs.append(da - dc)
    lo, hi = np.percentile(np.asarray(diffs), [2.5, 97.5])
    return round(point_a - point_c, 6), round(float(lo), 6), round(float(hi), 6)
