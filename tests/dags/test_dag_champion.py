"""The same-data champion gate through `airflow dags test`: a champion published by the CLI on clean digits,
a DAG run on shifted data that is better on that data although below the champion's own recorded figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from shears.records import GatesRecord
from shears.store.layout import sanitize_run_id

from tests.conftest import digits_arrays, npz_bytes
from tests.dags.airflow_env import AirflowHome, tail, write_config

LOOSE = {"min_accuracy": 0.3, "max_accuracy_drop_pp": 30.0, "min_compression_ratio": 3.0,
         "champion_max_size_increase_pct": None}


def test_the_dag_scores_the_champion_on_this_runs_test_split(airflow_home: AirflowHome, tmp_path: Path) -> None:
    x, y = digits_arrays()
    clean, shifted = tmp_path / "clean.npz", tmp_path / "shifted.npz"
    clean.write_bytes(npz_bytes(x=x, y=y))
    noise = np.random.default_rng(0).normal(0, 0.25, x.shape)
    shifted.write_bytes(npz_bytes(x=np.clip(1 - x + noise, 0, 1).astype(np.float32), y=y))
    cfg = write_config(tmp_path / "loose.yaml", gates=LOOSE)
    cli = subprocess.run([str(Path(sys.executable).parent / "shears"), "run", "--config", str(cfg), "--data",
                          str(clean), "--out", str(airflow_home.store), "--run-id", "cli-champion"],
                         capture_output=True, text=True, timeout=600, env=airflow_home.env)
    assert cli.returncode == 0, cli.stderr[-3000:]
    proc, _ = airflow_home.dags_test("shears_pipeline", {"config": str(cfg), "data_uri": str(shifted)})
    assert proc.returncode == 0, tail(proc)
    run_id, _, state = airflow_home.last_run("shears_pipeline")
    assert state == "success"
    rid = sanitize_run_id(run_id)
    c = GatesRecord.from_bytes((airflow_home.store / "runs" / rid / "gates.json").read_bytes()).comparison
    assert c is not None and c.run_id == "cli-champion" and c.comparable and c.same_data is False
    assert c.champion_recorded_accuracy is not None and c.challenger_accuracy is not None
    assert c.champion_accuracy is not None and c.ci_low_pp is not None
    assert (c.champion_recorded_accuracy - c.challenger_accuracy) * 100 > 1.0  # today's rule: rejected
    assert c.challenger_accuracy > c.champion_accuracy and c.ci_low_pp > 0  # same rows: clearly better
    assert json.loads((airflow_home.store / "champion.json").read_text())["run_id"] == rid
