"""The evaluate step: the only one that reads the test split, for the final figures of every artifact, once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shears.records import ArtifactRecord, LatencyRecord, MetricsRecord, MicroRecord, PruneRecord, TrimRecord
from shears.run.steps.common import splits, timed
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.run.context import RunContext

VARIANT_ORDER = ("float32", "dynamic_range", "int8", "float16")
# where each artifact runs (metrics.json's `runtime`): the artifact table, the manifest and the card group by it
KERAS, KERAS3, LITERT, MICRO, TF_SERVING = "Keras (tf_keras)", "Keras 3", "LiteRT", "TFLite Micro", "TF Serving"
MAX_OUTPUT_ROWS = 2000  # test rows whose deployable outputs metrics.json keeps for the report's plots


def step_evaluate(ctx: RunContext) -> dict[str, Any]:
    """Sizes and test accuracy of every artifact (metrics.json), structure bytes of every .tflite, and TFLite
    latency (latency.json). The only step that reads the test split: the final figures, once."""
    from shears.keras.modelio import model_from_bytes
    from shears.keras.training import keras_metrics
    from shears.stages.inspect import structure_gzip_bytes
    from shears.stages.measure import measure, tar_bytes, tflite_latency_ms, tflite_outputs

    with timed(ctx, "evaluate", machine=True):
        data_splits = splits(ctx, test=True)
        task = data_splits.task
        x_test, y_test = data_splits.test()
        prune = ctx.get_record(PruneRecord)
        deployable = prune.recipe.variant if prune.recipe else ctx.cfg.convert.deployable
        rows = []
        pruned_file = next(f for f in L.PRUNED_MODELS if ctx.has(f))  # .keras when HDF5 cannot hold the masks
        for name, file, note, pruned in (
            ("baseline", L.BASELINE_MODEL, ".h5 without optimizer", False),
            ("pruned_unstripped", pruned_file,
             f".{pruned_file.rsplit('.', 1)[1]} as saved by fit: pruning wrappers, masks and optimizer", True),
            ("stripped", L.STRIPPED_MODEL, ".h5 without wrappers or optimizer", False),
        ):
            data = ctx.get(file)
            scores = keras_metrics(model_from_bytes(data, file, pruned=pruned), x_test, y_test, task)
            rows.append(measure(name, file, "keras", data, scores, task.primary, note, runtime=KERAS))
        if ctx.has(L.STRIPPED_KERAS3):  # given back in the user's format: it must load in Keras 3 and score the same
            from shears.keras.keras3 import keras3_from_bytes

            data = ctx.get(L.STRIPPED_KERAS3)
            scores = keras_metrics(keras3_from_bytes(data, L.STRIPPED_KERAS3), x_test, y_test, task)
            rows.append(measure("stripped_keras3", L.STRIPPED_KERAS3, "keras", data, scores, task.primary,
                                "Keras 3 .keras of the stripped model (your format, no optimizer)", runtime=KERAS3))
        saved = {name[len(L.SAVED_MODEL_DIR) + 1:]: ctx.get(name) for name in ctx.list(L.SAVED_MODEL_DIR + "/")}
        if saved:  # TF Serving's view: the serving_default signature of the loaded SavedModel
            from shears.keras.savedmodel import load_saved_model, serve

            scores = task.metrics(serve(load_saved_model(saved), x_test), y_test)
            rows.append(measure("saved_model", L.SAVED_MODEL_DIR + "/", "savedmodel", tar_bytes(saved), scores,
                                task.primary, "SavedModel of the stripped model for TF Serving (serving_default: "
                                              "input -> output); bytes: the directory as one tar",
                                runtime=TF_SERVING))
        latency = {}
        pairs: list[tuple[float, float]] | None = None
        runs = ctx.cfg.convert.latency_runs
        # the configured variants select built (an int8 the model cannot take is not: baseline.json says why)
        variants = [deployable, *(v for v in ctx.cfg.convert.variants
                                  if v != deployable and ctx.has(L.tflite_model(v)))]
        for variant in sorted(variants, key=VARIANT_ORDER.index):
            file = L.tflite_model(variant)
            data = ctx.get(file)
            note = "deployable" if variant == deployable else "from the stripped model, for comparison"
            if variant == deployable and prune.recipe is not None:
                note = f"deployable: {prune.recipe.describe()}"
            outputs = tflite_outputs(data, x_test)
            scores = task.metrics(outputs, y_test)
            row = measure(f"tflite_{variant}", file, "tflite", data, scores, task.primary, note, runtime=LITERT)
            if variant == deployable:
                deployed_outputs = outputs
            if variant == deployable and (task.kind == "binary" or (task.units == 1 and not task.classification)):
                shown = task.positive_probability(outputs) if task.classification else task.predict(outputs)
                pairs = [(round(float(a), 6), round(float(b), 6))
                         for a, b in zip(y_test[:MAX_OUTPUT_ROWS], shown[:MAX_OUTPUT_ROWS], strict=True)]
            rows.append(row.model_copy(update={"structure_gzip_bytes": structure_gzip_bytes(data)}))
            latency[f"tflite_{variant}"] = round(tflite_latency_ms(data, x_test[0], runs), 4)
        micro = None
        micro_out = None
        convert = ctx.cfg.convert
        if convert.micro if convert.micro is not None else deployable == "int8":
            dep = next(r for r in rows if r.name == f"tflite_{deployable}")
            micro, micro_out = _on_micro(ctx.get(dep.file), dep, deployed_outputs, x_test, y_test, task,
                                         convert.micro_max_arena_bytes)
            if micro.runs:
                rows.append(dep.model_copy(update={
                    "name": f"tflm_{deployable}", "runtime": MICRO, "metrics": micro.metrics,
                    "accuracy": micro.metrics.get("accuracy"), "arena_bytes": micro.arena_bytes,
                    "note": f"the deployable on TFLite Micro: tensor arena {micro.arena_bytes:,} B (the smallest that "
                            "allocates)"}))
        trim = None
        if ctx.has(L.UNTRIMMED_DEPLOYABLE):
            trim = _trim_record(ctx.get(L.UNTRIMMED_DEPLOYABLE), ctx.get(L.tflite_model(deployable)), deployed_outputs,
                                micro_out, x_test, convert.micro_max_arena_bytes)
        no_skill = task.no_skill(data_splits.y_train, y_test)
        metrics = MetricsRecord(deployable=f"tflite_{deployable}", artifacts=rows, task=task.kind, no_skill=no_skill,
                                deployable_outputs=pairs, micro=micro, trim=trim,
                                test_majority_rate=no_skill.get("accuracy") if task.classification else None)
        ctx.put_record(metrics)
        ctx.put_record(LatencyRecord(unit="ms", batch=1, median_of=runs, latency=latency))
    return {"metrics": ctx.layout.staging(L.METRICS), "deployable": metrics.deployable}


def _trim_record(untrimmed: bytes, trimmed: bytes, trimmed_outputs: Any, micro_out: Any, x_test: Any,
                 max_arena: int) -> TrimRecord:
    """The deployable before and after trim, and whether every test output is identical in both runtimes
    (TFLite Micro: when it runs the deployable; the untrimmed file at the largest arena, which changes no
    output)."""
    import numpy as np

    from shears.stages.inspect import structure_gzip_bytes
    from shears.stages.measure import gzip_size, tflite_outputs
    from shears.stages.micro import micro_outputs

    litert = np.array_equal(tflite_outputs(untrimmed, x_test), trimmed_outputs)
    micro_same = None
    if micro_out is not None:
        before = micro_outputs(untrimmed, x_test, max_arena)
        micro_same = before is not None and np.array_equal(before, micro_out)
    return TrimRecord(raw_before=len(untrimmed), raw_after=len(trimmed), gzip_before=gzip_size(untrimmed),
                      gzip_after=gzip_size(trimmed), structure_before=structure_gzip_bytes(untrimmed),
                      structure_after=structure_gzip_bytes(trimmed), rows=len(x_test), litert_identical=litert,
                      micro_identical=micro_same)


def _on_micro(model: bytes, row: ArtifactRecord, litert_outputs: Any, x_test: Any, y_test: Any, task: Any,
              max_arena: int) -> tuple[MicroRecord, Any]:
    """The deployable on TFLite Micro (shears.stages.micro): ops, smallest arena, metrics against LiteRT's; and
    its outputs on the test rows."""
    import numpy as np

    from shears.stages.micro import MIN_ARENA, package_version, run_on_micro

    run = run_on_micro(model, x_test, max_arena=max_arena)
    base = MicroRecord(file=row.file, package=package_version(), runs=run.runs, reason=run.reason, ops=run.ops,
                       missing_ops=run.missing_ops, arena_bytes=run.arena_bytes, arena_searched=(MIN_ARENA, max_arena),
                       probes=run.probes, rows=len(x_test), primary=task.primary, litert_metrics=dict(row.metrics))
    if not run.runs or run.outputs is None:
        return base, None
    ours = np.asarray(litert_outputs, dtype=np.float32).reshape(len(x_test), -1)
    theirs = np.asarray(run.outputs, dtype=np.float32).reshape(len(x_test), -1)
    scores = {k: round(v, 6) for k, v in task.metrics(theirs, y_test).items()}
    a, b = scores.get(task.primary), row.metrics.get(task.primary)
    # "within the test split's rounding": one row's worth of accuracy, or 0.1 % of a continuous metric
    tolerance = 1 / max(len(x_test), 1) if task.primary == "accuracy" else 1e-3 * max(1.0, abs(b or 0.0))
    return base.model_copy(update={
        "metrics": scores,
        "max_output_difference": round(float(np.max(np.abs(ours - theirs))), 6) if ours.size else 0.0,
        "agrees": a is not None and b is not None and abs(a - b) <= tolerance + 1e-12}), run.outputs
