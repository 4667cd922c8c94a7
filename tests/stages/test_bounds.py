"""The search's confidence bounds: they hold as often as they claim (simulated), in each metric's direction."""

from __future__ import annotations

import numpy as np
import pytest
from shears.stages.bounds import bound_metric, clopper_pearson_upper, paired_drop_upper, wilson_lower
from shears.task import Task


def test_wilson_lower_bound_covers_at_its_confidence() -> None:
    rng = np.random.default_rng(0)
    p, n = 0.88, 600
    draws = rng.binomial(n, p, size=4000)
    for confidence in (0.8, 0.9, 0.95):
        above = np.mean([wilson_lower(int(k), n, confidence) > p for k in draws])
        assert above <= (1 - confidence) + 0.02, (confidence, above)  # a lower bound, wrong at most 1 - c
        assert above >= (1 - confidence) - 0.05  # and not uselessly loose
    assert wilson_lower(100, 100, 0.9) < 1.0 and wilson_lower(0, 10, 0.9) == 0.0 and wilson_lower(0, 0, 0.9) == 0.0
    assert wilson_lower(900, 1000, 0.9) > wilson_lower(90, 100, 0.9)  # more rows, a tighter bound


def test_clopper_pearson_upper_is_exact_at_the_edges() -> None:
    assert clopper_pearson_upper(10, 10, 0.9) == 1.0 and clopper_pearson_upper(0, 0, 0.9) == 1.0
    assert clopper_pearson_upper(0, 10, 0.9) == pytest.approx(1 - 0.1 ** (1 / 10), rel=1e-9)


def test_the_paired_drop_bound_uses_only_the_rows_where_they_disagree() -> None:
    same = np.ones(1000, dtype=bool)
    assert paired_drop_upper(same, same, 0.9) == 0.0
    base = np.ones(1000, dtype=bool)
    trial = base.copy()
    trial[:10] = False  # 10 rows worse, none better: a 1.0 pp drop, bounded above it
    assert 1.0 <= paired_drop_upper(base, trial, 0.9) <= 1.1
    trial[10:30] = True
    base[10:30] = False  # and 20 rows better: the trial is better; the bound still says by how much at worst
    assert paired_drop_upper(base, trial, 0.9) < 0
    # coverage: a trial truly 0.5 pp worse on 2,000 rows, 60 discordant rows on average
    rng = np.random.default_rng(1)
    misses = 0
    for _ in range(2000):
        u = rng.random(2000)
        b = np.ones(2000, dtype=bool)
        t = np.ones(2000, dtype=bool)
        b[u < 0.0125] = False  # the baseline alone wrong on 1.25 % of rows
        t[(u >= 0.0125) & (u < 0.03)] = False  # the trial alone wrong on 1.75 %: 0.5 pp worse
        misses += paired_drop_upper(b, t, 0.9) < 0.5
    assert misses / 2000 <= 0.12


def _regression(seed: int, n: int) -> tuple[Task, np.ndarray, np.ndarray, np.ndarray]:
    """A regressor's targets, a model's outputs and a slightly better baseline's, on n rows."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n).astype(np.float32)
    out = (y + rng.normal(scale=0.3, size=n)).reshape(-1, 1)
    base = (y + rng.normal(scale=0.25, size=n)).reshape(-1, 1)
    return Task("regression", 0, 1, "values"), y, out, base


def test_bounds_follow_the_metric_direction() -> None:
    reg, y, good, base = _regression(2, 500)
    rng = np.random.default_rng(2)
    b = bound_metric(reg, good, y, 0.9, base)
    assert b.bound > b.score  # MSE: its plausible worst is higher
    assert b.worse_bound is not None and b.worse_bound > 0  # worse than a better baseline, in % of it
    clf = Task("multiclass", 3, 3, "logits")
    labels = rng.integers(0, 3, size=400)
    logits = np.eye(3)[labels] + rng.normal(scale=0.8, size=(400, 3))
    c = bound_metric(clf, logits, labels, 0.9, logits)
    assert c.bound < c.score and c.worse_bound == 0.0 and c.rows == 400


def _scored(correct: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-class logits right on the first `correct` of `n` rows (labels all 0)."""
    logits = np.zeros((n, 2), dtype=np.float32)
    logits[:correct, 0] = 1.0
    logits[correct:, 1] = 1.0
    return logits, np.zeros(n, dtype=np.int64)


def test_a_bound_for_the_test_split_holds_for_what_that_split_measures() -> None:
    """What evaluate measures on m fresh rows samples too: a bound of the true accuracy is beaten by the test
    split's own noise far more often than 1 - confidence; the prediction bound (judged_rows=m) is not."""
    clf = Task("multiclass", 2, 2, "logits")
    rng = np.random.default_rng(3)
    p, n, m, sims = 0.88, 5400, 10000, 4000
    seen = rng.binomial(n, p, size=sims)  # the selection slice's correct rows
    judged = rng.binomial(m, p, size=sims) / m  # what an independent test split of m rows then measures
    plain = np.array([bound_metric(clf, *_scored(int(k), n), 0.9).bound for k in seen])
    predicted = np.array([bound_metric(clf, *_scored(int(k), n), 0.9, judged_rows=m).bound for k in seen])
    assert np.mean(judged < plain) > 0.15  # the confidence bound promises 0.10 and misses it
    assert np.mean(judged < predicted) <= 0.10 + 0.02
    assert np.mean(judged < predicted) >= 0.10 - 0.02  # and is not uselessly loose
    one = bound_metric(clf, *_scored(4752, n), 0.9, judged_rows=m)
    assert one.judged_rows == m and one.bound < bound_metric(clf, *_scored(4752, n), 0.9).bound < one.score


def test_the_prediction_widening_applies_to_paired_and_bootstrap_bounds() -> None:
    reg, y, out, base = _regression(4, 400)
    plain, pred = bound_metric(reg, out, y, 0.9, base), bound_metric(reg, out, y, 0.9, base, judged_rows=400)
    assert pred.score == plain.score
    assert pred.bound - pred.score == pytest.approx((plain.bound - plain.score) * np.sqrt(2), rel=1e-3)
    assert plain.worse_bound is not None and pred.worse_bound is not None and pred.worse_bound > plain.worse_bound
    clf = Task("multiclass", 2, 2, "logits")
    base_logits, labels = _scored(950, 1000)
    logits = base_logits.copy()
    logits[880:950] = base_logits[-1]  # wrong on 70 rows the baseline gets right ...
    logits[950:970] = base_logits[0]  # ... and right on 20 it gets wrong: a 5 pp drop, 90 discordant rows
    c_plain = bound_metric(clf, logits, labels, 0.9, base_logits)
    c_pred = bound_metric(clf, logits, labels, 0.9, base_logits, judged_rows=1000)
    assert c_plain.worse_bound is not None and c_pred.worse_bound is not None and c_plain.worse_bound > 5.5
    assert c_pred.worse_bound - 5.0 == pytest.approx((c_plain.worse_bound - 5.0) * np.sqrt(2), abs=1e-3)
