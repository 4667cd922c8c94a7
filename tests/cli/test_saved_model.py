"""models/saved_model/ for TF Serving: loaded outside Shears with tf.saved_model.load, its serving_default signature
gives the stripped model's predictions and the recorded accuracy on the test rows; its kernels keep their zeros."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from shears.cli.main import app
from typer.testing import CliRunner

from tests.cli.test_run import _fast_yaml
from tests.conftest import digits_arrays, npz_bytes

runner = CliRunner()
pytestmark = pytest.mark.tf


def _digits_with_test_split(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    x, y = digits_arrays()
    data = tmp_path / "digits.npz"
    data.write_bytes(npz_bytes(x=x[:1400], y=y[:1400], x_test=x[1400:], y_test=y[1400:]))
    return data, x[1400:], y[1400:]


def test_saved_model_serves_the_stripped_model(tmp_path: Path) -> None:
    import tensorflow as tf
    import tf_keras

    data, x_test, y_test = _digits_with_test_split(tmp_path)
    store = tmp_path / "store"
    cfg = _fast_yaml(tmp_path, convert={"saved_model": True})
    result = runner.invoke(app, ["run", "--config", str(cfg), "--data", str(data), "--out", str(store),
                                 "--run-id", "sm"])
    assert result.exit_code == 0, result.output
    run = store / "runs" / "sm"
    manifest = json.loads((run / "manifest.json").read_text())
    listed = sorted(n for n in manifest["files"] if n.startswith("models/saved_model/"))
    assert {"models/saved_model/saved_model.pb", "models/saved_model/variables/variables.index"} <= set(listed)
    for name in listed:  # each file of the directory, with its sha256
        assert hashlib.sha256((run / name).read_bytes()).hexdigest() == manifest["files"][name]["sha256"]

    loaded = tf.saved_model.load(str(run / "models" / "saved_model"))
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]
    assert list(spec) == ["input"] and spec["input"].shape.as_list() == [None, 8, 8]
    served = serve(input=tf.constant(x_test))["output"].numpy()
    stripped = tf_keras.models.load_model(run / "models" / "stripped.h5", compile=False)
    assert np.max(np.abs(served - stripped.predict(x_test, verbose=0))) <= 1e-5

    metrics = {a["name"]: a for a in json.loads((run / "metrics.json").read_text())["artifacts"]}
    accuracy = float(np.mean(served.argmax(axis=1) == y_test))
    assert accuracy == pytest.approx(metrics["saved_model"]["accuracy"], abs=1e-6)
    assert accuracy == pytest.approx(metrics["stripped"]["accuracy"], abs=1e-6)
    assert metrics["saved_model"]["file"] == "models/saved_model/" and metrics["saved_model"]["raw_bytes"] > 0

    sparsity = {r["layer"]: r for r in json.loads((run / "sparsity.json").read_text())["layers"]}
    kernels = {v.name.split("/")[0]: v.numpy() for v in loaded.variables_ if v.name.endswith("kernel:0")}
    for layer, row in sparsity.items():  # the pruned zeros are in the served weights
        assert float(np.mean(kernels[layer] == 0)) == pytest.approx(row["sparsity"], abs=1e-6)
    assert "saved_model" in (run / "model_card.md").read_text()


def test_saved_model_can_be_turned_off(tmp_path: Path) -> None:
    data, _, _ = _digits_with_test_split(tmp_path)
    store = tmp_path / "store"
    cfg = _fast_yaml(tmp_path, convert={"saved_model": False, "variants": ["dynamic_range"]})
    result = runner.invoke(app, ["run", "--config", str(cfg), "--data", str(data), "--out", str(store),
                                 "--run-id", "nosm"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((store / "runs" / "nosm" / "manifest.json").read_text())
    assert not any(n.startswith("models/saved_model/") for n in manifest["files"])
    assert "saved_model" not in [a["name"] for a in json.loads((store / "runs" / "nosm" / "metrics.json").read_text())
                                 ["artifacts"]]
