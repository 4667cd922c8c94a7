"""The `shears run` contract: exit codes, one-line errors, nothing published on bad input, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from shears.cli.main import app
from shears.config import PipelineConfig
from typer.testing import CliRunner

from tests.conftest import FAST, digits_arrays, npz_bytes

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

pytestmark = pytest.mark.tf


def _manifests(store: Path) -> list[Path]:
    return sorted(store.rglob("manifest.json"))


def _fast_yaml(tmp_path: Path, **extra: dict) -> Path:
    raw = json.loads(json.dumps(FAST))
    for k, v in extra.items():
        raw.setdefault(k, {}).update(v)
    p = tmp_path / "fast.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_default_run_passes_with_no_options(tmp_path: Path) -> None:
    """The README's main command: embedded digits, embedded config, local store, exit 0."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "shears.cli.main", "run", "--run-id", "default"], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # quiet by default: only the step lines, none of TensorFlow's C++ start-up noise (cuInit, cudart_stub, ...)
    noise = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("step ")]
    assert noise == [], noise
    run = tmp_path / "artifacts" / "runs" / "default"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "passed" and manifest["gates_passed"]
    sparsity = json.loads((run / "sparsity.json").read_text())
    pruned = [r for r in sparsity["layers"] if r["target"] is not None]
    assert pruned and all(r["sparsity"] >= r["target"] - 0.01 for r in pruned)
    search = json.loads((run / "search.json").read_text())  # the default run searches (a small budget)
    budget = PipelineConfig().search.max_trials  # the embedded default: the recipe + one allocated recipe
    assert search["enabled"] and len(search["trials"]) == budget and search["winner_feasible"]
    assert f"Search: {budget} trials" in proc.stdout
    # the summary table shows every artifact and every gate
    for name in ("baseline", "pruned_unstripped", "stripped", "tflite_float32", "tflite_dynamic_range",
                 "tflite_int8", "tflite_float16", "min_compression_ratio", "sparsity"):
        assert name in proc.stdout
    # every published file is in the manifest with its true sha256
    import hashlib

    for name, entry in manifest["files"].items():
        assert hashlib.sha256((run / name).read_bytes()).hexdigest() == entry["sha256"]
    assert json.loads((tmp_path / "artifacts" / "champion.json").read_text())["run_id"] == "default"
    card_agrees_with_records(run)
    # the int8 deployable on TFLite Micro: the card, the report and the CLI say so, with the arena found
    micro = json.loads((run / "metrics.json").read_text())["micro"]
    assert micro["runs"] and micro["agrees"] and micro["arena_bytes"] > 1024
    said = f"runs on TFLite Micro: yes, arena {micro['arena_bytes'] / 1000:.1f} KB ({micro['arena_bytes']:,} B)"
    assert said in proc.stdout
    card = (run / "model_card.md").read_text()
    assert f"**Runs on TFLite Micro**: yes, arena {micro['arena_bytes'] / 1000:.1f} KB" in card
    assert f"yes, arena {micro['arena_bytes'] / 1000:.1f} KB" in (run / "report.html").read_text()
    runtimes = {r["runtime"]: r for r in manifest["deployable"]["runtimes"]}
    assert runtimes["TFLite Micro"]["file"] == runtimes["LiteRT"]["file"] == manifest["deployable"]["file"]
    assert runtimes["TF Serving"]["file"] == "models/saved_model/"
    assert "models/saved_model/saved_model.pb" in manifest["files"]


