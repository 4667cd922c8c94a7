"""What a .tflite file really holds: per-layer zeros and distinct values, and how many gzipped bytes are structure.

A recipe's techniques are verified in the deployable file itself, not in the Keras model it came from: a
sparsity or clustering that the converter or quantization lost fails the trial.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shears.keras.tflite import WeightTensor, weight_tensors, zero_weights
from shears.records import Recipe, TensorCheckRecord
from shears.stages.measure import gzip_size


def structure_gzip_bytes(model: bytes) -> int:
    """gzip size of the file with every weight zeroed: what the flatbuffer's structure costs."""
    return gzip_size(zero_weights(model))


def _distinct(t: WeightTensor) -> int:
    if t.per_channel_axis is None or t.values.ndim == 0:
        return int(np.unique(t.values).size)
    moved = np.moveaxis(t.values, t.per_channel_axis, 0).reshape(t.values.shape[t.per_channel_axis], -1)
    return max(int(np.unique(row).size) for row in moved)


def check_tflite(model: bytes, keras_model: Any, recipe: Recipe, tolerance: float) -> list[TensorCheckRecord]:
    """One check per pruned or clustered layer: its kernel's zeros and distinct values in the .tflite.

    Layers are matched to tensors by kernel size and dimensions (TFLite stores Dense kernels transposed and
    convolutions output-channel first), in layer order; a layer without a matching tensor fails.
    """
    tensors = weight_tensors(model)
    used: set[int] = set()
    out = []
    for layer in keras_model.layers:
        kernel = getattr(layer, "kernel", None)
        name = layer.name
        if kernel is None or (name not in recipe.sparsity and name not in recipe.clusters):
            continue
        shape = tuple(int(d) for d in kernel.shape)
        size = int(np.prod(shape))
        match = next((i for i, t in enumerate(tensors) if i not in used and t.values.size == size
                      and sorted(t.shape) == sorted(shape)), None)
        target = recipe.sparsity.get(name)
        k = recipe.clusters.get(name)
        if match is None:
            out.append(TensorCheckRecord(layer=name, tensor="(not found)", weights=size, zero_fraction=0.0,
                                         expected_sparsity=target, distinct=0, expected_clusters=k, passed=False))
            continue
        used.add(match)
        t = tensors[match]
        zeros = float(np.count_nonzero(t.values == 0) / t.values.size)
        distinct = _distinct(t)
        ok = (target is None or zeros >= target - tolerance - 1e-9) and (k is None or distinct <= k)
        out.append(TensorCheckRecord(layer=name, tensor=t.name or f"#{match}", weights=size,
                                     zero_fraction=round(zeros, 6), expected_sparsity=target, distinct=distinct,
                                     expected_clusters=k, passed=ok))
    return out
