"""Step adapters: load a stage's inputs from the run's staging area, call the pure stage, save outputs.

The CLI runs them in sequence in one process; the Airflow DAG runs each in its own task. Both see
the same keys (tasks.layout), so a retried step overwrites its own outputs and nothing else.
Heavy libraries are imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks import layout as L
from tasks.config import PipelineConfig
from tasks.errors import DataError, GateFailure
from tasks.manifest import build_manifest, dumps, git_commit, versions
from tasks.storage import PreconditionFailed, Store, read_uri


@dataclass(frozen=True)
class RunContext:
    """Everything a step needs: where staging lives, where results go, and the resolved config."""

    work: Store  # staging area (may be the same store as `store`)
    store: Store  # artifact store results are published to
    layout: L.RunLayout
    cfg: PipelineConfig
    s3_client: Callable[[], Any] | None = None  # builds the client for s3:// inputs (the DAG's connection)

    def put(self, name: str, data: bytes) -> str:
        key = self.layout.staging(name)
        self.work.put(key, data)
        return key

    def get(self, name: str) -> bytes:
        return self.work.get(self.layout.staging(name))

    def put_json(self, name: str, obj: Any) -> str:
        return self.put(name, dumps(obj))

    def get_json(self, name: str) -> Any:
        return json.loads(self.get(name))


@contextmanager
def _timed(ctx: RunContext, step: str) -> Iterator[dict[str, Any]]:
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    yield info
    ctx.put_json(L.timing(step), {"step": step, "seconds": round(time.perf_counter() - t0, 3), **info})


def step_validate(ctx: RunContext) -> dict[str, Any]:
    """Read and validate the data; on failure record why and raise DataError (nothing is trained)."""
    from tasks.data import load_digits_default, num_classes_of, parse_dataset, split, splits_to_npz
    from tasks.schedule import derive_schedule
    from tasks.validate import validate_data

    with _timed(ctx, "validate"):
        ctx.put_json(L.CONFIG, ctx.cfg.model_dump(mode="json"))
        uri = ctx.cfg.data.uri
        if uri is None:
            raw = load_digits_default()
        else:
            raw = parse_dataset(read_uri(uri, ctx.s3_client), uri, ctx.cfg.data.label_column)
        report = validate_data(raw, ctx.cfg.validation)
        key = ctx.put_json(L.VALIDATION, report.to_dict())
        if not report.success:
            raise DataError(report.summary())
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
    }


def step_baseline(ctx: RunContext, model_uri: str | None = None) -> dict[str, Any]:
    """Train the baseline (or load and evaluate the user's pre-trained model) and save it without optimizer."""
    from tasks.baseline import evaluate_pretrained, train_baseline
    from tasks.data import splits_from_npz
    from tasks.modelio import model_from_bytes, model_to_h5

    uri = model_uri or ctx.cfg.model.pretrained
    with _timed(ctx, "baseline"):
        splits = splits_from_npz(ctx.get(L.SPLITS))
        if uri:
            result = evaluate_pretrained(model_from_bytes(read_uri(uri, ctx.s3_client), uri), splits)
        else:
            result = train_baseline(splits, ctx.cfg.model)
        ctx.put(L.BASELINE_MODEL, model_to_h5(result.model, include_optimizer=False))
        record = {
            "accuracy": result.accuracy,
            "builder": result.builder,
            "pretrained": uri,
            "history": result.history,
            "params": int(result.model.count_params()),
        }
        ctx.put_json(L.BASELINE_REC, record)
    return {"model": ctx.layout.staging(L.BASELINE_MODEL), "accuracy": result.accuracy}


def step_prune(ctx: RunContext) -> dict[str, Any]:
    """Fine-tune a pruned clone; keep the unstripped model as users would save it (with optimizer)."""
    from tasks.data import splits_from_npz
    from tasks.modelio import model_from_bytes, model_to_h5
    from tasks.prune import prune_finetune

    with _timed(ctx, "prune"), tempfile.TemporaryDirectory() as logdir:
        splits = splits_from_npz(ctx.get(L.SPLITS))
        baseline = model_from_bytes(ctx.get(L.BASELINE_MODEL))
        result = prune_finetune(baseline, splits, ctx.cfg.prune, log_dir=logdir)
        ctx.put(L.PRUNED_MODEL, model_to_h5(result.model, include_optimizer=True))
        for path in sorted(Path(logdir).rglob("*")):
            if path.is_file():
                ctx.put(f"{L.TENSORBOARD}/{path.relative_to(logdir).as_posix()}", path.read_bytes())
        s = result.schedule
        ctx.put_json(
            L.PRUNE_REC,
            {
                "accuracy": result.accuracy,
                "pruned_layers": result.pruned_layers,
                "schedule": s.__dict__,
                "mask_update_steps": s.mask_updates(),
                "sparsity_by_step": [[step, round(s.sparsity_at(step), 6)] for step in range(s.total_steps)],
                "history": result.history,
            },
        )
    return {"model": ctx.layout.staging(L.PRUNED_MODEL), "accuracy": result.accuracy, "end_step": s.end_step}


def step_strip(ctx: RunContext) -> dict[str, Any]:
    """Strip wrappers, save the deployable Keras file, and record per-layer sparsity."""
    from tasks.modelio import model_from_bytes, model_to_h5
    from tasks.strip import strip_and_verify

    with _timed(ctx, "strip"):
        pruned = model_from_bytes(ctx.get(L.PRUNED_MODEL), pruned=True)
        layers = ctx.get_json(L.PRUNE_REC)["pruned_layers"]
        result = strip_and_verify(pruned, layers, ctx.cfg.prune.final_sparsity, ctx.cfg.prune.sparsity_tolerance)
        ctx.put(L.STRIPPED_MODEL, model_to_h5(result.model, include_optimizer=False))
        ctx.put_json(L.SPARSITY, result.to_dict())
    return {"model": ctx.layout.staging(L.STRIPPED_MODEL), "sparsity_ok": result.passed}


def step_convert(ctx: RunContext) -> dict[str, Any]:
    from tasks.convert import convert
    from tasks.data import splits_from_npz
    from tasks.modelio import model_from_bytes

    with _timed(ctx, "convert"):
        splits = splits_from_npz(ctx.get(L.SPLITS))
        stripped = model_from_bytes(ctx.get(L.STRIPPED_MODEL))
        variants = convert(stripped, splits.x_train, ctx.cfg.convert)
        keys = {v: ctx.put(L.tflite_model(v), data) for v, data in variants.items()}
    return {"models": keys}


def step_evaluate(ctx: RunContext) -> dict[str, Any]:
    """Sizes and accuracy of every artifact (metrics.json) and TFLite latency (latency.json)."""
    from tasks.baseline import keras_accuracy
    from tasks.data import splits_from_npz
    from tasks.evaluate import measure, tflite_accuracy, tflite_latency_ms
    from tasks.modelio import model_from_bytes

    with _timed(ctx, "evaluate"):
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
        metrics = {"deployable": f"tflite_{ctx.cfg.convert.deployable}", "artifacts": [r.to_dict() for r in rows]}
        ctx.put_json(L.METRICS, metrics)
        ctx.put_json(L.LATENCY, {"unit": "ms", "batch": 1, "median_of": runs, "latency": latency})
    return {"metrics": ctx.layout.staging(L.METRICS), "deployable": metrics["deployable"]}


def step_gate(ctx: RunContext) -> dict[str, Any]:
    """Evaluate every gate (incl. sparsity and, when a champion exists, the regression gates)."""
    from tasks.evaluate import ArtifactMetrics
    from tasks.gates import evaluate_gates, failed_summary
    from tasks.publish import champion_ref, read_champion
    from tasks.strip import LayerSparsity, StripResult

    with _timed(ctx, "gate"):
        metrics = ctx.get_json(L.METRICS)
        arts = {a["name"]: ArtifactMetrics(**a) for a in metrics["artifacts"]}
        sp = ctx.get_json(L.SPARSITY)
        strip = StripResult(None, [LayerSparsity(**r) for r in sp["layers"]], sp["target"], sp["tolerance"])
        champion = read_champion(ctx.store)
        ref = champion_ref(ctx.store, champion) if champion else None
        results = evaluate_gates(arts["baseline"], arts[metrics["deployable"]], ctx.cfg.gates, strip, ref)
        passed = all(r.passed for r in results)
        record = {
            "passed": passed,
            "summary": failed_summary(results),
            "champion": {"run_id": champion.run_id, "etag": champion.etag} if champion else None,
            "gates": [r.to_dict() for r in results],
        }
        ctx.put_json(L.GATES, record)
    return {"passed": passed, "summary": record["summary"], "gates": ctx.layout.staging(L.GATES)}


def _staged_files(ctx: RunContext) -> dict[str, bytes]:
    prefix = ctx.layout.staging_prefix + "/"
    files = {}
    for key in ctx.work.list(prefix):
        name = key[len(prefix) :]
        if any(name == only or name.startswith(only + "/") for only in L.STAGING_ONLY):
            continue
        files[name] = ctx.work.get(key)
    return files


def _timings(ctx: RunContext) -> dict[str, float]:
    prefix = ctx.layout.staging(L.TIMINGS_DIR) + "/"
    out = {}
    for key in ctx.work.list(prefix):
        rec = json.loads(ctx.work.get(key))
        out[rec["step"]] = rec["seconds"]
    return out


def step_publish(ctx: RunContext, *, promote: bool = True, keep_staging: bool = False) -> dict[str, Any]:
    """Publish to runs/<id>/ and promote when every gate passed; otherwise record rejected/<id>/.

    Raises GateFailure after recording a rejection, so callers cannot mistake it for success.
    """
    from tasks.publish import publish_files, read_champion, set_champion
    from tasks.report import build_run_report, records_from_files

    t0 = time.perf_counter()
    gates = ctx.get_json(L.GATES)
    metrics = ctx.get_json(L.METRICS)
    validation = ctx.get_json(L.VALIDATION)
    dep = next(a for a in metrics["artifacts"] if a["name"] == metrics["deployable"])
    files = _staged_files(ctx)
    passed = bool(gates["passed"])
    timings = _timings(ctx)
    manifest_args: dict[str, Any] = {
        "run_id": ctx.layout.run_id,
        "config": ctx.cfg.model_dump(mode="json"),
        "dataset": {"name": validation["dataset"], "sha256": validation["dataset_sha256"], "rows": validation["rows"]},
        "gates_passed": passed,
        "deployable": {"name": dep["name"], "accuracy": dep["accuracy"], "gzip_bytes": dep["gzip_bytes"],
                       "raw_bytes": dep["raw_bytes"], "file": dep["file"]},
        "champion_compared": gates["champion"]["run_id"] if gates.get("champion") else None,
        "commit": git_commit(),
    }
    records = records_from_files(
        files, run_id=ctx.layout.run_id, status="passed" if passed else "rejected",
        dataset=manifest_args["dataset"], versions=versions(), git_commit=manifest_args["commit"],
        timings=timings, champion_compared=manifest_args["champion_compared"],
    )
    files[L.REPORT] = build_run_report(records).encode()
    ctx.put(L.REPORT, files[L.REPORT])
    if not passed:
        files[L.FAILURE] = failure_record(ctx.layout.run_id, "gate", gates["summary"], GateFailure.exit_code)
        kept = {k: v for k, v in files.items() if k in L.REJECTED_FILES}
        timings["publish"] = round(time.perf_counter() - t0, 3)
        manifest = build_manifest(status="rejected", files=kept, timings=timings, **manifest_args)
        publish_files(ctx.store, ctx.layout.rejected_prefix, kept, manifest)
        if not keep_staging:
            ctx.work.delete_prefix(ctx.layout.staging_prefix)
        raise GateFailure(gates["summary"])
    timings["publish"] = round(time.perf_counter() - t0, 3)
    manifest = build_manifest(status="passed", files=files, timings=timings, **manifest_args)
    publish_files(ctx.store, ctx.layout.run_prefix, files, manifest)
    champion = None
    if promote:
        expected = gates["champion"]["etag"] if gates.get("champion") else None
        current = read_champion(ctx.store)
        if current is not None and current.run_id == ctx.layout.run_id:
            champion = current.pointer  # a retried publish of the champion itself: nothing to do
        else:
            try:
                champion = set_champion(ctx.store, ctx.layout.run_id, action="promote", by=ctx.layout.run_id,
                                        expected_etag=expected)
            except PreconditionFailed as exc:
                raise PreconditionFailed(
                    f"published as {ctx.layout.run_prefix} but not promoted: {exc}; compare it with the new "
                    f"champion and run `shears promote {ctx.store.uri} {ctx.layout.run_id}`"
                ) from None
    if not keep_staging:
        ctx.work.delete_prefix(ctx.layout.staging_prefix)
    return {
        "run": ctx.layout.run_prefix,
        "manifest": ctx.layout.run(L.MANIFEST),
        "report": ctx.layout.run(L.REPORT),
        "champion": champion["run_id"] if champion else None,
        "store": ctx.store.uri,
    }


def record_failure(store: Store, layout: L.RunLayout, stage: str, message: str, exit_code: int,
                   extra: dict[str, bytes] | None = None) -> str:
    """Write rejected/<id>/failure.json (and any extra records) so audits can see why a run stopped."""
    if store.exists(layout.rejected(L.MANIFEST)):
        # the gate step already recorded this rejection completely (gates.json says why); keep it intact
        return layout.rejected(L.MANIFEST)
    # otherwise replace any earlier attempt's partial records wholesale
    store.delete_prefix(layout.rejected_prefix)
    for name, data in (extra or {}).items():
        store.put(layout.rejected(name), data)
    key = layout.rejected(L.FAILURE)
    store.put(key, failure_record(layout.run_id, stage, message, exit_code))
    return key


def failure_record(run_id: str, stage: str, message: str, exit_code: int) -> bytes:
    """failure.json: which stage stopped the run, why, and the CLI exit code it maps to."""
    import datetime as dt

    return dumps({
        "run_id": run_id,
        "stage": stage,
        "exit_code": exit_code,
        "reason": message,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })
