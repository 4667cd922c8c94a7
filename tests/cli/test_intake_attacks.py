"""Issue 18's reproductions through `shears run`, as an attacker would hand them in: each fails on Shears 0.2
(code runs, a host file is published, a run takes gigabytes, a no-skill model becomes champion) and is refused
here with one line, its exit code, and nothing published."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import FAST, digits_arrays, npz_bytes
from tests.keras import evil

pytestmark = pytest.mark.tf

SHEARS = str(Path(sys.executable).parent / "shears")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}
ENV.pop("SHEARS_POLICY", None)


def _yaml(tmp_path: Path, **sections: dict) -> Path:
    raw = json.loads(json.dumps(FAST))
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


# Runs the command and writes the largest peak RSS of it and every process it waited for (kB) to argv[1].
_MEASURE = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[2:]).returncode; "
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
            "sys.exit(rc)")


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """`shears ARGS` in a child process: its result, wall seconds and peak RSS in bytes."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".rss") as rss_file:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _MEASURE, rss_file.name, SHEARS, *args], capture_output=True,
                              text=True, timeout=900, env=env or ENV)
        seconds = time.perf_counter() - t0
        rss = int(Path(rss_file.name).read_text() or 0) * 1024
    return proc, seconds, rss


def _error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def _published(store: Path) -> list[Path]:
    return sorted(store.rglob("manifest.json")) + sorted(p for p in store.rglob("*") if p.suffix in (".h5", ".tflite"))


def _digits(tmp_path: Path) -> Path:
    x, y = digits_arrays()
    p = tmp_path / "digits.npz"
    p.write_bytes(npz_bytes(x=x, y=y))
    return p


def test_a_keras2_lambda_naming_pydoc_pipepager_runs_no_command(tmp_path: Path) -> None:
    """Shears 0.2 ran the command (then exited 2, "cannot load model ... TypeError", as for a bad file)."""
    marker = tmp_path / "pwned.txt"
    model = tmp_path / "evil.keras"
    model.write_bytes(evil.keras_zip(evil.k2_sequential(evil.pipepager_lambda(f"id > {marker}"), evil.dense(),
                                                         inputs=64)))
    store = tmp_path / "store"
    proc, _, _ = _run("run", "--config", str(_yaml(tmp_path)), "--model", str(model), "--data", str(_digits(tmp_path)),
                      "--out", str(store), "--run-id", "lambda")
    assert proc.returncode == 2
    assert "layer 'lam' has class Lambda" in _error(proc)
    time.sleep(0.5)
    assert not marker.exists()
    assert _published(store) == []
    failure = json.loads((store / "rejected" / "lambda" / "failure.json").read_text())
    assert failure["stage"] == "validate" and failure["exit_code"] == 2


@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_a_weight_stored_in_a_host_file_never_reaches_the_store(tmp_path: Path, fmt: str) -> None:
    """HDF5 external storage: the side branch's bias is the first 12 bytes of a 'secret' file on the host. With
    one dynamic-range variant, Shears 0.2 passed this run and published those bytes in models/baseline.h5."""
    secret = tmp_path / "signing.key"
    secret.write_bytes(b"SECRETKEY123" + b"-----BEGIN EC PRIVATE KEY-----\n")
    model = tmp_path / f"side.{fmt}"
    model.write_bytes(evil.side_branch_files(str(secret))[fmt])
    store = tmp_path / "store"
    cfg = _yaml(tmp_path, convert={"variants": ["dynamic_range"], "deployable": "dynamic_range"},
                gates={"min_accuracy": 0.5, "max_accuracy_drop_pp": 30.0})
    proc, _, _ = _run("run", "--config", str(cfg), "--model", str(model), "--data", str(_digits(tmp_path)),
                      "--out", str(store), "--run-id", "external")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"keeps its data in external file(s) ['{secret}']" in _error(proc)
    assert _published(store) == []
    for path in store.rglob("*"):
        if path.is_file():
            assert b"SECRETKEY123" not in path.read_bytes(), path


