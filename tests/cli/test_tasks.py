"""Regression and binary models through `shears run`: the task chosen once, judged by its own metrics, the
published .tflite re-evaluated outside Shears, the champion compared on the same rows per task, and each bad
input refused in one line with its exit code (the seeds' cases: Friedman #1, a sigmoid scorer, two logits)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from shears.cli.main import app
from typer.testing import CliRunner

from tests.conftest import npz_bytes

runner = CliRunner()
pytestmark = pytest.mark.tf

# Small and quick; the search off except where a test turns it on. The gates are the regression defaults
# (max_change_pct 5, min_skill_margin_pct 10) with the compression bar lowered for these tiny models.
QUICK: dict[str, Any] = {
    "model": {"epochs": 30},
    "prune": {"epochs": 2, "final_sparsity": 0.5},
    "convert": {"variants": ["dynamic_range", "int8"], "deployable": "int8", "latency_runs": 3},
    "gates": {"min_compression_ratio": 1.5},
    "search": {"enabled": False},
}


def _config(tmp_path: Path, name: str = "c.json", **sections: dict[str, Any]) -> Path:
    raw = json.loads(json.dumps(QUICK))
    for key, value in sections.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    path = tmp_path / name
    path.write_text(json.dumps(raw))  # JSON is YAML
    return path


def _run(tmp_path: Path, data: Path, run_id: str, *args: str, store: Path | None = None, **cfg: Any) -> Any:
    return runner.invoke(app, ["run", "--config", str(_config(tmp_path, f"{run_id}.json", **cfg)), "--data",
                               str(data), "--out", str(store or tmp_path / "s"), "--run-id", run_id, *args])


def _errors(result: Any) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.startswith("error")]


def friedman_csv(path: Path, n: int = 1200, noise: float = 1.0, seed: int = 0) -> Path:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=n, n_features=10, noise=noise, random_state=seed)
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    df["y"] = y
    df.to_csv(path, index=False)
    return path


def _litert_outputs(model: bytes, x: np.ndarray) -> np.ndarray:
    """A .tflite run outside Shears: ai_edge_litert alone, int8 inputs/outputs (de)quantized by hand."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], [len(x), *x.shape[1:]])
    interp.allocate_tensors()
    feed = x.astype(np.float32)
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        feed = np.clip(np.round(feed / scale + zero), -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], feed)
    interp.invoke()
    raw = interp.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        return (raw.astype(np.float32) - zero) * scale
    return np.asarray(raw, dtype=np.float32)


def _deployable_gives_its_recorded_mse(run: Path, csv: Path, dep: dict[str, Any]) -> np.ndarray:
    """The published .tflite on the same test rows, rebuilt from the data with the recorded seeds (the split is
    deterministic), run outside Shears: the recorded MSE, outputs not collapsed to a few int8 levels."""
    from shears.stages.data import parse_dataset, split
    from shears.task import Task

    cfg = json.loads((run / "config.json").read_text())
    raw = parse_dataset(csv.read_bytes(), str(csv), "y")
    splits = split(raw, cfg["data"]["test_fraction"], cfg["data"]["split_seed"], 0,
                   cfg["data"]["validation_fraction"], task=Task("regression", 0, 1, "values"))
    x_test, y_test = splits.test()
    pred = _litert_outputs((run / dep["file"]).read_bytes(), x_test)[:, 0]
    assert float(np.mean((pred - y_test) ** 2)) == pytest.approx(dep["metrics"]["mse"], rel=1e-4)
    assert len(np.unique(pred)) > len(pred) // 10
    return np.asarray(y_test)


