from __future__ import annotations

import gzip

import numpy as np
import pytest
from shears.config import ConvertConfig, ModelConfig
from shears.keras.training import keras_accuracy
from shears.stages.baseline import train_baseline
from shears.stages.convert import convert
from shears.stages.data import load_digits_default, split
from shears.stages.measure import gzip_size, measure, tflite_accuracy, tflite_latency_ms, tflite_predict

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    s = split(load_digits_default(), 0.2, 0, 10)
    return s, train_baseline(s, ModelConfig(epochs=3)).model


@pytest.fixture(scope="module")
def variants(trained):  # type: ignore[no-untyped-def]
    s, model = trained
    return convert(model, s.x_train, ConvertConfig(variants=("float32", "dynamic_range", "int8", "float16")))


def test_tflite_accuracy_tracks_keras(trained, variants) -> None:  # type: ignore[no-untyped-def]
    s, model = trained
    ref = keras_accuracy(model, s.x_test, s.y_test)
    assert tflite_accuracy(variants["float32"], s.x_test, s.y_test) == pytest.approx(ref, abs=0.003)
    for name in ("dynamic_range", "int8", "float16"):
        assert tflite_accuracy(variants[name], s.x_test, s.y_test) == pytest.approx(ref, abs=0.03), name


def test_int8_takes_quantized_inputs(trained, variants) -> None:  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_content=variants["int8"]).get_input_details()[0]
    assert detail["dtype"] == np.int8
    s, _ = trained
    preds = tflite_predict(variants["int8"], s.x_test[:7], batch=3)  # odd batch sizes resize correctly
    assert preds.shape == (7,)


def test_latency_is_positive(trained, variants) -> None:  # type: ignore[no-untyped-def]
    s, _ = trained
    assert tflite_latency_ms(variants["dynamic_range"], s.x_test[0], runs=5) > 0


def test_gzip_is_deterministic_and_measured() -> None:
    data = bytes(range(256)) * 100
    assert gzip_size(data) == gzip_size(data) == len(gzip.compress(data, 9, mtime=0))
    m = measure("a", "f", "tflite", data, {"accuracy": 0.5})
    assert m.raw_bytes == 25600 and m.gzip_bytes < m.raw_bytes
