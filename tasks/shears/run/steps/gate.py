"""The gate step: every gate on the test split (and against the champion), recorded in gates.json.

A failed gate raises GateFailure after gates.json is written; the step runner (shears.run.runner) then
publishes the rejection (shears.run.lifecycle.reject): publishing happens in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shears.records import (
    ChampionSeen,
    GateRecord,
    GatesRecord,
    MetricsRecord,
    SearchRecord,
    SparsityRecord,
    TensorCheckRecord,
    ValidationRecord,
)
from shears.run.steps.common import splits, timed
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.run.context import RunContext


def step_gate(ctx: RunContext) -> dict[str, Any]:
    """Every gate (incl. sparsity and, with a champion, the regression gates); GateFailure when one fails."""
    from shears.errors import GateFailure
    from shears.policy import apply_policy, floors_record
    from shears.release.champion import read_champion, read_champion_manifest
    from shears.run.champion import compare_with_champion
    from shears.stages.gates import evaluate_gates, failed_summary, trim_gate

    with timed(ctx, "gate"):
        metrics = ctx.get_record(MetricsRecord)
        sparsity = ctx.get_record(SparsityRecord)
        champion = read_champion(ctx.store)
        comparison = None
        if champion is not None:
            data = splits(ctx, test=True)
            x_test, y_test = data.test()
            ours = ctx.get(metrics.deployable_artifact.file)
            comparison = compare_with_champion(
                ctx.store, champion, read_champion_manifest(ctx.store, champion), ours,
                ctx.get_record(ValidationRecord), x_test, y_test, data.num_classes, ctx.cfg.gates.champion_rule,
                ctx.cfg.gates.champion_row_loss)
        gates = apply_policy(ctx.cfg, ctx.policy).gates  # the floors again: what was staged may not loosen them
        results = evaluate_gates(metrics.baseline, metrics.deployable_artifact, gates, sparsity, comparison,
                                 majority_rate=metrics.test_majority_rate, no_skill=metrics.no_skill,
                                 micro=metrics.micro)
        if metrics.trim is not None:
            results.append(trim_gate(metrics.trim))
        if ctx.has(L.SEARCH):
            search = ctx.get_record(SearchRecord)
            # with the search on, the winner met every gate on validation, its .tflite checks included; with
            # it off, the one recipe's .tflite must still hold what the recipe made (the same verification)
            results.insert(0, search_gate(search) if search.enabled else tflite_gate(search))
        record = GatesRecord(
            passed=all(r.passed for r in results),
            summary=failed_summary(results),
            champion=ChampionSeen(run_id=champion.run_id, etag=champion.etag) if champion else None,
            gates=results,
            comparison=comparison,
            policy=floors_record(ctx.policy),
        )
        ctx.put_record(record)
    if not record.passed:
        raise GateFailure(record.summary)
    return {"passed": record.passed, "summary": record.summary, "gates": ctx.layout.staging(L.GATES)}


def search_gate(search: SearchRecord) -> GateRecord:
    """The search as a gate: the published trial must have met every gate on the validation split (at the
    search's confidence) and, with a second look, still on the selection slice."""
    won = next(t for t in search.trials if t.number == search.winner)
    feasible = sum(1 for t in search.trials if t.feasible)
    at = f" at {search.confidence:.0%} confidence" if search.confidence is not None else ""
    if at and search.judged_rows:
        at += f" (bounds of what the {search.judged_rows:,}-row test split will measure)"
    held = (f"; it held on the {search.selection_rows:,}-row selection slice (second look, largest first, at "
            f"trials {', '.join(map(str, search.second_look))})" if won.selection_feasible else "")
    if search.winner_feasible:
        reason = (f"trial {won.number} ({won.recipe.describe()}) met every gate on the validation split{at} "
                  f"({feasible} of {len(search.trials)} trials did){held}: ok")
    elif won.selection_feasible is False:
        reason = (f"{feasible} trial(s) met the gates on the validation split{at}, but the first the second "
                  f"look re-scored (the largest, trial {won.number}: {won.recipe.describe()}) did not hold on the "
                  f"{search.selection_rows or 0:,}-row selection slice, so none smaller can be trusted: "
                  f"{'; '.join(won.selection_violations)}: FAILED")
    else:
        reason = (f"no trial met the gates on the validation split{at}; closest: trial {won.number} "
                  f"({won.recipe.describe()}): {'; '.join(won.violations) or won.error}: FAILED")
    return GateRecord(name="search", threshold=1, observed=feasible, passed=search.winner_feasible, reason=reason,
                      compared_to="validation split")


def tflite_gate(search: SearchRecord) -> GateRecord:
    """The published .tflite holds the recipe: every pruned layer's zeros and clustered layer's values."""
    won = next(t for t in search.trials if t.number == search.winner)
    bad = [c for c in won.checks if not c.passed]
    if bad:
        what = "; ".join(_check_text(c) for c in bad[:4])
        reason = f"the .tflite does not hold the recipe: {what}: FAILED"
    elif won.output_problem:
        reason = f"{won.output_problem}: FAILED"
    else:
        reason = f"the .tflite holds the recipe in its {len(won.checks)} compressed tensors: ok"
    failed = len(bad) + (1 if won.output_problem else 0)
    return GateRecord(name="tflite_verified", threshold=0, observed=failed, passed=not failed, reason=reason,
                      compared_to="the recipe")


def _check_text(c: TensorCheckRecord) -> str:
    parts = [f"{c.layer}{'.' + c.weight if c.weight else ''} ({c.tensor}):"]
    if c.expected_sparsity is not None:
        parts.append(f"zeros {c.zero_fraction:.4f} for sparsity {c.expected_sparsity:.2f}")
    if c.expected_clusters is not None:
        parts.append(f"{c.distinct} distinct values for {c.expected_clusters} clusters")
    return " ".join(parts)
