"""Model builders named in config as 'module:function'. Each takes (input_shape, num_classes) and
returns an uncompiled Keras model whose output is logits."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from shears.errors import ConfigError
from shears.keras.allowlist import check_builder
from shears.keras.tfcompat import keras

Builder = Callable[[tuple[int, ...], int], Any]


def _image_input(input_shape: tuple[int, ...]) -> list[Any]:
    layers: list[Any] = [keras.layers.InputLayer(input_shape=input_shape, name="input")]
    if len(input_shape) == 2:
        layers.append(keras.layers.Reshape((*input_shape, 1), name="reshape"))
    return layers


def small_cnn(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Default for image arrays: Conv32 -> Dense128 -> logits (150k params on 8x8 digits)."""
    return keras.Sequential(
        [
            *_image_input(input_shape),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(128, activation="relu", name="dense"),
            keras.layers.Dense(num_classes, name="logits"),
        ],
        name="small_cnn",
    )


def tutorial_cnn(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The TF pruning tutorial's model: Reshape -> Conv2D 12 3x3 -> MaxPool 2 -> Flatten -> Dense."""
    return keras.Sequential(
        [
            *_image_input(input_shape),
            keras.layers.Conv2D(12, 3, activation="relu", name="conv"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(num_classes, name="logits"),
        ],
        name="tutorial_cnn",
    )


def mlp(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Default for tabular features: two hidden ReLU layers."""
    return keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=input_shape, name="input"),
            keras.layers.Dense(128, activation="relu", name="hidden1"),
            keras.layers.Dense(64, activation="relu", name="hidden2"),
            keras.layers.Dense(num_classes, name="logits"),
        ],
        name="mlp",
    )


def tabular_mlp(input_shape: tuple[int, ...], units: int) -> keras.Model:
    """Tabular regressors and binary scorers: the regression tutorial's Dense(128, relu) with a second hidden
    layer, then Dense(units): one linear output, a value or the logit of the positive class. (The tutorial's
    single hidden layer reaches R² 0.68 on Friedman #1 in the default 10 epochs; this one 0.80, 0.92 in 30.)"""
    return keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=input_shape, name="input"),
            keras.layers.Dense(128, activation="relu", name="hidden1"),
            keras.layers.Dense(128, activation="relu", name="hidden2"),
            keras.layers.Dense(units, name="output"),
        ],
        name="tabular_mlp",
    )


TABULAR_SCORER = "shears.keras.builders:tabular_mlp"
DEFAULT_BUILDERS = {"image": "shears.keras.builders:small_cnn", "tabular": "shears.keras.builders:mlp"}


# Builder modules as configs written for Shears 0.1 name them (the library was the `tasks` package then).
LEGACY_MODULES = {"tasks.models": __name__}


def resolve_builder(spec: str) -> Builder:
    """Import 'module:function' from an allowed module (checked before importing); bad specs are config errors."""
    module_name, func_name = check_builder(spec)
    module_name = LEGACY_MODULES.get(module_name, module_name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"model.builder '{spec}': cannot import {module_name} ({exc})") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"model.builder '{spec}': {module_name} has no function {func_name}")
    return func
