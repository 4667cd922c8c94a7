"""Keras models to and from bytes, so steps can keep models in any store."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from shears.errors import ConfigError, first_line
from shears.keras.tfcompat import keras, tfmot


def model_to_h5(model: keras.Model, *, include_optimizer: bool) -> bytes:
    """HDF5 bytes; without the optimizer this is the deployable Keras form (the optimizer triples size)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.h5"
        with warnings.catch_warnings():  # .h5 is chosen on purpose (tfmot, size); the "legacy" notice is noise
            warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
            keras.models.save_model(model, path, include_optimizer=include_optimizer, save_format="h5")
        return path.read_bytes()


def pruned_to_bytes(model: keras.Model) -> tuple[bytes, str]:
    """A model with pruning wrappers, as fit leaves it (optimizer included): (bytes, "h5"), or (bytes, "keras")
    when HDF5 cannot hold it. HDF5 stores weights by name, and tfmot names the masks of every pruned weight of
    a layer alike (an LSTM's kernel and recurrent kernel both get `mask`); the .keras zip stores them by path."""
    names = [w.name for w in model.weights]
    if len(set(names)) == len(names):
        return model_to_h5(model, include_optimizer=True), "h5"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes(), "keras"


def model_from_bytes(data: bytes, name: str = "model.h5", *, pruned: bool = False) -> keras.Model:
    """Load .h5 or .keras bytes without compiling, after shears.keras.intake checked them, in Keras safe mode.

    Used for Shears' own staged files (and, inside the loading child, for a user's Keras 2 file): the
    same allow-list applies to both, widened only by tfmot's pruning wrapper for `pruned` models.
    """
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    from shears.keras.fileinfo import model_format
    from shears.keras.intake import parse_model_file

    fmt = model_format(name)
    parse_model_file(data, name, fmt, pruned=pruned)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model.{fmt}"
        path.write_bytes(data)
        try:
            with SafeModeScope(True):
                if pruned:
                    with tfmot.sparsity.keras.prune_scope():
                        return keras.models.load_model(path, compile=False)
                return keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # a user's file can make Keras raise anything; it is always "this file is bad"
            raise ConfigError(f"cannot load model {name}: {type(exc).__name__}: {first_line(exc)[:200]}") from None


def model_from_plain(tf_keras_json: str, weights: list[np.ndarray], name: str) -> keras.Model:
    """Build a tf_keras model from an architecture already checked against the allow-list, and set its weights.

    What the loading child returns (shears.keras.sandbox): no file is read, only JSON and numeric arrays.
    """
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    try:
        with SafeModeScope(True):
            model = keras.models.model_from_json(tf_keras_json)
    except Exception as exc:  # tf_keras raises many types for a config it cannot build
        raise ConfigError(f"cannot rebuild model {name}: {type(exc).__name__}: {first_line(exc)[:200]}") from None
    want = [tuple(w.shape) for w in model.weights]
    have = [tuple(w.shape) for w in weights]
    if want != have:
        raise ConfigError(f"cannot rebuild model {name}: {len(have)} weight arrays do not fit its {len(want)} "
                          "weights (shapes differ)")
    model.set_weights(weights)
    for layer in model.submodules:
        if callable(getattr(layer, "finalize_state", None)):
            layer.finalize_state()  # see shears.keras.keras3.finalize_state
    return model
