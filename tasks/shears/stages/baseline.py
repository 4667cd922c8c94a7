"""The baseline model — trained from a builder with fixed seeds, or a user's pre-trained model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shears.config import ModelConfig
from shears.errors import ConfigError, first_line
from shears.keras.builders import DEFAULT_BUILDERS, TABULAR_SCORER, resolve_builder
from shears.keras.tfcompat import keras, set_seed
from shears.keras.training import compile_for_task, history_dict, keras_score
from shears.stages.data import Splits


@dataclass
class BaselineResult:
    model: keras.Model
    score: float  # the primary metric on the validation split (the test split is read once, at evaluate)
    builder: str | None
    pretrained: bool
    history: dict[str, list[float]] = field(default_factory=dict)


def check_model_fits(model: keras.Model, data: Splits) -> None:
    """The model must accept the data's features and emit one score per class — checked on one real sample
    before any training, so a shape mismatch is a one-line ConfigError, not a traceback minutes later."""
    from shears.keras.prunable import plan_model

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(f"model has {len(model.inputs)} inputs and {len(model.outputs)} outputs: Shears prunes "
                          "models with one input and one output")
    plan_model(model)  # a layer holding a kernel tfmot cannot prune: refused here, before anything is trained
    in_shape = tuple(model.input_shape[1:])
    data_shape = data.input_shape
    if tuple(d for d in in_shape) != data_shape:
        raise ConfigError(f"model input shape {in_shape} does not match data feature shape {data_shape}")
    out = model.output_shape[-1]
    want = data.output_units
    if out != want:
        task = data.task
        have = f"{task.num_classes} classes" if task.classification else "a continuous target"
        raise ConfigError(f"model has {out} output unit(s) but this {task.kind} task ({have}) needs {want}")
    try:
        scores = model(data.x_train[:1], training=False)
    except Exception as exc:  # TF raises many types for shape problems
        raise ConfigError(f"model cannot run on one sample of shape {data_shape}: {type(exc).__name__}: "
                          f"{first_line(exc)}") from None
    if tuple(scores.shape) != (1, want):
        raise ConfigError(f"model gives outputs of shape {tuple(scores.shape)} for one sample; expected "
                          f"(1, {want})")


def default_builder(data: Splits) -> str:
    """The kind's default; tabular regressors and binary scorers get tabular_mlp (the seeds' regressor)."""
    if data.kind == "tabular" and data.task.kind in ("regression", "binary"):
        return TABULAR_SCORER
    return DEFAULT_BUILDERS[data.kind]


def train_baseline(data: Splits, cfg: ModelConfig) -> BaselineResult:
    """Build the configured (or kind-default) model and train it with seeds fixed."""
    spec = cfg.builder or default_builder(data)
    builder = resolve_builder(spec)
    keras.backend.clear_session()  # auto-generated layer names end up in the files: keep them stable
    set_seed(cfg.seed)
    try:
        model = builder(data.input_shape, data.output_units)
    except (ValueError, TypeError) as exc:  # e.g. a 3x3 convolution over 2x2 images
        raise ConfigError(f"model.builder '{spec}' cannot build a model for inputs of shape {data.input_shape}: "
                          f"{first_line(exc)}") from None
    if not isinstance(model, keras.Model):
        raise ConfigError(f"model.builder '{spec}' returned {type(model).__name__}, not a tf.keras Model")
    check_model_fits(model, data)
    start_at_the_mean(model, data)
    compile_for_task(model, cfg.learning_rate, data.task)
    hist = model.fit(
        data.x_train,
        data.y_train,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        validation_split=cfg.validation_split,
        validation_data=None if cfg.validation_split else (data.x_val, data.y_val),
        shuffle=True,
        verbose=0,
    )
    return BaselineResult(model, keras_score(model, data.x_val, data.y_val, data.task), spec, False,
                          history_dict(hist))


def start_at_the_mean(model: keras.Model, data: Splits) -> None:
    """A regressor trained here starts from the training mean: its output bias is set to it (a target around
    14 with unit-scale initial outputs otherwise spends most of a short fit learning the offset)."""
    if data.task.classification:
        return
    last = model.layers[-1]
    weights = last.get_weights()
    if len(weights) != 2 or weights[1].shape != (data.output_units,):
        return
    mean = np.asarray(data.y_train, dtype=np.float32).reshape(len(data.y_train), -1).mean(axis=0)
    last.set_weights([weights[0], mean.astype(weights[1].dtype)])


@dataclass(frozen=True)
class Conversion:
    """The proof that a Keras 3 model rebuilt in tf_keras computes the same function, on the run's own data."""

    max_abs_diff: float
    samples: int
    tolerance: float


def probe_rows(data: Splits) -> np.ndarray:
    """The rows a conversion is proven on: the first 512 training rows (the same rows every time)."""
    from shears.keras.keras3 import EQUIVALENCE_ROWS

    return data.x_train[:EQUIVALENCE_ROWS]


def check_conversion(reference: np.ndarray, rebuilt: object, rows: np.ndarray, tolerance: float,
                     what: str = "the tf_keras rebuild of the Keras 3 model") -> Conversion:
    """`rebuilt`'s outputs on `rows` against the `reference` outputs of the model it was rebuilt from; a
    difference above `tolerance` stops the run with the number."""
    from shears.keras.keras3 import output_difference, predict

    diff = output_difference(np.asarray(reference, dtype=np.float64), predict(rebuilt, rows))
    if not diff <= tolerance:
        raise ConfigError(f"{what} differs from it by {diff:.3g} (max |output difference| on "
                          f"{len(rows)} rows; model.conversion_tolerance {tolerance:g}): refused")
    return Conversion(diff, len(rows), tolerance)


def evaluate_pretrained(model: keras.Model, data: Splits) -> BaselineResult:
    """The seeds' "prune my pre-trained model" flow: no training, just check and evaluate."""
    check_model_fits(model, data)
    return BaselineResult(model, keras_score(model, data.x_val, data.y_val, data.task), None, True, {})
