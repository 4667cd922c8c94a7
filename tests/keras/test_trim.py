"""convert.trim: a trimmed .tflite still loads and runs, with identical outputs, under LiteRT and TFLite Micro."""

from __future__ import annotations

import numpy as np
import pytest
from shears.keras.tflite import INFORMATIONAL_METADATA, trim
from shears.stages.inspect import structure_gzip_bytes
from shears.stages.measure import gzip_size, tflite_outputs
from shears.stages.micro import micro_outputs, model_ops

pytestmark = pytest.mark.tf


def _fb(model: bytes):  # type: ignore[no-untyped-def]
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(model))


@pytest.fixture(scope="module")
def cnn_int8() -> tuple[bytes, np.ndarray]:
    """The TF tutorial's CNN (Reshape -> Conv2D -> MaxPool -> Flatten -> Dense) on digits, full-integer int8."""
    from shears.config import ModelConfig
    from shears.stages.baseline import train_baseline
    from shears.stages.convert import convert_variant
    from shears.stages.data import load_digits_default, split

    s = split(load_digits_default(), 0.2, 0, 10)
    model = train_baseline(s, ModelConfig(epochs=1, builder="shears.keras.builders:tutorial_cnn")).model
    return convert_variant(model, "int8", s.x_train[:100], compact=True), s.x_val


def test_a_trimmed_cnn_runs_identically_in_litert_and_tflite_micro(cnn_int8: tuple[bytes, np.ndarray]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    full, x = cnn_int8
    small = trim(full)
    assert gzip_size(small) < gzip_size(full) and structure_gzip_bytes(small) < structure_gzip_bytes(full) - 200
    m = _fb(small)
    assert m.description is None and not m.signatureDefs and not m.metadata
    assert all(not t.name for t in m.subgraphs[0].tensors)
    assert "SHAPE" in model_ops(full) and not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(model_ops(small))
    assert np.array_equal(tflite_outputs(full, x), tflite_outputs(small, x))  # LiteRT, in batches of 256
    interp = Interpreter(model_content=small)  # the batch is still dynamic: the reshape's batch is -1
    interp.resize_tensor_input(interp.get_input_details()[0]["index"], [7, 8, 8])
    interp.allocate_tensors()
    before, after = micro_outputs(full, x[:100], 1 << 20), micro_outputs(small, x[:100], 1 << 20)
    assert before is not None and after is not None and np.array_equal(before, after)  # TFLite Micro


def test_metadata_a_runtime_reads_is_kept(cnn_int8: tuple[bytes, np.ndarray]) -> None:
    from tensorflow.lite.tools import flatbuffer_utils as fu

    full, _ = cnn_int8
    m = _fb(full)
    assert {bytes(md.name) for md in m.metadata} == set(INFORMATIONAL_METADATA)
    buf = fu.schema_fb.BufferT()
    buf.data = np.frombuffer(b"labels: t-shirt, trouser", dtype=np.uint8)
    m.buffers.append(buf)
    md = fu.schema_fb.MetadataT()
    md.name, md.buffer = b"TFLITE_METADATA", len(m.buffers) - 1
    m.metadata.append(md)
    with_support = bytes(fu.convert_object_to_bytearray(m))
    kept = _fb(trim(with_support))
    assert [bytes(md.name) for md in kept.metadata] == [b"TFLITE_METADATA"]
    assert bytes(bytearray(kept.buffers[kept.metadata[0].buffer].data)) == b"labels: t-shirt, trouser"


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_trimmed_recurrent_models_keep_their_state_and_loops(kind: str) -> None:
    """A fused LSTM's variable state tensors, a GRU's WHILE-loop subgraphs: trimmed, the same outputs."""
    import tf_keras as keras
    from shears.stages.convert import convert_variant

    from tests.keras import kinds

    keras.utils.set_random_seed(0)
    x, y = kinds.sequences(200)
    inp = keras.Input((kinds.SEQ_LEN,), dtype="int32")
    h = getattr(keras.layers, kind)(8)(keras.layers.Embedding(kinds.VOCAB, 8)(inp))
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, verbose=0)
    full = convert_variant(model, "int8" if kind == "LSTM" else "float32", x[:100].astype(np.float32),
                           fixed_batch=True)
    small = trim(full)
    assert len(small) < len(full) and len(_fb(small).subgraphs) == len(_fb(full).subgraphs)
    xs = x[:60].astype(np.float32)
    assert np.array_equal(tflite_outputs(full, xs), tflite_outputs(small, xs))
    before, after = micro_outputs(full, x[:60], 1 << 20), micro_outputs(small, x[:60], 1 << 20)
    assert before is not None and after is not None and np.array_equal(before, after)
