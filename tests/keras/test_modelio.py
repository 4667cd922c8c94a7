from __future__ import annotations

from pathlib import Path

import pytest
from shears.errors import ConfigError
from shears.keras.modelio import model_from_bytes

pytestmark = pytest.mark.tf


def test_garbage_model_file_is_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot load model"):
        model_from_bytes(b"not a model", "m.keras")


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_model_with_code_is_refused_without_running_it(tmp_path: Path, suffix: str) -> None:
    """A Lambda layer is serialized bytecode: loading it must not execute it, in either format."""
    from shears.keras.tfcompat import keras

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
