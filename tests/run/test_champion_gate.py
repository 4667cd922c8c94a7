"""The champion gates compare like with like: the champion is scored on this run's test split (real models,
real TFLite), with a paired difference, its interval and McNemar's test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from shears.records import GatesRecord
from shears.run.pipeline import RunOutcome, run_pipeline
from shears.store import LocalStore

from tests.conftest import FAST, digits_arrays, fast_config, npz_bytes

pytestmark = pytest.mark.tf

# Loose absolute gates: these tests are about the champion gates (default: at most 1.0 pp worse, point rule).
GATES: dict[str, Any] = {"min_accuracy": 0.3, "max_accuracy_drop_pp": 30.0, "min_compression_ratio": 3.0,
                         "champion_max_size_increase_pct": None}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """clean digits; inverted digits with noise (a shift the clean champion cannot read); noisy digits; 4x4."""
    x, y = digits_arrays()
    rng = np.random.default_rng(0)
    arrays = {
        "clean": x,
        "inverted": np.clip(1 - x + rng.normal(0, 0.25, x.shape), 0, 1).astype(np.float32),
        "noisy": np.clip(x + rng.normal(0, 0.35, x.shape), 0, 1).astype(np.float32),
        "small": x.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).astype(np.float32),
    }
    root = tmp_path_factory.mktemp("shift")
    out = {}
    for name, arr in arrays.items():
        out[name] = root / f"{name}.npz"
        out[name].write_bytes(npz_bytes(x=arr, y=y))
    return out


def _run(store: Path, run_id: str, data: Path, **sections: dict[str, Any]) -> RunOutcome:
    gates = {**GATES, **sections.pop("gates", {})}
    return run_pipeline(LocalStore(store), fast_config(data={"uri": str(data)}, gates=gates, **sections), run_id)


def _champion(store: Path) -> str:
    return str(json.loads((store / "champion.json").read_text())["run_id"])


def test_a_better_challenger_on_harder_data_is_promoted_where_the_old_rule_rejected_it(
        data: dict[str, Path], tmp_path: Path) -> None:
    """Champion trained on clean digits; the challenger on shifted data, where it is far better than the
    champion but below the champion's own recorded accuracy (on its clean data). Run through the CLI."""
    store = tmp_path / "store"
    assert _run(store, "champ-a", data["clean"]).passed
    cfg = tmp_path / "challenger.yaml"
    raw = json.loads(json.dumps(FAST))
    raw["gates"].update(GATES)
    cfg.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([str(Path(sys.executable).parent / "shears"), "run", "--config", str(cfg), "--data",
                           str(data["inverted"]), "--out", str(store), "--run-id", "chall-b"], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    c = GatesRecord.from_bytes((store / "runs" / "chall-b" / "gates.json").read_bytes()).comparison
    assert c is not None and c.comparable and c.same_data is False and c.n == 360
    assert c.champion_recorded_accuracy is not None and c.challenger_accuracy is not None
    assert c.champion_accuracy is not None and c.difference_pp is not None and c.ci_low_pp is not None
    # today's rule compared 0.85 on the new data with the champion's 0.92 on its own data: a > 1 pp "drop"
    assert (c.champion_recorded_accuracy - c.challenger_accuracy) * 100 > 1.0
    # on the same rows the challenger is far better, significantly so
    assert c.challenger_accuracy > c.champion_accuracy and c.ci_low_pp > 0
    assert c.mcnemar_p is not None and c.mcnemar_p < 1e-6
    assert _champion(store) == "chall-b"
    assert "champion champ-a on this run's 360 test rows" in proc.stdout and "other data" in proc.stdout


def test_easier_data_no_longer_lets_a_worse_model_through(data: dict[str, Path], tmp_path: Path) -> None:
    """Champion trained (and recorded) on noisy digits; a weaker challenger on clean digits beats that recorded
    figure, but the champion scores better on the same clean rows: rejected, under both rules."""
    store = tmp_path / "store"
    assert _run(store, "champ-noisy", data["noisy"]).passed
    weak = {"model": {"epochs": 1}, "prune": {"epochs": 1, "final_sparsity": 0.8}}
    for rule in ("point", "confident"):
        outcome = _run(store, f"weak-{rule}", data["clean"], gates={"champion_rule": rule}, **weak)
        assert not outcome.passed and outcome.gates is not None
        c = outcome.gates.comparison
        assert c is not None and c.comparable and c.challenger_accuracy is not None
        assert c.champion_recorded_accuracy is not None and c.champion_accuracy is not None
        assert c.challenger_accuracy > c.champion_recorded_accuracy  # today's rule would have passed it
        assert c.champion_accuracy > c.challenger_accuracy and c.ci_high_pp is not None and c.ci_high_pp < -1.0
        assert "champion_max_accuracy_drop_pp" in str(outcome.error)
    assert _champion(store) == "champ-noisy"


def test_an_incomparable_champion_fails_or_is_skipped_as_configured(data: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _run(store, "champ-8x8", data["clean"]).passed
    failed = _run(store, "small-fail", data["small"])  # 4x4 images: the champion takes 8x8
    assert not failed.passed and "champion_comparable" in str(failed.error)
    assert failed.gates is not None and failed.gates.comparison is not None
    assert "it takes inputs of shape (8, 8)" in failed.gates.comparison.reason
    skipped = _run(store, "small-skip", data["small"], gates={"champion_incomparable": "skip"})
    assert skipped.passed and skipped.gates is not None
    gate = next(g for g in skipped.gates.gates if g.name == "champion_comparable")
    assert gate.passed and "champion gates skipped" in gate.reason
    assert _champion(store) == "small-skip"


def test_a_tampered_champion_file_is_refused_not_evaluated(data: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _run(store, "champ-t", data["clean"]).passed
    deployable = json.loads((store / "runs" / "champ-t" / "manifest.json").read_text())["deployable"]["file"]
    model = store / "runs" / "champ-t" / deployable
    model.write_bytes(model.read_bytes() + b"\0")
    outcome = _run(store, "after-tamper", data["clean"], gates={"champion_incomparable": "skip"})
    assert not outcome.passed and outcome.gates is not None and outcome.gates.comparison is not None
    assert "does not match the sha256 its manifest lists" in outcome.gates.comparison.reason
    assert outcome.gates.comparison.tampered
    assert "refused to run it" in str(outcome.error)


def test_a_run_that_loses_the_champion_race_is_published_says_how_to_promote_and_leaves_no_staging(
        data: dict[str, Path], tmp_path: Path) -> None:
    """Between this run's gates and its publish, another promotion moves the champion: the run stays published
    (complete, verifiable), its staging is gone, and the message says how to promote it (not to rerun it)."""
    from shears.release.champion import read_champion, set_champion
    from shears.store import PreconditionFailed

    store = tmp_path / "store"
    assert _run(store, "first", data["clean"]).passed

    def meanwhile(step: str, state: str) -> None:
        if step == "publish" and state == "start":  # someone re-promotes the champion: its etag changes
            current = read_champion(LocalStore(store))
            assert current is not None
            set_champion(LocalStore(store), "first", action="promote", by="someone", expected_etag=current.etag)

    with pytest.raises(PreconditionFailed) as err:
        run_pipeline(LocalStore(store), fast_config(data={"uri": str(data["clean"])}, gates=GATES), "second",
                     on_step=meanwhile)
    message = str(err.value)
    assert "is published" in message and f"shears promote {store} second" in message.replace("file://", "")
    assert "rerun" not in message
    assert (store / "runs" / "second" / "manifest.json").is_file()
    assert not (store / "staging" / "second").exists()
    assert _champion(store) == "first"
