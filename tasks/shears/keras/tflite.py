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
    """A constant tensor of a .tflite: its stored values (int8 for quantized weights) and quantization axis.

    A fused LSTM keeps a Keras kernel as four gate matrices (input, forget, cell, output), each with its own
    scale: they come back as one tensor (`values` stacked, as the Keras kernel transposed) with the gates in
    `parts`.
    """

    name: str
    shape: tuple[int, ...]
    values: np.ndarray
    per_channel_axis: int | None  # the quantized dimension when scales are per channel, else None
    parts: tuple[np.ndarray, ...] = ()


_NUMPY = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8, 7: np.int16}
# UNIDIRECTIONAL_SEQUENCE_LSTM's inputs: 1-4 the input-to-gate weights, 5-8 the recurrent-to-gate weights
LSTM_GATE_GROUPS = ((1, 5), (5, 9))


def _builtin(m: Any, op: Any) -> int:
    code = m.operatorCodes[op.opcodeIndex]
    return int(max(code.builtinCode, code.deprecatedBuiltinCode))


def _tensor(m: Any, t: Any) -> WeightTensor | None:
    buf = m.buffers[t.buffer]
    if buf.data is None or len(buf.data) == 0 or t.type not in _NUMPY:
        return None
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    values = np.frombuffer(bytes(bytearray(buf.data)), dtype=_NUMPY[t.type])
    if shape and int(np.prod(shape)) == values.size:
        values = values.reshape(shape)
    q = t.quantization
    axis = None
    if q is not None and q.scale is not None and len(q.scale) > 1:
        axis = int(q.quantizedDimension)
    zero = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], dtype=np.int64)
    if zero.size and np.any(zero) and values.dtype.kind == "i" and values.ndim:
        # an asymmetric quantization (an int8 Embedding table): the stored value of a real 0 is the zero point;
        # centred on it, a pruned weight reads 0 again (distinct values are unchanged)
        shape_zp = [1] * values.ndim
        if zero.size > 1 and axis is not None:
            shape_zp[axis] = zero.size
        values = values.astype(np.int32) - zero.reshape(shape_zp if zero.size > 1 else [1] * values.ndim)
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")
    return WeightTensor(name, shape, values, axis)


def weight_tensors(model: bytes) -> list[WeightTensor]:
    """Every constant tensor with data (weights, biases, shapes) of every subgraph (a GRU's weights live in its
    WHILE loop's body), each buffer once; a fused LSTM's gate matrices as one tensor per Keras weight."""
    fu = _fu()
    lstm = fu.schema_fb.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    m = fu.convert_bytearray_to_object(bytearray(model))
    out: list[WeightTensor] = []
    seen: set[int] = set()
    for sub in m.subgraphs:
        for op in sub.operators or []:
            if _builtin(m, op) != lstm:
                continue
            for lo, hi in LSTM_GATE_GROUPS:
                idx = [int(i) for i in op.inputs[lo:hi]]
                gates = [_tensor(m, sub.tensors[i]) if i >= 0 else None for i in idx]
                if any(g is None for g in gates):
                    continue
                parts = tuple(np.asarray(g.values) for g in gates if g is not None)
                stacked = np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=0)
                out.append(WeightTensor(gates[0].name if gates[0] else "", tuple(stacked.shape), stacked, None, parts))
                seen.update(int(sub.tensors[i].buffer) for i in idx)
    for sub in m.subgraphs:
        for t in sub.tensors:
            if int(t.buffer) in seen:
                continue
            found = _tensor(m, t)
            if found is not None:
                seen.add(int(t.buffer))
                out.append(found)
    return out


def compact(model: bytes) -> bytes:
    """The same model with tensor names shortened to t<index> (signature names, ops and weights untouched)."""
    fu = _fu()
    m = fu.convert_bytearray_to_object(bytearray(model))
    for s, sub in enumerate(m.subgraphs):
        for i, t in enumerate(sub.tensors):
            t.name = f"t{i}" if s == 0 else f"s{s}t{i}"
    return bytes(fu.convert_object_to_bytearray(m))


# Metadata entries no runtime reads: the converter's record of its own options and the minimum runtime version
# (LiteRT and TFLite Micro run a model without them). Any other entry is kept: TFLite Micro reads
# "OfflineMemoryAllocation", the TFLite Support library "TFLITE_METADATA" (labels, normalization).
INFORMATIONAL_METADATA = (b"CONVERSION_METADATA", b"min_runtime_version")


def trim(model: bytes) -> bytes:
    """The same model with what neither LiteRT nor TFLite Micro needs to run it left out, for fewer bytes.

    Dropped: the description ("MLIR Converted."), the informational metadata above, the subgraph's name and the
    tensor names (both runtimes address tensors by index), and the SignatureDefs (only LiteRT's
    `get_signature_runner` reads them: a trimmed file is called through `get_input_details`/`set_tensor`, as
    Shears and TFLite Micro call it). A RESHAPE whose target shape is computed at run time from its input's
    batch (SHAPE -> STRIDED_SLICE -> PACK, what Flatten and Reshape convert to with a dynamic batch) gets that
    shape as a constant with -1 for the batch instead: the same output for any batch, three ops fewer (and a
    smaller TFLite Micro arena). Then every op whose outputs nothing reads, and every tensor, buffer and
    operator code nothing references, goes.
    Kept: operators and their options, tensors' shapes, shape signatures and types, quantization parameters,
    buffers, the model's version and the metadata entries a runtime reads. Callers verify the outputs are
    identical before they use the result (shears.stages.convert)."""
    fu = _fu()
    m = fu.convert_bytearray_to_object(bytearray(model))
    m.description = None
    m.metadata = [md for md in (m.metadata or []) if bytes(md.name or b"") not in INFORMATIONAL_METADATA] or None
    m.signatureDefs = None
    for sub in m.subgraphs:
        sub.name = None
        for t in sub.tensors:
            t.name = None
        _constant_batch_reshapes(fu, m, sub)
        _drop_dead_ops(sub)
        _drop_unused_tensors(sub)
    _drop_unused_buffers(m)
    _drop_unused_opcodes(m)
    return bytes(fu.convert_object_to_bytearray(m))


