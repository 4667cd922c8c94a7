"""TFLite variants of the stripped model.

Plain `Optimize.DEFAULT` on the stripped model is the deployable default: EXPERIMENTAL_SPARSITY was
measured larger gzipped and does not delegate to XNNPACK (see STACK.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shears.config import ConvertConfig
from shears.keras.tfcompat import keras, tf


def representative_samples(x_train: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A seeded sample of training rows for int8 calibration."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x_train), size=min(n, len(x_train)), replace=False)
    return x_train[np.sort(idx)].astype(np.float32)


def convert_variant(model: keras.Model, variant: str, calibration: np.ndarray) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "dynamic_range":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "int8":

        def rep() -> Iterator[list[np.ndarray]]:
            for row in calibration:
                yield [row[None, ...]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    elif variant != "float32":
        raise ValueError(f"unknown TFLite variant {variant}")
    return bytes(conv.convert())


def convert(model: keras.Model, x_train: np.ndarray, cfg: ConvertConfig) -> dict[str, bytes]:
    """Every configured variant, keyed by name."""
    calibration = representative_samples(x_train, cfg.representative_samples)
    return {v: convert_variant(model, v, calibration) for v in cfg.variants}
