"""Benchmark: the README's Keras 3 table — `shears run --model` on the Keras 3 models the tests build.

The models and data are tests/keras/k3models.py's (the ones tests/cli/test_keras3_run.py runs), with the
tests' configs (tests/conftest.py FAST plus each test's loosening). Prints one markdown row per model:
the rebuild's largest output difference, test accuracies and gzipped sizes. ~4 min on 2 cores.
Usage: .venv/bin/python bench/keras3_models.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.keras.k3models: the same models as the tests


def run(work: Path, model_file: Path, data: Path, run_id: str, **cfg: dict[str, Any]) -> dict[str, Any]:
    from shears.cli.main import app
    from typer.testing import CliRunner

    from tests.cli.test_run import _fast_yaml

    (work / run_id).mkdir()
    config = _fast_yaml(work / run_id, **cfg)
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--model", str(model_file), "--data", str(data),
                                      "--out", str(work / run_id / "store"), "--run-id", run_id])
    if result.exit_code != 0:
        raise SystemExit(f"{run_id}: exit {result.exit_code}\n{result.output[-2000:]}")
    folder = work / run_id / "store" / "runs" / run_id  # a store per model: no champion between them
    baseline = json.loads((folder / "baseline.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    arts = {a["name"]: a for a in metrics["artifacts"]}
    return {"diff": baseline["conversion_max_abs_diff"], "rows": baseline["conversion_samples"],
            "base_acc": arts["baseline"]["accuracy"], "dep_acc": arts[metrics["deployable"]]["accuracy"],
            "base_gz": arts["baseline"]["gzip_bytes"], "k3_gz": arts["stripped_keras3"]["gzip_bytes"],
            "dep_gz": arts[metrics["deployable"]]["gzip_bytes"], "seconds": time.perf_counter() - t0}


def main() -> int:
    from tests.conftest import npz_bytes
    from tests.keras import k3models

    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="shears-k3-") as tmp:
        work = Path(tmp)
        x, y = k3models.digits_images()
        (work / "digits.npz").write_bytes(npz_bytes(x=x, y=y))
        cnn = k3models.functional_cnn()
        cnn.save(work / "cnn.keras")
        cnn.save(work / "cnn.h5")
        rows.append(("Functional CNN `.keras` (digits, no channel axis)",
                     run(work, work / "cnn.keras", work / "digits.npz", "k3-keras")))
        rows.append(("same model as `.h5`", run(work, work / "cnn.h5", work / "digits.npz", "k3-h5")))

        csv = k3models.iris_csv(work / "iris.csv")
        k3models.sequential_mlp(csv).save(work / "mlp.keras")
        rows.append(("Sequential MLP with Normalization (iris CSV, class names; sparsity 0.5)",
                     run(work, work / "mlp.keras", csv, "iris", gates={"min_compression_ratio": 1.0},
                         validation={"min_rows": 50}, prune={"epochs": 10, "final_sparsity": 0.5})))

        n = 300
        xi, yi = k3models.learnable_images(n=n)
        k3models.mobilenet_v2(xi, yi).save(work / "mnv2.keras")
        (work / "images.npz").write_bytes(npz_bytes(x=xi, y=yi))
        loose: dict[str, Any] = {
            # the test's settings: 0.5 on all 36 layers (0.8 in one epoch collapses it to a near-constant model,
            # which the no-skill floor of every deployment fails: measured 0.0833 on 2026-12-07)
            "gates": {"min_accuracy": None, "max_accuracy_drop_pp": None, "min_skill_margin_pp": None,
                      "min_compression_ratio": 1.0}, "prune": {"epochs": 1, "final_sparsity": 0.5},
            "convert": {"variants": ["dynamic_range"]}, "model": {"conversion_tolerance": 1e-4}}
        rows.append((f"MobileNetV2 α 0.35, 32×32×3, four epochs on {n} learnable images (sparsity 0.5)",
                     run(work, work / "mnv2.keras", work / "images.npz", "mnv2", **loose)))

    print("| Keras 3 model (test data) | max \\|Δ\\| rebuild | baseline acc. | deployable acc. | baseline .h5 gz "
          "| stripped .keras gz | deployable .tflite gz | run s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['diff']:.3g} ({r['rows']} rows) | {r['base_acc']:.4f} | {r['dep_acc']:.4f} "
              f"| {r['base_gz']:,} | {r['k3_gz']:,} | {r['dep_gz']:,} | {r['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
