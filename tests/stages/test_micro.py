"""TFLite Micro (the tflite-micro interpreter, in child processes): the smallest arena, proven both ways; outputs
that agree with LiteRT's (an LSTM reset per row); what it cannot run is a recorded reason, not a failure."""

from __future__ import annotations

import numpy as np
import pytest
from shears.records import MicroRecord
from shears.stages.gates import micro_gate
from shears.stages.micro import arena_allocates, run_on_micro

pytestmark = pytest.mark.tf


def _digits_cnn_int8() -> tuple[bytes, np.ndarray]:
    from shears.config import ModelConfig
    from shears.stages.baseline import train_baseline
    from shears.stages.convert import convert_variant
    from shears.stages.data import load_digits_default, split

    s = split(load_digits_default(), 0.2, 0, 10)
    model = train_baseline(s, ModelConfig(epochs=2, builder="shears.keras.builders:tutorial_cnn")).model
    return convert_variant(model, "int8", s.x_train[:100]), s.x_val[:120]


def test_the_arena_found_is_the_smallest_that_allocates_and_outputs_match_litert() -> None:
    from shears.stages.measure import tflite_outputs

    model, x = _digits_cnn_int8()
    run = run_on_micro(model, x, max_arena=1 << 20)
    assert run.runs and run.reason is None and run.arena_bytes is not None and run.outputs is not None
    assert arena_allocates(model, run.arena_bytes)
    assert not arena_allocates(model, run.arena_bytes - 1)  # one byte less does not
    litert = tflite_outputs(model, x)
    assert run.outputs.shape == litert.shape
    step = float(np.min(np.abs(np.diff(np.unique(litert)))))  # one int8 step of the output, dequantized
    assert float(np.max(np.abs(run.outputs - litert))) <= step * 1.01  # the same kernels' answer within one step
    assert np.mean(run.outputs.argmax(1) == litert.argmax(1)) >= 0.99
    assert {"CONV_2D", "FULLY_CONNECTED"} <= set(run.ops)


def test_a_fused_lstm_runs_row_by_row_from_reset_state() -> None:
    """Each row is its own sequence: TFLite Micro's LSTM is reset before every row, so it gives Keras' answers."""
    import tf_keras as keras
    from shears.stages.convert import convert_variant

    from tests.keras import kinds

    keras.utils.set_random_seed(0)
    x, y = kinds.sequences(400)
    inp = keras.Input((kinds.SEQ_LEN,), dtype="int32")
    h = keras.layers.LSTM(16)(keras.layers.Embedding(kinds.VOCAB, 8)(inp))
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=5, verbose=0)
    tfl = convert_variant(model, "int8", x[:200].astype(np.float32), fixed_batch=True)
    run = run_on_micro(tfl, x[:100], max_arena=1 << 18)
    assert run.runs and run.outputs is not None, run.reason
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in run.ops
    keras_out = model.predict(x[:100], verbose=0)
    assert float(np.max(np.abs(run.outputs - keras_out))) < 0.05  # int8 error, not a sequence carried on
    assert np.mean(run.outputs.argmax(1) == keras_out.argmax(1)) >= 0.97


def test_what_tflite_micro_cannot_run_is_a_reason_naming_it() -> None:
    import tensorflow as tf
    from shears.stages.convert import convert_variant

    fn = tf.function(tf.linalg.diag).get_concrete_function(tf.TensorSpec([1, 4], tf.float32))
    diag = tf.lite.TFLiteConverter.from_concrete_functions([fn]).convert()
    run = run_on_micro(diag, np.zeros((2, 4), np.float32), max_arena=1 << 16)
    assert not run.runs and run.missing_ops == ["MATRIX_DIAG"] and "no kernel for MATRIX_DIAG" in str(run.reason)

    import tf_keras as keras

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32), keras.layers.Dense(10)])
    hybrid = convert_variant(model, "dynamic_range", np.zeros((4, 64), np.float32))
    run = run_on_micro(hybrid, np.zeros((2, 64), np.float32), max_arena=1 << 16)
    assert not run.runs and "hybrid ops (FULLY_CONNECTED" in str(run.reason) and run.probes == 1


def test_the_arena_gate() -> None:
    ran = MicroRecord(file="m.tflite", package="x", runs=True, arena_bytes=10_144, agrees=True)
    assert micro_gate(ran, 16_000).passed and not micro_gate(ran, 10_000).passed
    assert "10,144 B vs maximum 10,000 B" in micro_gate(ran, 10_000).reason
    assert not micro_gate(ran.model_copy(update={"agrees": False}), 16_000).passed
    off = micro_gate(None, 16_000)
    assert not off.passed and "convert.micro" in off.reason
    no = micro_gate(MicroRecord(file="m", package="x", runs=False, reason="TFLite Micro has no kernel for X"), 1)
    assert not no.passed and "no kernel for X" in no.reason
