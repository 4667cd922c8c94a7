"""shears.task: choosing the task, reading outputs, metrics with directions, no-skill references (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest
from shears.task import (
    OutputLayer,
    Task,
    TaskError,
    choose_task,
    drop,
    log_loss,
    metric_info,
    roc_auc,
    with_metric,
)


def test_auto_with_no_model_follows_the_labels() -> None:
    assert choose_task("auto", np.array([0, 1, 2, 1, 0])).kind == "multiclass"
    binary = choose_task("auto", np.array([0.0, 1.0, 1.0, 0.0]))
    assert (binary.kind, binary.units, binary.output) == ("binary", 1, "logits")
    reg = choose_task("auto", np.array([0.5, 1.25, 3.0, np.nan]))
    assert (reg.kind, reg.units, reg.primary) == ("regression", 1, "mse")
    assert "continuous" in reg.reason


def test_auto_with_a_model_follows_its_output_layer() -> None:
    sigmoid = choose_task("auto", np.array([0, 1, 1]), output=OutputLayer(1, "sigmoid"))
    assert (sigmoid.kind, sigmoid.output) == ("binary", "probabilities")
    logit = choose_task("auto", np.array([0, 1, 1]), output=OutputLayer(1, None))
    assert (logit.kind, logit.output) == ("binary", "logits")  # one linear unit + two integer classes: a logit
    linear = choose_task("auto", np.array([0.1, 2.0, 7.5]), output=OutputLayer(1, None))
    assert linear.kind == "regression"
    two = choose_task("auto", np.array([0, 1, 0]), output=OutputLayer(2, "softmax"))
    assert (two.kind, two.units, two.output) == ("binary", 2, "probabilities")
    assert choose_task("auto", np.arange(10) % 10, output=OutputLayer(10, None)).kind == "multiclass"


@pytest.mark.parametrize(("setting", "labels", "output", "needle"), [
    ("auto", np.array([0, 1, 2]), OutputLayer(1, "sigmoid"), "labels must be 0 or 1, found [2]"),
    ("auto", np.array([0, 1, 0, 1]), OutputLayer(3, None), "3 output unit(s) but the labels hold 2 classes"),
    ("multiclass", np.array([0.5, 1.7]), None, "not integer class ids"),
    ("binary", np.array([0.2, 0.9]), None, "not integer class ids"),
])
def test_labels_that_cannot_be_the_task_are_refused_in_one_line(setting: str, labels: np.ndarray,
                                                                 output: OutputLayer | None, needle: str) -> None:
    with pytest.raises(TaskError) as err:
        choose_task(setting, labels, output=output)  # type: ignore[arg-type]
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_outputs_become_predictions_by_kind() -> None:
    prob = Task("binary", 2, 1, "probabilities")
    assert prob.predict(np.array([[0.2], [0.5], [0.9]])).tolist() == [0, 1, 1]
    logit = Task("binary", 2, 1, "logits")
    assert logit.predict(np.array([[-0.1], [0.0], [3.0]])).tolist() == [0, 1, 1]
    assert Task("multiclass", 3, 3, "logits").predict(np.array([[1, 5, 2], [9, 0, 0]])).tolist() == [1, 0]
    assert Task("regression", 0, 1, "values").predict(np.array([[1.5], [2.5]])).tolist() == [1.5, 2.5]


def test_binary_metrics_accuracy_auc_and_log_loss() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([[0.1], [0.4], [0.35], [0.8]])
    m = Task("binary", 2, 1, "probabilities").metrics(p, y)
    assert m["accuracy"] == 0.75 and m["auc"] == 0.75  # the one misordered pair: 0.4 above 0.35
    assert m["log_loss"] == pytest.approx(log_loss(y, p[:, 0]), abs=1e-6)
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.3])) is None  # one class: no AUC
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5  # ties count half


def test_regression_metrics_and_the_mean_predictor() -> None:
    task = Task("regression", 0, 1, "values")
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = task.metrics(np.array([[1.0], [2.0], [3.0], [5.0]]), y)
    assert (m["mse"], m["mae"]) == (0.25, 0.25) and m["r2"] == pytest.approx(0.8)
    ref = task.no_skill(y_train=np.array([2.0, 3.0]), y_eval=y)
    assert ref["mse"] == pytest.approx(1.25) and ref["r2"] == pytest.approx(0.0)
    assert task.row_loss(np.array([[1.0], [4.0]]), np.array([2.0, 2.0])).tolist() == [1.0, 4.0]


def test_drop_is_how_much_worse_in_the_metrics_unit() -> None:
    assert drop("accuracy", 0.95, 0.93) == pytest.approx(2.0)  # pp
    assert drop("mse", 2.0, 2.5) == pytest.approx(25.0)  # % of the baseline, lower is better
    assert drop("mse", 2.0, 1.5) == pytest.approx(-25.0)  # better is negative
    assert drop("r2", 0.9, 0.85) == pytest.approx(5.0)
    assert metric_info("mae").direction == "lower"


def test_regression_strata_are_quantile_bins_not_truncated_values() -> None:
    task = Task("regression", 0, 1, "values")
    y = np.linspace(0.0, 1.0, 400, dtype=np.float32)
    bins = task.stratify(y)
    assert len(np.unique(bins)) == 10 and np.bincount(bins).min() >= 39
    assert task.labels(np.array([0.25, 1.75])).dtype == np.float32  # never cast to int


def test_gates_metric_must_belong_to_the_task() -> None:
    assert with_metric(Task("binary", 2, 1, "logits"), "auc").primary == "auc"
    with pytest.raises(TaskError, match="not a metric of a regression task"):
        with_metric(Task("regression", 0, 1, "values"), "auc")
