"""Benchmark: regression and binary models through the default search (the README's task tables).

- Friedman #1 (scikit-learn's make_friedman1: 4,000 rows, 10 features, noise 1.0; test split 1,000 rows),
  trained here (tabular_mlp), the embedded defaults otherwise (default search, regression gates), two seeds
  (model.seed and data.split_seed). Target: >= 10x smaller gzipped at <= 5 % relative MSE increase.
- Breast cancer with a Keras 3 Dense(1, sigmoid) scorer trained with binary_crossentropy (pre-trained model,
  default search): bytes, accuracy (threshold 0.5) and AUC of the baseline and the deployable.

Prints markdown tables. ~6 min on 2 cores. Usage: .venv/bin/python bench/tasks.py [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def shears_run(work: Path, run_id: str, data: Path, config: dict[str, Any], *args: str) -> tuple[int, Path, float]:
    from shears.cli.main import app
    from typer.testing import CliRunner

    cfg = work / f"{run_id}.json"
    cfg.write_text(json.dumps(config))
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["run", "--config", str(cfg), "--data", str(data), "--out", str(work / run_id),
                                      "--run-id", run_id, *args])
    folder = work / run_id / ("runs" if result.exit_code == 0 else "rejected") / run_id
    if result.exit_code not in (0, 4):
        raise SystemExit(f"{run_id}: exit {result.exit_code}\n{result.output[-3000:]}")
    return result.exit_code, folder, time.perf_counter() - t0


def friedman(work: Path, seed: int) -> dict[str, Any]:
    import pandas as pd
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=4000, n_features=10, noise=1.0, random_state=0)
    csv = work / "friedman.csv"
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    df["y"] = y
    df.to_csv(csv, index=False)
    config = {"data": {"label_column": "y", "test_fraction": 0.25, "split_seed": seed}, "model": {"seed": seed}}
    code, folder, seconds = shears_run(work, f"friedman-{seed}", csv, config)
    return _row(folder, code, seconds)


def breast_cancer(work: Path, seed: int) -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer

    sys.path.insert(0, str(ROOT))
    from tests.keras.k3models import k3

    keras3 = k3()
    d = load_breast_cancer()
    x = ((d.data - d.data.mean(axis=0)) / d.data.std(axis=0)).astype(np.float32)
    y = d.target.astype(np.int64)
    npz = work / "bc.npz"
    np.savez(npz, x=x, y=y)
    keras3.utils.set_random_seed(seed)
    model = keras3.Sequential([keras3.Input((30,)), keras3.layers.Dense(64, activation="relu", name="hidden"),
                               keras3.layers.Dense(64, activation="relu", name="hidden2"),
                               keras3.layers.Dense(1, activation="sigmoid", name="score")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=30, verbose=0)
    model.save(work / "scorer.keras")
    config = {"data": {"split_seed": seed}, "validation": {"max_class_imbalance": 3.0},
              "gates": {"min_compression_ratio": 3.0}}
    code, folder, seconds = shears_run(work, f"bc-{seed}", npz, config, "--model", str(work / "scorer.keras"))
    return _row(folder, code, seconds)


def _row(folder: Path, code: int, seconds: float) -> dict[str, Any]:
    metrics = json.loads((folder / "metrics.json").read_text())
    arts = {a["name"]: a for a in metrics["artifacts"]}
    search = json.loads((folder / "search.json").read_text())
    winner = next(t for t in search["trials"] if t["number"] == search["winner"])
    failed = []
    if code != 0:  # why, as the records say: the failed gates (or failure.json when no gate ran)
        gates = folder / "gates.json"
        failed = ([g["reason"] for g in json.loads(gates.read_text())["gates"] if not g["passed"]] if gates.exists()
                  else [json.loads((folder / "failure.json").read_text())["reason"]])
    return {"passed": code == 0, "failed": failed, "base": arts["baseline"], "dep": arts[metrics["deployable"]],
            "recipe": winner["recipe"], "trials": len(search["trials"]), "seconds": seconds,
            "no_skill": metrics["no_skill"]}


def _describe(recipe: dict[str, Any]) -> str:
    from shears.records import Recipe

    return Recipe.model_validate(recipe).describe()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args()
    rows: list[tuple[str, int, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="shears-tasks-") as tmp:
        for seed in args.seeds:
            rows.append(("friedman", seed, friedman(Path(tmp), seed)))
        for seed in args.seeds:
            rows.append(("breast cancer", seed, breast_cancer(Path(tmp), seed)))
    print("\n| Friedman #1 seed | baseline gz | deployable gz | ratio | baseline MSE | deployable MSE | change "
          "| MAE | R² | passed | winner (trials) | run s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for name, seed, r in rows:
        if name != "friedman":
            continue
        b, d = r["base"], r["dep"]
        change = (d["metrics"]["mse"] - b["metrics"]["mse"]) / b["metrics"]["mse"] * 100
        print(f"| {seed} | {b['gzip_bytes']:,} | {d['gzip_bytes']:,} | {b['gzip_bytes'] / d['gzip_bytes']:.1f}× "
              f"| {b['metrics']['mse']:.3f} | {d['metrics']['mse']:.3f} | {change:+.1f} % | {d['metrics']['mae']:.3f} "
              f"| {d['metrics']['r2']:.3f} | {'yes' if r['passed'] else 'no'} | {_describe(r['recipe'])} "
              f"({r['trials']}) | {r['seconds']:.0f} |")
    _failures(rows, "friedman")
    print("\n| breast cancer seed | baseline gz | deployable gz | ratio | baseline acc / AUC | deployable acc / AUC "
          "| passed | winner (trials) | run s |")
    print("|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for name, seed, r in rows:
        if name == "friedman":
            continue
        b, d = r["base"], r["dep"]
        print(f"| {seed} | {b['gzip_bytes']:,} | {d['gzip_bytes']:,} | {b['gzip_bytes'] / d['gzip_bytes']:.1f}× "
              f"| {b['metrics']['accuracy']:.4f} / {b['metrics']['auc']:.4f} "
              f"| {d['metrics']['accuracy']:.4f} / {d['metrics']['auc']:.4f} | {'yes' if r['passed'] else 'no'} "
              f"| {_describe(r['recipe'])} ({r['trials']}) | {r['seconds']:.0f} |")
    _failures(rows, "breast cancer")
    return 0


def _failures(rows: list[tuple[str, int, dict[str, Any]]], name: str) -> None:
    """Why each rejected run was rejected: the failed gates' reasons, as gates.json gives them."""
    for kind, seed, r in rows:
        if kind == name and r["failed"]:
            print(f"\n{name} seed {seed} rejected: " + "; ".join(r["failed"]))


if __name__ == "__main__":
    sys.exit(main())