def card_agrees_with_records(folder: Path) -> None:
    """The model card describes what was published, field by field: prune.json's recipe, metrics.json's
    figures (split named), the manifest's deployable, validation.json's split rows."""
    card = json.loads((folder / "model_card.json").read_text())
    md = (folder / "model_card.md").read_text()
    prune = json.loads((folder / "prune.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    validation = json.loads((folder / "validation.json").read_text())
    recipe = prune["recipe"]
    pruning, conversion, baseline = card["recipe"]["pruning"], card["recipe"]["conversion"], card["recipe"]["baseline"]
    assert pruning["layer_targets"] == recipe["sparsity"]
    assert pruning["target_sparsity"] == max(recipe["sparsity"].values())
    assert pruning["clusters"] == recipe["clusters"] and pruning["epochs"] == recipe["prune_epochs"]
    assert (pruning["qat"] is None) == (not recipe["qat"])
    assert pruning["trial"] == prune["trial"] and pruning["accuracy_split"] == prune["split"] == "validation"
    assert conversion["deployable"] == recipe["variant"] and metrics["deployable"] == f"tflite_{recipe['variant']}"
    deployable = next(a for a in metrics["artifacts"] if a["name"] == metrics["deployable"])
    assert card["deployable"]["gzip_bytes"] == deployable["gzip_bytes"]
    assert card["deployable"]["accuracy"] == deployable["accuracy"]
    if manifest.get("deployable"):
        assert manifest["deployable"]["name"] == metrics["deployable"]
    tested = next(a for a in metrics["artifacts"] if a["name"] == "baseline")
    assert baseline["accuracy_split"] == "validation" and baseline["test_accuracy"] == tested["accuracy"]
    assert card["data"]["test_rows"] == validation["split_rows"]["test"] > 0
    assert card["data"]["validation_rows"] == validation["split_rows"]["validation"] > 0
    assert f"validation accuracy {baseline['accuracy']:.4f}; test accuracy {tested['accuracy']:.4f}" in md
    for layer, target in recipe["sparsity"].items():
        assert f"{layer} {target:.2f}" in md
    for layer, k in recipe["clusters"].items():
        assert f"{layer} {k} clusters" in md
    assert f"deployable `{recipe['variant']}`" in md


def _bad_npz(tmp_path: Path, name: str, **arrays: np.ndarray) -> Path:
    p = tmp_path / name
    p.write_bytes(npz_bytes(**arrays))
    return p


def _cases(tmp_path: Path) -> dict[str, tuple[list[str], int, str]]:
    x, y = digits_arrays()
    x_nan = x.copy()
    x_nan[3, 1, 1] = np.nan
    x_inf = x.copy()
    x_inf[7, 0, 0] = np.inf
    y_range = y.copy()
    y_range[:5] = 10
    keep = np.concatenate([np.where(y != 4)[0], np.where(y == 4)[0][:3]])
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(npz_bytes(x=x, y=y)[:5000])
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,target\n" + "\n".join(f"{i},{i * 2},{i % 2}" for i in range(200)))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("prune:\n  final_sparsity: 0.8\n  bogus_key: 1\n")
    sparsity = tmp_path / "sparsity.yaml"
    sparsity.write_text("prune:\n  final_sparsity: 1.2\n")
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text("prune:\n  end_step: 100000\n")
    num10 = tmp_path / "num10.yaml"
    num10.write_text("validation:\n  num_classes: 10\n")
    return {
        "nan": (["--data", str(_bad_npz(tmp_path, "nan.npz", x=x_nan, y=y))], 3, "NaN/inf"),
        "inf": (["--data", str(_bad_npz(tmp_path, "inf.npz", x=x_inf, y=y))], 3, "NaN/inf"),
        "labels": (["--data", str(_bad_npz(tmp_path, "lab.npz", x=x, y=y_range)), "--config", str(num10)], 3,
                   "label domain"),
        "empty": (["--data", str(empty)], 3, "is empty"),
        "truncated": (["--data", str(trunc)], 3, "corrupt or truncated"),
        "mismatch": (["--data", str(_bad_npz(tmp_path, "mm.npz", x=x, y=y[:-3]))], 3, "1797 rows but y has 1794"),
        "dims": (["--data", str(_bad_npz(tmp_path, "dims.npz", x=x.reshape(-1), y=y))], 3, "dimension"),
        "label_column": (["--data", str(csv), "--label-column", "klass"], 3, "label column 'klass' not found"),
        "few_rows": (["--data", str(_bad_npz(tmp_path, "few.npz", x=x[keep], y=y[keep]))], 3,
                     "minimum rows per class"),
        "unknown_key": (["--config", str(unknown)], 2, "prune.bogus_key: unknown key"),
        "sparsity": (["--config", str(sparsity)], 2, "prune.final_sparsity"),
        "missing_file": (["--data", str(tmp_path / "nope.npz")], 2, "file not found"),
        "bad_run_id": (["--run-id", "../../etc"], 2, "invalid run id"),
        "schedule": (["--config", str(schedule)], 2, "prune.end_step 100000 is never reached"),
    }


CASES = ["nan", "inf", "labels", "empty", "truncated", "mismatch", "dims", "label_column", "few_rows",
         "unknown_key", "sparsity", "missing_file", "bad_run_id", "schedule"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exit_code_one_line_and_no_manifest(case: str, tmp_path: Path) -> None:
    args, code, needle = _cases(tmp_path)[case]
    store = tmp_path / "store"
    result = runner.invoke(app, ["run", "--out", str(store), *args])
    assert result.exit_code == code, result.output
    err_lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(err_lines) == 1 and needle in err_lines[0], result.stderr
    assert _manifests(store) == []
    assert not list(store.rglob("*.h5")), "nothing may be trained on bad input"
    assert "step baseline" not in result.stderr, "nothing may be trained on bad input"


def test_validation_failure_is_recorded_for_audit(tmp_path: Path) -> None:
    x, y = digits_arrays()
    x[0, 0, 0] = np.nan
    store = tmp_path / "store"
    result = runner.invoke(app, ["run", "--out", str(store), "--run-id", "bad1", "--data",
                                 str(_bad_npz(tmp_path, "n.npz", x=x, y=y))])
    assert result.exit_code == 3
    failure = json.loads((store / "rejected" / "bad1" / "failure.json").read_text())
    assert failure["stage"] == "validate" and "NaN/inf" in failure["reason"]
    report = json.loads((store / "rejected" / "bad1" / "validation.json").read_text())
    assert report["success"] is False
    assert not (store / "staging" / "bad1").exists()


def test_gate_failure_exits_4_and_publishes_no_model(tmp_path: Path) -> None:
    cfg = _fast_yaml(tmp_path, gates={"min_accuracy": 0.9999})
    store = tmp_path / "store"
    result = runner.invoke(app, ["run", "--config", str(cfg), "--out", str(store), "--run-id", "g1"])
    assert result.exit_code == 4, result.output
    assert "min_accuracy" in result.stderr
    assert not (store / "runs" / "g1").exists() and not (store / "champion.json").exists()
    rejected = store / "rejected" / "g1"
    assert json.loads((rejected / "gates.json").read_text())["passed"] is False
    assert json.loads((rejected / "manifest.json").read_text())["status"] == "rejected"
    assert not list(rejected.rglob("*.h5")) and not list(rejected.rglob("*.tflite"))
    failure = json.loads((rejected / "failure.json").read_text())
    assert failure["stage"] == "gate" and failure["exit_code"] == 4 and "min_accuracy" in failure["reason"]
    assert "failure.json" in json.loads((rejected / "manifest.json").read_text())["files"]
    card_agrees_with_records(rejected)


def test_same_data_config_and_run_id_give_identical_metrics(tmp_path: Path, digits_npz: Path) -> None:
    """Also with the search on: the sampler is seeded and every trial trains with fixed seeds."""
    cfg = _fast_yaml(tmp_path, search={"enabled": True, "max_trials": 3, "rounds": 2, "trials_per_round": 2,
                                       "space": {"epochs": [1], "clusters": [0, 8], "qat": [True]}})
    outs = []
    for i in range(2):
        store = tmp_path / f"s{i}"
        result = runner.invoke(app, ["run", "--config", str(cfg), "--data", str(digits_npz), "--out", str(store),
                                     "--run-id", "same"])
        assert result.exit_code == 0, result.output
        outs.append(store / "runs" / "same")
    m0, m1 = (json.loads((o / "metrics.json").read_text()) for o in outs)
    assert m0 == m1
    assert [a["gzip_bytes"] for a in m0["artifacts"]] == [a["gzip_bytes"] for a in m1["artifacts"]]
    for name in ("sparsity.json", "gates.json", "validation.json", "sensitivity.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    trials = [[(t["recipe"], t["score"], t["gzip_bytes"]) for t in json.loads((o / "search.json").read_text())
               ["trials"]] for o in outs]
    assert trials[0] == trials[1] and len(trials[0]) == 3  # the same trials, the same figures


def test_pretrained_model_flow(tmp_path: Path) -> None:
    """The seeds' flow: prune a user's pre-trained .keras model instead of training one."""
    from shears.config import ModelConfig
    from shears.stages.baseline import train_baseline
    from shears.stages.data import load_digits_default, split

    s = split(load_digits_default(), 0.2, 0, 10)
    user = tmp_path / "user.keras"
    train_baseline(s, ModelConfig(epochs=4)).model.save(user)
    store = tmp_path / "store"
    result = runner.invoke(app, ["run", "--config", str(_fast_yaml(tmp_path)), "--model", str(user), "--out",
                                 str(store), "--run-id", "pre"])
    assert result.exit_code == 0, result.output
    baseline = json.loads((store / "runs" / "pre" / "baseline.json").read_text())
    assert baseline["pretrained"] == str(user) and baseline["history"] == {}
    # a tf_keras file loads as before: no rebuild, no Keras 3 copy given back
    assert baseline["origin"] == "Keras 2 .keras" and baseline["conversion_max_abs_diff"] is None
    assert not (store / "runs" / "pre" / "models" / "stripped.keras").exists()
    assert "model: Keras 2 .keras" in result.stdout


def test_already_published_run_id_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "runs" / "r").mkdir(parents=True)
    (store / "runs" / "r" / "manifest.json").write_text("{}")
    result = runner.invoke(app, ["run", "--out", str(store), "--run-id", "r"])
    assert result.exit_code == 2 and "already published" in result.stderr


def test_every_run_writes_its_report(tmp_path: Path) -> None:
    """Passed and rejected runs both leave report.html, listed in the manifest, and the CLI says where."""
    store = tmp_path / "store"
    ok = runner.invoke(app, ["run", "--config", str(_fast_yaml(tmp_path)), "--out", str(store), "--run-id", "p"])
    assert ok.exit_code == 0, ok.output
    assert f"report: {store.resolve()}/runs/p/report.html" in ok.stdout
    manifest = json.loads((store / "runs" / "p" / "manifest.json").read_text())
    assert "report.html" in manifest["files"]
    html = (store / "runs" / "p" / "report.html").read_text()
    assert "PASSED" in html and "data:image/png;base64," in html
    strict = tmp_path / "strict"
    strict.mkdir()
    bad = runner.invoke(app, ["run", "--config", str(_fast_yaml(strict, gates={"min_accuracy": 0.9999})), "--out",
                              str(store), "--run-id", "r"])
    assert bad.exit_code == 4
    assert "REJECTED" in (store / "rejected" / "r" / "report.html").read_text()
