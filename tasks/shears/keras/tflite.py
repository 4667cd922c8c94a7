"""Reading and rewriting .tflite flatbuffers (TensorFlow's own flatbuffer_utils): what a file holds, and fewer bytes.

At a few kilobytes, half of a gzipped .tflite is flatbuffer structure, not weights, and tensor names such as
`tutorial_cnn/quant_logits/MatMul;tutorial_cnn/quant_logits/LastValueQuant/FakeQuantWithMinMaxVars` are a
large part of it. `compact` renames tensors to short names and keeps everything the runtime and callers use
(operators, buffers, quantization, signatures); callers verify the outputs stay identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shears.keras.tfcompat import tf


def _fu() -> Any:
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils


@dataclass(frozen=True)
class WeightTensor:
    """A constant tensor of a .tflite: its stored values (int8 for quantized weights) and quantization axis."""

    name: str
    shape: tuple[int, ...]
    values: np.ndarray
    per_channel_axis: int | None  # the quantized dimension when scales are per channel, else None


_NUMPY = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8, 7: np.int16}


def weight_tensors(model: bytes) -> list[WeightTensor]:
    """Every constant tensor with data (weights, biases, shapes) of the first subgraph."""
    fu = _fu()
    m = fu.convert_bytearray_to_object(bytearray(model))
    sub = m.subgraphs[0]
    out = []
    for t in sub.tensors:
        buf = m.buffers[t.buffer]
        if buf.data is None or len(buf.data) == 0 or t.type not in _NUMPY:
            continue
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        values = np.frombuffer(bytes(bytearray(buf.data)), dtype=_NUMPY[t.type])
        if shape and int(np.prod(shape)) == values.size:
            values = values.reshape(shape)
        q = t.quantization
        axis = None
        if q is not None and q.scale is not None and len(q.scale) > 1:
            axis = int(q.quantizedDimension)
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")
        out.append(WeightTensor(name, shape, values, axis))
    return out


def compact(model: bytes) -> bytes:
    """The same model with tensor names shortened to t<index> (signature names, ops and weights untouched)."""
    fu = _fu()
    m = fu.convert_bytearray_to_object(bytearray(model))
    for s, sub in enumerate(m.subgraphs):
        for i, t in enumerate(sub.tensors):
            t.name = f"t{i}" if s == 0 else f"s{s}t{i}"
    return bytes(fu.convert_object_to_bytearray(m))


def zero_weights(model: bytes) -> bytes:
    """The file with every buffer's bytes zeroed: gzip of it measures the structure alone."""
    fu = _fu()
    m = fu.convert_bytearray_to_object(bytearray(model))
    for buf in m.buffers:
        if buf.data is not None and len(buf.data) > 0:
            buf.data = np.zeros(len(buf.data), dtype=np.uint8)
    return bytes(fu.convert_object_to_bytearray(m))


def converter(model: object, input_shape: tuple[int, ...], fixed_batch: bool) -> tf.lite.TFLiteConverter:
    """A converter from the Keras model, or from a concrete function with a fixed batch of one."""
    if not fixed_batch:
        return tf.lite.TFLiteConverter.from_keras_model(model)
    fn = tf.function(lambda x: model(x, training=False))  # type: ignore[operator]
    concrete = fn.get_concrete_function(tf.TensorSpec([1, *input_shape], tf.float32, name="input"))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
