"""The steps of a run, in order: each loads a stage's inputs from staging, calls the pure stage, saves outputs.

`STEPS` is the one list of steps. The CLI runs it in sequence in one process; the Airflow DAG has one
task per step whose task id is the step's name; failure records name the step. Every step sees the same
keys (shears.store.layout), so a retried step overwrites its own outputs and nothing else. Heavy
libraries are imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shears.records import (
    BaselineRecord,
    ChampionSeen,
    GateRecord,
    GatesRecord,
    LatencyRecord,
    LayerSensitivityRecord,
    MachineRecord,
    MetricsRecord,
    PruneRecord,
    Recipe,
    ScheduleRecord,
    SearchRecord,
    SensitivityRecord,
    SparsityRecord,
    TimingRecord,
    TrialRecord,
    ValidationRecord,
    dumps,
)
from shears.run import lifecycle, provenance
from shears.run.context import RunContext
from shears.stages.data import Splits
from shears.store import layout as L
from shears.store import read_uri


@contextmanager
def _timed(ctx: RunContext, step: str, machine: bool = False) -> Iterator[None]:
    """Time a step and record the files it wrote: publish takes exactly those (never a directory listing).

    A TensorFlow step (`machine`) also records the machine it ran on (manifest, model card).
    """
    started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    t0 = time.perf_counter()
    first = len(ctx.written)
    yield
    outputs = sorted(set(ctx.written[first:]))
    ctx.put_record(TimingRecord(step=step, seconds=round(time.perf_counter() - t0, 3), outputs=outputs,
                                started_at=started), L.timing(step))

    if machine:
        from shears.keras.machine import collect_machine

        at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        ctx.put_record(MachineRecord(step=step, at=at, machine=collect_machine()), L.machine(step))


def _splits(ctx: RunContext, *, test: bool = False) -> Splits:
    """Train and validation; the test split only for evaluate (everything before it never loads it)."""
    from shears.stages.data import splits_from_npz

    return splits_from_npz(ctx.get(L.SEARCH_SPLITS), ctx.get(L.TEST_SPLIT) if test else None)


def step_validate(ctx: RunContext) -> dict[str, Any]:
    """Check everything that can be checked before training: the config's builder, the champion, the data.

    A broken champion pointer (or its manifest) fails here, not after the whole training; a builder module
    outside the allow-list is refused before it is imported; bad data raises DataError (nothing is trained).
    """
    from shears.errors import DataError
    from shears.keras.allowlist import check_builder
    from shears.keras.fileinfo import inspect_model_file
    from shears.release.champion import read_champion, read_champion_manifest
    from shears.stages.checks import validate_data
    from shears.stages.data import (
        fit_channel_axis,
        holdout_to_npz,
        load_digits_default,
        num_classes_of,
        parse_dataset,
        scale_integer_images,
        search_splits_to_npz,
        split,
    )
    from shears.stages.schedule import derive_schedule

    with _timed(ctx, "validate"):
        provenance.check_signing(ctx)  # signing.required without a key: stop before anything trains
        ctx.put(L.CONFIG, ctx.cfg.to_bytes())
        if ctx.cfg.model.builder and not ctx.cfg.model.pretrained:
            check_builder(ctx.cfg.model.builder)
        champion = read_champion(ctx.store)  # RecordError (exit 1) for a broken pointer
        if champion is not None:
            read_champion_manifest(ctx.store, champion)
        uri = ctx.cfg.data.uri
        if uri is None:
            raw = load_digits_default()
        else:
            raw = parse_dataset(read_uri(uri, ctx.s3_client), uri, ctx.cfg.data.label_column)
        report = validate_data(raw, ctx.cfg.validation)
        key = ctx.put_record(report)
        if not report.success:
            raise DataError(report.summary())
        if ctx.cfg.data.scale_integer_images:
            raw, scaling = scale_integer_images(raw)
            if scaling is not None:  # recorded: the deployed model expects inputs scaled the same way
                report = report.model_copy(update={"input_scale": scaling.scale, "input_dtype": scaling.dtype})
                ctx.put_record(report)
        if ctx.cfg.model.pretrained:  # grayscale images without a channel axis for a (H, W, 1) model: add it
            info = inspect_model_file(read_uri(ctx.cfg.model.pretrained, ctx.s3_client), ctx.cfg.model.pretrained)
            raw, how = fit_channel_axis(raw, info.input_shape)
            shape = list(info.input_shape) if info.input_shape is not None else None
            report = report.model_copy(update={"channel_axis": how, "model_input_shape": shape})
            ctx.put_record(report)
        if raw.class_names is not None:  # class id i is line i; published beside the models
            ctx.put(L.LABELS, "".join(f"{n}\n" for n in raw.class_names).encode())
        try:
            classes = num_classes_of(raw, ctx.cfg.validation.num_classes)
            splits = split(raw, ctx.cfg.data.test_fraction, ctx.cfg.data.split_seed, classes,
                           ctx.cfg.data.validation_fraction)
        except ValueError as exc:
            raise DataError(f"cannot split data: {exc}") from None
        # a schedule that can never reach its target is a config error: raise it before anything trains
        epochs = set(ctx.cfg.search.space.epochs) if ctx.cfg.search.enabled else set()
        for e in sorted({ctx.cfg.prune.epochs, *epochs}):
            schedule = derive_schedule(ctx.cfg.prune.model_copy(update={"epochs": e}), len(splits.x_train))
        schedule = derive_schedule(ctx.cfg.prune, len(splits.x_train))
        ctx.put(L.SEARCH_SPLITS, search_splits_to_npz(splits))
        ctx.put(L.TEST_SPLIT, holdout_to_npz(splits))
    return {
        "validation": key,
        "dataset_sha256": raw.sha256,
        "rows": report.rows,
        "train_rows": len(splits.x_train),
        "validation_rows": len(splits.x_val),
        "test_rows": len(splits.test()[0]),
        "checks": len(report.checks),
        "prune_end_step": schedule.end_step,
        "input_scale": report.input_scale,
        "channel_axis": report.channel_axis,
        "classes": report.class_names,
    }


def step_baseline(ctx: RunContext) -> dict[str, Any]:
    """Train the baseline (or load and check the user's pre-trained model) and save it without optimizer.

    Its accuracy is measured on the validation split (what the search compares against); the test split is
    read once, by evaluate.
    """
    from shears.keras.keras3 import load_pretrained
    from shears.keras.modelio import model_to_h5
    from shears.stages.baseline import check_conversion, check_model_fits, evaluate_pretrained, train_baseline
    from shears.stages.measure import gzip_size
    from shears.stages.prune import prunable_layer_names

    uri = ctx.cfg.model.pretrained
    origin, conv = "trained here", None
    with _timed(ctx, "baseline", machine=True):
        splits = _splits(ctx)
        if uri:
            pre = load_pretrained(read_uri(uri, ctx.s3_client), uri)  # a Keras 3 file is rebuilt in tf_keras
            origin = pre.origin
            if pre.keras3_model is not None:  # proof of equivalence on the run's data, recorded
                check_model_fits(pre.model, splits)
                conv = check_conversion(pre.keras3_model, pre.model, splits, ctx.cfg.model.conversion_tolerance)
            result = evaluate_pretrained(pre.model, splits)
        else:
            result = train_baseline(splits, ctx.cfg.model)
        data = model_to_h5(result.model, include_optimizer=False)
        ctx.put(L.BASELINE_MODEL, data)
        prunable = {name: int(result.model.get_layer(name).kernel.shape.num_elements())
                    for name in prunable_layer_names(result.model)}
        record = BaselineRecord(
            accuracy=result.accuracy, builder=result.builder, pretrained=uri, history=result.history,
            params=int(result.model.count_params()), split="validation", gzip_bytes=gzip_size(data),
            prunable_layers=prunable, origin=origin,
            conversion_max_abs_diff=conv.max_abs_diff if conv else None,
            conversion_samples=conv.samples if conv else None, conversion_tolerance=conv.tolerance if conv else None)
        ctx.put_record(record)
    return {"model": ctx.layout.staging(L.BASELINE_MODEL), "accuracy": result.accuracy, "split": "validation",
            "origin": origin, "conversion_max_abs_diff": record.conversion_max_abs_diff,
            "conversion_samples": record.conversion_samples, "conversion_tolerance": record.conversion_tolerance}


def step_plan_sensitivity(ctx: RunContext) -> list[dict[str, Any]]:
    """The sensitivity points to fan out: one per prunable layer (none with the search off)."""
    with _timed(ctx, "plan_sensitivity"):
        baseline = ctx.get_record(BaselineRecord)
    if not ctx.cfg.search.enabled:
        return []
    return [{"layer": name} for name in baseline.prunable_layers]


def step_sensitivity(ctx: RunContext, item: dict[str, Any]) -> dict[str, Any]:
    """One layer pruned alone at each sparsity of the ladder (magnitude, no fine-tune), on the validation split."""
    from shears.keras.modelio import model_from_bytes
    from shears.stages.sensitivity import layer_sensitivity

    layer = str(item["layer"])
    with _timed(ctx, f"sensitivity-{layer}", machine=True):
        baseline = ctx.get_record(BaselineRecord)
        model = model_from_bytes(ctx.get(L.BASELINE_MODEL))
        part = layer_sensitivity(model, _splits(ctx), layer, list(ctx.cfg.search.ladder), baseline.accuracy)
        ctx.put(L.sensitivity_part(layer), dumps(part.model_dump(mode="json")))
    worst = part.points[-1]
    return {"layer": layer, "weights": part.weights, "drop_pp_at_top": worst.drop_pp}


def _trials(ctx: RunContext) -> list[TrialRecord]:
    """Every trial so far: its result, or its plan marked failed when no result was written."""
    prefix = ctx.layout.staging(L.SEARCH_DIR + "/trials") + "/"
    plans: dict[int, TrialRecord] = {}
    results: dict[int, TrialRecord] = {}
    for key in ctx.work.list(prefix):
        if key.endswith("/plan.json") or key.endswith("/result.json"):
            rec = TrialRecord.from_bytes(ctx.work.get(key), key)
            (results if key.endswith("/result.json") else plans)[rec.number] = rec
    out = []
    for number in sorted(plans):
        out.append(results.get(number) or plans[number].model_copy(
            update={"state": "failed", "error": "the trial did not finish (its task failed or was killed)"}))
    return out


def _sensitivity(ctx: RunContext) -> SensitivityRecord | None:
    if ctx.has(L.SENSITIVITY):
        return ctx.get_record(SensitivityRecord)
    if not ctx.cfg.search.enabled:
        return None
    from shears.stages.sensitivity import assemble

    baseline = ctx.get_record(BaselineRecord)
    parts = [LayerSensitivityRecord.model_validate_json(ctx.get(L.sensitivity_part(name)))
             for name in baseline.prunable_layers]
    record = assemble(parts, list(ctx.cfg.search.ladder), baseline.accuracy)
    ctx.put_record(record)
    return record


def _base_recipe(ctx: RunContext, baseline: BaselineRecord) -> Recipe:
    from shears.errors import ConfigError
    from shears.stages.search import recipe_from_config

    prune = ctx.cfg.prune
    names = list(prune.layers) if prune.layers is not None else list(baseline.prunable_layers)
    unknown = [n for n in names if n not in baseline.prunable_layers]
    if unknown:
        raise ConfigError(f"prune.layers {unknown} are not prunable layers of the model; "
                          f"prunable: {list(baseline.prunable_layers)}")
    return recipe_from_config(ctx.cfg, baseline.prunable_layers, {n: prune.final_sparsity for n in names})


def step_propose(ctx: RunContext, round_no: int) -> list[dict[str, Any]]:
    """Round `round_no` of the search: which trials to run next (each one's recipe is staged as its plan)."""
    from shears.stages.search import propose, round_size

    with _timed(ctx, f"propose_{round_no}"):
        baseline = ctx.get_record(BaselineRecord)
        sensitivity = _sensitivity(ctx)
        trials = _trials(ctx)
        if ctx.cfg.search.enabled:
            started = ctx.get_record(TimingRecord, L.timing("plan_sensitivity")).started_at or ""
            elapsed = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(started)).total_seconds()
            jobs = int(os.environ.get("SHEARS_SEARCH_JOBS", "1") or 1)
            n = round_size(round_no, ctx.cfg.search, len(trials), elapsed,
                           [t.seconds for t in trials if t.state == "complete"], jobs)
        else:
            n = 1 if round_no == 1 and not trials else 0
        proposals = propose(round_no, n, trials, ctx.cfg, sensitivity, baseline.prunable_layers,
                            _base_recipe(ctx, baseline))
        items = []
        for i, p in enumerate(proposals):
            number = len(trials) + i
            plan = TrialRecord(number=number, round=round_no, origin=p.origin, recipe=p.recipe, params=p.params)
            ctx.put_record(plan, L.trial_file(number, "plan.json"))
            items.append({"trial": number})
    return items


def _prune_key(ctx: RunContext, recipe: Recipe) -> str:
    """Trials that prune the same way from the same baseline share one pruned model (content-addressed)."""
    import hashlib

    basis = {"baseline": hashlib.sha256(ctx.get(L.BASELINE_MODEL)).hexdigest(), "sparsity": recipe.sparsity,
             "epochs": recipe.prune_epochs, "prune": ctx.cfg.prune.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:24]


def _prune_record(result: Any, recipe: Recipe | None, trial: int | None) -> PruneRecord:
    s = result.schedule
    return PruneRecord(
        accuracy=result.accuracy, pruned_layers=result.pruned_layers,
        schedule=ScheduleRecord.model_validate(s.__dict__), mask_update_steps=s.mask_updates(),
        sparsity_by_step=[(step, round(s.sparsity_at(step), 6)) for step in range(s.total_steps)],
        history=result.history, split="validation", layer_sparsity=dict(result.targets), recipe=recipe, trial=trial,
    )


def _cached_prune(ctx: RunContext, key: str) -> tuple[Any, Any] | None:
    from shears.keras.modelio import model_from_bytes
    from shears.stages.prune import PruneResult
    from shears.stages.schedule import Schedule

    names = [L.pruned_cache(f"{key}/{n}") for n in ("pruned.h5", "stripped.h5", "prune.json")]
    if not all(ctx.has(n) for n in names):
        return None
    rec = PruneRecord.from_bytes(ctx.get(names[2]), names[2])
    schedule = Schedule(**rec.schedule.model_dump())
    result = PruneResult(model_from_bytes(ctx.get(names[0]), pruned=True), schedule, rec.pruned_layers, rec.accuracy,
                         rec.history, dict(rec.layer_sparsity))
    return result, model_from_bytes(ctx.get(names[1]))


def step_trial(ctx: RunContext, item: dict[str, Any]) -> dict[str, Any]:
    """One trial: apply its recipe, convert, verify the techniques in the .tflite, measure bytes and validation
    accuracy, and judge it against the gates. Idempotent: a retry rewrites the same files with the same result.

    A recipe the model cannot take (an unsupported layer for clustering, say) fails this trial, not the run —
    except trial 0, the configured recipe, whose configuration errors are the user's to see.
    """
    from shears.errors import ConfigError, ShearsError, first_line
    from shears.keras.modelio import model_from_bytes, model_to_h5
    from shears.stages.compress import compress
    from shears.stages.convert import convert_variant, representative_samples
    from shears.stages.inspect import check_tflite, structure_gzip_bytes
    from shears.stages.measure import gzip_size, tflite_accuracy
    from shears.stages.search import Reference, constraints

    number = int(item["trial"])
    plan = ctx.get_record(TrialRecord, L.trial_file(number, "plan.json"))
    recipe = plan.recipe
    t0 = time.perf_counter()
    with _timed(ctx, f"trial-{number:04d}", machine=True), tempfile.TemporaryDirectory() as logdir:
        try:
            baseline_rec = ctx.get_record(BaselineRecord)
            splits = _splits(ctx)
            baseline = model_from_bytes(ctx.get(L.BASELINE_MODEL))
            key = _prune_key(ctx, recipe)
            cached = _cached_prune(ctx, key)
            result = compress(baseline, splits, recipe, ctx.cfg.prune, pruned=cached, log_dir=logdir)
            if cached is None:
                ctx.put(L.pruned_cache(f"{key}/pruned.h5"), model_to_h5(result.pruned, include_optimizer=True))
                ctx.put(L.pruned_cache(f"{key}/stripped.h5"), model_to_h5(
                    _strip_pruning_only(result), include_optimizer=False))
                ctx.put_record(_prune_record(result.prune, None, None), L.pruned_cache(f"{key}/prune.json"))
                for path in sorted(Path(logdir).rglob("*")):
                    if path.is_file():
                        ctx.put(L.pruned_cache(f"{key}/tensorboard/{path.relative_to(logdir).as_posix()}"),
                                path.read_bytes())
            calibration = representative_samples(splits.x_train, ctx.cfg.convert.representative_samples)
            deploy = convert_variant(result.final, recipe.variant, calibration, fixed_batch=recipe.fixed_batch,
                                     compact=ctx.cfg.convert.compact)
            checks = check_tflite(deploy, result.stripped, recipe, ctx.cfg.prune.sparsity_tolerance)
            accuracy = tflite_accuracy(deploy, splits.x_val, splits.y_val)
            gz = gzip_size(deploy)
            counts = np.bincount(splits.y_val.astype(np.int64))
            ref = Reference(baseline_rec.accuracy, baseline_rec.gzip_bytes or 0, float(counts.max() / counts.sum()))
            cons, why = constraints(accuracy, gz, ctx.cfg.gates, ref, ctx.cfg.search.val_margin_pp,
                                    all(c.passed for c in checks))
            ctx.put(L.trial_file(number, "model.tflite"), deploy)
            ctx.put(L.trial_file(number, "stripped.h5"), model_to_h5(result.stripped, include_optimizer=False))
            ctx.put(L.trial_file(number, "prune_key.txt"), key.encode())
            ctx.put_record(result.sparsity, L.trial_file(number, "sparsity.json"))
            record = plan.model_copy(update={
                "state": "complete", "accuracy": round(accuracy, 6), "gzip_bytes": gz, "raw_bytes": len(deploy),
                "structure_gzip_bytes": structure_gzip_bytes(deploy), "feasible": not why, "violations": why,
                "constraints": cons, "checks": checks, "seconds": round(time.perf_counter() - t0, 3)})
        except ShearsError as exc:
            if (plan.origin == "recipe" and isinstance(exc, ConfigError)) or not isinstance(exc, ConfigError):
                raise  # the user's own recipe misconfigured, or a store/record error (retried by Airflow)
            record = _failed(plan, f"{type(exc).__name__}: {first_line(exc)}", t0)
        except Exception as exc:  # a recipe TF/tfmot cannot apply to this model: this trial fails, not the run
            record = _failed(plan, f"{type(exc).__name__}: {first_line(exc)}", t0)
        ctx.put_record(record, L.trial_file(number, "result.json"))
    return {"trial": number, "state": record.state, "accuracy": record.accuracy, "gzip_bytes": record.gzip_bytes,
            "feasible": record.feasible}


def _strip_pruning_only(result: Any) -> Any:
    from shears.keras.tfcompat import tfmot

    return tfmot.sparsity.keras.strip_pruning(result.pruned)


def _failed(plan: TrialRecord, error: str, t0: float) -> TrialRecord:
    from shears.errors import bounded

    return plan.model_copy(update={"state": "failed", "error": bounded(error),
                                   "seconds": round(time.perf_counter() - t0, 3)})


def step_select(ctx: RunContext) -> dict[str, Any]:
    """Pick the winner (smallest trial passing every gate on the validation split, else the closest one), make
    its files the run's models and records, convert the other configured variants, and write search.json."""
    from shears.errors import DataError
    from shears.keras.modelio import model_from_bytes
    from shears.stages.convert import convert
    from shears.stages.search import pareto_frontier, select

    with _timed(ctx, "select", machine=True):
        trials = _trials(ctx)
        try:
            winner, feasible = select(trials)
        except ValueError:
            errors = "; ".join(f"trial {t.number}: {t.error}" for t in trials if t.error)
            raise DataError(f"no trial completed: {errors or 'none was run'}") from None
        n = winner.number
        key = ctx.get(L.trial_file(n, "prune_key.txt")).decode()
        ctx.put(L.PRUNED_MODEL, ctx.get(L.pruned_cache(f"{key}/pruned.h5")))
        ctx.put(L.STRIPPED_MODEL, ctx.get(L.trial_file(n, "stripped.h5")))
        ctx.put(L.tflite_model(winner.recipe.variant), ctx.get(L.trial_file(n, "model.tflite")))
        ctx.put(L.SPARSITY, ctx.get(L.trial_file(n, "sparsity.json")))
        prune = ctx.get_record(PruneRecord, L.pruned_cache(f"{key}/prune.json"))
        ctx.put_record(prune.model_copy(update={"recipe": winner.recipe, "trial": n}))
        tb = ctx.layout.staging(L.pruned_cache(f"{key}/tensorboard")) + "/"
        for src in ctx.work.list(tb):
            ctx.put(f"{L.TENSORBOARD}/{src[len(tb):]}", ctx.work.get(src))
        baseline = ctx.get_record(BaselineRecord)
        if baseline.origin.startswith("Keras 3") and baseline.pretrained:
            _give_back_keras3(ctx, baseline.pretrained)
        others = tuple(v for v in ctx.cfg.convert.variants if v != winner.recipe.variant)
        if others:  # for the artifact table: the winner's plain model in the other variants
            stripped = model_from_bytes(ctx.get(L.STRIPPED_MODEL))
            for variant, data in convert(stripped, _splits(ctx).x_train, ctx.cfg.convert, others).items():
                ctx.put(L.tflite_model(variant), data)
        splits = _splits(ctx)
        counts = np.bincount(splits.y_val.astype(np.int64))
        phases: dict[str, float] = {}
        started: dict[str, str] = {}
        for rec_key in ctx.work.list(ctx.layout.staging(L.TIMINGS_DIR) + "/"):
            t = TimingRecord.from_bytes(ctx.work.get(rec_key))
            phase = t.step.split("-")[0].rstrip("_0123456789")
            phases[phase] = round(phases.get(phase, 0.0) + t.seconds, 3)
            if t.started_at:
                started[t.step] = t.started_at
        now = dt.datetime.now(dt.UTC)
        # wall clock (trials may overlap: in N processes, or on several Airflow workers)
        for name, first in (("search_wall", "plan_sensitivity"), ("trials_wall", "propose_1")):
            if first in started:
                phases[name] = round((now - dt.datetime.fromisoformat(started[first])).total_seconds(), 3)
        search = SearchRecord(
            enabled=ctx.cfg.search.enabled,
            sampler=("optuna TPE (constraints, multivariate, constant liar), rebuilt from the trial records"
                     if ctx.cfg.search.enabled else "none: the configured recipe only"),
            budget={"max_trials": ctx.cfg.search.max_trials, "max_minutes": ctx.cfg.search.max_minutes,
                    "rounds": ctx.cfg.search.rounds},
            baseline_accuracy=baseline.accuracy, baseline_gzip_bytes=baseline.gzip_bytes or 0,
            majority_rate=round(float(counts.max() / counts.sum()), 6), trials=trials, winner=n,
            winner_feasible=feasible, frontier=pareto_frontier(trials),
            seconds={k: v for k, v in phases.items()
                     if k in ("plan_sensitivity", "sensitivity", "propose", "trial", "search_wall", "trials_wall")},
        )
        ctx.put_record(search)
    return {"winner": n, "feasible": feasible, "trials": len(trials), "gzip_bytes": winner.gzip_bytes,
            "accuracy": winner.accuracy, "recipe": winner.recipe.describe()}


def _give_back_keras3(ctx: RunContext, uri: str) -> None:
    """The stripped pruned model in the user's own format: their Keras 3 architecture, our weights, proven equal."""
    from shears.keras.keras3 import keras3_to_bytes, to_keras3
    from shears.keras.modelio import model_from_bytes
    from shears.stages.baseline import check_conversion

    stripped = model_from_bytes(ctx.get(L.STRIPPED_MODEL))
    k3_model = to_keras3(stripped, read_uri(uri, ctx.s3_client), uri)
    check_conversion(stripped, k3_model, _splits(ctx), ctx.cfg.model.conversion_tolerance,
                     what="the Keras 3 copy of the stripped model")
    ctx.put(L.STRIPPED_KERAS3, keras3_to_bytes(k3_model))


def step_evaluate(ctx: RunContext) -> dict[str, Any]:
    """Sizes and test accuracy of every artifact (metrics.json), structure bytes of every .tflite, and TFLite
    latency (latency.json). The only step that reads the test split: the final figures, once."""
    from shears.keras.modelio import model_from_bytes
    from shears.keras.training import keras_accuracy
    from shears.stages.inspect import structure_gzip_bytes
    from shears.stages.measure import measure, tflite_accuracy, tflite_latency_ms

    with _timed(ctx, "evaluate", machine=True):
        s = _splits(ctx, test=True)
        x_test, y_test = s.test()
        prune = ctx.get_record(PruneRecord)
        deployable = prune.recipe.variant if prune.recipe else ctx.cfg.convert.deployable
        rows = []
        for name, file, note, pruned in (
            ("baseline", L.BASELINE_MODEL, ".h5 without optimizer", False),
            ("pruned_unstripped", L.PRUNED_MODEL, ".h5 as saved by fit: pruning wrappers, masks and optimizer", True),
            ("stripped", L.STRIPPED_MODEL, ".h5 without wrappers or optimizer", False),
        ):
            data = ctx.get(file)
            acc = keras_accuracy(model_from_bytes(data, pruned=pruned), x_test, y_test)
            rows.append(measure(name, file, "keras", data, acc, note))
        if ctx.has(L.STRIPPED_KERAS3):  # given back in the user's format: it must load in Keras 3 and score the same
            from shears.keras.keras3 import keras3_from_bytes

            data = ctx.get(L.STRIPPED_KERAS3)
            acc = keras_accuracy(keras3_from_bytes(data, L.STRIPPED_KERAS3), x_test, y_test)
            rows.append(measure("stripped_keras3", L.STRIPPED_KERAS3, "keras", data, acc,
                                "Keras 3 .keras of the stripped model (your format, no optimizer)"))
        latency = {}
        runs = ctx.cfg.convert.latency_runs
        variants = [deployable, *(v for v in ctx.cfg.convert.variants if v != deployable)]
        for variant in sorted(variants, key=lambda v: ("float32", "dynamic_range", "int8", "float16").index(v)):
            file = L.tflite_model(variant)
            data = ctx.get(file)
            note = "deployable" if variant == deployable else "from the stripped model, for comparison"
            if variant == deployable and prune.recipe is not None:
                note = f"deployable: {prune.recipe.describe()}"
            acc = tflite_accuracy(data, x_test, y_test)
            row = measure(f"tflite_{variant}", file, "tflite", data, acc, note)
            rows.append(row.model_copy(update={"structure_gzip_bytes": structure_gzip_bytes(data)}))
            latency[f"tflite_{variant}"] = round(tflite_latency_ms(data, x_test[0], runs), 4)
        counts = np.bincount(y_test.astype(np.int64))
        majority = round(float(counts.max() / counts.sum()), 6) if counts.size else None
        metrics = MetricsRecord(deployable=f"tflite_{deployable}", artifacts=rows, test_majority_rate=majority)
        ctx.put_record(metrics)
        ctx.put_record(LatencyRecord(unit="ms", batch=1, median_of=runs, latency=latency))
    return {"metrics": ctx.layout.staging(L.METRICS), "deployable": metrics.deployable}


def step_gate(ctx: RunContext) -> dict[str, Any]:
    """Every gate (incl. sparsity and, with a champion, the regression gates); a failure is recorded here.

    A failed gate publishes the rejection under rejected/<run_id>/ (lifecycle.reject) and raises
    GateFailure: the gate step itself records why the run was not published, in the CLI as in Airflow.
    """
    from shears.release.champion import read_champion, read_champion_manifest
    from shears.run.compare import compare_with_champion
    from shears.stages.gates import evaluate_gates, failed_summary

    with _timed(ctx, "gate"):
        metrics = ctx.get_record(MetricsRecord)
        sparsity = ctx.get_record(SparsityRecord)
        champion = read_champion(ctx.store)
        comparison = None
        if champion is not None:
            splits = _splits(ctx, test=True)
            x_test, y_test = splits.test()
            ours = ctx.get(metrics.deployable_artifact.file)
            comparison = compare_with_champion(
                ctx.store, champion, read_champion_manifest(ctx.store, champion), ours,
                ctx.get_record(ValidationRecord), x_test, y_test, splits.num_classes, ctx.cfg.gates.champion_rule)
        results = evaluate_gates(metrics.baseline, metrics.deployable_artifact, ctx.cfg.gates, sparsity, comparison,
                                 majority_rate=metrics.test_majority_rate)
        if ctx.has(L.SEARCH):
            search = ctx.get_record(SearchRecord)
            if search.enabled:  # with the search off, the one recipe is judged by the gates below alone
                results.insert(0, search_gate(search))
        record = GatesRecord(
            passed=all(r.passed for r in results),
            summary=failed_summary(results),
            champion=ChampionSeen(run_id=champion.run_id, etag=champion.etag) if champion else None,
            gates=results,
            comparison=comparison,
        )
        ctx.put_record(record)
    if not record.passed:
        lifecycle.reject(ctx, record)  # raises GateFailure
    return {"passed": record.passed, "summary": record.summary, "gates": ctx.layout.staging(L.GATES)}


def search_gate(search: SearchRecord) -> GateRecord:
    """The search as a gate: the published trial must have met every gate on the validation split."""
    won = next(t for t in search.trials if t.number == search.winner)
    feasible = sum(1 for t in search.trials if t.feasible)
    if search.winner_feasible:
        reason = (f"trial {won.number} ({won.recipe.describe()}) met every gate on the validation split "
                  f"({feasible} of {len(search.trials)} trials did): ok")
    else:
        reason = (f"no trial met the gates on the validation split; closest: trial {won.number} "
                  f"({won.recipe.describe()}): {'; '.join(won.violations) or won.error}: FAILED")
    return GateRecord(name="search", threshold=1, observed=feasible, passed=search.winner_feasible, reason=reason,
                      compared_to="validation split")


def step_publish(ctx: RunContext) -> dict[str, Any]:
    """Publish runs/<run_id>/ and promote (safe to retry: a completed publish is reported, not redone)."""
    return lifecycle.publish_once(ctx)


@dataclass(frozen=True)
class Step:
    """One step of a run: its name (= the Airflow task id, = failure.json's stage) and how it runs.

    A step with `expands` set is fanned out: it runs once per item of the list that step returned (Airflow
    dynamic task mapping, `.expand()`; the CLI runs the items in sequence or in N processes).
    """

    name: str
    run: Callable[..., Any]
    tensorflow: bool  # imports TensorFlow: Airflow routes it to the TensorFlow queue/pool
    retry_io: bool  # Airflow retries transient store/network errors; validate and gate fail at once
    expands: str | None = None  # the step whose returned list this one maps over
    light_when_empty: bool = False  # runs even when the step before it mapped over nothing (skipped)


def _propose(round_no: int) -> Callable[[RunContext], list[dict[str, Any]]]:
    def run(ctx: RunContext) -> list[dict[str, Any]]:
        return step_propose(ctx, round_no)

    run.__name__ = f"step_propose_{round_no}"
    return run


# The DAG's shape is fixed (DAGs are acyclic): SEARCH_ROUNDS fan-outs of trials; config.search.rounds uses
# the first ones, a later round with nothing to propose maps over an empty list (skipped).
SEARCH_ROUNDS = 3

STEPS: tuple[Step, ...] = (
    Step("validate", step_validate, tensorflow=False, retry_io=False),
    Step("baseline", step_baseline, tensorflow=True, retry_io=True),
    Step("plan_sensitivity", step_plan_sensitivity, tensorflow=False, retry_io=True),
    Step("sensitivity", step_sensitivity, tensorflow=True, retry_io=True, expands="plan_sensitivity"),
    *(s for r in range(1, SEARCH_ROUNDS + 1) for s in (
        Step(f"propose_{r}", _propose(r), tensorflow=False, retry_io=True, light_when_empty=True),
        Step(f"trials_{r}", step_trial, tensorflow=True, retry_io=True, expands=f"propose_{r}"),
    )),
    Step("select", step_select, tensorflow=True, retry_io=True, light_when_empty=True),
    Step("evaluate", step_evaluate, tensorflow=True, retry_io=True),
    Step("gate", step_gate, tensorflow=False, retry_io=False),
    Step("publish", step_publish, tensorflow=False, retry_io=True),
)
STEP_NAMES: tuple[str, ...] = tuple(s.name for s in STEPS)


def step(name: str) -> Step:
    """The step called `name` (a KeyError names the known steps)."""
    for s in STEPS:
        if s.name == name:
            return s
    raise KeyError(f"no step {name!r}; steps are {', '.join(STEP_NAMES)}")
