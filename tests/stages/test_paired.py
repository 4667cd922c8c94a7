from __future__ import annotations

import numpy as np
import pytest
from shears.stages.paired import mcnemar_exact, paired_comparison


def test_identical_models_differ_by_zero_with_p_one() -> None:
    rng = np.random.default_rng(1)
    right = rng.random(500) < 0.9
    s = paired_comparison(right, right)
    assert s.difference_pp == 0.0 and s.ci_low_pp == 0.0 and s.ci_high_pp == 0.0 and s.mcnemar_p == 1.0
    assert (s.challenger_only, s.champion_only) == (0, 0) and s.both_right + s.both_wrong == 500


def test_a_clearly_better_challenger() -> None:
    champion = np.array([True] * 800 + [False] * 200)
    challenger = champion.copy()
    challenger[800:860] = True  # 60 more right
    challenger[:5] = False  # 5 fewer right
    s = paired_comparison(challenger, champion)
    assert s.difference_pp == pytest.approx(5.5) and s.ci_low_pp > 0 and s.ci_high_pp < 10
    assert (s.challenger_only, s.champion_only) == (60, 5) and s.mcnemar_p < 1e-10
    assert paired_comparison(challenger, champion) == s  # fixed seed: the same interval every time


def test_mcnemar_exact_matches_the_binomial() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(1, 9) == pytest.approx(0.021484375)  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
    with pytest.raises(ValueError):
        paired_comparison(np.array([True]), np.array([True, False]))


def test_paired_losses_give_the_mean_difference_its_interval_and_wilcoxon() -> None:
    from shears.stages.paired import paired_loss_comparison

    rng = np.random.default_rng(0)
    champion = rng.exponential(1.0, 400)
    worse = champion + rng.normal(0.3, 0.2, 400)  # the challenger's errors are larger on most rows
    stats = paired_loss_comparison(worse, champion)
    assert stats.ci_low <= stats.difference <= stats.ci_high and stats.ci_low > 0
    assert stats.wilcoxon_p < 1e-6 and stats.change_pct > 0
    same = paired_loss_comparison(champion, champion)
    assert (same.difference, same.ci_low, same.ci_high, same.wilcoxon_p) == (0.0, 0.0, 0.0, 1.0)
    again = paired_loss_comparison(worse, champion)
    assert (again.ci_low, again.ci_high) == (stats.ci_low, stats.ci_high)  # fixed seed: the same interval
    with pytest.raises(ValueError, match="same, non-empty"):
        paired_loss_comparison(worse[:3], champion[:4])


def test_paired_auc_difference_and_its_interval() -> None:
    from shears.stages.paired import paired_auc_difference

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    good = y + rng.normal(0, 0.5, 300)
    poor = y + rng.normal(0, 2.0, 300)
    d, lo, hi = paired_auc_difference(y, good, poor, resamples=300)
    assert lo <= d <= hi and lo > 0
