"""Stage 5: strip the pruning wrappers and verify the sparsity that was actually achieved.

Verification is what the notebooks lack: a schedule that never fired yields a dense model and no error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LayerSparsity:
    layer: str
    weights: int
    zeros: int
    sparsity: float
    target: float | None  # None: layer was not pruned
    passed: bool


@dataclass
class StripResult:
    model: Any  # the stripped keras.Model; None when rebuilt from sparsity.json
    layers: list[LayerSparsity]
    target: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "layers": [asdict(r) for r in self.layers],
        }


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
    from tasks.tfcompat import tfmot  # here, so the result types stay importable without TensorFlow

    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    rows = []
    for name, (n, zeros) in layer_sparsity(stripped).items():
        sparsity = zeros / n if n else 0.0
        is_target = name in pruned_layers
        passed = (sparsity >= target - tolerance - 1e-9) if is_target else True
        rows.append(LayerSparsity(name, n, zeros, round(sparsity, 6), target if is_target else None, passed))
    missing = [n for n in pruned_layers if n not in {r.layer for r in rows}]
    for name in missing:  # a pruned layer that vanished is a failure, not a pass
        rows.append(LayerSparsity(name, 0, 0, 0.0, target, False))
    return StripResult(stripped, rows, target, tolerance)
