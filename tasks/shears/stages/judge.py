"""What a search trial is judged by and which one wins: the gates as constraints on the metric's bound (validation
split or selection slice), the size/metric frontier, the second look's candidates and the winner.

Split from shears.stages.search (which proposes the trials); nothing here trains or reads a file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from shears.config import GateConfig
from shears.records import TrialRecord
from shears.stages.bounds import Bounded

T = TypeVar("T")


@dataclass(frozen=True)
class Reference:
    """What the constraints compare a trial with, all measured on the validation split (or files)."""

    score: float  # baseline's primary metric, validation split
    gzip_bytes: int  # baseline .h5 without optimizer
    no_skill: float  # the constant answer's primary metric on the validation split (majority class, mean, ...)
    metric: str = "accuracy"


def constraints(measured: Bounded, gzip_bytes: int, gates: GateConfig, ref: Reference, checks_passed: bool,
                output_problem: str | None = None) -> tuple[list[float], list[str]]:
    """The gates as constraints (<= 0 each when satisfied; the metric in its unit (pp or %), sizes in % of the
    limit), and why not. Each metric gate is judged by the metric's bound at the run's confidence, not its point
    estimate (`measured`, shears.stages.bounds): the trial must clear it at its plausible worst."""
    c: list[float] = []
    why: list[str] = []

    def add(value: float, reason: str) -> None:
        c.append(round(value, 6))
        if value > 0:
            why.append(reason)

    if ref.metric == "accuracy":
        _accuracy_constraints(measured, gates, ref, add)
    else:
        _metric_constraints(measured, gates, ref, add)
    if gates.max_gzip_bytes is not None:
        add((gzip_bytes - gates.max_gzip_bytes) / gates.max_gzip_bytes * 100,
            f"{gzip_bytes} B > max_gzip_bytes {gates.max_gzip_bytes}")
    if gates.min_compression_ratio is not None:
        limit = ref.gzip_bytes / gates.min_compression_ratio
        add((gzip_bytes - limit) / limit * 100,
            f"{ref.gzip_bytes / max(gzip_bytes, 1):.2f}x < min_compression_ratio {gates.min_compression_ratio:.2f}x")
    add(0.0 if checks_passed else 1.0, "the .tflite does not hold the recipe's sparsity/clusters")
    if output_problem is not None:  # a regressor's outputs collapsed or saturated: never published
        add(1.0, output_problem)
    return c, why


def _at(m: Bounded) -> str:
    judged = f", for {m.judged_rows:,} test rows" if m.judged_rows else ""
    return f"at {m.confidence:.0%} confidence on {m.rows:,} rows{judged}"


def _metric_constraints(m: Bounded, gates: GateConfig, ref: Reference, add: Any) -> None:
    """Any metric with its direction (MSE, MAE, AUC, ...): the bounds, the change from the baseline, the skill."""
    from shears.task import drop, metric_info

    info = metric_info(ref.metric)
    name = info.label
    worst = m.bound  # the metric at its plausible worst: an upper bound of an error, a lower bound of a score
    if gates.metric_min is not None:
        low = worst if info.direction == "higher" else m.score
        add(gates.metric_min - low, f"{name} {low:.4g} < metric_min {gates.metric_min:g} ({_at(m)})")
    if gates.metric_max is not None:
        high = worst if info.direction == "lower" else m.score
        add(high - gates.metric_max, f"{name} {high:.4g} > metric_max {gates.metric_max:g} ({_at(m)})")
    worse = m.worse_bound if m.worse_bound is not None else drop(ref.metric, ref.score, m.score)
    if gates.max_change_pct is not None and info.unit == "%":
        add(worse - gates.max_change_pct,
            f"{name} up to {worse:+.2f} % vs baseline {ref.score:.4g} > +{gates.max_change_pct:.2f} % ({_at(m)})")
    if gates.max_change is not None:
        absolute = worse / 100 * abs(ref.score) if info.unit == "%" else worse / 100
        add(absolute - gates.max_change, f"{name} worse by up to {absolute:.4g} > max_change {gates.max_change:g} "
                                         f"({_at(m)})")
    if gates.min_skill_margin_pct is not None and info.unit == "%":
        skill = -drop(ref.metric, ref.no_skill, worst)  # % better than the constant answer, at worst
        add(gates.min_skill_margin_pct - skill if skill > 0 else max(gates.min_skill_margin_pct - skill, 1e-6),
            f"only {skill:+.2f} % better than the constant answer's {name} {ref.no_skill:.4g} ({_at(m)})")


def _accuracy_constraints(m: Bounded, gates: GateConfig, ref: Reference, add: Any) -> None:
    if gates.min_accuracy is not None:
        add((gates.min_accuracy - m.bound) * 100,
            f"accuracy {m.score:.4f}, at least {m.bound:.4f} ({_at(m)}) < min_accuracy {gates.min_accuracy:.4f}")
    if gates.max_accuracy_drop_pp is not None:
        worse = m.worse_bound if m.worse_bound is not None else (ref.score - m.score) * 100
        add(worse - gates.max_accuracy_drop_pp,
            f"drop up to {worse:.2f} pp from baseline {ref.score:.4f} ({_at(m)}, paired) > "
            f"{gates.max_accuracy_drop_pp:.2f} pp")
    if gates.min_skill_margin_pp is not None:
        skill = (m.bound - ref.no_skill) * 100
        # strictly above the majority class, as the gate: a margin of 0 still fails a constant model
        add(gates.min_skill_margin_pp - skill if skill > 0 else max(gates.min_skill_margin_pp - skill, 1e-6),
            f"only {skill:+.2f} pp over the majority class ({_at(m)})")


def _best_first(metric: str, score: float | None) -> float:
    from shears.task import sort_key

    return sort_key(metric, score) if score is not None else float("inf")


def pareto_frontier(trials: Sequence[TrialRecord], metric: str = "accuracy") -> list[int]:
    """Trial numbers not beaten on both size and the metric (with its direction) by another trial, smallest
    first."""
    done = [t for t in trials if t.state == "complete" and t.gzip_bytes is not None and t.score is not None]
    front = []
    for t in done:
        assert t.gzip_bytes is not None and t.score is not None
        mine = _best_first(metric, t.score)
        beaten = any(o is not t and o.gzip_bytes is not None and o.score is not None
                     and o.gzip_bytes <= t.gzip_bytes and _best_first(metric, o.score) <= mine
                     and (o.gzip_bytes < t.gzip_bytes or _best_first(metric, o.score) < mine) for o in done)
        if not beaten:
            front.append(t)
    return [t.number for t in sorted(front, key=lambda t: (t.gzip_bytes or 0, _best_first(metric, t.score),
                                                           t.number))]


def by_size(trials: Sequence[TrialRecord], metric: str = "accuracy") -> list[TrialRecord]:
    """Smallest first (ties: the better metric, then earlier): the order the search prefers trials in."""
    return sorted(trials, key=lambda t: (t.gzip_bytes or 0, _best_first(metric, t.score), t.number))


def second_look_candidates(trials: Sequence[TrialRecord], n: int | None = None,
                           metric: str = "accuracy") -> list[TrialRecord]:
    """The trials the second look re-scores, in the order it tries them: the smallest feasible trial of each
    sparsity allocation (of the `n` most aggressive ones that have one; None: all), largest first.

    Largest first because the second look is a fixed-sequence test: it walks from the trial most likely to hold
    toward the smallest and stops at the first that fails on the slice, so the chance that the one it publishes
    held by luck is that of one look, however many it takes (the order is fixed by the validation records and
    sizes, before the slice is read). One look per allocation: two trials that prune to the same sparsities
    (another fine-tune length, say) stand or fall on the slice together far more often than not."""
    out: list[TrialRecord] = []
    seen: set[str] = set()
    for t in by_size([t for t in trials if t.state == "complete" and t.gzip_bytes is not None and t.feasible],
                     metric):
        key = repr(sorted(t.recipe.sparsity.items()))
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out[:n][::-1]


def walk(candidates: Sequence[T], holds: Callable[[T], bool]) -> T | None:
    """A fixed-sequence test: try `candidates` in their (pre-set) order and stop at the first that does not hold;
    the last that did (None: the first did not). A candidate is tried only if every one before it held, so the
    chance of taking one that truly fails is that of a single test, whatever the number tried (the first truly
    failing one in the order must pass by luck for anything after it to be reached)."""
    last = None
    for c in candidates:
        if not holds(c):
            break
        last = c
    return last


def select(trials: Sequence[TrialRecord], metric: str = "accuracy") -> tuple[TrialRecord, bool]:
    """The smallest feasible trial (ties: the better metric, then earlier); with none feasible, the closest one:
    fewest violated constraints, then the smallest worst violation."""
    done = [t for t in trials if t.state == "complete" and t.gzip_bytes is not None]
    if not done:
        raise ValueError("no trial completed")
    feasible = [t for t in done if t.feasible]
    if feasible:
        return by_size(feasible, metric)[0], True

    def closeness(t: TrialRecord) -> tuple[int, float, int]:
        bad = [v for v in t.constraints if v > 0]
        return len(bad), max(bad, default=0.0), t.number

    return min(done, key=closeness), False
