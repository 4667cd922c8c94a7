"""What a run's model is judged as: a multi-class classifier, a binary scorer or a regressor (numpy only).

One `Task` is chosen once per run, at validate (`choose_task`), recorded in validation.json, and read from
there by every later step. It knows how to read labels, how to stratify splits, how many output units a
model trained here gets, how outputs become predictions, its metrics (each with a direction), its primary
metric, a per-row loss for paired comparisons with a champion, and its no-skill reference.

Changes of a metric are measured in one unit per metric: percentage points for bounded scores (accuracy,
AUC, R²: (baseline - new) x 100), percent of the baseline for errors (MSE, MAE, log-loss). "Drop" is always
how much worse, whatever the direction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from shears.records import TaskRecord, ValidationRecord

TaskKind = Literal["multiclass", "binary", "regression"]
TaskSetting = Literal["auto", "multiclass", "binary", "regression"]
OutputKind = Literal["logits", "probabilities", "values"]
Direction = Literal["higher", "lower"]
TASK_KINDS: tuple[TaskKind, ...] = ("multiclass", "binary", "regression")


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str  # how tables name it
    direction: Direction
    unit: Literal["pp", "%"]  # what a change is measured in (see the module docstring)


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("accuracy", "accuracy", "higher", "pp"),
    MetricInfo("auc", "AUC", "higher", "pp"),
    MetricInfo("log_loss", "log-loss", "lower", "%"),
    MetricInfo("mse", "MSE", "lower", "%"),
    MetricInfo("mae", "MAE", "lower", "%"),
    MetricInfo("r2", "R²", "higher", "pp"),
)}


def metric_info(name: str) -> MetricInfo:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


def drop(metric: str, baseline: float, new: float) -> float:
    """How much worse `new` is than `baseline` in the metric's unit (negative: better)."""
    info = metric_info(metric)
    if info.unit == "pp":
        worse = baseline - new if info.direction == "higher" else new - baseline
        return worse * 100
    scale = max(abs(baseline), 1e-12)
    worse = new - baseline if info.direction == "lower" else baseline - new
    return worse / scale * 100


def better_or_equal(metric: str, a: float, b: float) -> bool:
    return a >= b if metric_info(metric).direction == "higher" else a <= b


def sort_key(metric: str, value: float) -> float:
    """Ascending = best first."""
    return -value if metric_info(metric).direction == "higher" else value


# --------------------------------------------------------------------------- metric functions (numpy only)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) with ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_v = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    _, start, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    for s, c in zip(start, counts, strict=True):
        ranks[order[s : s + c]] = s + (c + 1) / 2.0
    return ranks


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U / (n_pos n_neg)); None when one class is absent."""
    y = np.asarray(y).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return None
    r = _ranks(np.asarray(score, dtype=np.float64))
    return float((r[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    err = pred - y
    mse = float(np.mean(err ** 2))
    var = float(np.mean((y - y.mean(axis=0)) ** 2))
    return {"mse": mse, "mae": float(np.mean(np.abs(err))), "r2": 1.0 - mse / var if var > 0 else 0.0}


# --------------------------------------------------------------------------- the task


@dataclass(frozen=True)
class Task:
    """How outputs are read and judged. `units`: the model's output units (K; 1 or 2 for binary; targets)."""

    kind: TaskKind
    num_classes: int  # K for multiclass, 2 for binary, 0 for regression
    units: int
    output: OutputKind
    reason: str = ""
    metric: str | None = None  # what gates and the search judge by (gates.metric); None: the kind's default

    @property
    def classification(self) -> bool:
        return self.kind != "regression"

    @property
    def primary(self) -> str:
        return self.metric or ("mse" if self.kind == "regression" else "accuracy")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return {"multiclass": ("accuracy",), "binary": ("accuracy", "auc", "log_loss"),
                "regression": ("mse", "mae", "r2")}[self.kind]

    def describe(self) -> str:
        if self.kind == "multiclass":
            return f"multiclass ({self.num_classes} classes, {self.output})"
        if self.kind == "binary":
            return f"binary ({self.units} output unit{'s' if self.units > 1 else ''}, {self.output})"
        return f"regression ({self.units} output{'s' if self.units > 1 else ''})"

    # labels and splits
    def labels(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y).astype(np.float32 if self.kind == "regression" else np.int64)

    def stratify(self, y: np.ndarray, bins: int = 10) -> np.ndarray:
        """What a stratified split balances: the classes, or quantile bins of a continuous target."""
        if self.classification:
            return np.asarray(y).astype(np.int64)
        v = np.asarray(y, dtype=np.float64).reshape(len(y), -1)[:, 0]
        n_bins = max(2, min(bins, len(v) // 20))
        edges = np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1]))
        return np.asarray(np.searchsorted(edges, v, side="right"))

    # outputs
    def positive_probability(self, outputs: np.ndarray) -> np.ndarray:
        out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
        if out.shape[1] == 1:
            return out[:, 0] if self.output == "probabilities" else _sigmoid(out[:, 0])
        probs = out if self.output == "probabilities" else _softmax(out)
        return np.asarray(probs[:, 1])

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        """Class ids (argmax; threshold 0.5 on a probability, or the sign of a logit), or the values."""
        out = np.asarray(outputs)
        if self.kind == "regression":
            return out.reshape(len(out), -1)[:, 0] if self.units == 1 else out
        if self.kind == "binary" and out.reshape(len(out), -1).shape[1] == 1:
            flat = out.reshape(len(out))
            return (flat >= 0.5).astype(np.int64) if self.output == "probabilities" else (flat >= 0).astype(np.int64)
        return np.asarray(np.argmax(out, axis=-1))

    def metrics(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
        y = np.asarray(y)
        if self.kind == "regression":
            return {k: round(v, 6) for k, v in regression_metrics(y, self.predict(outputs)).items()}
        out = {"accuracy": float(np.mean(self.predict(outputs) == y.astype(np.int64)))}
        if self.kind == "binary":
            p = self.positive_probability(outputs)
            auc = roc_auc(y, p)
            if auc is not None:
                out["auc"] = auc
            out["log_loss"] = log_loss(y, p)
        return {k: round(v, 6) for k, v in out.items()}

    def row_loss(self, outputs: np.ndarray, y: np.ndarray, kind: Literal["squared", "absolute"] = "squared"
                 ) -> np.ndarray:
        """Per-row loss for paired tests: 0/1 error for classifiers; squared (or absolute) error for regression."""
        if self.classification:
            return np.asarray(self.predict(outputs) != np.asarray(y).astype(np.int64), dtype=np.float64)
        err = np.asarray(self.predict(outputs), dtype=np.float64).reshape(len(y), -1) - \
            np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        return np.asarray((err ** 2 if kind == "squared" else np.abs(err)).mean(axis=1))

    def no_skill(self, y_train: np.ndarray, y_eval: np.ndarray) -> dict[str, float]:
        """The metrics of the constant answer: the majority class (of the evaluated split, as before), the
        positive rate, or the training mean (MSE) and median (MAE)."""
        y_eval = np.asarray(y_eval)
        if len(y_eval) == 0:
            return {}
        if self.classification:
            counts = np.bincount(y_eval.astype(np.int64))
            out = {"accuracy": float(counts.max() / counts.sum())}
            if self.kind == "binary":
                rate = float(np.mean(np.asarray(y_train).astype(np.int64) == 1))
                out["auc"] = 0.5
                out["log_loss"] = log_loss(y_eval.astype(np.int64), np.full(len(y_eval), rate))
            return {k: round(v, 6) for k, v in out.items()}
        yt = np.asarray(y_train, dtype=np.float64)
        mean = regression_metrics(y_eval, np.full(len(y_eval), float(np.mean(yt))))
        median = regression_metrics(y_eval, np.full(len(y_eval), float(np.median(yt))))
        return {"mse": round(mean["mse"], 6), "mae": round(median["mae"], 6), "r2": round(mean["r2"], 6)}


# --------------------------------------------------------------------------- choosing the task


@dataclass(frozen=True)
class OutputLayer:
    """A given model's output, read from its config: units (None when unknown) and final activation."""

    units: int | None
    activation: str | None


def integer_valued(y: np.ndarray) -> bool:
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer):
        return True
    finite = y[np.isfinite(y)] if np.issubdtype(y.dtype, np.floating) else y
    return bool(finite.size) and bool(np.all(np.mod(finite, 1) == 0))


