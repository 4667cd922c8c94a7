"""Strip the pruning wrappers and verify the sparsity that was actually achieved.

Verification is what the notebooks lack: a schedule that never fired yields a dense model and no error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shears.records import LayerSparsityRecord, SparsityRecord


@dataclass
class StripResult:
    model: Any  # the stripped keras.Model
    record: SparsityRecord

    @property
    def passed(self) -> bool:
        return self.record.passed


def verify_sparsity(model: Any, targets: dict[str, float], tolerance: float,
                    clusters: dict[str, int] | None = None) -> SparsityRecord:
    """Per-layer kernel sparsity (and distinct values of clustered layers) of a Keras model vs the targets."""
    clusters = clusters or {}
    rows = []
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        w = np.asarray(kernel.numpy())
        n, zeros = int(w.size), int(np.count_nonzero(w == 0))
        sparsity = zeros / n if n else 0.0
        target = targets.get(layer.name)
        k = clusters.get(layer.name)
        distinct = int(np.unique(w).size) if k else None
        passed = (target is None or sparsity >= target - tolerance - 1e-9) and (k is None or (distinct or 0) <= k)
        rows.append(LayerSparsityRecord(layer=layer.name, weights=n, zeros=zeros, sparsity=round(sparsity, 6),
                                        target=target, passed=passed, clusters=k, distinct=distinct))
    present = {r.layer for r in rows}
    for name, target in targets.items():
        if name not in present:  # a pruned layer that vanished is a failure, not a pass
            rows.append(LayerSparsityRecord(layer=name, weights=0, zeros=0, sparsity=0.0, target=target,
                                            passed=False))
    top = max(targets.values(), default=0.0)
    return SparsityRecord(target=top, tolerance=tolerance, passed=all(r.passed for r in rows), layers=rows)


def strip_and_verify(pruned: Any, targets: dict[str, float], tolerance: float) -> StripResult:
    """Strip wrappers (a new model; `pruned` is untouched) and measure per-layer kernel sparsity."""
    from shears.keras.tfcompat import tfmot  # here, so the result types stay importable without TensorFlow

    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    return StripResult(stripped, verify_sparsity(stripped, targets, tolerance))
