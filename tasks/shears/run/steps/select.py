"""The select step: the search's winner becomes the run's models and records, and search.json says why."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from shears.records import BaselineRecord, PruneRecord, SearchRecord, TimingRecord, TrialRecord
from shears.run.steps.common import baseline_outputs, judged_rows, splits, timed, trials
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.run.context import RunContext

SEARCH_PHASES = ("plan_sensitivity", "sensitivity", "propose", "trial", "search_wall", "trials_wall")


def step_select(ctx: RunContext) -> dict[str, Any]:
    """Pick the winner (smallest trial passing every gate on the validation split, else the closest one), make
    its files the run's models and records, convert the other configured variants, and write search.json."""
    from shears.errors import GateFailure
    from shears.stages.judge import select

    with timed(ctx, "select", machine=True):
        done = trials(ctx)
        baseline = ctx.get_record(BaselineRecord)
        try:
            winner, feasible = select(done, baseline.metric)
        except ValueError:
            raise GateFailure(f"no trial completed: {why_no_trial(ctx, baseline, done)}") from None
        done, winner, feasible, looked = _second_look(ctx, done, winner, feasible)
        _adopt(ctx, winner)
        if baseline.origin.startswith("Keras 3") and baseline.pretrained:
            _give_back_keras3(ctx, baseline.pretrained)
        if ctx.cfg.convert.saved_model:
            _saved_model(ctx)
        _other_variants(ctx, winner)
        ctx.put_record(_search_record(ctx, baseline, done, winner, feasible, looked))
    return {"winner": winner.number, "feasible": feasible, "trials": len(done), "gzip_bytes": winner.gzip_bytes,
            "score": winner.score, "metric": baseline.metric, "recipe": winner.recipe.describe()}


def _second_look(ctx: RunContext, done: list[TrialRecord], winner: TrialRecord,
                 feasible: bool) -> tuple[list[TrialRecord], TrialRecord, bool, list[int]]:
    """The feasible trials (one per sparsity allocation: `second_look_candidates`), scored again on the
    selection slice no trial saw (and the baseline on it too), largest first: each that clears every gate's
    bound there becomes the winner, and the first that does not ends the walk (a fixed-sequence test, so the
    winner held by luck no more often than one look would). Also the trials looked at, in order. Without a slice
    (search off, selection_fraction 0) or a feasible trial, the validation split's verdict stands."""
    from shears.stages.bounds import bound_metric
    from shears.stages.judge import Reference, constraints, second_look_candidates, walk
    from shears.stages.measure import tflite_outputs

    search = ctx.cfg.search
    data = splits(ctx)
    if not search.enabled or not feasible or data.x_sel is None or data.y_sel is None:
        return done, winner, feasible, []
    task, x_sel, y_sel = data.task, data.x_sel, data.y_sel
    base_sel = baseline_outputs(ctx, "sel")
    baseline = ctx.get_record(BaselineRecord)
    base_score = task.metrics(base_sel, y_sel)[task.primary] if base_sel is not None else baseline.score
    no_skill = task.no_skill(data.y_train, y_sel).get(task.primary, 0.0)
    ref = Reference(base_score, baseline.gzip_bytes or 0, no_skill, task.primary)
    judged = judged_rows(ctx)
    rescored: dict[int, TrialRecord] = {}  # in the walk's order

    def holds(t: TrialRecord) -> bool:
        deploy = ctx.get(L.trial_file(t.number, "model.tflite"))
        m = bound_metric(task, tflite_outputs(deploy, x_sel), y_sel, search.confidence, base_sel, judged)
        _, why = constraints(m, t.gzip_bytes or 0, ctx.cfg.gates, ref, all(c.passed for c in t.checks),
                             t.output_problem)
        rescored[t.number] = t.model_copy(update={
            "selection_score": round(m.score, 6), "selection_bound": m.bound, "selection_worse_bound": m.worse_bound,
            "selection_feasible": not why, "selection_violations": why})
        return not why

    last = walk(second_look_candidates(done, search.second_look, task.primary), holds)
    done = [rescored.get(t.number, t) for t in done]
    if last is not None:
        return done, rescored[last.number], True, list(rescored)
    return done, next(iter(rescored.values())), False, list(rescored)  # the first did not hold: the closest


def why_no_trial(ctx: RunContext, baseline: BaselineRecord, done: list[TrialRecord]) -> str:
    """Why nothing can be published: no layer to prune, a budget spent before the first trial, or every trial's
    first reason (a trial that hit a bug in Shears has already stopped the run with exit 1)."""
    if not baseline.prunable_layers:
        return "the model has no prunable layer (no Dense or convolution kernel tfmot can prune)"
    if not done:
        search = ctx.cfg.search
        return (f"the search budget was spent before a trial ran (search.max_trials {search.max_trials}, "
                f"max_minutes {search.max_minutes:g})")
    first = "; ".join(f"trial {t.number}: {t.error}" for t in done[:3] if t.error)
    more = f" (and {len(done) - 3} more)" if len(done) > 3 else ""
    return f"every trial failed: {first}{more}"


