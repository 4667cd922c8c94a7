"""Diagnostic: how much a validation split carved from Fashion-MNIST's training images varies from carve to carve.

    .venv/bin/python bench/carves.py --splits 0 1 2 3 4 5 6 7

For each `data.split_seed`, the carve `shears.stages.data.split` makes (validation 10 %, then the selection
slice 10 % of the rest), the tutorial CNN trained as bench/fashion_search.yaml trains it (4 epochs, model seed 0),
and its accuracy on 10,000 of its training images, the validation split and the selection slice. The test split
is not read. Needs `apt-get install dataset-fashion-mnist` (bench/fashion_mnist.py builds the npz).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    from fashion_mnist import fashion_npz
    from rich.console import Console
    from rich.table import Table
    from shears.config import ModelConfig
    from shears.keras.training import keras_score
    from shears.stages.baseline import train_baseline
    from shears.stages.data import RawDataset, split

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--splits", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--model-seed", type=int, default=0)
    args = ap.parse_args()
    npz = fashion_npz()
    arrays = np.load(npz)
    x, y = arrays["x"], arrays["y"]
    # the real test images are never loaded: ten training rows stand in for the source's own test split, so that
    # split() carves validation and the selection slice from all 60,000 training images, as in the bench
    raw = RawDataset("fashion_mnist", x, y, x[:10], y[:10], None, "-")
    cfg = ModelConfig(builder="shears.keras.builders:tutorial_cnn", epochs=4, batch_size=32, seed=args.model_seed)
    table = Table(title=f"Baseline accuracy by carve (tutorial CNN, 4 epochs, model seed {args.model_seed})")
    for col in ("split_seed", "training (10,000)", "validation", "selection slice", "seconds"):
        table.add_column(col, justify="right")
    vals = []
    for seed in args.splits:
        t0 = time.perf_counter()
        s = split(raw, 0.2, seed, 10, 0.1, selection_fraction=0.1, min_selection_rows=1000)
        b = train_baseline(s, cfg)
        assert s.x_sel is not None and s.y_sel is not None
        sel = keras_score(b.model, s.x_sel, s.y_sel, s.task)
        train = keras_score(b.model, s.x_train[:10000], s.y_train[:10000], s.task)
        vals.append(b.score)
        table.add_row(str(seed), f"{train:.4f}", f"{b.score:.4f}", f"{sel:.4f}", f"{time.perf_counter() - t0:.0f}")
    con = Console(width=140)
    con.print(table)
    con.print(f"validation accuracy over {len(vals)} carves: mean {np.mean(vals):.4f}, "
              f"min {min(vals):.4f}, max {max(vals):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