class TaskError(ValueError):
    """The task asked for (or the model's output) does not fit the labels: a config error, one line."""


def _output_kind(activation: str | None) -> OutputKind:
    return "probabilities" if activation in ("softmax", "sigmoid") else "logits"


def choose_task(setting: TaskSetting, y: np.ndarray, *, num_classes: int | None = None,
                output: OutputLayer | None = None, class_names: bool = False) -> Task:
    """The run's task: `setting`, or with `auto` the given model's output layer, else the labels.

    y: every label the data holds (NaN allowed: validation reports it). Raises TaskError when the labels
    cannot be what the task (or the model) needs.
    """
    finite = np.asarray(y)
    if np.issubdtype(finite.dtype, np.floating):
        finite = finite[np.isfinite(finite)]
    ints = class_names or integer_valued(finite)
    distinct = np.unique(finite)
    k = num_classes if num_classes is not None else len(distinct)
    units = output.units if output is not None else None
    act = output.activation if output is not None else None
    kind: TaskKind
    if setting != "auto":
        kind, why = setting, "task: " + setting + " in the config"
    elif units == 1 and act == "sigmoid":
        kind, why = "binary", "the model has one sigmoid output unit"
    elif units == 1:
        two = ints and set(distinct.tolist()) <= {0, 1}
        kind = "binary" if two else "regression"
        why = (f"the model has one {act or 'linear'} output unit and the labels are "
               + ("two integer classes (a logit)" if two else "continuous"))
    elif units is not None and units >= 2:
        if not ints:
            kind, why = "regression", f"the model has {units} output units and the labels are continuous"
        else:
            kind = "binary" if units == 2 and k <= 2 else "multiclass"
            why = f"the model has {units} output units ({act or 'logits'}) and the labels are {k} integer classes"
    elif ints:
        kind = "binary" if k == 2 else "multiclass"
        why = f"the labels are {k} integer-valued classes (no model given)"
    else:
        kind, why = "regression", "the labels are continuous (no model given)"

    if kind == "regression":
        n = units or 1
        if class_names:
            raise TaskError("task regression: the labels are class names, not numbers")
        return Task("regression", 0, n, "values", why)
    if not ints:
        sample = [float(v) for v in distinct[:3]]
        raise TaskError(f"task {kind}: the labels are not integer class ids (e.g. {sample}); "
                        "a continuous target needs task: regression")
    if kind == "binary":
        bad = [int(v) if float(v).is_integer() else v for v in sorted(set(distinct.tolist()) - {0, 1})]
        if bad:
            raise TaskError(f"task binary ({why}): labels must be 0 or 1, found {bad[:5]}")
        if units is not None and units > 2:
            raise TaskError(f"the model has {units} output units but the labels hold 2 classes")
        n_units = units or 1
        return Task("binary", 2, n_units, _output_kind(act) if output else "logits", why)
    if units is not None and units != k:
        raise TaskError(f"the model has {units} output unit(s) but the labels hold {k} classes"
                        + ("" if num_classes is not None else " (set validation.num_classes if some are absent)"))
    if units is not None and units == 1:
        raise TaskError("task multiclass: the model has one output unit")
    return Task("multiclass", units or k, units or k, _output_kind(act) if output else "logits", why)


def task_record(task: Task) -> TaskRecord:
    return TaskRecord(kind=task.kind, num_classes=task.num_classes, units=task.units, output=task.output,
                      reason=task.reason, primary=task.primary)


def task_of(validation: ValidationRecord) -> Task:
    """The task validate recorded (a run from before tasks had kinds: multiclass over num_classes logits)."""
    rec = validation.task
    if rec is None:
        return Task("multiclass", validation.num_classes, validation.num_classes, "logits",
                    "recorded before tasks had kinds")
    return Task(rec.kind, rec.num_classes, rec.units, rec.output, rec.reason, rec.primary)


def with_metric(task: Task, metric: str | None) -> Task:
    """The task judged by `metric` (gates.metric); it must be one of the task's metrics."""
    if metric is None:
        return task
    if metric not in task.metric_names:
        raise TaskError(f"gates.metric {metric} is not a metric of a {task.kind} task; "
                        f"its metrics: {', '.join(task.metric_names)}")
    return replace(task, metric=metric)