def _adopt(ctx: RunContext, winner: TrialRecord) -> None:
    """The winner's files as the run's: models, sparsity, its pruning record (with its recipe), TensorBoard logs."""
    n = winner.number
    key = ctx.get(L.trial_file(n, "prune_key.txt")).decode()
    for file, cached in zip(L.PRUNED_MODELS, ("pruned.h5", "pruned.keras"), strict=True):
        if ctx.has(L.pruned_cache(f"{key}/{cached}")):
            ctx.put(file, ctx.get(L.pruned_cache(f"{key}/{cached}")))
    ctx.put(L.STRIPPED_MODEL, ctx.get(L.trial_file(n, "stripped.h5")))
    ctx.put(L.tflite_model(winner.recipe.variant), ctx.get(L.trial_file(n, "model.tflite")))
    if ctx.has(L.trial_file(n, "untrimmed.tflite")):  # for evaluate's proof that trimming changed no output
        ctx.put(L.UNTRIMMED_DEPLOYABLE, ctx.get(L.trial_file(n, "untrimmed.tflite")))
    ctx.put(L.SPARSITY, ctx.get(L.trial_file(n, "sparsity.json")))
    prune = ctx.get_record(PruneRecord, L.pruned_cache(f"{key}/prune.json"))
    ctx.put_record(prune.model_copy(update={"recipe": winner.recipe, "trial": n}))
    logs = L.pruned_cache(f"{key}/tensorboard") + "/"
    for name in ctx.list(logs):
        ctx.put(f"{L.TENSORBOARD}/{name[len(logs):]}", ctx.get(name))


def _other_variants(ctx: RunContext, winner: TrialRecord) -> None:
    """For the artifact table: the winner's plain (stripped) model in the other configured TFLite variants."""
    from shears.keras.modelio import model_from_bytes
    from shears.stages.convert import convert

    support = ctx.get_record(BaselineRecord).support
    no_int8 = support is not None and support.int8 is not None
    others = tuple(v for v in ctx.cfg.convert.variants if v != winner.recipe.variant and not (v == "int8" and no_int8))
    if not others:
        return
    stripped = model_from_bytes(ctx.get(L.STRIPPED_MODEL))
    data_splits = splits(ctx)
    targets = None if data_splits.task.classification else data_splits.y_train
    for variant, data in convert(stripped, data_splits.x_train, ctx.cfg.convert, others,
                                 regression_targets=targets, fixed_batch=winner.recipe.fixed_batch).items():
        ctx.put(L.tflite_model(variant), data)


def _phase_seconds(ctx: RunContext) -> dict[str, float]:
    """Seconds per phase of the search, summed over its steps, and the wall clock of the search and its trials
    (trials may overlap: in N processes, or on several Airflow workers)."""
    phases: dict[str, float] = {}
    started: dict[str, str] = {}
    for name in ctx.list(L.TIMINGS_DIR + "/"):
        t = ctx.get_record(TimingRecord, name)
        phase = t.step.split("-")[0].rstrip("_0123456789")
        phases[phase] = round(phases.get(phase, 0.0) + t.seconds, 3)
        if t.started_at:
            started[t.step] = t.started_at
    now = dt.datetime.now(dt.UTC)
    for name, first in (("search_wall", "plan_sensitivity"), ("trials_wall", "propose_1")):
        if first in started:
            phases[name] = round((now - dt.datetime.fromisoformat(started[first])).total_seconds(), 3)
    return {k: v for k, v in phases.items() if k in SEARCH_PHASES}


def _search_record(ctx: RunContext, baseline: BaselineRecord, done: list[TrialRecord], winner: TrialRecord,
                   feasible: bool, looked: list[int]) -> SearchRecord:
    from shears.stages.judge import pareto_frontier
    from shears.stages.search import fit_to_model

    search = ctx.cfg.search
    data = splits(ctx)
    metric = data.task.primary
    return SearchRecord(
        enabled=search.enabled,
        sampler=(("half of each later round bisects the sparsity ladder, the rest " if search.bisect else "")
                 + "optuna TPE (constraints, multivariate, constant liar), rebuilt from the trial records"
                 if search.enabled else "none: the configured recipe only"),
        budget={"max_trials": search.max_trials, "max_minutes": search.max_minutes, "rounds": search.rounds},
        metric=metric, baseline_score=baseline.score, baseline_gzip_bytes=baseline.gzip_bytes or 0,
        no_skill_score=data.task.no_skill(data.y_train, data.y_val).get(metric, 0.0), trials=done,
        winner=winner.number, winner_feasible=feasible, frontier=pareto_frontier(done, metric),
        seconds=_phase_seconds(ctx), fitted=fit_to_model(ctx.cfg, baseline.support)[1],
        confidence=search.confidence if search.enabled else None,
        judged_rows=judged_rows(ctx) if search.enabled else None,
        selection_rows=len(data.x_sel) if data.x_sel is not None else None,
        second_look=looked,
    )


def _give_back_keras3(ctx: RunContext, uri: str) -> None:
    """The stripped pruned model in the user's own format: their Keras 3 architecture (as checked at intake),
    our weights, proven equal."""
    from shears.bounded import loads_json
    from shears.errors import RecordError
    from shears.keras.keras3 import keras3_to_bytes, predict, to_keras3
    from shears.keras.modelio import model_from_bytes
    from shears.stages.baseline import check_conversion, probe_rows

    stripped = model_from_bytes(ctx.get(L.STRIPPED_MODEL))
    architecture = loads_json(ctx.get(L.KERAS3_ARCHITECTURE), L.KERAS3_ARCHITECTURE, RecordError,
                              max_bytes=64 << 20)
    k3_model = to_keras3(stripped, architecture, uri)
    rows = probe_rows(splits(ctx))
    check_conversion(predict(stripped, rows), k3_model, rows, ctx.cfg.model.conversion_tolerance,
                     what="the Keras 3 copy of the stripped model")
    ctx.put(L.STRIPPED_KERAS3, keras3_to_bytes(k3_model))


def _saved_model(ctx: RunContext) -> None:
    """The stripped model as a SavedModel for TF Serving (models/saved_model/, one staged file per file), exported in
    a fresh process so that its bytes depend on the model alone."""
    from shears.keras.savedmodel import export_in_child

    for name, data in export_in_child(ctx.get(L.STRIPPED_MODEL)).items():
        ctx.put(L.saved_model_file(name), data)
