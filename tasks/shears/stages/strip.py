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


def layer_sparsity(model: Any) -> dict[str, tuple[int, int]]:
    """(weights, zeros) of each layer's kernel — the tensor tfmot prunes."""
    out = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        w = np.asarray(kernel.numpy())
        out[layer.name] = (int(w.size), int(np.count_nonzero(w == 0)))
    return out


def strip_and_verify(pruned: Any, pruned_layers: list[str], target: float, tolerance: float) -> StripResult:
    """Strip wrappers (a new model; `pruned` is untouched) and measure per-layer kernel sparsity."""
    from shears.keras.tfcompat import tfmot  # here, so the result types stay importable without TensorFlow

    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    rows = []
    for name, (n, zeros) in layer_sparsity(stripped).items():
        sparsity = zeros / n if n else 0.0
        is_target = name in pruned_layers
        passed = (sparsity >= target - tolerance - 1e-9) if is_target else True
        rows.append(LayerSparsityRecord(layer=name, weights=n, zeros=zeros, sparsity=round(sparsity, 6),
                                        target=target if is_target else None, passed=passed))
    missing = [n for n in pruned_layers if n not in {r.layer for r in rows}]
    for name in missing:  # a pruned layer that vanished is a failure, not a pass
        rows.append(LayerSparsityRecord(layer=name, weights=0, zeros=0, sparsity=0.0, target=target, passed=False))
    record = SparsityRecord(target=target, tolerance=tolerance, passed=all(r.passed for r in rows), layers=rows)
    return StripResult(stripped, record)
