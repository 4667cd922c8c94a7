"""The search's light steps: plan the sensitivity fan-out, one layer's sensitivity, and each round's proposals."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from shears.records import BaselineRecord, LayerSensitivityRecord, Recipe, SensitivityRecord, TimingRecord, TrialRecord
from shears.records import dumps as record_dumps
from shears.run.steps.common import splits, timed, trials
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.run.context import RunContext


def step_plan_sensitivity(ctx: RunContext) -> list[dict[str, Any]]:
    """The sensitivity points to fan out: one per prunable layer (none with the search off)."""
    with timed(ctx, "plan_sensitivity"):
        baseline = ctx.get_record(BaselineRecord)
    if not ctx.cfg.search.enabled:
        return []
    return [{"layer": name} for name in baseline.prunable_layers]


def step_sensitivity(ctx: RunContext, item: dict[str, Any]) -> dict[str, Any]:
    """One layer pruned alone at each sparsity of the ladder (magnitude, no fine-tune), on the validation split."""
    from shears.keras.modelio import model_from_bytes
    from shears.stages.sensitivity import layer_sensitivity

    layer = str(item["layer"])
    with timed(ctx, f"sensitivity-{layer}", machine=True):
        baseline = ctx.get_record(BaselineRecord)
        model = model_from_bytes(ctx.get(L.BASELINE_MODEL))
        part = layer_sensitivity(model, splits(ctx), layer, list(ctx.cfg.search.ladder), baseline.score)
        ctx.put(L.sensitivity_part(layer), record_dumps(part.model_dump(mode="json")))
    worst = part.points[-1]
    return {"layer": layer, "weights": part.weights, "drop_at_top": worst.drop, "metric": baseline.metric}


def _assemble_sensitivity(ctx: RunContext, baseline: BaselineRecord) -> SensitivityRecord:
    """sensitivity.json from the per-layer parts: written once, by the first round's proposals."""
    from shears.stages.sensitivity import assemble

    parts = [LayerSensitivityRecord.model_validate_json(ctx.get(L.sensitivity_part(name)))
             for name in baseline.prunable_layers]
    record = assemble(parts, list(ctx.cfg.search.ladder), baseline.score, baseline.metric)
    ctx.put_record(record)
    return record


def _base_recipe(ctx: RunContext, baseline: BaselineRecord) -> Recipe:
    from shears.errors import not_prunable
    from shears.stages.search import recipe_from_config

    prune = ctx.cfg.prune
    names = list(prune.layers) if prune.layers is not None else list(baseline.prunable_layers)
    unknown = [n for n in names if n not in baseline.prunable_layers]
    if unknown:
        raise not_prunable(unknown, list(baseline.prunable_layers))
    return recipe_from_config(ctx.cfg, baseline.prunable_layers, {n: prune.final_sparsity for n in names},
                              baseline.support)


def step_propose(ctx: RunContext, round_no: int) -> list[dict[str, Any]]:
    """Round `round_no` of the search: which trials to run next (each one's recipe is staged as its plan).

    The budget of a round counts `ctx.jobs` trials running at once (the CLI's --jobs, the DAG's workers).
    """
    from shears.stages.search import propose, round_size

    with timed(ctx, f"propose_{round_no}"):
        baseline = ctx.get_record(BaselineRecord)
        sensitivity: SensitivityRecord | None = None
        if ctx.cfg.search.enabled:
            sensitivity = (_assemble_sensitivity(ctx, baseline) if round_no == 1
                           else ctx.get_record(SensitivityRecord))
        done = trials(ctx)
        if ctx.cfg.search.enabled:
            started = ctx.get_record(TimingRecord, L.timing("plan_sensitivity")).started_at or ""
            elapsed = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(started)).total_seconds()
            n = round_size(round_no, ctx.cfg.search, len(done), elapsed,
                           [t.seconds for t in done if t.state == "complete"], ctx.jobs)
        else:
            n = 1 if round_no == 1 and not done else 0
        proposals = propose(round_no, n, done, ctx.cfg, sensitivity, baseline.prunable_layers,
                            _base_recipe(ctx, baseline), baseline.support)
        items = []
        for i, p in enumerate(proposals):
            number = len(done) + i
            plan = TrialRecord(number=number, round=round_no, origin=p.origin, recipe=p.recipe, params=p.params)
            ctx.put_record(plan, L.trial_file(number, "plan.json"))
            items.append({"trial": number})
    return items
