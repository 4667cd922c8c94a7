"""A regressor through `airflow dags test shears_pipeline`: the task chosen at validate travels through every
task in validation.json (never re-derived), and the run is judged and published by MSE."""

from __future__ import annotations

import json
from pathlib import Path

from shears.store.layout import sanitize_run_id

from tests.cli.test_tasks import friedman_csv
from tests.dags.airflow_env import SMALL_SEARCH, AirflowHome, tail, write_config


def test_the_dag_runs_a_regression_end_to_end(airflow_home: AirflowHome, tmp_path: Path) -> None:
    data = friedman_csv(tmp_path / "fr.csv", n=900)
    cfg = write_config(tmp_path / "regression.yaml", data={"label_column": "y"}, model={"epochs": 30},
                       # a digits champion of another test may hold the store: another task kind, not comparable
                       gates={"min_compression_ratio": 1.0, "max_change_pct": 50.0, "champion_incomparable": "skip"},
                       search=SMALL_SEARCH)
    proc, _ = airflow_home.dags_test("shears_pipeline", {"config": str(cfg), "data_uri": str(data)})
    assert proc.returncode == 0, tail(proc)
    run_id, _, state = airflow_home.last_run("shears_pipeline")
    assert state == "success"
    run = airflow_home.store / "runs" / sanitize_run_id(run_id)
    assert json.loads((run / "validation.json").read_text())["task"]["kind"] == "regression"
    # validate (in its task) filled the regression defaults the config leaves unset; the value it sets is kept
    staged = json.loads((run / "config.json").read_text())
    assert (staged["prune"]["final_sparsity"], staged["model"]["epochs"], staged["prune"]["epochs"]) == (0.9, 30, 1)
    search = json.loads((run / "search.json").read_text())
    assert search["metric"] == "mse" and all(t["score"] is None or t["score"] > 0 for t in search["trials"])
    sensitivity = json.loads((run / "sensitivity.json").read_text())
    assert sensitivity["metric"] == "mse" and sensitivity["unit"] == "%"
    gates = json.loads((run / "gates.json").read_text())
    if gates["comparison"] is not None:  # a classifier champion: another task kind, said so
        assert not gates["comparison"]["comparable"] and "this run is regression" in gates["comparison"]["reason"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["deployable"]["task"] == "regression" and manifest["deployable"]["primary"] == "mse"
    assert manifest["deployable"]["metrics"]["r2"] > 0.5
