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
    if t.parts:  # a fused LSTM's gates, each quantized on its own: the most values any gate holds
        return max(int(np.unique(p).size) for p in t.parts)
    if t.per_channel_axis is None or t.values.ndim == 0:
        return int(np.unique(t.values).size)
    moved = np.moveaxis(t.values, t.per_channel_axis, 0).reshape(t.values.shape[t.per_channel_axis], -1)
    return max(int(np.unique(row).size) for row in moved)


def _dims(shape: tuple[int, ...]) -> list[int]:
    """Dimensions to match a Keras weight with its tensor by: sorted, without 1s (a Conv1D kernel (k, in, out)
    is a CONV_2D filter (out, 1, k, in) in the .tflite)."""
    return sorted(d for d in shape if d != 1)


def check_tflite(model: bytes, keras_model: Any, recipe: Recipe, tolerance: float) -> list[TensorCheckRecord]:
    """One check per weight of every pruned or clustered layer: its zeros and distinct values in the .tflite.

    Weights are matched to tensors by size and dimensions (TFLite stores Dense kernels transposed,
    convolutions output-channel first, 1-D ones as 2-D, an LSTM's kernels as four gate matrices of a fused op,
    a GRU's inside its WHILE loop's body), in layer order; a weight without a matching tensor fails.
    """
    from shears.keras.prunable import prunable_weights

    tensors = weight_tensors(model)
    used: set[int] = set()
    out = []
    for name, lw in prunable_weights(keras_model).items():
        if name not in recipe.sparsity and name not in recipe.clusters:
            continue
        target = recipe.sparsity.get(name)
        k = recipe.clusters.get(name)
        several = len(lw.names) > 1
        for part, shape in zip(lw.names, lw.shapes, strict=True):
            size = int(np.prod(shape))
            free = [i for i, t in enumerate(tensors) if i not in used and t.values.size == size]
            match = next((i for i in free if sorted(tensors[i].shape) == sorted(shape)), None)
            if match is None:  # a 1-D convolution's kernel, stored with an extra axis of 1 (never a bias)
                match = next((i for i in free if len(tensors[i].shape) > len(shape)
                              and _dims(tensors[i].shape) == _dims(shape)), None)
            weight = part if several else None
            if match is None:
                out.append(TensorCheckRecord(layer=name, weight=weight, tensor="(not found)", weights=size,
                                             zero_fraction=0.0, expected_sparsity=target, distinct=0,
                                             expected_clusters=k, passed=False))
                continue
            used.add(match)
            t = tensors[match]
            zeros = float(np.count_nonzero(t.values == 0) / t.values.size)
            distinct = _distinct(t)
            ok = (target is None or zeros >= target - tolerance - 1e-9) and (k is None or distinct <= k)
            out.append(TensorCheckRecord(layer=name, weight=weight, tensor=t.name or f"#{match}", weights=size,
                                         zero_fraction=round(zeros, 6), expected_sparsity=target, distinct=distinct,
                                         expected_clusters=k, passed=ok))
    return out
