"""Every layer kind Shears prunes, through `shears run --model`: one run per family of kinds (tests/keras/kinds.py)
and Keras generation, shared by the per-kind tests of tests/cli/test_kinds_keras3.py and test_kinds_tf_keras.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shears.cli.main import app
from typer.testing import CliRunner

from tests.keras import kinds

runner = CliRunner()
TARGET = 0.5
CONFIG = {
    "prune": {"epochs": 2, "final_sparsity": TARGET},
    "convert": {"variants": ["dynamic_range", "int8"], "latency_runs": 5, "saved_model": False},
    # the figures of interest are the sparsities; the gates still run (and must pass) on loose thresholds
    "gates": {"min_accuracy": 0.5, "min_compression_ratio": 0.9, "max_accuracy_drop_pp": 30},
    "search": {"enabled": False},
}
TEXT_TRAIN = 1200  # the text case's first 1,200 sequences train; the other 300 are its test split


def run_family(folder: Path, family: str, generation: str, *, saved_model: bool = False) -> dict[str, Any]:
    """Build, train and save the family's model, run Shears on it; the run's records (and its exit, output).
    `saved_model`: also export the SavedModel (the benchmark measures it; the kind tests need not)."""
    import yaml

    model, data = kinds.save(folder, family, generation)
    cfg = folder / "cfg.yaml"
    raw = json.loads(json.dumps(CONFIG))
    raw["convert"]["saved_model"] = saved_model
    cfg.write_text(yaml.safe_dump(raw))
    store = folder / "store"
    result = runner.invoke(app, ["run", "--config", str(cfg), "--model", str(model), "--data", str(data),
                                 "--out", str(store), "--run-id", family])
    run = store / "runs" / family
    records = {n: json.loads((run / f"{n}.json").read_text()) for n in ("baseline", "sparsity", "search", "metrics",
                                                                         "manifest")} if run.is_dir() else {}
    return {"exit": result.exit_code, "output": result.output, "run": run, **records}


def run_text(folder: Path) -> dict[str, Any]:
    """The text case: the Keras 3 Embedding -> LSTM -> Dense classifier on token ids (tests/keras/kinds.py)
    through `shears run --model … --data …` with the default search (the recipe, then one allocated from
    sensitivity) at the epochs an LSTM needs. Its run folder, exit, output and test rows; shared by
    tests/cli/test_text_model.py and bench/layer_kinds.py."""
    from tests.cli.test_run import _fast_yaml
    from tests.conftest import npz_bytes
    from tests.keras.k3models import k3

    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "text.keras"
    kinds.text_lstm(k3()).save(model)
    x, y = kinds.text_task()
    data = folder / "text.npz"
    data.write_bytes(npz_bytes(x=x[:TEXT_TRAIN], y=y[:TEXT_TRAIN], x_test=x[TEXT_TRAIN:], y_test=y[TEXT_TRAIN:]))
    cfg = _fast_yaml(folder, prune={"epochs": 8}, search={"enabled": True, "space": {"epochs": [8]}},
                     convert={"variants": ["dynamic_range", "int8"], "saved_model": True},
                     gates={"min_accuracy": 0.9, "max_accuracy_drop_pp": 2.0, "min_compression_ratio": 5.0})
    store = folder / "store"
    result = runner.invoke(app, ["run", "--config", str(cfg), "--model", str(model), "--data", str(data), "--out",
                                 str(store), "--run-id", "text"])
    return {"exit": result.exit_code, "output": result.output, "stdout": result.stdout,
            "run": store / "runs" / "text", "x_test": x[TEXT_TRAIN:], "y_test": y[TEXT_TRAIN:]}


def family_runs(tmp_path_factory: pytest.TempPathFactory, generation: str) -> dict[str, dict[str, Any]]:
    return {f: run_family(tmp_path_factory.mktemp(f"{generation}-{f}"), f, generation) for f in kinds.FAMILIES}


def check_kind(runs: dict[str, dict[str, Any]], layer: str) -> None:
    """The layer is pruned to target in every weight tfmot prunes, after strip and in the published .tflite."""
    family, cls, weights = kinds.KINDS[layer]
    r = runs[family]
    assert r["exit"] == 0, r["output"][-3000:]
    plan = {p["layer"]: p for p in r["baseline"]["support"]["layers"]}[layer]
    assert plan["class_name"] == cls and tuple(plan["weights"]) == weights and plan["kept"] is None
    row = {s["layer"]: s for s in r["sparsity"]["layers"]}[layer]
    assert row["target"] == TARGET and row["passed"]
    reached = row["parts"] if len(weights) > 1 else {weights[0]: row["sparsity"]}
    assert set(reached) == set(weights) and all(v >= TARGET - 0.01 for v in reached.values()), reached
    trial = r["search"]["trials"][r["search"]["winner"]]
    checks = [c for c in trial["checks"] if c["layer"] == layer]
    assert len(checks) == len(weights), checks  # each weight found in the .tflite (fused LSTM gates, WHILE bodies)
    for c in checks:
        assert c["tensor"] != "(not found)" and c["zero_fraction"] >= TARGET - 0.01 and c["passed"], c
    assert (r["run"] / "models" / "model_dynamic_range.tflite").is_file()


def check_kept(runs: dict[str, dict[str, Any]], layer: str) -> None:
    family, cls = kinds.KEPT[layer]
    plan = {p["layer"]: p for p in runs[family]["baseline"]["support"]["layers"]}[layer]
    assert plan["class_name"] == cls and plan["weights"] == {} and "tfmot prunes none" in plan["kept"]


def check_recurrent_conversion(runs: dict[str, dict[str, Any]]) -> None:
    """RNNs convert with a batch of one; a GRU/SimpleRNN model gets no int8 (the converter crashes), said why."""
    r = runs["sequence"]
    support = r["baseline"]["support"]
    assert "static batch" in support["fixed_batch"] and "WHILE loop" in support["int8"]
    assert r["search"]["trials"][0]["recipe"]["fixed_batch"]
    names = [a["name"] for a in r["metrics"]["artifacts"]]
    assert "tflite_dynamic_range" in names and "tflite_int8" not in names
