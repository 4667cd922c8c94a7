"""`shears run --model` with Keras 3 files made here: pruned end to end, proven equal, given back as Keras 3."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shears.cli.main import app
from typer.testing import CliRunner

from tests.cli.test_run import _fast_yaml, _manifests
from tests.conftest import npz_bytes
from tests.keras import k3models

runner = CliRunner()
pytestmark = pytest.mark.tf


def _run(tmp_path: Path, model_file: Path, data: Path, run_id: str, store: Path | None = None,
         **cfg: dict) -> tuple:
    store = store or tmp_path / "store"
    result = runner.invoke(app, ["run", "--config", str(_fast_yaml(tmp_path, **cfg)), "--model", str(model_file),
                                 "--data", str(data), "--out", str(store), "--run-id", run_id])
    return result, store / "runs" / run_id


def _check_published(run: Path, origin: str, tolerance: float = 1e-5) -> dict:
    """Pruned, stripped, converted, sparsity reached, equivalence recorded, and a Keras 3 copy Keras 3 loads."""
    manifest = json.loads((run / "manifest.json").read_text())
    assert "models/stripped.keras" in manifest["files"] and "models/model_dynamic_range.tflite" in manifest["files"]
    baseline = json.loads((run / "baseline.json").read_text())
    assert baseline["origin"] == origin
    assert baseline["conversion_max_abs_diff"] <= tolerance and baseline["conversion_samples"] > 0
    sparsity = json.loads((run / "sparsity.json").read_text())
    assert sparsity["passed"] and all(r["sparsity"] >= r["target"] - 0.01 for r in sparsity["layers"] if r["target"])
    k3 = k3models.k3()
    back = k3.saving.load_model(run / "models" / "stripped.keras", safe_mode=True)
    assert type(back).__module__.startswith("keras.")
    kernels = [w for w in back.get_weights() if w.ndim >= 2]
    # the pruned weights, in the user's format
    assert max(float(np.mean(k == 0)) for k in kernels) >= sparsity["target"] - 0.01
    assert origin in (run / "report.html").read_text()
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def cnn_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("k3cnn")
    model = k3models.functional_cnn()
    model.save(d / "cnn.keras")
    model.save(d / "cnn.h5")
    x, y = k3models.digits_images()  # (N, 8, 8): no channel axis, the model wants (8, 8, 1)
    (d / "digits.npz").write_bytes(npz_bytes(x=x, y=y))
    return {"keras": d / "cnn.keras", "h5": d / "cnn.h5", "data": d / "digits.npz"}


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras3_functional_cnn_runs_end_to_end(cnn_files: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    result, run = _run(tmp_path, cnn_files[fmt], cnn_files["data"], f"k3-{fmt}")
    assert result.exit_code == 0, result.output
    assert "data: channel axis added" in result.stdout
    assert f"model: Keras 3 .{fmt}; rebuilt in tf_keras" in result.stdout
    validation = json.loads((run / "validation.json").read_text())
    assert validation["channel_axis"] == "added" and validation["model_input_shape"] == [8, 8, 1]
    metrics = _check_published(run, f"Keras 3 .{fmt}")
    names = [a["name"] for a in metrics["artifacts"]]
    assert "stripped_keras3" in names


def test_keras3_mlp_on_csv_with_class_names(tmp_path: Path) -> None:
    """Class names as labels end to end: ids by sorted name, labels.txt published and listed, report shows it;
    a later run whose names differ cannot be compared with that champion (a gate failure, not a silent one)."""
    csv = k3models.iris_csv(tmp_path / "iris.csv")
    model = tmp_path / "mlp.keras"
    k3models.sequential_mlp(csv).save(model)
    loose = {"gates": {"min_compression_ratio": 1.0}, "validation": {"min_rows": 50},
             "prune": {"epochs": 10, "final_sparsity": 0.5}}
    result, run = _run(tmp_path, model, csv, "iris", **loose)
    assert result.exit_code == 0, result.output
    assert "0 setosa, 1 versicolor, 2 virginica" in result.stdout
    assert (run / "models" / "labels.txt").read_text() == "setosa\nversicolor\nvirginica\n"
    assert "models/labels.txt" in json.loads((run / "manifest.json").read_text())["files"]
    assert json.loads((run / "validation.json").read_text())["class_names"] == ["setosa", "versicolor", "virginica"]
    assert "0: setosa, 1: versicolor, 2: virginica" in (run / "report.html").read_text()
    _check_published(run, "Keras 3 .keras")

    renamed = tmp_path / "renamed.csv"
    renamed.write_text(csv.read_text().replace("setosa", "bristly"))
    again, _ = _run(tmp_path, model, renamed, "iris-renamed", store=run.parents[1], **loose)
    assert again.exit_code == 4, again.output
    gates = json.loads((run.parents[1] / "rejected" / "iris-renamed" / "gates.json").read_text())
    assert not gates["comparison"]["comparable"] and "other labels" in gates["comparison"]["reason"]


def test_keras3_mobilenet_v2_runs_end_to_end(tmp_path: Path) -> None:
    """keras.applications.MobileNetV2 (alpha 0.35, 32x32x3, 10 classes), four epochs on learnable images."""
    x, y = k3models.learnable_images(n=300)
    model = tmp_path / "mnv2.keras"
    k3models.mobilenet_v2(x, y).save(model)
    data = tmp_path / "images.npz"
    data.write_bytes(npz_bytes(x=x, y=y))
    # 17 inverted-residual blocks with trained BatchNorm statistics: the two frameworks' float32 kernels
    # differ by ~1e-5 in the softmax outputs (1.2e-05 on CI's machine), so this model runs at 1e-4. Pruned to
    # 0.5, not 0.8: 0.8 on all 36 layers with one fine-tune epoch (10 steps) collapsed it to a constant model in
    # one two-process run (accuracy 0.60 -> 0.08), which the no-skill floor of every deployment rightly fails
    loose = {"gates": {"min_accuracy": None, "max_accuracy_drop_pp": None, "min_skill_margin_pp": None,
                       "min_compression_ratio": 1.0}, "prune": {"epochs": 1, "final_sparsity": 0.5},
             "convert": {"variants": ["dynamic_range"]}, "model": {"conversion_tolerance": 1e-4}}
    result, run = _run(tmp_path, model, data, "mnv2", **loose)
    assert result.exit_code == 0, result.output
    _check_published(run, "Keras 3 .keras", tolerance=1e-4)


@pytest.mark.parametrize(("make", "needle"), k3models.UNSUPPORTED)
def test_unsupported_keras3_models_fail_before_training(tmp_path: Path, make: object, needle: str) -> None:
    model = tmp_path / "m.keras"
    make().save(model)  # type: ignore[operator]
    x, y = k3models.digits_images()
    data = tmp_path / "d.npz"
    data.write_bytes(npz_bytes(x=x, y=y))
    result, _ = _run(tmp_path, model, data, "bad")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and needle in errors[0]
    assert _manifests(tmp_path / "store") == [] and not list((tmp_path / "store").rglob("*.h5"))


def test_a_broken_weight_fails_the_run_naming_the_difference(cnn_files: dict[str, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """One weight of the rebuild changed on purpose: the equivalence check must catch it, with the number.

    The rebuild in this process (from what the loading child returned) is broken; the child's own outputs
    of the Keras 3 model are the reference it is checked against."""
    from shears.keras import modelio

    real = modelio.model_from_plain

    def broken(tf_keras_json: str, weights: list, name: str) -> object:
        model = real(tf_keras_json, weights, name)
        kernel, bias = model.get_layer("logits").get_weights()
        kernel[0, 0] += 0.5
        model.get_layer("logits").set_weights([kernel, bias])
        return model

    monkeypatch.setattr(modelio, "model_from_plain", broken)
    result, _ = _run(tmp_path, cnn_files["keras"], cnn_files["data"], "broken")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "differs from it by" in errors[0] and "on 512 rows" in errors[0], result.stderr
    failure = json.loads((tmp_path / "store" / "rejected" / "broken" / "failure.json").read_text())
    assert failure["stage"] == "baseline" and "differs from it by" in failure["reason"]
    assert _manifests(tmp_path / "store") == []
