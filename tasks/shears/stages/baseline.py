"""The baseline model — trained from a builder with fixed seeds, or a user's pre-trained model."""

from __future__ import annotations

from dataclasses import dataclass, field

from shears.config import ModelConfig
from shears.errors import ConfigError
from shears.keras.builders import DEFAULT_BUILDERS, resolve_builder
from shears.keras.tfcompat import keras, set_seed
from shears.keras.training import compile_for_classification, keras_accuracy
from shears.stages.data import Splits


@dataclass
class BaselineResult:
    model: keras.Model
    accuracy: float
    builder: str | None
    pretrained: bool
    history: dict[str, list[float]] = field(default_factory=dict)


def check_model_fits(model: keras.Model, data: Splits) -> None:
    """A pre-trained model must accept the data's features and emit one score per class."""
    in_shape = tuple(model.input_shape[1:])
    data_shape = data.input_shape
    if tuple(d for d in in_shape) != data_shape:
        raise ConfigError(f"model input shape {in_shape} does not match data feature shape {data_shape}")
    out = model.output_shape[-1]
    if out != data.num_classes:
        raise ConfigError(f"model has {out} outputs but the data has {data.num_classes} classes")


def train_baseline(data: Splits, cfg: ModelConfig) -> BaselineResult:
    """Build the configured (or kind-default) model and train it with seeds fixed."""
    spec = cfg.builder or DEFAULT_BUILDERS[data.kind]
    builder = resolve_builder(spec)
    keras.backend.clear_session()  # auto-generated layer names end up in the files: keep them stable
    set_seed(cfg.seed)
    model = builder(data.input_shape, data.num_classes)
    if not isinstance(model, keras.Model):
        raise ConfigError(f"model.builder '{spec}' returned {type(model).__name__}, not a tf.keras Model")
    check_model_fits(model, data)
    compile_for_classification(model, cfg.learning_rate)
    hist = model.fit(
        data.x_train,
        data.y_train,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        validation_split=cfg.validation_split,
        shuffle=True,
        verbose=0,
    )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return BaselineResult(model, keras_accuracy(model, data.x_test, data.y_test), spec, False, history)


def evaluate_pretrained(model: keras.Model, data: Splits) -> BaselineResult:
    """The seeds' "prune my pre-trained model" flow: no training, just check and evaluate."""
    check_model_fits(model, data)
    return BaselineResult(model, keras_accuracy(model, data.x_test, data.y_test), None, True, {})
