"""Compiling and scoring models the same way in every stage (baseline, prune fine-tune, checks), by the task."""

from __future__ import annotations

from typing import Any

import numpy as np

from shears.keras.tfcompat import keras
from shears.task import Task


def compile_for_task(model: keras.Model, learning_rate: float, task: Task | None = None) -> None:
    """Adam + the task's loss: sparse categorical cross-entropy (K units), binary cross-entropy (one unit) or
    MSE. `from_logits` is what the task recorded from the model's final activation (never tf_keras' silent
    recovery of logits from a softmax). No task: logits over classes (what every Shears classifier emits)."""
    logits = task is None or task.output == "logits"
    loss: Any
    metrics: list[Any]
    if task is not None and task.kind == "regression":
        loss, metrics = keras.losses.MeanSquaredError(), ["mae"]
    elif task is not None and task.units == 1:
        loss = keras.losses.BinaryCrossentropy(from_logits=logits)
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if logits else 0.5)]
    else:
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(from_logits=logits), ["accuracy"]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=metrics)


def compile_for_classification(model: keras.Model, learning_rate: float) -> None:
    compile_for_task(model, learning_rate, None)


def model_outputs(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=512, verbose=0))


def keras_metrics(model: keras.Model, x: np.ndarray, y: np.ndarray, task: Task) -> dict[str, float]:
    """Every metric of the task, from the model's outputs."""
    return task.metrics(model_outputs(model, x), y)


def keras_score(model: keras.Model, x: np.ndarray, y: np.ndarray, task: Task) -> float:
    """The task's primary metric (accuracy for classifiers: the same figure as keras_accuracy)."""
    return float(keras_metrics(model, x, y, task)[task.primary])


def predict_classes(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Top-1 class per row (works for logits or probabilities, compiled or not)."""
    logits = model.predict(x, batch_size=512, verbose=0)
    return np.asarray(np.argmax(logits, axis=-1))


def keras_accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy from predictions."""
    return float(np.mean(predict_classes(model, x) == y))


def history_dict(hist: Any) -> dict[str, list[float]]:
    """A fit's History as plain floats per metric (what records and plots take)."""
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}
