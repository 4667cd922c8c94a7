"""Benchmark: every layer kind Shears prunes, and the text case, through `shears run --model` — the README's tables.

The models, data and configs are the tests' (tests/keras/kinds.py, tests/cli/layer_kinds.py and
tests/cli/test_text_model.py): one run per family of kinds (images, sequences, volumes) per Keras generation,
search off, every layer pruned to 0.5; then the Keras 3 Embedding -> LSTM -> Dense text model with the search on.
Prints two markdown tables: each kind's sparsity in the published .tflite, and each run by runtime (LiteRT,
TFLite Micro, TF Serving). ~6 min on 2 cores.
Usage: .venv/bin/python bench/layer_kinds.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.keras.kinds: the same models as the tests


def _runtimes(run: Path) -> dict[str, Any]:
    metrics = json.loads((run / "metrics.json").read_text())
    arts = {a["name"]: a for a in metrics["artifacts"]}
    dep = arts[metrics["deployable"]]
    micro = metrics.get("micro")
    saved = arts.get("saved_model")
    return {"base_gz": arts["baseline"]["gzip_bytes"], "base_acc": arts["baseline"]["accuracy"],
            "dep": metrics["deployable"], "dep_gz": dep["gzip_bytes"], "dep_acc": dep["accuracy"],
            "micro": (f"{micro['arena_bytes']:,} B, acc {micro['metrics']['accuracy']:.4f}" if micro and micro["runs"]
                      else f"no: {micro['reason']}" if micro else "not run (not int8)"),
            "saved": f"{saved['raw_bytes']:,} / {saved['gzip_bytes']:,}, acc {saved['accuracy']:.4f}" if saved else "-"}


def main() -> int:
    from tests.cli import layer_kinds
    from tests.keras import kinds

    kind_rows: list[tuple[str, str, str]] = []
    run_rows: list[tuple[str, dict[str, Any], float]] = []
    with tempfile.TemporaryDirectory(prefix="shears-kinds-") as tmp:
        work = Path(tmp)
        for generation in ("keras3", "tf_keras"):
            for family in kinds.FAMILIES:
                folder = work / f"{generation}-{family}"
                folder.mkdir()
                t0 = time.perf_counter()
                r = layer_kinds.run_family(folder, family, generation, saved_model=True)
                if r["exit"] != 0:
                    raise SystemExit(f"{generation} {family}: exit {r['exit']}\n{r['output'][-2000:]}")
                seconds = time.perf_counter() - t0
                trial = r["search"]["trials"][r["search"]["winner"]]
                for layer, (fam, cls, _) in kinds.KINDS.items():
                    if fam != family:
                        continue
                    found = [c for c in trial["checks"] if c["layer"] == layer]
                    kind_rows.append((cls, generation, ", ".join(
                        f"{c['weight'] or 'weights'} {c['zero_fraction']:.3f} ({c['tensor']})" for c in found)))
                run_rows.append((f"{family} kinds ({generation})", _runtimes(r["run"]), seconds))
        t0 = time.perf_counter()
        text_run = layer_kinds.run_text(work / "text")
        if text_run["exit"] != 0:
            raise SystemExit(f"text: exit {text_run['exit']}\n{text_run['output'][-2000:]}")
        run = text_run["run"]
        prune = json.loads((run / "prune.json").read_text())
        row = _runtimes(run)
        row["recipe"] = prune["recipe"]
        run_rows.append(("text: Keras 3 Embedding(200, 16) -> LSTM(32) -> Dense(2), search on", row,
                         time.perf_counter() - t0))

    print("| layer kind | file | zeros in the published .tflite at target 0.50 (tensor) |")
    print("|---|---|---|")
    for cls, generation, zeros in kind_rows:
        print(f"| {cls} | {generation} | {zeros} |")
    print()
    print("| run | baseline .h5 gz / test acc | LiteRT deployable gz / acc | TFLite Micro | TF Serving SavedModel "
          "raw / gz | run s |")
    print("|---|---|---|---|---|---:|")
    for name, r, seconds in run_rows:
        print(f"| {name} | {r['base_gz']:,} / {r['base_acc']:.4f} | {r['dep']} {r['dep_gz']:,} / {r['dep_acc']:.4f} "
              f"| {r['micro']} | {r['saved']} | {seconds:.0f} |")
    text = run_rows[-1][1]["recipe"]
    print(f"\ntext model's published recipe: sparsity {text['sparsity']}, clusters {text['clusters']}, "
          f"{text['variant']}{' batch-1' if text['fixed_batch'] else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
