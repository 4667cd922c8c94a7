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
    """Per-layer sparsity of every weight tfmot prunes (and distinct values of clustered layers) vs the targets.

    A layer with several prunable weights (an RNN's kernel and recurrent kernel) passes when each of them
    reaches the target: tfmot prunes each weight to it.
    """
    from shears.keras.prunable import prunable_weights  # here, so the result types stay importable without TF

    clusters = clusters or {}
    rows = []
    for name, lw in prunable_weights(model).items():
        arrays = lw.arrays(model)
        n = sum(int(w.size) for w in arrays)
        zeros = sum(int(np.count_nonzero(w == 0)) for w in arrays)
        parts = {part: round(float(np.mean(w == 0)), 6) if w.size else 0.0
                 for part, w in zip(lw.names, arrays, strict=True)}
        target = targets.get(name)
        k = clusters.get(name)
        distinct = max(int(np.unique(w).size) for w in arrays) if k else None
        reached = target is None or all(v >= target - tolerance - 1e-9 for v in parts.values())
        passed = reached and (k is None or (distinct or 0) <= k)
        rows.append(LayerSparsityRecord(layer=name, weights=n, zeros=zeros, sparsity=round(zeros / n if n else 0.0, 6),
                                        target=target, passed=passed, clusters=k, distinct=distinct,
                                        parts=parts if len(parts) > 1 else {}))
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
