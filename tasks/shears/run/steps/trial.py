"""One trial of the search: apply its recipe, convert, verify the .tflite, measure and judge it on validation."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shears.records import BaselineRecord, PruneRecord, Recipe, TrialRecord
from shears.run.steps.common import baseline_outputs, judged_rows, splits, timed
from shears.store import layout as L

log = logging.getLogger("shears.run")
MAX_TRACEBACK = 20_000  # characters kept of a trial's traceback (its end: where it was raised)

if TYPE_CHECKING:
    from shears.run.context import RunContext


def prune_key(ctx: RunContext, recipe: Recipe) -> str:
    """Trials that prune the same way from the same baseline share one pruned model (content-addressed)."""
    basis: dict[str, Any] = {"baseline": hashlib.sha256(ctx.get(L.BASELINE_MODEL)).hexdigest(),
                             "sparsity": recipe.sparsity, "epochs": recipe.prune_epochs,
                             "prune": ctx.cfg.prune.model_dump(mode="json")}
    if recipe.distill:  # a distilled prune is another model (undistilled keys stay as they were)
        basis["distill"] = [recipe.distill_temperature, recipe.distill_alpha]
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:24]


def prune_record(result: Any, recipe: Recipe | None, trial: int | None) -> PruneRecord:
    s = result.schedule
    return PruneRecord(
        score=result.score, metric=result.metric, pruned_layers=result.pruned_layers,
        schedule=s, mask_update_steps=s.mask_updates(),
        sparsity_by_step=[(step, round(s.sparsity_at(step), 6)) for step in range(s.total_steps)],
        history=result.history, split="validation", layer_sparsity=dict(result.targets), recipe=recipe, trial=trial,
    )


def _cached_prune(ctx: RunContext, key: str) -> tuple[Any, Any] | None:
    from shears.keras.modelio import model_from_bytes
    from shears.stages.prune import PruneResult

    pruned = next((n for n in (pruned_cache_file(key, f) for f in ("h5", "keras")) if ctx.has(n)), None)
    names = [L.pruned_cache(f"{key}/{n}") for n in ("stripped.h5", "prune.json")]
    if pruned is None or not all(ctx.has(n) for n in names):
        return None
    rec = PruneRecord.from_bytes(ctx.get(names[1]), names[1])
    result = PruneResult(model_from_bytes(ctx.get(pruned), pruned, pruned=True), rec.schedule, rec.pruned_layers,
                         rec.score, rec.history, dict(rec.layer_sparsity), rec.metric)
    return result, model_from_bytes(ctx.get(names[0]))


def pruned_cache_file(key: str, fmt: str) -> str:
    """The cached pruned model (wrappers and optimizer): pruned.h5, or pruned.keras when HDF5 cannot hold it."""
    return L.pruned_cache(f"{key}/pruned.{fmt}")


def _cache_prune(ctx: RunContext, key: str, result: Any, logdir: str) -> None:
    """The pruned model, its pruning-only strip, its record and its TensorBoard logs, for the trials after."""
    from shears.keras.modelio import model_to_h5, pruned_to_bytes
    from shears.keras.tfcompat import tfmot

    data, fmt = pruned_to_bytes(result.pruned)
    ctx.put(pruned_cache_file(key, fmt), data)
    ctx.put(L.pruned_cache(f"{key}/stripped.h5"), model_to_h5(
        tfmot.sparsity.keras.strip_pruning(result.pruned), include_optimizer=False))
    ctx.put_record(prune_record(result.prune, None, None), L.pruned_cache(f"{key}/prune.json"))
    for path in sorted(Path(logdir).rglob("*")):
        if path.is_file():
            ctx.put(L.pruned_cache(f"{key}/tensorboard/{path.relative_to(logdir).as_posix()}"), path.read_bytes())


def step_trial(ctx: RunContext, item: dict[str, Any]) -> dict[str, Any]:
    """One trial: apply its recipe, convert, verify the techniques in the .tflite, measure bytes and validation
    accuracy, and judge it against the gates. Idempotent: a retry rewrites the same files with the same result.

    A recipe the model cannot take (an unsupported layer for clustering, say) fails this trial, not the run —
    except trial 0, the configured recipe, whose configuration errors are the user's to see.
    """
    from shears.errors import ConfigError, InternalError, ShearsError, first_line
    from shears.keras.modelio import model_from_bytes, model_to_h5
    from shears.stages.bounds import bound_metric
    from shears.stages.compress import compress
    from shears.stages.convert import convert_variant, representative_samples, trim_verified
    from shears.stages.inspect import check_tflite, structure_gzip_bytes
    from shears.stages.judge import Reference, constraints
    from shears.stages.measure import gzip_size, tflite_output_levels, tflite_outputs

    number = int(item["trial"])
    plan = ctx.get_record(TrialRecord, L.trial_file(number, "plan.json"))
    recipe = plan.recipe
    t0 = time.perf_counter()
    bug: Exception | None = None
    with timed(ctx, f"trial-{number:04d}", machine=True), tempfile.TemporaryDirectory() as logdir:
        try:
            baseline_rec = ctx.get_record(BaselineRecord)
            data = splits(ctx)
            baseline = model_from_bytes(ctx.get(L.BASELINE_MODEL))
            key = prune_key(ctx, recipe)
            cached = _cached_prune(ctx, key)
            result = compress(baseline, data, recipe, ctx.cfg.prune, pruned=cached, log_dir=logdir)
            if cached is None:
                _cache_prune(ctx, key, result, logdir)
            regressor = not data.task.classification
            calibration = representative_samples(data.x_train, ctx.cfg.convert.representative_samples,
                                                 targets=data.y_train if regressor else None)
            untrimmed = convert_variant(result.final, recipe.variant, calibration, fixed_batch=recipe.fixed_batch,
                                        float_output=regressor, compact=ctx.cfg.convert.compact)
            deploy = trim_verified(untrimmed, calibration[:64]) if ctx.cfg.convert.trim else untrimmed
            checks = check_tflite(deploy, result.stripped, recipe, ctx.cfg.prune.sparsity_tolerance)
            task = data.task
            measured = bound_metric(task, tflite_outputs(deploy, data.x_val), data.y_val, ctx.cfg.search.confidence,
                                    baseline_outputs(ctx, "val"), judged_rows(ctx))
            score = measured.score
            gz = gzip_size(deploy)
            no_skill = task.no_skill(data.y_train, data.y_val).get(task.primary, 0.0)
            ref = Reference(baseline_rec.score, baseline_rec.gzip_bytes or 0, no_skill, task.primary)
            resolved = (output_resolution(task, *tflite_output_levels(deploy, data.x_val), len(data.x_val))
                        if regressor else None)
            cons, why = constraints(measured, gz, ctx.cfg.gates, ref, all(c.passed for c in checks), resolved)
            ctx.put(L.trial_file(number, "model.tflite"), deploy)
            ctx.put(L.trial_file(number, "untrimmed.tflite"), untrimmed)
            ctx.put(L.trial_file(number, "stripped.h5"), model_to_h5(result.stripped, include_optimizer=False))
            ctx.put(L.trial_file(number, "prune_key.txt"), key.encode())
            ctx.put_record(result.sparsity, L.trial_file(number, "sparsity.json"))
            record = plan.model_copy(update={
                "state": "complete", "score": round(score, 6), "bound": measured.bound,
                "worse_bound": measured.worse_bound, "gzip_bytes": gz, "raw_bytes": len(deploy),
                "structure_gzip_bytes": structure_gzip_bytes(deploy), "untrimmed_gzip_bytes": gzip_size(untrimmed),
                "untrimmed_structure_gzip_bytes": structure_gzip_bytes(untrimmed), "feasible": not why,
                "violations": why,
                "constraints": cons, "checks": checks, "output_problem": resolved,
                "seconds": round(time.perf_counter() - t0, 3)})
        except ShearsError as exc:
            if (plan.origin == "recipe" and isinstance(exc, ConfigError)) or not isinstance(exc, ConfigError):
                raise  # the user's own recipe misconfigured, or a store/record error (retried by Airflow)
            record = _failed(plan, f"{type(exc).__name__}: {first_line(exc)}", t0)
        except Exception as exc:
            record = _failed(plan, f"{type(exc).__name__}: {first_line(exc)}", t0,
                             "".join(traceback.format_exception(exc)))
            if raised_in_shears(exc):  # a bug, not a recipe TF/tfmot cannot apply: the run stops below (exit 1)
                bug = exc
                log.error("trial %d: %s", number, record.traceback)
            else:
                log.warning("trial %d failed (the recipe cannot apply to this model): %s", number, record.traceback)
        result_file = L.trial_file(number, "result.json")
        ctx.put_record(record, result_file)
        if bug is not None:
            raise InternalError(f"trial {number}: {type(bug).__name__}: {first_line(bug)} (a bug in Shears; "
                                f"traceback in {result_file})") from bug
    return {"trial": number, "state": record.state, "score": record.score, "gzip_bytes": record.gzip_bytes,
            "feasible": record.feasible}


MIN_DISTINCT_SHARE = 0.01  # a regressor's outputs on the validation split: at least 1 % distinct values
MAX_SATURATED_SHARE = 0.01  # and at most 1 % of rows at the int8 range's ends


def output_resolution(task: Any, distinct: int, saturated: float, rows: int) -> str | None:
    """Why a regressor's .tflite outputs cannot be trusted (collapsed to a few levels, or clipped at the
    calibrated range), or None. Classifiers are judged by their metrics alone."""
    if task.classification or rows == 0:
        return None
    need = max(2, int(MIN_DISTINCT_SHARE * rows))
    if distinct < need:
        return f"the .tflite's outputs collapse to {distinct} distinct values on {rows} rows (< {need})"
    if saturated > MAX_SATURATED_SHARE:
        return f"{saturated:.1%} of the .tflite's int8 outputs sit at the quantized range's ends (saturated)"
    return None


LIBRARIES_THAT_REFUSE = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "keras", "ai_edge_litert")


def raised_in_shears(exc: BaseException) -> bool:
    """Whether `exc` came from Shears' own code (a bug) rather than from TensorFlow, tf_keras or tfmot refusing
    a recipe for this model (an unsupported layer for clustering or QAT, say): no frame of theirs = a bug."""
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] in LIBRARIES_THAT_REFUSE:
            return False
        tb = tb.tb_next
    return True


def _failed(plan: TrialRecord, error: str, t0: float, trace: str | None = None) -> TrialRecord:
    from shears.errors import bounded

    return plan.model_copy(update={"state": "failed", "error": bounded(error),
                                   "traceback": trace[-MAX_TRACEBACK:] if trace else None,
                                   "seconds": round(time.perf_counter() - t0, 3)})
