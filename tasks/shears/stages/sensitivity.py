"""Per-layer sensitivity: how much validation accuracy a layer costs when it alone is pruned to each sparsity.

Magnitude pruning without fine-tuning (the smallest |w| of the layer's kernel set to zero), so a point costs
one evaluation, not a training run. The absolute drops overstate what a fine-tuned model loses, but they rank
layers well: on the TF tutorial's CNN the 108-weight convolution collapses long before the dense layer that
holds 99 % of the weights. The search allocates per-layer sparsity from this table under one threshold.
"""

from __future__ import annotations

import numpy as np

from shears.keras.prunable import prunable_weights
from shears.keras.tfcompat import keras
from shears.keras.training import keras_score
from shears.records import LayerSensitivityRecord, SensitivityPoint, SensitivityRecord
from shears.stages.data import Splits
from shears.stages.prune import clone_with_weights
from shears.task import drop


def magnitude_prune(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """A copy of `kernel` with its `sparsity` fraction of smallest-magnitude weights set to zero."""
    flat = np.abs(kernel).ravel()
    k = round(sparsity * flat.size)
    if k <= 0:
        return kernel.copy()
    threshold_index = np.argpartition(flat, k - 1)[:k]
    out = kernel.copy().ravel()
    out[threshold_index] = 0
    return out.reshape(kernel.shape)


def layer_sensitivity(model: keras.Model, data: Splits, layer: str, ladder: list[float],
                      baseline_score: float | None = None) -> LayerSensitivityRecord:
    """One layer at each sparsity of the ladder, on the validation split (a private clone: `model` is untouched).

    Every weight tfmot would prune in the layer is cut to the sparsity (an LSTM's kernel and recurrent kernel
    alike), as the pruning fine-tune will."""
    clone = clone_with_weights(model)
    prunable = prunable_weights(clone).get(layer)
    if prunable is None:
        raise ValueError(f"layer {layer!r} has no weight tfmot prunes")
    target = clone.get_layer(layer)
    weights = target.get_weights()
    task = data.task
    base = baseline_score if baseline_score is not None else keras_score(clone, data.x_val, data.y_val, task)
    points = []
    for s in ladder:
        trial = list(weights)
        for i in prunable.indices:
            trial[i] = magnitude_prune(weights[i], s)
        target.set_weights(trial)
        score = keras_score(clone, data.x_val, data.y_val, task)
        worse = round(drop(task.primary, base, score), 4)
        points.append(SensitivityPoint(sparsity=s, score=round(score, 6), drop=worse))
    target.set_weights(weights)
    return LayerSensitivityRecord(layer=layer, weights=prunable.size, points=points)


def assemble(parts: list[LayerSensitivityRecord], ladder: list[float], baseline_score: float,
             metric: str = "accuracy") -> SensitivityRecord:
    from shears.task import metric_info

    return SensitivityRecord(baseline_score=baseline_score, metric=metric, unit=metric_info(metric).unit,
                             ladder=list(ladder), layers=list(parts))