def _constant_batch_reshapes(fu: Any, m: Any, sub: Any) -> None:
    reshape = fu.schema_fb.BuiltinOperator.RESHAPE
    for op in sub.operators or []:
        if _builtin(m, op) != reshape or op.inputs is None or len(op.inputs) < 2:
            continue
        shape_in = sub.tensors[int(op.inputs[1])]
        if m.buffers[shape_in.buffer].data is not None and len(m.buffers[shape_in.buffer].data):
            continue  # already a constant
        out = sub.tensors[int(op.outputs[0])]
        sig = [int(d) for d in (out.shapeSignature if out.shapeSignature is not None else out.shape)]
        if not sig or sig[0] != -1 or sig.count(-1) != 1:
            continue  # only the dynamic batch: any other unknown dimension stays computed
        buf = fu.schema_fb.BufferT()
        buf.data = np.frombuffer(np.asarray(sig, dtype=np.int32).tobytes(), dtype=np.uint8)
        m.buffers.append(buf)
        t = fu.schema_fb.TensorT()
        t.shape = np.asarray([len(sig)], dtype=np.int32)
        t.type = fu.schema_fb.TensorType.INT32
        t.buffer = len(m.buffers) - 1
        sub.tensors.append(t)
        op.inputs[1] = len(sub.tensors) - 1


def _drop_dead_ops(sub: Any) -> None:
    """Ops whose outputs nothing reads. Ops without outputs (CALL_ONCE, ASSIGN_VARIABLE) and ops writing a
    variable tensor act by side effect: they stay."""

    def live(op: Any, read: set[int]) -> bool:
        outs = [int(o) for o in (op.outputs if op.outputs is not None else [])]
        return not outs or any(o in read or sub.tensors[o].isVariable for o in outs)

    while True:  # bounded: every pass removes at least one op or stops
        read = {int(i) for i in sub.outputs} | {int(i) for op in sub.operators or [] for i in op.inputs if i >= 0}
        kept = [op for op in sub.operators or [] if live(op, read)]
        if len(kept) == len(sub.operators or []):
            return
        sub.operators = kept


def _drop_unused_tensors(sub: Any) -> None:
    used = {int(i) for i in sub.inputs} | {int(i) for i in sub.outputs}
    for op in sub.operators or []:  # an int8 LSTM's scratch tensors are its `intermediates`: in use too
        used |= {int(i) for i in op.inputs if i >= 0} | {int(i) for i in op.outputs}
        used |= {int(i) for i in (op.intermediates if op.intermediates is not None else [])}
    order = sorted(used)
    new = {old: i for i, old in enumerate(order)}
    sub.tensors = [sub.tensors[i] for i in order]
    sub.inputs = np.asarray([new[int(i)] for i in sub.inputs], dtype=np.int32)
    sub.outputs = np.asarray([new[int(i)] for i in sub.outputs], dtype=np.int32)
    for op in sub.operators or []:
        op.inputs = np.asarray([new[int(i)] if i >= 0 else -1 for i in op.inputs], dtype=np.int32)
        op.outputs = np.asarray([new[int(i)] for i in op.outputs], dtype=np.int32)
        if op.intermediates is not None:
            op.intermediates = np.asarray([new[int(i)] for i in op.intermediates], dtype=np.int32)


def _drop_unused_buffers(m: Any) -> None:
    """Buffers nothing references. A tensor without data (an activation) points at buffer 0, the schema's empty
    sentinel for exactly that, rather than at an empty buffer of its own (variable tensors keep theirs)."""
    for sub in m.subgraphs:
        for t in sub.tensors:
            data = m.buffers[int(t.buffer)].data
            if not t.isVariable and (data is None or len(data) == 0) and not m.buffers[int(t.buffer)].size:
                t.buffer = 0
    used = {0} | {int(t.buffer) for sub in m.subgraphs for t in sub.tensors}  # 0: the empty sentinel buffer
    used |= {int(md.buffer) for md in m.metadata or []}
    order = sorted(used)
    new = {old: i for i, old in enumerate(order)}
    m.buffers = [m.buffers[i] for i in order]
    for sub in m.subgraphs:
        for t in sub.tensors:
            t.buffer = new[int(t.buffer)]
    for md in m.metadata or []:
        md.buffer = new[int(md.buffer)]
    m.metadataBuffer = None


def _drop_unused_opcodes(m: Any) -> None:
    order = sorted({int(op.opcodeIndex) for sub in m.subgraphs for op in sub.operators or []})
    new = {old: i for i, old in enumerate(order)}
    m.operatorCodes = [m.operatorCodes[i] for i in order]
    for sub in m.subgraphs:
        for op in sub.operators or []:
            op.opcodeIndex = new[int(op.opcodeIndex)]


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
    concrete = fn.get_concrete_function(tf.TensorSpec([1, *input_shape], input_dtype(model), name="input"))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


def input_dtype(model: Any) -> Any:
    """The model's input dtype: float32, or int32 for a model that takes token ids (an Embedding first)."""
    dtype = getattr(model.inputs[0], "dtype", None) if getattr(model, "inputs", None) else None
    return tf.as_dtype(dtype) if dtype is not None else tf.float32
