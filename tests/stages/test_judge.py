"""How a search trial is judged and which one wins, without TensorFlow: constraints, frontier, second look."""

from __future__ import annotations

from shears.config import GateConfig
from shears.records import Recipe, TrialRecord
from shears.stages.judge import Reference, constraints, pareto_frontier, second_look_candidates, select


def _trial(number: int, gz: int, acc: float, feasible: bool, cons: list[float] | None = None) -> TrialRecord:
    recipe = Recipe(sparsity={"logits": 0.9}, prune_epochs=2, variant="int8")
    return TrialRecord(number=number, round=1, origin="recipe", recipe=recipe, state="complete", accuracy=acc,
                       gzip_bytes=gz, feasible=feasible,
                       constraints=cons if cons is not None else ([-1.0] if feasible else [2.0]))


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
    trials = [_trial(0, 52_000, 0.95, True), _trial(1, 13_000, 0.96, True), _trial(2, 7_000, 0.83, False),
              _trial(3, 13_000, 0.97, True)]
    winner, feasible = select(trials)
    assert (winner.number, feasible) == (3, True)  # same size as trial 1, more accurate
    assert pareto_frontier(trials) == [2, 3]
    none = [_trial(0, 9_000, 0.8, False, [3.0, -1.0]), _trial(1, 8_000, 0.7, False, [9.0, 2.0]),
            _trial(2, 7_000, 0.85, False, [1.0, -2.0])]
    winner, feasible = select(none)
    assert (winner.number, feasible) == (2, False)


def test_the_second_look_walks_one_trial_per_sparsity_allocation_largest_first() -> None:
    def at(number: int, gz: int, sparsity: float, feasible: bool = True) -> TrialRecord:
        t = _trial(number, gz, 0.88, feasible)
        return t.model_copy(update={"recipe": t.recipe.model_copy(update={"sparsity": {"logits": sparsity}})})

    # seed 1 of the bench: 0.95, then 0.94 twice (12 and 20 epochs), then 0.93; 0.96 did not pass validation
    trials = [at(7, 2424, 0.95), at(12, 2626, 0.94), at(11, 2645, 0.94), at(5, 2823, 0.93), at(6, 3153, 0.91),
              at(10, 2233, 0.96, feasible=False)]
    assert [t.number for t in second_look_candidates(trials)] == [6, 5, 12, 7]  # the 20-epoch 0.94 never
    assert [t.number for t in second_look_candidates(trials, 3)] == [5, 12, 7]  # the 3 most aggressive
    assert [t.number for t in second_look_candidates(trials, 1)] == [7]
    assert second_look_candidates(trials[-1:], 3) == []
