"""Benchmark: the search alone on full Fashion-MNIST with the TF tutorial's model and baseline, on two seeds.

    python bench/search_fashion.py --target size    # smallest deployable at test accuracy >= 0.8749
    python bench/search_fashion.py --target ratio   # >= 20x smaller than the gzipped baseline at <= 1.0 pp drop
    python bench/search_fashion.py --target size --seeds 0 --jobs 2

The search sees only the validation split (6,000 images carved from the training set); the table's accuracies
are the test split's (10,000 images), read once per run at evaluate. Needs the Debian package
dataset-fashion-mnist. Prints, per seed: deployable gzipped bytes (and how much of it is structure), test
accuracy, drop and ratio vs the baseline, the winner's recipe, the number of trials, and the time per phase.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

TARGETS = {
    # the tutorial's int8 accuracy as the floor; size is what the search minimizes
    "size": {"min_accuracy": 0.8749, "max_accuracy_drop_pp": None, "min_compression_ratio": 9.0},
    # within 1.0 pp of the baseline and at least 20x smaller than its gzipped .h5
    "ratio": {"min_accuracy": None, "max_accuracy_drop_pp": 1.0, "min_compression_ratio": 20.0},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=sorted(TARGETS), default="size")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--jobs", type=int, default=1, help="trials in parallel processes (shears run --jobs)")
    ap.add_argument("--config", default=str(ROOT / "bench" / "fashion_search.yaml"))
    args = ap.parse_args()

    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.jobs > 1:
        os.environ["SHEARS_SEARCH_JOBS"] = str(args.jobs)
    from fashion_mnist import build_npz
    from rich.console import Console
    from rich.table import Table
    from shears.config import load_config
    from shears.records import ManifestRecord, MetricsRecord, SearchRecord
    from shears.run.pipeline import run_pipeline
    from shears.store import LocalStore

    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    npz = out / "fashion_mnist.npz"
    if not npz.exists():
        build_npz(npz)
    con = Console(width=170)
    table = Table(title=f"Search on Fashion-MNIST, target {args.target} {TARGETS[args.target]}, jobs {args.jobs}")
    for col in ("seed", "passed", "baseline gz", "baseline test acc", "deployable gz", "of which structure",
                "test acc", "drop pp", "ratio", "trials", "winner", "recipe"):
        table.add_column(col, justify="left" if col in ("recipe", "passed") else "right")
    runtimes = Table(title="The deployable by runtime (test split)")
    for col in ("seed", "LiteRT .tflite gz", "LiteRT acc", "TFLite Micro arena B", "TFLite Micro acc",
                "TF Serving SavedModel raw", "SavedModel gz", "SavedModel acc"):
        runtimes.add_column(col, justify="right")
    phases = Table(title="Wall time per phase (s)")
    for col in ("seed", "validate", "baseline", "sensitivity", "trials", "select", "evaluate", "search (sens.+trials"
                "+select)", "whole run"):
        phases.add_column(col, justify="right")
    for seed in args.seeds:
        overrides = {"data.uri": str(npz), "model.seed": seed, "prune.seed": seed, "search.seed": seed,
                     **{f"gates.{k}": v for k, v in TARGETS[args.target].items()}}
        cfg = load_config(args.config, {k: v for k, v in overrides.items() if v is not None})
        gates = cfg.gates.model_copy(update=TARGETS[args.target])
        cfg = cfg.model_copy(update={"gates": gates})
        store_dir = out / f"search-{args.target}-{seed}"
        shutil.rmtree(store_dir, ignore_errors=True)
        t0 = time.perf_counter()
        outcome = run_pipeline(LocalStore(store_dir), cfg, f"search-{args.target}-{seed}", jobs=args.jobs)
        wall = time.perf_counter() - t0
        folder = store_dir / ("runs" if outcome.passed else "rejected") / f"search-{args.target}-{seed}"
        manifest = ManifestRecord.from_bytes((folder / "manifest.json").read_bytes())
        metrics = MetricsRecord.from_bytes((folder / "metrics.json").read_bytes())
        search = SearchRecord.from_bytes((folder / "search.json").read_bytes())
        base, dep = metrics.baseline, metrics.deployable_artifact
        won = next(t for t in search.trials if t.number == search.winner)
        table.add_row(str(seed), "yes" if outcome.passed else f"NO: {outcome.error}", f"{base.gzip_bytes:,}",
                      f"{base.score:.4f}", f"{dep.gzip_bytes:,}", f"{dep.structure_gzip_bytes or 0:,}",
                      f"{dep.score:.4f}", f"{(base.score - dep.score) * 100:.2f}",
                      f"{base.gzip_bytes / dep.gzip_bytes:.1f}x", str(len(search.trials)), str(won.number),
                      won.recipe.describe())
        micro, saved = metrics.micro, metrics.artifact("saved_model")
        arena = f"{micro.arena_bytes:,}" if micro and micro.arena_bytes else f"no: {micro.reason if micro else '-'}"
        runtimes.add_row(str(seed), f"{dep.gzip_bytes:,}", f"{dep.score:.4f}", arena,
                         f"{micro.metrics.get('accuracy', 0):.4f}" if micro and micro.runs else "-",
                         f"{saved.raw_bytes:,}" if saved else "-", f"{saved.gzip_bytes:,}" if saved else "-",
                         f"{saved.score:.4f}" if saved else "-")
        t = manifest.timings

        def total(prefix: str, timings: dict[str, float] = t) -> float:
            return sum(v for k, v in timings.items() if k.startswith(prefix))

        search_wall = search.seconds.get("search_wall", 0.0) + t.get("select", 0.0)  # measured before select ended
        trials_wall = search.seconds.get("trials_wall", total("trial"))
        phases.add_row(str(seed), f"{t.get('validate', 0):.0f}", f"{t.get('baseline', 0):.0f}",
                       f"{total('sensitivity'):.0f}", f"{trials_wall:.0f}", f"{t.get('select', 0):.0f}",
                       f"{t.get('evaluate', 0):.0f}", f"{search_wall:.0f}", f"{wall:.0f}")
        con.print(table)
        con.print(runtimes)
        con.print(phases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