def test_friedman_regression_runs_end_to_end_and_its_tflite_gives_the_recorded_mse(tmp_path: Path) -> None:
    """The regression seed's data through the default task choice: continuous labels -> regression; the int8
    deployable keeps a float output, and run outside Shears on the same test rows it gives the recorded MSE."""
    csv = friedman_csv(tmp_path / "fr.csv")
    result = _run(tmp_path, csv, "fr", "--label-column", "y")
    assert result.exit_code == 0, result.output
    assert "task: regression (1 output): the labels are continuous (no model given)" in result.stdout
    run = tmp_path / "s" / "runs" / "fr"
    validation = json.loads((run / "validation.json").read_text())
    assert validation["task"]["kind"] == "regression" and validation["task"]["primary"] == "mse"
    assert {c["name"] for c in validation["checks"]} >= {"target finite", "target varies"}
    metrics = json.loads((run / "metrics.json").read_text())
    dep = next(a for a in metrics["artifacts"] if a["name"] == metrics["deployable"])
    assert dep["primary"] == "mse" and dep["accuracy"] is None and set(dep["metrics"]) == {"mse", "mae", "r2"}
    assert dep["metrics"]["r2"] >= 0.8
    assert metrics["no_skill"]["mse"] > dep["metrics"]["mse"] * 3  # far better than the training mean

    y_test = _deployable_gives_its_recorded_mse(run, csv, dep)
    assert validation["split_rows"]["test"] == len(y_test)
    gates = json.loads((run / "gates.json").read_text())
    names = {g["name"] for g in gates["gates"]}
    assert {"max_change_pct", "min_skill_margin_pct"} <= names and "min_accuracy" not in names
    change = next(g for g in gates["gates"] if g["name"] == "max_change_pct")
    assert "MSE" in change["reason"] and "lower is better" in change["reason"]
    card = (run / "model_card.md").read_text()
    assert "MSE" in card and "mse " in card
    pairs = metrics["deployable_outputs"]
    assert len(pairs) == len(y_test) and pairs[0][0] == pytest.approx(float(y_test[0]), abs=1e-5)
    report = (run / "report.html").read_text()
    assert "deployable: predicted vs actual, residuals" in report and "test MSE" in report


def test_friedman_with_no_config_takes_the_regression_defaults_and_passes(tmp_path: Path) -> None:
    """`shears run --data fr.csv --label-column y` and nothing else: the regression defaults fill the config
    (one line says so, config.json records them), the default search passes its gates, and the published
    .tflite run outside Shears gives the recorded MSE at R² >= 0.8, its outputs not collapsed."""
    csv = friedman_csv(tmp_path / "fr.csv", n=4000)
    result = runner.invoke(app, ["run", "--data", str(csv), "--label-column", "y", "--out", str(tmp_path / "s"),
                                 "--run-id", "fr"])
    assert result.exit_code == 0, result.output
    assert ("config: model.epochs 60, prune.epochs 60, prune.final_sparsity 0.9, search.space.epochs 60 "
            "(the task's defaults for fields the config leaves unset)") in result.stdout
    run = tmp_path / "s" / "runs" / "fr"
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["model"]["epochs"], cfg["prune"]["epochs"], cfg["search"]["space"]["epochs"]) == (60, 60, [60])
    metrics = json.loads((run / "metrics.json").read_text())
    dep = next(a for a in metrics["artifacts"] if a["name"] == metrics["deployable"])
    assert dep["metrics"]["r2"] >= 0.8
    _deployable_gives_its_recorded_mse(run, csv, dep)


def test_the_seeds_block_sparse_constant_schedule_prunes_the_regressor(tmp_path: Path) -> None:
    """ConstantSparsity 0.5 with block_size (2, 3) and MAX pooling, as the regression seed prunes its Dense."""
    csv = friedman_csv(tmp_path / "fr.csv", n=900)
    result = _run(tmp_path, csv, "blocks", "--label-column", "y",
                  prune={"schedule": "constant_sparsity", "final_sparsity": 0.5, "block_size": [2, 3],
                         "block_pooling_type": "MAX", "layers": ["hidden2"]},
                  gates={"min_compression_ratio": 1.0, "max_change_pct": 25.0})
    assert result.exit_code == 0, result.output
    sparsity = json.loads((tmp_path / "s" / "runs" / "blocks" / "sparsity.json").read_text())
    hidden = next(r for r in sparsity["layers"] if r["layer"] == "hidden2")
    assert hidden["sparsity"] >= 0.49 and hidden["passed"]


