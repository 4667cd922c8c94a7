"""Benchmark: the whole chain on full Fashion-MNIST with the TF pruning tutorial's settings.

Needs the Debian package `dataset-fashion-mnist` (idx files in /usr/share/datasets/fashion-mnist).
Prints the artifact table and the wall time per stage. Usage: make bench-fashion
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SRC = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def build_npz(out: Path) -> None:
    if not SRC.is_dir():
        sys.exit(f"missing {SRC}: apt-get install dataset-fashion-mnist")
    arrays = {
        "x": read_idx(SRC / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0,
        "y": read_idx(SRC / "train-labels-idx1-ubyte.gz").astype(np.int64),
        "x_test": read_idx(SRC / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0,
        "y_test": read_idx(SRC / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    out.write_bytes(buf.getvalue())


def fashion_npz() -> Path:
    """bench/out/fashion_mnist.npz (all 70,000 images), built from the Debian package's idx files the first time."""
    npz = ROOT / "bench" / "out" / "fashion_mnist.npz"
    if not npz.exists():
        npz.parent.mkdir(parents=True, exist_ok=True)
        build_npz(npz)
    return npz


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(ROOT / "bench" / "fashion_mnist.yaml"))
    ap.add_argument("--run-id", default="fashion-tutorial")
    args = ap.parse_args()

    from shears.cli.run import artifact_table, gate_table, sparsity_table
    from shears.config import load_config
    from shears.records import ManifestRecord
    from shears.run.pipeline import run_pipeline
    from shears.store import LocalStore

    out = ROOT / "bench" / "out"
    npz = fashion_npz()
    store_dir = out / "fashion-store"
    shutil.rmtree(store_dir, ignore_errors=True)
    cfg = load_config(args.config, {"data.uri": str(npz)})
    t0 = time.perf_counter()
    outcome = run_pipeline(LocalStore(store_dir), cfg, args.run_id)
    wall = time.perf_counter() - t0

    from rich.console import Console
    from rich.table import Table

    con = Console(width=160)
    assert outcome.metrics and outcome.gates and outcome.sparsity
    con.print(sparsity_table(outcome.sparsity))
    con.print(artifact_table(outcome.metrics, outcome.latency))
    con.print(gate_table(outcome.gates))
    folder = "runs" if outcome.passed else "rejected"
    manifest = ManifestRecord.from_bytes((store_dir / folder / args.run_id / "manifest.json").read_bytes())
    t = Table(title="Wall time per stage (s)")
    t.add_column("stage")
    t.add_column("seconds", justify="right")
    # the manifest's own step names, in the order they ran; the trials (trial-0000, ...) summed into one row
    trials = {k: v for k, v in manifest.timings.items() if k.startswith("trial-")}
    shown_trials = False
    for stage, seconds in manifest.timings.items():
        if stage not in trials:
            t.add_row(stage, f"{seconds:.1f}")
        elif not shown_trials:  # where the first trial ran
            t.add_row(f"trials ({len(trials)}, summed)", f"{sum(trials.values()):.1f}")
            shown_trials = True
    t.add_row("total (incl. imports)", f"{wall:.1f}")
    con.print(t)
    base, dep = outcome.metrics.baseline, outcome.metrics.deployable_artifact
    ratio = base.gzip_bytes / dep.gzip_bytes
    drop = (base.score - dep.score) * 100
    con.print(f"baseline .h5 gz {base.gzip_bytes:,} B -> {dep.name} gz {dep.gzip_bytes:,} B = {ratio:.2f}x "
              f"smaller (target >= 9x); accuracy {base.score:.4f} -> {dep.score:.4f} = drop {drop:.2f} pp "
              f"(target <= 1.5 pp)")
    return 0 if outcome.passed else 4


if __name__ == "__main__":
    sys.exit(main())
