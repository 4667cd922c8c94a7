"""Keras models to and from bytes, so steps can keep models in any store."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

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


def model_from_bytes(data: bytes, name: str = "model.h5", *, pruned: bool = False) -> keras.Model:
    """Load .h5 or .keras bytes without compiling, always in Keras safe mode.

    Safe mode refuses Lambda layers (serialized Python bytecode) in both formats: a user's model file
    must not run code on a worker that holds store credentials.
    """
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    suffix = ".keras" if name.lower().endswith(".keras") else ".h5"
    if not name.lower().endswith((".keras", ".h5", ".hdf5")):
        raise ConfigError(f"unsupported model file {name}: use .keras or .h5")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        path.write_bytes(data)
        try:
            with SafeModeScope(True):
                if pruned:
                    with tfmot.sparsity.keras.prune_scope():
                        return keras.models.load_model(path, compile=False)
                return keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # a user's file can make Keras raise anything; it is always "this file is bad"
            raise ConfigError(f"cannot load model {name}: {type(exc).__name__}: {first_line(exc)[:200]}") from None
