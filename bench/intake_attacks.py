"""Issue 18's attacks through the `shears` CLI, each as its own process: exit code, wall time, peak memory, and
whether the attack worked (a command ran, a host file reached the store, a no-skill model was promoted).

    .venv/bin/python bench/intake_attacks.py                       # this checkout
    .venv/bin/python bench/intake_attacks.py --pythonpath OLD/tasks  # another checkout's library, same tests

Prints a Markdown table. The hostile files are made by tests/keras/evil.py (by hand, no TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.keras import evil  # noqa: E402

SHEARS = str(Path(sys.executable).parent / "shears")
MEASURE = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[2:]).returncode; "
           "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(rc)")
FAST = {"model": {"epochs": 4}, "prune": {"epochs": 2}, "search": {"enabled": False},
        "convert": {"variants": ["dynamic_range", "int8"], "latency_runs": 5},
        "gates": {"min_accuracy": 0.8, "min_compression_ratio": 3.0, "max_accuracy_drop_pp": 5.0}}
NULL_GATES = {"min_accuracy": None, "max_gzip_bytes": None, "max_accuracy_drop_pp": None,
              "min_compression_ratio": None, "champion_max_size_increase_pct": None,
              "champion_max_accuracy_drop_pp": None, "min_skill_margin_pp": None}


def run(args: list[str], env: dict[str, str]) -> tuple[int, float, int, str]:
    """(exit code, seconds, peak RSS MB, the error line) of one `shears` command."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", MEASURE, rss.name, SHEARS, *args], capture_output=True, text=True,
                              env=env, timeout=1800)
        seconds = time.perf_counter() - t0
        peak = int(Path(rss.name).read_text() or 0) // 1024
    error = next((ln for ln in proc.stderr.splitlines() if ln.startswith("error:")), "")
    return proc.returncode, seconds, peak, error


def digits(tmp: Path, majority: int | None = None) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)
    path = tmp / ("digits.npz" if majority is None else "majority.npz")
    if majority is None:
        np.savez(path, x=x, y=y)
    else:  # a test split whose most frequent class is `majority`
        test = np.concatenate([np.flatnonzero(y == majority)[:60], np.flatnonzero(y != majority)[:240:6]])
        train = np.setdiff1d(np.arange(len(y)), test)
        np.savez(path, x=x[train], y=y[train], x_test=x[test], y_test=y[test])
    return path


def config(tmp: Path, name: str, **sections: dict) -> Path:
    raw = json.loads(json.dumps(FAST))
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    p = tmp / name
    p.write_text(yaml.safe_dump(raw))
    return p


def secret_in_store(store: Path, secret: bytes) -> bool:
    return any(secret in p.read_bytes() for p in store.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pythonpath", help="put this folder first on the library's path (another checkout's tasks/)")
    ap.add_argument("--bomb-gb", type=float, default=1.5, help="what the zip bomb's config.json inflates to")
    args = ap.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}
    env.pop("SHEARS_POLICY", None)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    rows: list[tuple[str, int, float, int, str, str]] = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        data = digits(tmp)
        cfg = config(tmp, "fast.yaml")

        def case(name: str, model: bytes | None, suffix: str, worked: Callable[[Path], str],
                 cfg_path: Path = cfg, data_path: Path = data, extra: list[str] | None = None,
                 case_env: dict[str, str] | None = None) -> None:
            store = tmp / f"store-{len(rows)}"
            cmd = ["run", "--config", str(cfg_path), "--data", str(data_path), "--out", str(store), "--run-id", "r"]
            if model is not None:
                path = tmp / f"model-{len(rows)}{suffix}"
                path.write_bytes(model)
                cmd += ["--model", str(path)]
            code, seconds, peak, error = run(cmd + (extra or []), case_env or env)
            rows.append((name, code, seconds, peak, worked(store), error[:110]))
            print(f"{name}: exit {code} in {seconds:.1f} s, {peak} MB", file=sys.stderr)

        marker = tmp / "pwned.txt"
        lam = evil.k2_sequential(evil.pipepager_lambda(f"id > {marker}"), evil.dense(units=10), inputs=64)

        def ran(_store: Path) -> str:
            time.sleep(0.5)
            return "yes: the command ran" if marker.exists() else "no"

        case("Keras 2 .keras, Lambda naming pydoc.pipepager", evil.keras_zip(lam), ".keras", ran)
        marker.unlink(missing_ok=True)
        case("Keras 2 .h5, the same Lambda (legacy format)", evil.legacy_h5(evil.k2_sequential(
            evil.pipepager_lambda_legacy(f"id > {marker}"), evil.dense(units=10), inputs=64)), ".h5", ran)
        marker.unlink(missing_ok=True)

        secret = tmp / "signing.key"
        secret.write_bytes(b"SECRETKEY123-----BEGIN EC PRIVATE KEY-----\n")

        def leaked(store: Path) -> str:
            return "yes: in the store" if secret_in_store(store, b"SECRETKEY123") else "no"

        side = evil.side_branch_files(str(secret))  # a trained model; one bias is the host file's first 12 bytes
        loose = config(tmp, "loose.yaml", convert={"variants": ["dynamic_range"], "deployable": "dynamic_range"},
                       gates={"min_accuracy": 0.5, "max_accuracy_drop_pp": 30.0})
        case(".h5, a bias in HDF5 external storage (a host file)", side["h5"], ".h5", leaked, cfg_path=loose)
        case("Keras 2 .keras, the same in its weights file", side["keras"], ".keras", leaked, cfg_path=loose)
        for gb in sorted({0.4, args.bomb_gb}):
            bomb = evil.zip_bomb(int(gb * (1 << 30)))
            case(f"zip bomb: {len(bomb) / 1e6:.1f} MB .keras, config.json inflates to {gb:g} GB", bomb, ".keras",
                 lambda store: "-")

        deep = tmp / "deep.yaml"
        deep.write_text("model: " + "[" * 5000 + "]" * 5000 + "\n")
        case("config YAML nested 5,000 levels deep", None, "", lambda store: "-", cfg_path=deep)

        from shears.keras.tfcompat import keras  # the constant model

        bias = np.full(10, -5.0, np.float32)
        bias[3] = 5.0
        constant = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(),
                                     keras.layers.Dense(10, name="logits")])
        constant.get_layer("logits").set_weights([np.zeros((64, 10), np.float32), bias])
        path = tmp / "constant.h5"
        constant.save(path)

        def promoted(store: Path) -> str:
            return "yes: champion" if (store / "champion.json").exists() else "no"

        case("constant model (always class 3), every gate null", path.read_bytes(), ".h5", promoted,
             cfg_path=config(tmp, "null.yaml", gates=NULL_GATES), data_path=digits(tmp, majority=3))
        policy = tmp / "policy.yaml"
        policy.write_text("gates:\n  min_skill_margin_pp: 1.0\n")
        case("the same nulled config under a policy floor of 1 pp", None, "", promoted,
             cfg_path=config(tmp, "null2.yaml", gates=NULL_GATES), case_env={**env, "SHEARS_POLICY": str(policy)})

    print("| case | exit | seconds | peak MB | attack worked | error line |")
    print("|---|---:|---:|---:|---|---|")
    for name, code, seconds, peak, worked, error in rows:
        print(f"| {name} | {code} | {seconds:.1f} | {peak:,} | {worked} | `{error}` |")


if __name__ == "__main__":
    main()
