"""Compiling and scoring classifiers the same way in every stage (baseline, prune fine-tune, checks)."""

from __future__ import annotations

from typing import Any

import numpy as np

from shears.keras.tfcompat import keras


def compile_for_classification(model: keras.Model, learning_rate: float) -> None:
    """Adam + sparse categorical cross-entropy on logits: what every Shears builder emits."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


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
