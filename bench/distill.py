"""Benchmark: what distillation buys at fixed sparsity, on full Fashion-MNIST with the TF tutorial's CNN.

The same recipes with and without the baseline as teacher (every fine-tune: pruning, clustering, QAT), each on
two seeds: the int8 deployable's accuracy on the validation split (the split every choice of the search is made
on; the test split is not read here), its 90 % Wilson lower bound, and its gzipped bytes. Whether distillation
becomes a default of the search is decided from this table. ~5 min on 2 cores.
Usage: .venv/bin/python bench/distill.py [--seeds 0 1] [--sparsity 0.94 0.96] [--temperature 4] [--alpha 0.5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--sparsity", type=float, nargs="+", default=[0.94, 0.96])
    ap.add_argument("--clusters", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.5)
    args = ap.parse_args()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np
    from fashion_mnist import fashion_npz
    from shears.config import load_config
    from shears.records import Recipe
    from shears.stages.baseline import train_baseline
    from shears.stages.bounds import wilson_lower
    from shears.stages.compress import compress
    from shears.stages.convert import convert_variant, representative_samples, trim_verified
    from shears.stages.data import parse_dataset, split
    from shears.stages.measure import gzip_size, tflite_outputs

    npz = fashion_npz()
    cfg = load_config(ROOT / "bench" / "fashion_search.yaml", {"data.uri": str(npz)})
    raw = parse_dataset(npz.read_bytes(), str(npz))
    data = split(raw, cfg.data.test_fraction, cfg.data.split_seed, 10, cfg.data.validation_fraction,
                 selection_fraction=cfg.search.selection_fraction)
    data = type(data)(data.x_train, data.y_train, data.x_val, data.y_val, data.num_classes, data.kind)  # no test
    print(f"train {len(data.x_train):,} rows, validation {len(data.x_val):,} rows (the test split is not read)")
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        base = train_baseline(data, cfg.model.model_copy(update={"seed": seed})).model
        base_val = float(np.mean(np.argmax(base.predict(data.x_val, verbose=0), 1) == data.y_val))
        print(f"seed {seed}: baseline validation accuracy {base_val:.4f} ({time.perf_counter() - t0:.0f} s)")
        prune = cfg.prune.model_copy(update={"seed": seed})
        calibration = representative_samples(data.x_train, cfg.convert.representative_samples)
        for sparsity in args.sparsity:
            for distill in (False, True):
                t0 = time.perf_counter()
                recipe = Recipe(sparsity={"logits": sparsity}, prune_epochs=8, clusters={"logits": args.clusters},
                                cluster_epochs=cfg.recipe.cluster_epochs, qat=True, qat_epochs=cfg.recipe.qat_epochs,
                                variant="int8", distill=distill, distill_temperature=args.temperature,
                                distill_alpha=args.alpha)
                result = compress(base, data, recipe, prune)
                deploy = trim_verified(convert_variant(result.final, "int8", calibration, compact=True),
                                       calibration[:64])
                right = int(np.sum(np.argmax(tflite_outputs(deploy, data.x_val), 1) == data.y_val))
                acc = right / len(data.y_val)
                rows.append((seed, sparsity, distill, acc, wilson_lower(right, len(data.y_val), 0.9),
                             gzip_size(deploy), time.perf_counter() - t0))
                print(f"  logits {sparsity:.2f}, {args.clusters} clusters, PCQAT, distill {distill}: validation "
                      f"{acc:.4f}, {gzip_size(deploy):,} B gz ({time.perf_counter() - t0:.0f} s)", flush=True)
    print()
    print(f"| seed | logits sparsity | distilled (T {args.temperature:g}, α {args.alpha:g}) | validation acc. "
          "| 90 % lower bound | deployable gz | s |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for seed, sparsity, distill, acc, bound, gz, seconds in rows:
        print(f"| {seed} | {sparsity:.2f} | {'yes' if distill else 'no'} | {acc:.4f} | {bound:.4f} | {gz:,} "
              f"| {seconds:.0f} |")
    gains = [b[3] - a[3] for a, b in zip(rows[::2], rows[1::2], strict=True)]
    print(f"\ndistilled minus not, validation accuracy (pp): {', '.join(f'{g * 100:+.2f}' for g in gains)}; "
          f"mean {np.mean(gains) * 100:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
