"""TFLite variants of the stripped model.

Plain `Optimize.DEFAULT` on the stripped model is the deployable default: EXPERIMENTAL_SPARSITY was
measured larger gzipped and does not delegate to XNNPACK (see STACK.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from shears.config import ConvertConfig
from shears.keras.tfcompat import keras, tf
from shears.keras.tflite import compact, converter, input_dtype


def representative_samples(x_train: np.ndarray, n: int, seed: int = 0, targets: np.ndarray | None = None
                           ) -> np.ndarray:
    """A seeded sample of training rows for int8 calibration. With a regression target (`targets`), rows
    evenly spaced in the target's order instead, from its smallest to its largest: the calibrated ranges then
    span every output the model was trained to give."""
    if targets is not None and len(targets):
        order = np.argsort(np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)[:, 0], kind="stable")
        picks = order[np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))]
        return x_train[np.sort(picks)].astype(np.float32)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x_train), size=min(n, len(x_train)), replace=False)
    return x_train[np.sort(idx)].astype(np.float32)


def convert_variant(model: keras.Model, variant: str, calibration: np.ndarray, *, fixed_batch: bool = False,
                    compact: bool = False, float_output: bool = False, trim: bool = False) -> bytes:
    """One TFLite variant; `compact` shortens tensor names, `trim` leaves out what no runtime needs
    (shears.keras.tflite.trim), each only if the outputs stay bit-identical.

    `float_output` (regressors): an int8 model keeps a float32 output tensor, so its values come out in real
    units rather than as 256 levels of an int8 range a caller must dequantize."""
    conv = converter(model, tuple(int(d) for d in calibration.shape[1:]), fixed_batch)
    calibration = calibration.astype(input_dtype(model).as_numpy_dtype)  # token ids stay integers
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
        conv.inference_output_type = tf.float32 if float_output else tf.int8
    elif variant != "float32":
        raise ValueError(f"unknown TFLite variant {variant}")
    data = bytes(conv.convert())
    sample = calibration[: min(len(calibration), 64)]
    if compact:
        data = compact_verified(data, sample)
    if trim:
        data = trim_verified(data, sample)
    return data


def trim_verified(data: bytes, sample: np.ndarray) -> bytes:
    """The trimmed file (shears.keras.tflite.trim), kept only when LiteRT's outputs on `sample` are bit-identical
    to the original's (evaluate compares both again on the test split, in LiteRT and TFLite Micro)."""
    from shears.keras.tflite import trim

    return _smaller_if_identical(data, trim(data), sample)


def compact_verified(data: bytes, sample: np.ndarray) -> bytes:
    """Shorter tensor names, kept only when the outputs on `sample` are bit-identical to the original's."""
    return _smaller_if_identical(data, compact(data), sample)


def _smaller_if_identical(data: bytes, smaller: bytes, sample: np.ndarray) -> bytes:
    """A rewrite of `data` is kept only when it is smaller and LiteRT gives bit-identical outputs on `sample`."""
    from shears.stages.measure import tflite_outputs

    if len(smaller) >= len(data):
        return data
    if not np.array_equal(tflite_outputs(data, sample), tflite_outputs(smaller, sample)):
        return data
    return smaller


def convert(model: keras.Model, x_train: np.ndarray, cfg: ConvertConfig,
            variants: tuple[str, ...] | None = None, *, regression_targets: np.ndarray | None = None,
            fixed_batch: bool | None = None) -> dict[str, bytes]:
    """Every configured variant (or `variants`), keyed by name; a regressor (`regression_targets`: its
    training targets) calibrates across the target range and keeps a float output. `fixed_batch` (default: the
    config's) as the published recipe was converted."""
    calibration = representative_samples(x_train, cfg.representative_samples, targets=regression_targets)
    fixed = cfg.fixed_batch if fixed_batch is None else fixed_batch
    return {v: convert_variant(model, v, calibration, fixed_batch=fixed, compact=cfg.compact, trim=cfg.trim,
                               float_output=regression_targets is not None)
            for v in (variants or cfg.variants)}