def test_a_keras3_sigmoid_scorer_on_breast_cancer_matches_a_reevaluation(tmp_path: Path) -> None:
    """Keras 3 Dense(1, sigmoid) trained with binary_crossentropy: binary with probabilities; the manifest's
    deployable accuracy (threshold 0.5) and the recorded AUC match the file evaluated outside Shears."""
    from shears.stages.data import parse_dataset, split
    from shears.task import Task, roc_auc
    from sklearn.datasets import load_breast_cancer

    from tests.keras import k3models

    k3 = k3models.k3()
    d = load_breast_cancer()
    x = ((d.data - d.data.mean(axis=0)) / d.data.std(axis=0)).astype(np.float32)
    y = d.target.astype(np.int64)
    (tmp_path / "bc.npz").write_bytes(npz_bytes(x=x, y=y))
    k3.utils.set_random_seed(0)
    model = k3.Sequential([k3.Input((30,)), k3.layers.Dense(16, activation="relu", name="hidden"),
                           k3.layers.Dense(1, activation="sigmoid", name="score")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=20, verbose=0)
    model.save(tmp_path / "scorer.keras")
    result = _run(tmp_path, tmp_path / "bc.npz", "bc", "--model", str(tmp_path / "scorer.keras"),
                  validation={"min_rows": 100, "max_class_imbalance": 3.0},
                  gates={"min_accuracy": 0.85, "min_compression_ratio": 1.0, "max_accuracy_drop_pp": 5.0})
    assert result.exit_code == 0, result.output
    assert "task: binary (1 output unit, probabilities): the model has one sigmoid output unit" in result.stdout
    run = tmp_path / "s" / "runs" / "bc"
    manifest = json.loads((run / "manifest.json").read_text())
    dep = manifest["deployable"]
    assert dep["task"] == "binary" and set(dep["metrics"]) == {"accuracy", "auc", "log_loss"}
    cfg = json.loads((run / "config.json").read_text())
    raw = parse_dataset((tmp_path / "bc.npz").read_bytes(), "bc.npz")
    x_test, y_test = split(raw, cfg["data"]["test_fraction"], cfg["data"]["split_seed"], 2,
                           cfg["data"]["validation_fraction"], task=Task("binary", 2, 1, "probabilities")).test()
    p = _litert_outputs((run / dep["file"]).read_bytes(), x_test)[:, 0]
    assert float(np.mean((p >= 0.5) == y_test)) == pytest.approx(dep["accuracy"], abs=1e-6)
    assert roc_auc(y_test, p) == pytest.approx(dep["metrics"]["auc"], abs=1e-6)
    assert dep["metrics"]["auc"] > 0.9
    assert "deployable: ROC and calibration curves" in (run / "report.html").read_text()


def test_a_two_logit_tf_keras_binary_model_is_binary_with_two_units(tmp_path: Path) -> None:
    from shears.keras.tfcompat import keras
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    x = ((d.data - d.data.mean(axis=0)) / d.data.std(axis=0)).astype(np.float32)
    (tmp_path / "bc.npz").write_bytes(npz_bytes(x=x, y=d.target.astype(np.int64)))
    inp = keras.Input((30,))
    out = keras.layers.Dense(2, name="logits")(keras.layers.Dense(16, activation="relu", name="hidden")(inp))
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, d.target, epochs=15, verbose=0)
    model.save(tmp_path / "two.h5")
    result = _run(tmp_path, tmp_path / "bc.npz", "two", "--model", str(tmp_path / "two.h5"),
                  validation={"max_class_imbalance": 3.0},
                  gates={"min_accuracy": 0.85, "min_compression_ratio": 1.0, "max_accuracy_drop_pp": 5.0})
    assert result.exit_code == 0, result.output
    validation = json.loads((tmp_path / "s" / "runs" / "two" / "validation.json").read_text())
    assert validation["task"]["kind"] == "binary" and validation["task"]["units"] == 2
    metrics = json.loads((tmp_path / "s" / "runs" / "two" / "metrics.json").read_text())
    assert "auc" in metrics["artifacts"][0]["metrics"]


