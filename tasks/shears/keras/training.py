"""Compiling and scoring models the same way in every stage (baseline, prune fine-tune, checks), by the task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shears.keras.tfcompat import keras, tf
from shears.task import Task


@dataclass(frozen=True)
class Distill:
    """Knowledge distillation in a fine-tune: the baseline as teacher. `alpha` weighs the hard labels' loss,
    1 - alpha the soft targets' (the teacher's outputs softened at `temperature`, scaled by its square so their
    gradients keep their size, as Hinton et al. do). `teacher`: the baseline's outputs on the training rows,
    computed once and carried with the settings, so no fine-tune can distil without them."""

    temperature: float
    alpha: float
    teacher: np.ndarray | None = field(default=None, compare=False, repr=False)


class DistillLoss(keras.losses.Loss):
    """The task's loss on the labels mixed with the loss against the teacher's outputs, in one training step.

    The targets it is fitted on are [label, teacher output...] per row (`distill_targets`), so `fit` shuffles them
    together, and pruning, clustering and QAT fine-tunes keep their own callbacks: no second training loop."""

    def __init__(self, task: Task, distill: Distill, name: str = "distill") -> None:
        super().__init__(name=name)
        self.kind, self.units, self.logits = task.kind, task.units, task.output == "logits"
        self.t, self.alpha = float(distill.temperature), float(distill.alpha)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        label, teacher = y_true[:, :1], y_true[:, 1:]
        y_pred = tf.cast(y_pred, "float32")
        if self.kind == "regression":
            hard = tf.reduce_mean(tf.square(y_pred - label), axis=-1)
            soft = tf.reduce_mean(tf.square(y_pred - teacher), axis=-1)
            return self.alpha * hard + (1 - self.alpha) * soft
        if self.units == 1:  # one unit: a logit, or a probability turned back into one
            s, t = (y_pred, teacher) if self.logits else (_logit(y_pred), _logit(teacher))
            hard = tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=s)[:, 0]
            soft = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.sigmoid(t / self.t), logits=s / self.t)[:, 0]
        else:  # K units: logits, or probabilities (their logs are logits up to a constant)
            s, t = (y_pred, teacher) if self.logits else (_log(y_pred), _log(teacher))
            hard = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(label[:, 0], "int32"), logits=s)
            soft = tf.nn.softmax_cross_entropy_with_logits(labels=tf.nn.softmax(t / self.t), logits=s / self.t)
        return self.alpha * hard + (1 - self.alpha) * soft * self.t * self.t


_EPS = 1e-7


def _log(p: Any) -> Any:
    return tf.math.log(tf.clip_by_value(p, _EPS, 1.0))


def _logit(p: Any) -> Any:
    p = tf.clip_by_value(p, _EPS, 1 - _EPS)
    return tf.math.log(p / (1 - p))


def distill_targets(y: np.ndarray, teacher_outputs: np.ndarray) -> np.ndarray:
    """[label, teacher output...] per row: what a distilling fine-tune is fitted on (rows stay together)."""
    labels = np.asarray(y, dtype=np.float32).reshape(len(y), -1)[:, :1]
    return np.concatenate([labels, np.asarray(teacher_outputs, dtype=np.float32).reshape(len(y), -1)], axis=1)


def fit_targets(y: np.ndarray, distill: Distill | None) -> np.ndarray:
    """The labels, or (distilling) the labels with the teacher's outputs."""
    if distill is None:
        return y
    if distill.teacher is None:
        raise ValueError("a distilling fine-tune needs the teacher's outputs on the training rows")
    return distill_targets(y, distill.teacher)


def compile_for_task(model: keras.Model, learning_rate: float, task: Task | None = None,
                     distill: Distill | None = None) -> None:
    """Adam + the task's loss: sparse categorical cross-entropy (K units), binary cross-entropy (one unit) or
    MSE. `from_logits` is what the task recorded from the model's final activation (never tf_keras' silent
    recovery of logits from a softmax). No task: logits over classes (what every Shears classifier emits)."""
    if distill is not None and task is not None:  # no Keras metrics: the targets hold the teacher's outputs too
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=DistillLoss(task, distill))
        return
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
