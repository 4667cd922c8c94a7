"""Score the champion on this run's test split, next to the challenger: the data both gates then compare.

The champion's deployable file is read from the store and checked against the sha256 its manifest lists
before it runs (a changed file is refused and said so), then both .tflite files go through the same LiteRT
code path on the same rows. A champion that cannot take this data (another input shape, other classes) is
recorded as not comparable, with the reason (so is one whose class ids mean other class names: its
published labels.txt differs from this run's); the gates decide what that means (config).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from shears.records import ChampionComparisonRecord, ManifestRecord, ValidationRecord
from shears.release.champion import Champion
from shears.store import Store, sha256_hex
from shears.store import layout as L
from shears.task import Task


def _verified(store: Store, key: str, manifest: ManifestRecord, name: str) -> bytes | None:
    """A champion file's bytes when they match the sha256 its manifest lists, else None."""
    entry = manifest.files.get(name)
    data = store.get(key)
    return data if entry is not None and sha256_hex(data) == entry.sha256 else None


def compare_with_champion(store: Store, champion: Champion, manifest: ManifestRecord, ours: bytes,
                          validation: ValidationRecord, x_test: np.ndarray, y_test: np.ndarray,
                          num_classes: int, rule: str, row_loss: str = "squared") -> ChampionComparisonRecord:
    """Both deployables on this run's test rows, compared by the run's task (validation.json): McNemar and
    the paired accuracy interval for classifiers (plus ΔAUC for binary), the paired bootstrap interval of the
    per-row loss difference and Wilcoxon's signed-rank p for regressors. A champion of another task kind or
    output arity is not comparable."""
    from ai_edge_litert.interpreter import Interpreter

    from shears.stages.data import fit_channels
    from shears.stages.measure import gzip_size, tflite_outputs
    from shears.stages.paired import paired_comparison
    from shears.task import task_of

    task = task_of(validation)
    dep = manifest.deployable
    base = {"run_id": champion.run_id, "rule": rule, "champion_recorded_accuracy": dep.accuracy if dep else None,
            "task": task.kind, "metric": "accuracy" if task.classification else
            ("mse" if row_loss == "squared" else "mae"),
            "champion_dataset_sha256": manifest.dataset.sha256, "challenger_gzip_bytes": gzip_size(ours),
            "same_data": manifest.dataset.sha256 == validation.dataset_sha256 if manifest.dataset.sha256 else None}

    def not_comparable(reason: str, tampered: bool = False) -> ChampionComparisonRecord:
        return ChampionComparisonRecord(comparable=False, reason=reason, tampered=tampered, **base)

    def changed(key: str) -> ChampionComparisonRecord:
        return not_comparable(f"{key} does not match the sha256 its manifest lists (changed after publication): "
                              "refused to run it", tampered=True)

    if dep is None:
        return not_comparable("its manifest names no deployable model")
    run = L.RunLayout(champion.run_id)
    key = run.run(dep.file)
    if dep.file not in manifest.files:
        return not_comparable(f"{key} is not listed in its manifest")
    data = _verified(store, key, manifest, dep.file)
    if data is None:
        return changed(key)
    theirs = None  # integer class ids, unless it published its class names
    if L.LABELS in manifest.files:
        labels = _verified(store, run.run(L.LABELS), manifest, L.LABELS)
        if labels is None:
            return changed(run.run(L.LABELS))
        theirs = labels.decode("utf-8", errors="replace").splitlines()
    ours_labels = validation.class_names
    if theirs != ours_labels:
        def show(names: list[str] | None) -> str:
            if names is None:
                return "integer class ids"
            return "[" + ", ".join(names[:6]) + (", ..." if len(names) > 6 else "") + "]"
        return not_comparable(f"it maps class ids to other labels ({show(theirs)}; this data: {show(ours_labels)}): "
                              "the same id would mean different classes")
    if L.VALIDATION in manifest.files:  # its task, as its own validate recorded it
        raw_validation = _verified(store, run.run(L.VALIDATION), manifest, L.VALIDATION)
        if raw_validation is None:
            return changed(run.run(L.VALIDATION))
        theirs_task = task_of(ValidationRecord.from_bytes(raw_validation, run.run(L.VALIDATION)))
        if (theirs_task.kind, theirs_task.units) != (task.kind, task.units):
            return not_comparable(f"it is a {theirs_task.describe()} model; this run is {task.describe()}")
    interp = Interpreter(model_content=data)
    shape = tuple(int(d) for d in interp.get_input_details()[0]["shape_signature"][1:])
    outputs = int(interp.get_output_details()[0]["shape"][-1])
    fitted = fit_channels(x_test, shape)
    if fitted is None:
        return not_comparable(f"it takes inputs of shape {shape}, this data has {tuple(x_test.shape[1:])}")
    if outputs != task.units:
        what = f"{num_classes} classes" if task.classification else f"{task.units} target(s)"
        return not_comparable(f"it has {outputs} outputs, this data has {what}")
    mine, theirs_out = tflite_outputs(ours, x_test), tflite_outputs(data, fitted[0])
    gz = gzip_size(data)
    if not task.classification:
        return _regression(task, mine, theirs_out, y_test, row_loss, gz, base)
    stats = paired_comparison(task.predict(mine) == y_test, task.predict(theirs_out) == y_test)
    auc: dict[str, float] = {}
    if task.kind == "binary":
        from shears.stages.paired import paired_auc_difference

        try:
            d, lo, hi = paired_auc_difference(y_test, task.positive_probability(mine),
                                              task.positive_probability(theirs_out))
            auc = {"auc_difference": d, "auc_ci_low": lo, "auc_ci_high": hi}
        except ValueError:
            auc = {}
    return ChampionComparisonRecord(**auc,
        comparable=True, reason=f"both scored on this run's {stats.n} test rows", n=stats.n,
        challenger_accuracy=stats.challenger_accuracy, champion_accuracy=stats.champion_accuracy,
        difference_pp=stats.difference_pp, ci_low_pp=stats.ci_low_pp, ci_high_pp=stats.ci_high_pp,
        challenger_only=stats.challenger_only, champion_only=stats.champion_only, both_right=stats.both_right,
        both_wrong=stats.both_wrong, mcnemar_p=stats.mcnemar_p, champion_gzip_bytes=gz, **base,
    )


def _regression(task: Task, mine: np.ndarray, theirs: np.ndarray, y: np.ndarray, row_loss: str, gz: int,
                base: dict[str, Any]) -> ChampionComparisonRecord:
    from shears.stages.paired import paired_loss_comparison

    kind: Literal["squared", "absolute"] = "squared" if row_loss == "squared" else "absolute"
    stats = paired_loss_comparison(task.row_loss(mine, y, kind), task.row_loss(theirs, y, kind))
    return ChampionComparisonRecord(
        comparable=True, reason=f"both scored on this run's {stats.n} test rows ({kind} error per row)", n=stats.n,
        challenger_score=stats.challenger_mean, champion_score=stats.champion_mean, difference=stats.difference,
        ci_low=stats.ci_low, ci_high=stats.ci_high, change_pct=round(stats.change_pct, 4),
        ci_low_pct=round(stats.ci_low_pct, 4), ci_high_pct=round(stats.ci_high_pct, 4),
        wilcoxon_p=stats.wilcoxon_p, champion_gzip_bytes=gz, **base)
