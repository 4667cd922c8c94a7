"""Score the champion on this run's test split, next to the challenger: the data both gates then compare.

The champion's deployable file is read from the store and checked against the sha256 its manifest lists
before it runs (a changed file is refused and said so), then both .tflite files go through the same LiteRT
code path on the same rows. A champion that cannot take this data (another input shape, other classes) is
recorded as not comparable, with the reason (so is one whose class ids mean other class names: its
published labels.txt differs from this run's); the gates decide what that means (config).
"""

from __future__ import annotations

import numpy as np

from shears.records import ChampionComparisonRecord, ManifestRecord, ValidationRecord
from shears.release.champion import Champion
from shears.store import Store, sha256_hex
from shears.store import layout as L


def _verified(store: Store, key: str, manifest: ManifestRecord, name: str) -> bytes | None:
    """A champion file's bytes when they match the sha256 its manifest lists, else None."""
    entry = manifest.files.get(name)
    data = store.get(key)
    return data if entry is not None and sha256_hex(data) == entry.sha256 else None


def compare_with_champion(store: Store, champion: Champion, manifest: ManifestRecord, ours: bytes,
                          validation: ValidationRecord, x_test: np.ndarray, y_test: np.ndarray,
                          num_classes: int, rule: str) -> ChampionComparisonRecord:
    from ai_edge_litert.interpreter import Interpreter

    from shears.stages.data import fit_channels
    from shears.stages.measure import gzip_size, tflite_predict
    from shears.stages.paired import paired_comparison

    dep = manifest.deployable
    base = {"run_id": champion.run_id, "rule": rule, "champion_recorded_accuracy": dep.accuracy if dep else None,
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
    interp = Interpreter(model_content=data)
    shape = tuple(int(d) for d in interp.get_input_details()[0]["shape_signature"][1:])
    outputs = int(interp.get_output_details()[0]["shape"][-1])
    fitted = fit_channels(x_test, shape)
    if fitted is None:
        return not_comparable(f"it takes inputs of shape {shape}, this data has {tuple(x_test.shape[1:])}")
    if outputs != num_classes:
        return not_comparable(f"it has {outputs} outputs, this data has {num_classes} classes")
    stats = paired_comparison(tflite_predict(ours, x_test) == y_test, tflite_predict(data, fitted[0]) == y_test)
    return ChampionComparisonRecord(
        comparable=True, reason=f"both scored on this run's {stats.n} test rows", n=stats.n,
        challenger_accuracy=stats.challenger_accuracy, champion_accuracy=stats.champion_accuracy,
        difference_pp=stats.difference_pp, ci_low_pp=stats.ci_low_pp, ci_high_pp=stats.ci_high_pp,
        challenger_only=stats.challenger_only, champion_only=stats.champion_only, both_right=stats.both_right,
        both_wrong=stats.both_wrong, mcnemar_p=stats.mcnemar_p, champion_gzip_bytes=gzip_size(data), **base,
    )
