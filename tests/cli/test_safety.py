"""Run safety, as a hostile-but-realistic user would try it: one writer per run id, no stale files, no no-skill
champions, bounded one-line errors with their documented exit codes, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from shears.config import load_config
from shears.errors import ConfigError
from shears.records import ClaimRecord, FailureRecord, ManifestRecord, ValidationRecord

from tests.conftest import FAST, digits_arrays, npz_bytes

pytestmark = pytest.mark.tf

SHEARS = str(Path(sys.executable).parent / "shears")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}


def _yaml(tmp_path: Path, name: str = "fast.yaml", **sections: dict) -> Path:
    raw = json.loads(json.dumps(FAST))
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw))
    return p


def _shears(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHEARS, *args], capture_output=True, text=True, timeout=timeout, env=env or ENV)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The run printed exactly one `error:` line, no traceback, at most ~300 characters."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines[0]) <= 310, lines[0]
    return lines[0]


def _digits_npz(tmp_path: Path, name: str, rows: int | None = None) -> Path:
    x, y = digits_arrays()
    p = tmp_path / name
    p.write_bytes(npz_bytes(x=x[:rows], y=y[:rows]))
    return p


def _wait_for(path: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------ one writer per run id


def test_two_runs_with_the_same_run_id_one_writer(tmp_path: Path) -> None:
    store, cfg = tmp_path / "store", _yaml(tmp_path)
    data_a, data_b = _digits_npz(tmp_path, "a.npz"), _digits_npz(tmp_path, "b.npz", rows=1500)
    first = subprocess.Popen([SHEARS, "run", "--config", str(cfg), "--data", str(data_a), "--out", str(store),
                              "--run-id", "s1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        _wait_for(store / "claims" / "s1.json")
        second = _shears("run", "--config", str(cfg), "--data", str(data_b), "--out", str(store), "--run-id", "s1")
        line = _one_error_line(second)
        assert second.returncode == 2
        assert f"run id s1 is claimed by shears (pid {first.pid} on" in line and "another run is writing" in line
        _out, err = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    manifest = ManifestRecord.from_bytes((store / "runs" / "s1" / "manifest.json").read_bytes())
    validation = ValidationRecord.from_bytes((store / "runs" / "s1" / "validation.json").read_bytes())
    assert manifest.config["data"]["uri"] == str(data_a) and manifest.dataset.sha256 == validation.dataset_sha256
    assert validation.rows == 1797  # the first run's data, not the refused one's 1500 rows
    assert not (store / "claims" / "s1.json").exists()  # released at the end
    audit = _shears("audit", str(store))
    assert audit.returncode == 0, audit.stderr


def test_a_killed_run_rerun_with_the_same_id_publishes_only_its_own_files(tmp_path: Path) -> None:
    store = tmp_path / "store"
    every = _yaml(tmp_path, "every.yaml", convert={"variants": ["float32", "dynamic_range", "int8", "float16"]})
    killed = subprocess.Popen([SHEARS, "run", "--config", str(every), "--out", str(store), "--run-id", "k1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert killed.stderr is not None
        deadline = time.monotonic() + 600
        for line in killed.stderr:  # non-terminal stderr prints "step <name>: <state>" lines
            if line.strip() == "step evaluate: start":
                break
            assert time.monotonic() < deadline
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
    finally:
        killed.kill()
    assert (store / "staging" / "k1" / "models" / "model_float16.tflite").exists()  # what the killed attempt left

    one = _yaml(tmp_path, "one.yaml", convert={"variants": ["dynamic_range"]})
    refused = _shears("run", "--config", str(one), "--out", str(store), "--run-id", "k1")
    assert refused.returncode == 2 and "looks stale" in _one_error_line(refused) and "--force-claim" in refused.stderr
    rerun = _shears("run", "--config", str(one), "--out", str(store), "--run-id", "k1", "--force-claim")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    models = sorted(p.name for p in (store / "runs" / "k1" / "models").iterdir())
    assert models == ["baseline.h5", "model_dynamic_range.tflite", "pruned_unstripped.h5", "stripped.h5"]
    claim = ClaimRecord.from_bytes((store / "runs" / "k1" / "claim.json").read_bytes())
    assert claim.took_over is not None and claim.took_over.pid == killed.pid  # the takeover is recorded
    assert _shears("audit", str(store)).returncode == 0

    (store / "runs" / "k1" / "models" / "model_float16.tflite").write_bytes(b"planted")
    planted = _shears("audit", str(store))
    assert planted.returncode == 1
    assert "runs/k1/models/model_float16.tflite: not listed in the manifest" in planted.stderr


# ------------------------------------------------------------------------------------------ no-skill models


def test_data_with_one_class_is_refused(tmp_path: Path) -> None:
    x, _ = digits_arrays()
    data = tmp_path / "one.npz"
    data.write_bytes(npz_bytes(x=x, y=np.zeros(len(x), dtype=np.int64)))
    proc = _shears("run", "--config", str(_yaml(tmp_path)), "--data", str(data), "--out", str(tmp_path / "s"),
                   "--run-id", "one")
    assert proc.returncode == 3
    assert "at least two classes per split" in _one_error_line(proc)
    assert not list((tmp_path / "s").rglob("manifest.json"))


def test_a_constant_prediction_model_fails_the_no_skill_gate(tmp_path: Path) -> None:
    """Its input is multiplied by 0, so fine-tuning can only move the bias: it always answers one class."""
    from shears.keras.tfcompat import keras

    model = keras.Sequential([keras.layers.InputLayer(input_shape=(8, 8), name="input"),
                              keras.layers.Rescaling(0.0, name="blind"), keras.layers.Flatten(name="flatten"),
                              keras.layers.Dense(10, name="logits")])
    path = tmp_path / "blind.h5"
    model.save(path)
    cfg = _yaml(tmp_path, gates={"min_accuracy": None, "max_accuracy_drop_pp": None, "min_compression_ratio": None})
    proc = _shears("run", "--config", str(cfg), "--model", str(path), "--out", str(tmp_path / "s"), "--run-id", "c1")
    assert proc.returncode == 4
    line = _one_error_line(proc)
    assert line.startswith("error: gate(s) failed: min_skill_margin_pp") and "most frequent test class" in line
    assert not (tmp_path / "s" / "runs").exists()


# ------------------------------------------------------------------------------------------ bounded errors


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\n")
    assert bomb.stat().st_size < 400
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="anchors and aliases are not supported") as info:
        load_config(bomb)
    assert time.perf_counter() - t0 < 1.0 and len(str(info.value)) < 200


def test_a_huge_value_gives_a_short_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:  # a 10 MB value (as a flag would pass it) gives a short line
        load_config(None, {"prune.final_sparsity": "x" * 10_000_000})
    assert len(str(info.value)) <= 300 and "prune.final_sparsity" in str(info.value) and "…" in str(info.value)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * 1_100_000 + b"\n")
    with pytest.raises(ConfigError, match="the limit is 1,000,000"):
        load_config(big)


def _traceback_cases(tmp_path: Path) -> dict[str, tuple[list[str], int, str]]:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(b"model:\n  epochs: 3 # caf\xe9\n")
    afile = tmp_path / "afile"
    afile.write_text("x")
    return {
        "non-UTF-8 config": (["--config", str(latin)], 2, "is not UTF-8: byte 0xe9 at offset"),
        "--out names a file": (["--out", str(afile)], 2, "is a file, not a directory"),
        "store cannot be written": (["--out", "/proc/shears-cannot-write"], 2, "cannot be written"),
        "empty run id": (["--run-id", ""], 2, "invalid run id ''"),
        "builder outside the allow-list": (["--config", str(_yaml(tmp_path, "zen.yaml", model={"builder": "this:s"}))],
                                           2, "module 'this' is not allowed"),
        "seed beyond 32 bits": (["--config", str(_yaml(tmp_path, "seed.yaml", model={"seed": 2**32}))], 2,
                                "model.seed: Input should be less than 4294967296"),
        "negative split seed": (["--config", str(_yaml(tmp_path, "split.yaml", data={"split_seed": -1}))], 2,
                                "data.split_seed: Input should be greater than or equal to 0"),
    }


@pytest.mark.parametrize("case", ["non-UTF-8 config", "--out names a file", "store cannot be written",
                                  "empty run id", "builder outside the allow-list", "seed beyond 32 bits",
                                  "negative split seed"])
def test_bad_usage_gets_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    args, code, needle = _traceback_cases(tmp_path)[case]
    out = [] if "--out" in args else ["--out", str(tmp_path / "s")]
    rid = [] if "--run-id" in args else ["--run-id", "t1"]
    proc = _shears("run", *args, *out, *rid, timeout=120)
    assert proc.returncode == code and needle in _one_error_line(proc)
    assert "Beautiful is better than ugly" not in proc.stdout + proc.stderr  # `this` was never imported


def test_an_allow_listed_builder_module_is_imported(tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, model={"builder": "json:loads"})
    proc = _shears("run", "--config", str(cfg), "--out", str(tmp_path / "s"), "--run-id", "t2",
                   env={**ENV, "SHEARS_BUILDER_MODULES": "json"})
    assert proc.returncode == 2 and "cannot build a model for inputs of shape (8, 8)" in _one_error_line(proc)


def test_images_too_small_for_the_model_fail_before_training_and_are_recorded(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    data.write_bytes(npz_bytes(x=rng.random((400, 2, 2), dtype=np.float32), y=np.arange(400) % 4))
    store = tmp_path / "s"
    t0 = time.perf_counter()
    proc = _shears("run", "--config", str(_yaml(tmp_path)), "--data", str(data), "--out", str(store),
                   "--run-id", "tiny")
    assert proc.returncode == 2 and "cannot build a model for inputs of shape (2, 2)" in _one_error_line(proc)
    failure = FailureRecord.from_bytes((store / "rejected" / "tiny" / "failure.json").read_bytes())
    assert (failure.stage, failure.exit_code) == ("baseline", 2)
    assert time.perf_counter() - t0 < 120


def test_a_broken_champion_pointer_stops_the_run_before_training(tmp_path: Path) -> None:
    store = tmp_path / "s"
    (store).mkdir()
    pointer = {"run_id": "../../etc/passwd", "manifest_sha256": "0" * 64, "seq": 1, "action": "promote",
               "by": "x", "at": "2026-11-30T00:00:00+00:00", "previous": None}
    (store / "champion.json").write_text(json.dumps(pointer))
    proc = _shears("run", "--config", str(_yaml(tmp_path)), "--out", str(store), "--run-id", "b1")
    assert proc.returncode == 1 and "champion.json" in _one_error_line(proc)
    failure = FailureRecord.from_bytes((store / "rejected" / "b1" / "failure.json").read_bytes())
    assert failure.stage == "validate" and "champion.json" in failure.reason
    assert not (store / "staging" / "b1" / "models").exists()  # nothing was trained


def test_a_keras_file_with_a_tampered_activation_is_one_line(tmp_path: Path) -> None:
    import zipfile

    from shears.keras.tfcompat import keras

    model = keras.Sequential([keras.layers.InputLayer(input_shape=(8, 8)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="relu")])
    good = tmp_path / "good.keras"
    model.save(good)
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = data.replace(b'"relu"', b'"os.system"')
            dst.writestr(item, data)
    proc = _shears("run", "--config", str(_yaml(tmp_path)), "--model", str(bad), "--out", str(tmp_path / "s"),
                   "--run-id", "m1")
    assert proc.returncode == 2 and "cannot load model" in _one_error_line(proc)


# ------------------------------------------------------------------------------------------ integer images


def test_integer_images_are_scaled_and_the_scale_recorded(tmp_path: Path) -> None:
    x, y = digits_arrays()
    data = tmp_path / "u8.npz"
    data.write_bytes(npz_bytes(x=np.round(x * 255).astype(np.uint8), y=y))
    store = tmp_path / "s"
    proc = _shears("run", "--config", str(_yaml(tmp_path)), "--data", str(data), "--out", str(store),
                   "--run-id", "u8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    validation = ValidationRecord.from_bytes((store / "runs" / "u8" / "validation.json").read_bytes())
    assert validation.input_dtype == "uint8" and validation.input_scale == pytest.approx(1 / 255)

    negative = tmp_path / "neg.npz"
    negative.write_bytes(npz_bytes(x=(np.round(x * 255) - 1).astype(np.int16), y=y))
    refused = _shears("run", "--config", str(_yaml(tmp_path)), "--data", str(negative), "--out", str(store),
                      "--run-id", "neg")
    assert refused.returncode == 3 and "negative values (min -1)" in _one_error_line(refused)
