from __future__ import annotations

import numpy as np
import pytest
from shears.config import ConvertConfig, ModelConfig
from shears.stages.baseline import train_baseline
from shears.stages.convert import convert, representative_samples
from shears.stages.data import load_digits_default, split

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    s = split(load_digits_default(), 0.2, 0, 10)
    return s, train_baseline(s, ModelConfig(epochs=3)).model


@pytest.fixture(scope="module")
def variants(trained):  # type: ignore[no-untyped-def]
    s, model = trained
    return convert(model, s.x_train, ConvertConfig(variants=("float32", "dynamic_range", "int8", "float16")))


def test_every_variant_is_a_tflite_flatbuffer(variants) -> None:  # type: ignore[no-untyped-def]
    assert set(variants) == {"float32", "dynamic_range", "int8", "float16"}
    for data in variants.values():
        assert data[4:8] == b"TFL3"
    # quantized variants are smaller than float32
    assert len(variants["dynamic_range"]) < len(variants["float32"]) / 3
    assert len(variants["float16"]) < len(variants["float32"]) * 0.6


def test_representative_sample_is_seeded() -> None:
    x = np.arange(1000, dtype=np.float32).reshape(100, 10)
    a, b = representative_samples(x, 20), representative_samples(x, 20)
    assert np.array_equal(a, b) and a.shape == (20, 10)
