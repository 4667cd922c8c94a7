"""The one place TensorFlow, Keras and tfmot are imported.

tfmot 0.8.1 only works with legacy Keras 2 (tf_keras); TF decides which Keras `tf.keras` means at its
first import, so the environment must be set before that. Everything else imports from here.
"""

from __future__ import annotations

import os
import sys

from shears.keras import quiet

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "tensorflow" in sys.modules and "tf_keras" not in sys.modules:  # pragma: no cover - defensive
    _keras_mod = getattr(sys.modules["tensorflow"], "keras", None)
    if _keras_mod is not None and "keras._tf_keras" in getattr(_keras_mod, "__name__", ""):
        raise ImportError(
            "TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set; import shears.keras.tfcompat first"
        )

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

# TF's and absl's Python warnings (e.g. legacy HDF5); the C++ start-up lines: quiet.install at entry points
quiet.quiet_python_loggers()

if _threads := os.environ.get("SHEARS_TF_THREADS"):  # parallel trials: each process gets its share of the cores
    tf.config.threading.set_intra_op_parallelism_threads(int(_threads))
    tf.config.threading.set_inter_op_parallelism_threads(int(_threads))


def set_seed(seed: int) -> None:
    """Seed python, numpy and TF and make TF ops deterministic, so reruns give the same numbers."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


__all__ = ["keras", "set_seed", "tf", "tfmot"]
