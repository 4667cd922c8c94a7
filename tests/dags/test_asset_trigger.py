"""New data → asset event → an asset-triggered shears_pipeline run, through Airflow's own machinery.

The producer DAG (`shears_data_push`) runs with `airflow dags test`; its outlet registers an
AssetEvent and queues the consumer (AssetDagRunQueue). A real scheduler loop (`airflow scheduler
--num-runs N`) then creates the DagRun with run_type asset_triggered. The default pool has 0 slots
in this AIRFLOW_HOME, so the created run never starts a task (no API server is running here).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.dags.airflow_env import AirflowHome, tail, write_digits_npz


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    h = AirflowHome(
        tmp_path_factory.mktemp("asset"),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",  # events only queue runs of unpaused DAGs
        AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT="0",
    )
    h.migrate()
    return h


def _events(home: AirflowHome) -> list[tuple[int, str, str, str]]:
    return home.query("SELECT e.id, a.uri, e.source_dag_id, e.extra FROM asset_event e "
                      "JOIN asset a ON a.id = e.asset_id")


def test_producer_without_data_emits_nothing(home: AirflowHome) -> None:
    proc, _ = home.dags_test("shears_data_push")
    assert proc.returncode != 0
    assert "no data at" in proc.stdout + proc.stderr
    assert _events(home) == []


def test_data_event_triggers_a_pipeline_run(home: AirflowHome) -> None:
    data = write_digits_npz(home.data)
    proc, _ = home.dags_test("shears_data_push")
    assert proc.returncode == 0, tail(proc)

    events = _events(home)
    assert len(events) == 1
    event_id, uri, source, extra = events[0]
    assert (uri, source) == (data.as_uri(), "shears_data_push")
    assert json.loads(extra)["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    queued = home.query("SELECT target_dag_id FROM asset_dag_run_queue")
    assert queued == [("shears_pipeline",)]

    runs: list[tuple[str, str]] = []
    for _ in range(3):  # a scheduler loop is ~1 s; allow for a slow machine
        sched = home.airflow("scheduler", "--num-runs", "3", "--skip-serve-logs", timeout=180)
        assert sched.returncode == 0, tail(sched)
        runs = home.query("SELECT run_id, state FROM dag_run WHERE dag_id = 'shears_pipeline' "
                          "AND run_type = 'asset_triggered'")
        if runs:
            break
    assert len(runs) == 1, "the scheduler created no asset-triggered run"
    run_id = runs[0][0]
    consumed = home.query("SELECT e.id FROM dagrun_asset_event x JOIN asset_event e ON e.id = x.event_id "
                          "JOIN dag_run r ON r.id = x.dag_run_id WHERE r.run_id = ?", run_id)
    assert consumed == [(event_id,)]
    assert home.query("SELECT count(*) FROM asset_dag_run_queue") == [(0,)]
    assert not (home.store / "runs").exists()  # nothing ran: the default pool has no slots
