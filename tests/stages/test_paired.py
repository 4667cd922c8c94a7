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
