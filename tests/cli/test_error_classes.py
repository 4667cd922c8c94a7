"""Each cause has its class and exit code: a model with two inputs (2), a search-off .tflite that does not hold
its recipe (4), a bug inside a trial (1, traceback recorded), nothing to prune (4, saying so)."""

from __future__ import annotations

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


def _errors(result: object) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.startswith("error")]  # type: ignore[attr-defined]


def _invoke(tmp_path: Path, *args: str, **cfg: dict) -> object:
    return runner.invoke(app, ["run", "--config", str(_fast_yaml(tmp_path, **cfg)), "--out", str(tmp_path / "s"),
                               "--run-id", "r1", *args])


def test_a_model_with_two_inputs_is_refused_in_one_line(tmp_path: Path) -> None:
    from shears.keras.tfcompat import keras

    a, b = keras.Input((64,), name="a"), keras.Input((64,), name="b")
    out = keras.layers.Dense(10, name="logits")(keras.layers.Concatenate()([a, b]))
    keras.Model([a, b], out).save(tmp_path / "two.h5")
    x, y = digits_arrays()
    (tmp_path / "d.npz").write_bytes(npz_bytes(x=x.reshape(len(x), -1), y=y))
    result = _invoke(tmp_path, "--model", str(tmp_path / "two.h5"), "--data", str(tmp_path / "d.npz"))
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    errors = _errors(result)
    assert len(errors) == 1 and "2 inputs and 1 outputs" in errors[0], errors
    assert not (tmp_path / "s" / "runs").exists()


def test_search_off_a_tflite_that_does_not_hold_its_recipe_fails_the_gate(tmp_path: Path) -> None:
    """tfmot's cluster-preserving QAT re-derives the kernel of a pruned layer it does not cluster: the conv's
    zeros are gone from the .tflite. With the search off this recipe used to be published; now it fails (4)."""
    recipe = {"sparsity": {"conv": 0.8, "dense": 0.9}, "clusters": {"dense": 8}, "qat": True, "variant": "int8"}
    result = _invoke(tmp_path, recipe=recipe, gates={"min_accuracy": None, "max_accuracy_drop_pp": None,
                                                     "min_compression_ratio": 1.0})
    assert result.exit_code == 4, result.output  # type: ignore[attr-defined]
    gates = json.loads((tmp_path / "s" / "rejected" / "r1" / "gates.json").read_text())
    verified = next(g for g in gates["gates"] if g["name"] == "tflite_verified")
    assert not verified["passed"] and "conv" in verified["reason"] and "zeros" in verified["reason"]
    assert not (tmp_path / "s" / "runs" / "r1").exists()


def test_a_bug_inside_a_trial_exits_1_with_its_traceback_recorded(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyError raised by Shears' own code (no TensorFlow frame) is a bug: the run stops with exit 1, and the
    trial's record and log keep the whole traceback (it used to become a failed trial, then exit 3)."""
    import shears.stages.inspect as inspect

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a key Shears forgot")

    monkeypatch.setattr(inspect, "check_tflite", broken)
    result = _invoke(tmp_path)
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    errors = _errors(result)
    assert len(errors) == 1 and "trial 0: KeyError" in errors[0] and "a bug in Shears" in errors[0], errors
    [record] = list((tmp_path / "s").rglob("result.json"))
    trial = json.loads(record.read_text())
    assert trial["state"] == "failed" and "Traceback" in trial["traceback"]
    assert "a key Shears forgot" in trial["traceback"]


@pytest.mark.parametrize("search", [False, True], ids=["search-off", "search-on"])
def test_a_model_with_nothing_to_prune_fails_the_gate_saying_so(tmp_path: Path, search: bool) -> None:
    """The same cause, the same class, with or without the search (search-off used to exit 2)."""
    from shears.keras.tfcompat import keras

    x, y = digits_arrays()
    flat = x.reshape(len(x), -1)[:, :10].astype(np.float32)
    inp = keras.Input((10,))
    keras.Model(inp, keras.layers.Activation("softmax")(inp)).save(tmp_path / "none.h5")
    (tmp_path / "d.npz").write_bytes(npz_bytes(x=flat, y=y))
    result = _invoke(tmp_path, "--model", str(tmp_path / "none.h5"), "--data", str(tmp_path / "d.npz"),
                     gates={"min_accuracy": None, "max_accuracy_drop_pp": None},
                     search={"enabled": search, "max_trials": 2})
    assert result.exit_code == 4, result.output  # type: ignore[attr-defined]
    errors = _errors(result)
    assert len(errors) == 1 and "no trial completed: the model has no prunable layer" in errors[0], errors
