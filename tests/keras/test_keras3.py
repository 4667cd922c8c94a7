"""The Keras 3 -> tf_keras bridge on real Keras 3 files made here: same outputs both ways, clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shears.errors import ConfigError
from shears.keras.fileinfo import inspect_model_file
from shears.keras.keras3 import (
    keras3_from_bytes,
    keras3_to_bytes,
    load_pretrained,
    max_abs_difference,
    output_difference,
    predict,
    to_keras3,
)

from tests.keras import k3models

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def cnn() -> object:
    return k3models.functional_cnn(epochs=1)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_functional_cnn_is_rebuilt_with_the_same_outputs_and_given_back(cnn: object, tmp_path: Path,
                                                                         suffix: str) -> None:
    path = tmp_path / f"cnn{suffix}"
    cnn.save(path)  # type: ignore[attr-defined]
    data = path.read_bytes()
    info = inspect_model_file(data, path.name)
    assert info.generation == "keras3" and info.input_shape == (8, 8, 1) and info.origin == f"Keras 3 {suffix}"
    x = k3models.digits_images()[0][..., None]
    pre = load_pretrained(data, path.name, x[:512])  # in the loading child; its outputs on x come back
    assert pre.keras3_reference is not None and pre.keras3_reference.shape == (512, 10)
    assert output_difference(pre.keras3_reference, predict(pre.model, x[:512])) <= 1e-5
    assert output_difference(pre.keras3_reference, predict(cnn, x[:512])) <= 1e-5
    assert [lay.name for lay in pre.model.layers] == [lay.name for lay in cnn.layers]  # type: ignore[attr-defined]
    assert type(pre.model).__module__.startswith("tf_keras")
    assert pre.keras3_architecture is not None
    back = keras3_from_bytes(keras3_to_bytes(to_keras3(pre.model, pre.keras3_architecture, path.name)))
    assert type(back).__module__.startswith("keras.")
    assert max_abs_difference(back, cnn, x)[0] <= 1e-5


def test_nested_model_and_shared_layers(tmp_path: Path) -> None:
    path = tmp_path / "nested.keras"
    k3models.nested_shared().save(path)
    x = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    pre = load_pretrained(path.read_bytes(), path.name, x)
    assert pre.keras3_reference is not None
    assert output_difference(pre.keras3_reference, predict(pre.model, x)) <= 1e-5
    assert len(pre.model.get_layer("shared").inbound_nodes) == 2  # still one layer called twice


def test_embedding_and_lstm(tmp_path: Path) -> None:
    keras = k3models.k3()
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((7,), dtype="int32"), keras.layers.Embedding(20, 4, name="emb"),
                              keras.layers.LSTM(5, name="lstm"), keras.layers.Dense(3, name="logits")])
    path = tmp_path / "seq.keras"
    model.save(path)
    x = np.random.default_rng(1).integers(0, 20, (32, 7)).astype(np.int32)
    pre = load_pretrained(path.read_bytes(), path.name, x)
    assert pre.keras3_reference is not None
    assert output_difference(pre.keras3_reference, predict(pre.model, x)) <= 1e-5
    assert max_abs_difference(model, pre.model, x)[0] <= 1e-5


def test_tf_keras_file_is_loaded_as_before(tmp_path: Path) -> None:
    from shears.keras.tfcompat import keras

    model = keras.Sequential([keras.layers.InputLayer(input_shape=(4,)), keras.layers.Dense(2, name="d")])
    path = tmp_path / "tf.h5"
    model.save(path)
    pre = load_pretrained(path.read_bytes(), path.name)
    assert pre.origin == "Keras 2 .h5" and pre.keras3_architecture is None and pre.keras3_reference is None
    x = np.random.default_rng(2).normal(size=(16, 4)).astype(np.float32)
    assert output_difference(predict(model, x), predict(pre.model, x)) == 0.0


@pytest.mark.parametrize(("make", "needle"), k3models.UNSUPPORTED)
def test_custom_objects_are_refused_in_one_line(tmp_path: Path, make: object, needle: str) -> None:
    path = tmp_path / "m.keras"
    make().save(path)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=r"cannot load model m\.keras") as exc:
        load_pretrained(path.read_bytes(), path.name)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_untranslatable_option_is_named(tmp_path: Path) -> None:
    keras = k3models.k3()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, lora_rank=2, name="adapted")])
    path = tmp_path / "lora.keras"
    model.save(path)
    with pytest.raises(ConfigError, match=r"layer 'adapted' \(Dense\): option lora_rank=2 has no tf_keras"):
        load_pretrained(path.read_bytes(), path.name)
