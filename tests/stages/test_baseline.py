from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shears.config import ModelConfig
from shears.errors import ConfigError
from shears.keras.builders import mlp, small_cnn
from shears.keras.modelio import model_from_bytes, model_to_h5
from shears.stages.baseline import evaluate_pretrained, train_baseline
from shears.stages.data import load_digits_default, split

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def splits():  # type: ignore[no-untyped-def]
    return split(load_digits_default(), 0.2, 0, 10)


def test_training_is_seeded_and_learns(splits) -> None:  # type: ignore[no-untyped-def]
    cfg = ModelConfig(epochs=3)
    a = train_baseline(splits, cfg)
    b = train_baseline(splits, cfg)
    assert a.score > 0.85
    assert a.score == b.score
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        assert np.array_equal(wa, wb)


def test_pretrained_keras_file_is_loaded_safely_and_evaluated(splits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trained = train_baseline(splits, ModelConfig(epochs=2))
    path = tmp_path / "user.keras"
    trained.model.save(path)
    loaded = model_from_bytes(path.read_bytes(), "user.keras")
    result = evaluate_pretrained(loaded, splits)
    assert result.pretrained and abs(result.score - trained.score) < 1e-9
    h5 = model_from_bytes(model_to_h5(trained.model, include_optimizer=False), "m.h5")
    assert evaluate_pretrained(h5, splits).score == result.score


def test_pretrained_model_must_fit_the_data(splits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="input shape"):
        evaluate_pretrained(mlp((30,), 10), splits)
    with pytest.raises(ConfigError, match=r"3 output unit\(s\) but this multiclass task \(10 classes\) needs 10"):
        evaluate_pretrained(small_cnn((8, 8), 3), splits)
