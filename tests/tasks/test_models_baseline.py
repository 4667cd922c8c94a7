from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.baseline import evaluate_pretrained, train_baseline
from tasks.config import ModelConfig
from tasks.data import load_digits_default, split
from tasks.errors import ConfigError
from tasks.modelio import model_from_bytes, model_to_h5
from tasks.models import mlp, resolve_builder, small_cnn, tutorial_cnn


@pytest.fixture(scope="module")
def splits():  # type: ignore[no-untyped-def]
    return split(load_digits_default(), 0.2, 0, 10)


def test_builders_emit_logits_per_class() -> None:
    assert small_cnn((8, 8), 10).output_shape == (None, 10)
    assert tutorial_cnn((28, 28), 10).count_params() == 12 * 9 + 12 + 13 * 13 * 12 * 10 + 10
    assert mlp((30,), 2).output_shape == (None, 2)


@pytest.mark.parametrize(("spec", "needle"), [("nocolon", "module:function"), ("no.such.mod:f", "cannot import"),
                                              ("tasks.models:nope", "no function nope")])
def test_bad_builder_specs(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve_builder(spec)


def test_training_is_seeded_and_learns(splits) -> None:  # type: ignore[no-untyped-def]
    cfg = ModelConfig(epochs=3)
    a = train_baseline(splits, cfg)
    b = train_baseline(splits, cfg)
    assert a.accuracy > 0.85
    assert a.accuracy == b.accuracy
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        assert np.array_equal(wa, wb)


def test_pretrained_keras_file_is_loaded_safely_and_evaluated(splits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trained = train_baseline(splits, ModelConfig(epochs=2))
    path = tmp_path / "user.keras"
    trained.model.save(path)
    loaded = model_from_bytes(path.read_bytes(), "user.keras")
    result = evaluate_pretrained(loaded, splits)
    assert result.pretrained and abs(result.accuracy - trained.accuracy) < 1e-9
    h5 = model_from_bytes(model_to_h5(trained.model, include_optimizer=False), "m.h5")
    assert evaluate_pretrained(h5, splits).accuracy == result.accuracy


def test_pretrained_model_must_fit_the_data(splits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="input shape"):
        evaluate_pretrained(mlp((30,), 10), splits)
    with pytest.raises(ConfigError, match="3 outputs but the data has 10 classes"):
        evaluate_pretrained(small_cnn((8, 8), 3), splits)


def test_garbage_model_file_is_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot load model"):
        model_from_bytes(b"not a model", "m.keras")


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_model_with_code_is_refused_without_running_it(tmp_path: Path, suffix: str) -> None:
    """A Lambda layer is serialized bytecode: loading it must not execute it, in either format."""
    from tasks.tfcompat import keras

    marker = tmp_path / "pwned"
    path_str = str(marker)

    def side_effect(x):  # type: ignore[no-untyped-def]
        import pathlib

        pathlib.Path(path_str).write_text("ran")
        return x

    model = keras.Sequential([keras.layers.InputLayer(input_shape=(4,)), keras.layers.Lambda(side_effect),
                              keras.layers.Dense(2)])
    marker.unlink(missing_ok=True)
    path = tmp_path / f"evil{suffix}"
    model.save(path)
    marker.unlink(missing_ok=True)  # saving traced the function once
    with pytest.raises(ConfigError, match="cannot load model"):
        model_from_bytes(path.read_bytes(), f"evil{suffix}")
    assert not marker.exists()
