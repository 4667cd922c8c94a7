"""How a search trial is judged and which one wins, without TensorFlow: constraints, frontier, second look."""

from __future__ import annotations

import functools

import numpy as np
from shears.config import GateConfig
from shears.records import TrialRecord
from shears.stages.judge import Reference, constraints, pareto_frontier, second_look_candidates, select, walk

from tests.stages.trials import trial_record


def test_the_gates_become_constraints_on_the_validation_split() -> None:
    from shears.stages.bounds import Bounded

    def m(score: float, bound: float | None = None, worse: float | None = 1.0) -> Bounded:
        return Bounded(score, score if bound is None else bound, worse, 6000, 0.9)

    ref = Reference(score=0.89, gzip_bytes=78_000, no_skill=0.1)
    gates = GateConfig(min_accuracy=0.875, max_accuracy_drop_pp=1.5, min_compression_ratio=20.0)
    ok, why = constraints(m(0.88), 3_500, gates, ref, True)
    assert why == [] and all(c <= 0 for c in ok)
    _, why = constraints(m(0.87), 3_500, gates, ref, True)
    assert any("accuracy 0.8700, at least 0.8700 (at 90% confidence on 6,000 rows) < min_accuracy 0.8750" in w
               for w in why)
    _, why = constraints(m(0.88), 4_000, gates, ref, True)
    assert any("min_compression_ratio" in w for w in why)
    # the point clears the floor, its bound does not: the trial is not feasible (the winner's curse)
    _, why = constraints(m(0.88, bound=0.872), 3_500, gates, ref, True)
    assert why == ["accuracy 0.8800, at least 0.8720 (at 90% confidence on 6,000 rows) < min_accuracy 0.8750"]
    _, why = constraints(m(0.88, worse=1.8), 3_500, gates, ref, True)  # the paired drop bound, not 0.89 - 0.88
    assert why == ["drop up to 1.80 pp from baseline 0.8900 (at 90% confidence on 6,000 rows, paired) > 1.50 pp"]
    _, why = constraints(m(0.88), 3_500, gates, ref, False)
    assert why == ["the .tflite does not hold the recipe's sparsity/clusters"]


def test_the_winner_is_the_smallest_feasible_else_the_closest() -> None:
    trials = [trial_record(0, 52_000, 0.95, True), trial_record(1, 13_000, 0.96, True),
              trial_record(2, 7_000, 0.83, False), trial_record(3, 13_000, 0.97, True)]
    winner, feasible = select(trials)
    assert (winner.number, feasible) == (3, True)  # same size as trial 1, more accurate
    assert pareto_frontier(trials) == [2, 3]
    none = [trial_record(0, 9_000, 0.8, False, [3.0, -1.0]), trial_record(1, 8_000, 0.7, False, [9.0, 2.0]),
            trial_record(2, 7_000, 0.85, False, [1.0, -2.0])]
    winner, feasible = select(none)
    assert (winner.number, feasible) == (2, False)


def test_the_second_look_walks_one_trial_per_sparsity_allocation_largest_first() -> None:
    def at(number: int, gz: int, sparsity: float, feasible: bool = True) -> TrialRecord:
        t = trial_record(number, gz, 0.88, feasible)
        return t.model_copy(update={"recipe": t.recipe.model_copy(update={"sparsity": {"logits": sparsity}})})

    # seed 1 of the bench: 0.95, then 0.94 twice (12 and 20 epochs), then 0.93; 0.96 did not pass validation
    trials = [at(7, 2424, 0.95), at(12, 2626, 0.94), at(11, 2645, 0.94), at(5, 2823, 0.93), at(6, 3153, 0.91),
              at(10, 2233, 0.96, feasible=False)]
    assert [t.number for t in second_look_candidates(trials)] == [6, 5, 12, 7]  # the 20-epoch 0.94 never
    assert [t.number for t in second_look_candidates(trials, 3)] == [5, 12, 7]  # the 3 most aggressive
    assert [t.number for t in second_look_candidates(trials, 1)] == [7]
    assert second_look_candidates(trials[-1:], 3) == []


def test_the_walk_stops_at_the_first_that_does_not_hold() -> None:
    tried: list[int] = []

    def holds(i: int) -> bool:
        tried.append(i)
        return i in (0, 1, 3)

    assert walk([0, 1, 2, 3], holds) == 1 and tried == [0, 1, 2]  # 3 would hold, but is never reached
    assert walk([2, 0], holds) is None and walk([], holds) is None


@functools.cache
def _slice_bound(correct: int, rows: int = 5400, test_rows: int = 10_000) -> float:
    """The second look's accuracy bound (shears.stages.bounds, 90 %, of what a 10,000-row test split will
    measure) for `correct` of 5,400 selection rows."""
    from shears.stages.bounds import bound_metric
    from shears.task import Task

    logits = np.zeros((rows, 2), dtype=np.float32)
    logits[:correct, 0] = 1.0
    logits[correct:, 1] = 1.0
    return bound_metric(Task("multiclass", 2, 2, "logits"), logits, np.zeros(rows, dtype=np.int64), 0.9,
                        judged_rows=test_rows).bound


def _simulate(true_acc: list[float], rule: str, sims: int = 3000) -> tuple[float, float, float]:
    """A ladder of trials (largest first) with these true accuracies, each scored on its own 5,400-row slice
    draw and then on a fresh 10,000-row test split; floor 0.8749 as in the bench. How often a winner is
    published, is truly under the floor, and fails on the test split."""
    floor, acc = 0.8749, np.asarray(true_acc)
    rng = np.random.default_rng(7)
    seen = rng.binomial(5400, acc, size=(sims, acc.size))
    judged = rng.binomial(10_000, acc, size=(sims, acc.size)) / 10_000
    published = under = failed = 0
    for s in range(sims):
        def holds(i: int, s: int = s) -> bool:
            return _slice_bound(int(seen[s, i])) >= floor

        if rule == "walk":
            won = walk(range(acc.size), holds)
        else:  # the smallest of all that hold, each look on its own
            won = max((i for i in range(acc.size) if holds(i)), default=None)
        if won is not None:
            published += 1
            under += bool(acc[won] < floor)
            failed += bool(judged[s, won] < floor)
    return published / sims, under / sims, failed / sims


def test_a_longer_walk_gives_luck_no_more_chances() -> None:
    """The second look walks from the largest pass down and stops at the first that fails: a ladder whose lower
    rungs sit just under the floor is published nearly every night and fails the test split far less often
    than one night in ten, however many rungs are looked at. Taking the smallest that holds among the same nine
    looks instead fails it about one night in seven: each rung under the floor is one more chance to pass by
    luck."""
    near_floor = [0.890, 0.884, 0.880, 0.877, 0.876, 0.875, 0.874, 0.873, 0.872]
    published, under, failed = _simulate(near_floor, "walk")
    assert published > 0.9 and under <= 0.01 and failed < 0.05
    published, under, failed = _simulate(near_floor, "any")
    assert published > 0.99 and under > 0.05 and failed > 0.10  # what the order buys
    # a cliff after four good rungs: the walk still publishes one of those, nearly always
    published, under, failed = _simulate([0.895, 0.890, 0.886, 0.884, 0.870, 0.868, 0.866, 0.864, 0.862], "walk")
    assert published > 0.95 and under < 0.01 and failed < 0.01
