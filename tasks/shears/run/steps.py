"""The steps of a run, in order: each loads a stage's inputs from staging, calls the pure stage, saves outputs.

`STEPS` is the one list of steps. The CLI runs it in sequence in one process; the Airflow DAG has one
task per step whose task id is the step's name; failure records name the step. Every step sees the same
keys (shears.store.layout), so a retried step overwrites its own outputs and nothing else. Heavy
libraries are imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shears.records import (
    BaselineRecord,
    ChampionSeen,
    GatesRecord,
    LatencyRecord,
    MachineRecord,
    MetricsRecord,
    PruneRecord,
    ScheduleRecord,
    SparsityRecord,
    TimingRecord,
)
from shears.run import lifecycle, provenance
from shears.run.context import RunContext
from shears.store import layout as L
from shears.store import read_uri


@contextmanager
def _timed(ctx: RunContext, step: str, machine: bool = False) -> Iterator[None]:
    """Time a step and record the files it wrote: publish takes exactly those (never a directory listing).

    A TensorFlow step (`machine`) also records the machine it ran on (manifest, model card).
    """
    t0 = time.perf_counter()
    first = len(ctx.written)
    yield
    outputs = sorted(set(ctx.written[first:]))
    ctx.put_record(TimingRecord(step=step, seconds=round(time.perf_counter() - t0, 3), outputs=outputs),
                   L.timing(step))
    if machine:
        from shears.keras.machine import collect_machine

        at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        ctx.put_record(MachineRecord(step=step, at=at, machine=collect_machine()), L.machine(step))


def step_validate(ctx: RunContext) -> dict[str, Any]:
    """Check everything that can be checked before training: the config's builder, the champion, the data.

    A broken champion pointer (or its manifest) fails here, not after the whole training; a builder module
    outside the allow-list is refused before it is imported; bad data raises DataError (nothing is trained).
    """
    from shears.errors import DataError
    from shears.keras.allowlist import check_builder
    from shears.release.champion import read_champion, read_champion_manifest
    from shears.stages.checks import validate_data
    from shears.stages.data import (
        load_digits_default,
        num_classes_of,
        parse_dataset,
        scale_integer_images,
        split,
        splits_to_npz,
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
        try:
            classes = num_classes_of(raw, ctx.cfg.validation.num_classes)
            splits = split(raw, ctx.cfg.data.test_fraction, ctx.cfg.data.split_seed, classes)
        except ValueError as exc:
            raise DataError(f"cannot split data: {exc}") from None
        # a schedule that can never reach its target is a config error: raise it before anything trains
        schedule = derive_schedule(ctx.cfg.prune, len(splits.x_train))
        ctx.put(L.SPLITS, splits_to_npz(splits))
    return {
        "validation": key,
        "dataset_sha256": raw.sha256,
        "rows": report.rows,
        "train_rows": len(splits.x_train),
        "test_rows": len(splits.x_test),
        "checks": len(report.checks),
        "prune_end_step": schedule.end_step,
        "input_scale": report.input_scale,
    }


def step_baseline(ctx: RunContext) -> dict[str, Any]:
    """Train the baseline (or load and evaluate the user's pre-trained model) and save it without optimizer."""
    from shears.keras.modelio import model_from_bytes, model_to_h5
    from shears.stages.baseline import evaluate_pretrained, train_baseline
    from shears.stages.data import splits_from_npz

    uri = ctx.cfg.model.pretrained
    with _timed(ctx, "baseline", machine=True):
        splits = splits_from_npz(ctx.get(L.SPLITS))
        if uri:
            result = evaluate_pretrained(model_from_bytes(read_uri(uri, ctx.s3_client), uri), splits)
        else:
            result = train_baseline(splits, ctx.cfg.model)
        ctx.put(L.BASELINE_MODEL, model_to_h5(result.model, include_optimizer=False))
        ctx.put_record(BaselineRecord(accuracy=result.accuracy, builder=result.builder, pretrained=uri,
                                      history=result.history, params=int(result.model.count_params())))
    return {"model": ctx.layout.staging(L.BASELINE_MODEL), "accuracy": result.accuracy}


def step_prune(ctx: RunContext) -> dict[str, Any]:
    """Fine-tune a pruned clone; keep the unstripped model as users would save it (with optimizer)."""
    from shears.keras.modelio import model_from_bytes, model_to_h5
    from shears.stages.data import splits_from_npz
    from shears.stages.prune import prune_finetune

    with _timed(ctx, "prune", machine=True), tempfile.TemporaryDirectory() as logdir:
        splits = splits_from_npz(ctx.get(L.SPLITS))
        baseline = model_from_bytes(ctx.get(L.BASELINE_MODEL))
        result = prune_finetune(baseline, splits, ctx.cfg.prune, log_dir=logdir)
        ctx.put(L.PRUNED_MODEL, model_to_h5(result.model, include_optimizer=True))
        for path in sorted(Path(logdir).rglob("*")):
            if path.is_file():
                ctx.put(f"{L.TENSORBOARD}/{path.relative_to(logdir).as_posix()}", path.read_bytes())
        s = result.schedule
        ctx.put_record(PruneRecord(
            accuracy=result.accuracy,
            pruned_layers=result.pruned_layers,
            schedule=ScheduleRecord.model_validate(s.__dict__),
            mask_update_steps=s.mask_updates(),
            sparsity_by_step=[(step, round(s.sparsity_at(step), 6)) for step in range(s.total_steps)],
            history=result.history,
        ))
    return {"model": ctx.layout.staging(L.PRUNED_MODEL), "accuracy": result.accuracy, "end_step": s.end_step}


def step_strip(ctx: RunContext) -> dict[str, Any]:
    """Strip wrappers, save the deployable Keras file, and record per-layer sparsity."""
    from shears.keras.modelio import model_from_bytes, model_to_h5
    from shears.stages.strip import strip_and_verify

    with _timed(ctx, "strip", machine=True):
        pruned = model_from_bytes(ctx.get(L.PRUNED_MODEL), pruned=True)
        layers = ctx.get_record(PruneRecord).pruned_layers
        result = strip_and_verify(pruned, layers, ctx.cfg.prune.final_sparsity, ctx.cfg.prune.sparsity_tolerance)
        ctx.put(L.STRIPPED_MODEL, model_to_h5(result.model, include_optimizer=False))
        ctx.put_record(result.record)
    return {"model": ctx.layout.staging(L.STRIPPED_MODEL), "sparsity_ok": result.passed}


def step_convert(ctx: RunContext) -> dict[str, Any]:
    """Every configured TFLite variant of the stripped model."""
    from shears.keras.modelio import model_from_bytes
    from shears.stages.convert import convert
    from shears.stages.data import splits_from_npz

    with _timed(ctx, "convert", machine=True):
        splits = splits_from_npz(ctx.get(L.SPLITS))
        stripped = model_from_bytes(ctx.get(L.STRIPPED_MODEL))
        variants = convert(stripped, splits.x_train, ctx.cfg.convert)
        keys = {v: ctx.put(L.tflite_model(v), data) for v, data in variants.items()}
    return {"models": keys}


def step_evaluate(ctx: RunContext) -> dict[str, Any]:
    """Sizes and accuracy of every artifact (metrics.json) and TFLite latency (latency.json)."""
    import numpy as np

    from shears.keras.modelio import model_from_bytes
    from shears.keras.training import keras_accuracy
    from shears.stages.data import splits_from_npz
    from shears.stages.measure import measure, tflite_accuracy, tflite_latency_ms

    with _timed(ctx, "evaluate", machine=True):
        s = splits_from_npz(ctx.get(L.SPLITS))
        rows = []
        for name, file, note, pruned in (
            ("baseline", L.BASELINE_MODEL, ".h5 without optimizer", False),
            ("pruned_unstripped", L.PRUNED_MODEL, ".h5 as saved by fit: pruning wrappers, masks and optimizer", True),
            ("stripped", L.STRIPPED_MODEL, ".h5 without wrappers or optimizer", False),
        ):
            data = ctx.get(file)
            acc = keras_accuracy(model_from_bytes(data, pruned=pruned), s.x_test, s.y_test)
            rows.append(measure(name, file, "keras", data, acc, note))
        latency = {}
        runs = ctx.cfg.convert.latency_runs
        for variant in ctx.cfg.convert.variants:
            file = L.tflite_model(variant)
            data = ctx.get(file)
            note = "deployable" if variant == ctx.cfg.convert.deployable else ""
            acc = tflite_accuracy(data, s.x_test, s.y_test)
            rows.append(measure(f"tflite_{variant}", file, "tflite", data, acc, note))
            latency[f"tflite_{variant}"] = round(tflite_latency_ms(data, s.x_test[0], runs), 4)
        counts = np.bincount(s.y_test.astype(np.int64))
        majority = round(float(counts.max() / counts.sum()), 6) if counts.size else None
        metrics = MetricsRecord(deployable=f"tflite_{ctx.cfg.convert.deployable}", artifacts=rows,
                                test_majority_rate=majority)
        ctx.put_record(metrics)
        ctx.put_record(LatencyRecord(unit="ms", batch=1, median_of=runs, latency=latency))
    return {"metrics": ctx.layout.staging(L.METRICS), "deployable": metrics.deployable}


def step_gate(ctx: RunContext) -> dict[str, Any]:
    """Every gate (incl. sparsity and, with a champion, the regression gates); a failure is recorded here.

    A failed gate publishes the rejection under rejected/<run_id>/ (lifecycle.reject) and raises
    GateFailure: the gate step itself records why the run was not published, in the CLI as in Airflow.
    """
    from shears.release.champion import read_champion, read_champion_manifest
    from shears.stages.gates import ChampionRef, evaluate_gates, failed_summary

    with _timed(ctx, "gate"):
        metrics = ctx.get_record(MetricsRecord)
        sparsity = ctx.get_record(SparsityRecord)
        champion = read_champion(ctx.store)
        ref = None
        if champion is not None:
            dep = read_champion_manifest(ctx.store, champion).deployable
            if dep is not None:
                ref = ChampionRef(champion.run_id, dep.accuracy, dep.gzip_bytes)
        results = evaluate_gates(metrics.baseline, metrics.deployable_artifact, ctx.cfg.gates, sparsity, ref,
                                 majority_rate=metrics.test_majority_rate)
        record = GatesRecord(
            passed=all(r.passed for r in results),
            summary=failed_summary(results),
            champion=ChampionSeen(run_id=champion.run_id, etag=champion.etag) if champion else None,
            gates=results,
        )
        ctx.put_record(record)
    if not record.passed:
        lifecycle.reject(ctx, record)  # raises GateFailure
    return {"passed": record.passed, "summary": record.summary, "gates": ctx.layout.staging(L.GATES)}


def step_publish(ctx: RunContext) -> dict[str, Any]:
    """Publish runs/<run_id>/ and promote (safe to retry: a completed publish is reported, not redone)."""
    return lifecycle.publish_once(ctx)


@dataclass(frozen=True)
class Step:
    """One step of a run: its name (= the Airflow task id, = failure.json's stage) and how it runs."""

    name: str
    run: Callable[[RunContext], dict[str, Any]]
    tensorflow: bool  # imports TensorFlow: Airflow routes it to the TensorFlow queue/pool
    retry_io: bool  # Airflow retries transient store/network errors; validate and gate fail at once


STEPS: tuple[Step, ...] = (
    Step("validate", step_validate, tensorflow=False, retry_io=False),
    Step("baseline", step_baseline, tensorflow=True, retry_io=True),
    Step("prune", step_prune, tensorflow=True, retry_io=True),
    Step("strip", step_strip, tensorflow=True, retry_io=True),
    Step("convert", step_convert, tensorflow=True, retry_io=True),
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
