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
    rng = np.random.default_rng(seed)
    sums = np.empty(resamples, dtype=np.int64)
    chunk = max(1, 4_000_000 // n)
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        sums[start : start + len(idx)] = delta[idx].sum(axis=1)
    lo, hi = np.percentile(sums / n * 100, [2.5, 97.5])
    b = int(np.count_nonzero(a & ~c))
    cc = int(np.count_nonzero(~a & c))
    return PairedStats(
        n=n, challenger_accuracy=round(float(a.mean()), 6), champion_accuracy=round(float(c.mean()), 6),
        difference_pp=round(float(delta.mean() * 100), 4), ci_low_pp=round(float(lo), 4),
        ci_high_pp=round(float(hi), 4), challenger_only=b, champion_only=cc,
        both_right=int(np.count_nonzero(a & c)), both_wrong=int(np.count_nonzero(~a & ~c)),
        mcnemar_p=float(f"{mcnemar_exact(b, cc):.4g}"),  # significant digits: tiny p-values stay readable
    )