def test_a_zip_bomb_exits_2_in_seconds_and_under_1_gb(tmp_path: Path) -> None:
    model = tmp_path / "bomb.keras"
    model.write_bytes(evil.zip_bomb(400 << 20))  # config.json inflates to 400 MB
    assert model.stat().st_size < 2 << 20
    proc, seconds, rss = _run("run", "--config", str(_yaml(tmp_path)), "--model", str(model), "--data",
                              str(_digits(tmp_path)), "--out", str(tmp_path / "store"), "--run-id", "bomb")
    assert proc.returncode == 2
    assert "member config.json inflates to 419,430,400 bytes; the limit is 33,554,432" in _error(proc)
    assert seconds < 60 and rss < 1 << 30, (seconds, rss)


def _constant_model(tmp_path: Path, answer: int) -> Path:
    """A tf_keras model that always answers class `answer` (zero kernel, one-hot bias)."""
    from shears.keras.tfcompat import keras

    x, _ = digits_arrays()
    bias = np.full(10, -5.0, np.float32)
    bias[answer] = 5.0
    model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Flatten(), keras.layers.Dense(10, name="logits")])
    model.get_layer("logits").set_weights([np.zeros((64, 10), np.float32), bias])
    path = tmp_path / "constant.h5"
    model.save(path)
    return path


NULL_GATES = {"min_accuracy": None, "max_gzip_bytes": None, "max_accuracy_drop_pp": None,
              "min_compression_ratio": None, "champion_max_size_increase_pct": None,
              "champion_max_accuracy_drop_pp": None, "min_skill_margin_pp": None}


def _majority_data(tmp_path: Path, majority: int) -> Path:
    """Digits with a test split whose most frequent class is `majority` (so a constant model scores its rate)."""
    x, y = digits_arrays()
    test = np.concatenate([np.flatnonzero(y == majority)[:60], np.flatnonzero(y != majority)[:240:6]])
    train = np.setdiff1d(np.arange(len(y)), test)
    p = tmp_path / "majority.npz"
    p.write_bytes(npz_bytes(x=x[train], y=y[train], x_test=x[test], y_test=y[test]))
    return p


def test_a_constant_model_with_every_gate_nulled_fails_and_is_not_promoted(tmp_path: Path) -> None:
    store = tmp_path / "store"
    cfg = _yaml(tmp_path, gates=NULL_GATES)
    proc, _, _ = _run("run", "--config", str(cfg), "--model", str(_constant_model(tmp_path, 3)), "--data",
                      str(_majority_data(tmp_path, 3)), "--out", str(store), "--run-id", "constant")
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert not (store / "champion.json").exists() and not (store / "runs" / "constant").exists()
    gates = json.loads((store / "rejected" / "constant" / "gates.json").read_text())
    skill = next(g for g in gates["gates"] if g["name"] == "min_skill_margin_pp")
    assert skill["threshold"] == 0.0 and skill["observed"] == 0.0 and not skill["passed"]
    assert gates["policy"] == {"source": "built-in", "signing_required": False, "gates": {
        "min_accuracy": None, "min_skill_margin_pp": 0.0, "max_accuracy_drop_pp": None, "max_gzip_bytes": None,
        "min_skill_margin_pct": 0.0, "max_change_pct": None, "max_arena_bytes": None}}


def test_a_config_that_loosens_the_deployments_floor_is_refused_before_training(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("gates:\n  min_skill_margin_pp: 1.0\n  max_gzip_bytes: 500000\n")
    env = {**ENV, "SHEARS_POLICY": str(policy)}
    store = tmp_path / "store"
    proc, seconds, _ = _run("run", "--config", str(_yaml(tmp_path, gates=NULL_GATES)), "--data",
                            str(_digits(tmp_path)), "--out", str(store), "--run-id", "loose", env=env)
    assert proc.returncode == 2
    assert _error(proc) == (f"error: gates.min_skill_margin_pp null (off) is weaker than the deployment's floor 1 "
                            f"(policy {policy}): a run's config may tighten the policy's floors, never loosen them")
    assert not store.exists() or _published(store) == []
    assert seconds < 60  # refused before anything trains