def test_a_second_regression_run_on_noisier_data_is_compared_with_the_champion_on_its_rows(tmp_path: Path) -> None:
    """The champion (trained on clean Friedman #1) and the challenger (noise 3) both scored on the
    challenger's test rows: the squared-error difference with its paired interval and Wilcoxon's p."""
    store = tmp_path / "s"
    first = _run(tmp_path, friedman_csv(tmp_path / "clean.csv"), "clean", "--label-column", "y", store=store)
    assert first.exit_code == 0, first.output
    noisy = friedman_csv(tmp_path / "noisy.csv", noise=3.0, seed=1)
    second = _run(tmp_path, noisy, "noisy", "--label-column", "y", store=store,
                  gates={"max_change_pct": 50.0, "min_skill_margin_pct": 5.0, "champion_max_change_pct": 200.0})
    assert second.exit_code == 0, second.output
    gates = json.loads((store / "runs" / "noisy" / "gates.json").read_text())
    c = gates["comparison"]
    assert c["comparable"] and c["task"] == "regression" and c["metric"] == "mse"
    assert c["ci_low"] <= c["difference"] <= c["ci_high"] and 0 <= c["wilcoxon_p"] <= 1
    assert c["n"] == json.loads((store / "runs" / "noisy" / "validation.json").read_text())["split_rows"]["test"]
    gate = next(g for g in gates["gates"] if g["name"] == "champion_max_change_pct")
    assert "Wilcoxon" in gate["reason"] and "95% interval" in gate["reason"]
    assert "champion clean on this run's" in second.stdout


def _bad_csv(path: Path, y: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.uniform(size=(len(y), 4)), columns=list("abcd"))
    df["y"] = y
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("name", "labels", "code", "needle"), [
    ("nan-target", np.r_[np.linspace(0, 5, 199), np.nan], 3, "target finite"),
    ("constant-target", np.full(200, 2.5), 3, "target varies"),
])
def test_bad_regression_targets_fail_validation_in_one_line(tmp_path: Path, name: str, labels: np.ndarray,
                                                             code: int, needle: str) -> None:
    result = _run(tmp_path, _bad_csv(tmp_path / f"{name}.csv", labels), name, "--label-column", "y",
                  task="regression")
    assert result.exit_code == code, result.output
    errors = _errors(result)
    assert len(errors) == 1 and needle in errors[0], errors
    assert not (tmp_path / "s" / "runs").exists()


def test_a_sigmoid_model_with_labels_outside_0_1_and_a_3_output_model_with_2_classes_are_refused(
        tmp_path: Path) -> None:
    from shears.keras.tfcompat import keras

    def save(units: int, activation: str | None, name: str) -> Path:
        inp = keras.Input((4,))
        keras.Model(inp, keras.layers.Dense(units, activation=activation, name="out")(inp)).save(tmp_path / name)
        return tmp_path / name

    three = _bad_csv(tmp_path / "three.csv", np.arange(200) % 3)
    result = _run(tmp_path, three, "sig", "--label-column", "y", "--model", str(save(1, "sigmoid", "sig.h5")))
    assert result.exit_code == 2, result.output
    assert [e for e in _errors(result) if "labels must be 0 or 1, found [2]" in e], result.stderr

    two = _bad_csv(tmp_path / "two.csv", np.arange(200) % 2)
    result = _run(tmp_path, two, "three", "--label-column", "y", "--model", str(save(3, None, "three.h5")))
    assert result.exit_code == 2, result.output
    assert [e for e in _errors(result) if "3 output unit(s) but the labels hold 2 classes" in e], result.stderr
