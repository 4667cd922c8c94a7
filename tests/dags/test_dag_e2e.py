"""`airflow dags test shears_pipeline` end to end in a throw-away AIRFLOW_HOME (SQLite, local store).

One module-scoped Airflow home and store: the passing run makes a champion, the gate-failing run
must leave it untouched, the bad-data run must stop at validate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from shears.records import FailureRecord
from shears.run.steps import STEP_NAMES
from shears.store.layout import sanitize_run_id

from tests.dags.airflow_env import SMALL_SEARCH, AirflowHome, tail, write_config

STAGES = list(STEP_NAMES)


@pytest.fixture(scope="module")
def passed_run(airflow_home: AirflowHome) -> str:
    cfg = write_config(airflow_home.root / "fast.yaml", search=SMALL_SEARCH)
    proc, seconds = airflow_home.dags_test("shears_pipeline", {"config": str(cfg)})
    assert proc.returncode == 0, tail(proc)
    print(f"passing run: {seconds:.1f} s")
    run_id, run_type, state = airflow_home.last_run("shears_pipeline")
    assert (run_type, state) == ("manual", "success")
    return run_id


def test_run_succeeds_and_publishes_to_the_local_store(airflow_home: AirflowHome, passed_run: str) -> None:
    rid = sanitize_run_id(passed_run)
    states = airflow_home.mapped_states("shears_pipeline", passed_run)
    # the search fans out: one sensitivity task per prunable layer, one trial task per proposed trial
    assert states["sensitivity"] == ["success"] * 3
    assert states["trials_1"] == ["success"] * 2 and states["trials_2"] == ["success"]
    assert states["trials_3"] == ["skipped"]  # the budget (3 trials) was spent: nothing to map over
    assert all(states[t] == ["success"] for t in STAGES if t not in ("sensitivity", "trials_1", "trials_2",
                                                                    "trials_3"))
    search = json.loads((airflow_home.store / "runs" / rid / "search.json").read_text())
    assert len(search["trials"]) == 3 and search["winner_feasible"]
    store = airflow_home.store
    manifest = json.loads((store / "runs" / rid / "manifest.json").read_text())
    assert manifest["status"] == "passed" and manifest["run_id"] == rid
    assert manifest["config"]["model"]["epochs"] == 3  # the `config` param was applied
    assert (store / "runs" / rid / "models" / "model_dynamic_range.tflite").is_file()
    assert json.loads((store / "champion.json").read_text())["run_id"] == rid
    assert not (store / "staging" / rid).exists()
    assert not (store / "rejected" / rid).exists()


def test_xcom_carries_only_small_json(airflow_home: AirflowHome, passed_run: str) -> None:
    sizes = airflow_home.xcom_sizes("shears_pipeline", passed_run)
    assert set(sizes) == set(STAGES) - {"trials_3"}  # one XCom per task instance (no per-key copies)
    assert max(sizes.values()) < 2048, sizes
    validate = airflow_home.xcom("shears_pipeline", passed_run, "validate")
    assert validate["data_source"] == "embedded" and validate["rows"] == 1797
    publish = airflow_home.xcom("shears_pipeline", passed_run, "publish")
    assert publish["manifest"] == f"runs/{sanitize_run_id(passed_run)}/manifest.json"


def test_failed_gate_fails_the_run_and_publishes_nothing(airflow_home: AirflowHome, passed_run: str) -> None:
    champion_before = (airflow_home.store / "champion.json").read_bytes()
    # the champion (a searched int8 file) is 4x smaller than this one-recipe run: only min_accuracy is judged here
    strict = write_config(airflow_home.root / "strict.yaml", gates={
        "min_accuracy": 0.999, "champion_max_size_increase_pct": None, "champion_max_accuracy_drop_pp": None})
    proc, _ = airflow_home.dags_test("shears_pipeline", {"config": str(strict)})
    assert proc.returncode != 0
    run_id, _, state = airflow_home.last_run("shears_pipeline")
    assert run_id != passed_run and state == "failed"
    states = airflow_home.task_states("shears_pipeline", run_id)
    assert states["gate"] == ("failed", 1)  # no retry
    assert states["publish"][0] == "upstream_failed"
    before_gate = STAGES[: STAGES.index("gate")]  # the search off: its fan-outs map over nothing (skipped)
    assert all(states[t] in (("success", 1), ("skipped", 0), ("skipped", 1)) for t in before_gate), states

    rid, store = sanitize_run_id(run_id), airflow_home.store
    assert not (store / "runs" / rid).exists()
    assert (store / "champion.json").read_bytes() == champion_before
    gates = json.loads((store / "rejected" / rid / "gates.json").read_text())
    assert gates["passed"] is False
    assert [g["name"] for g in gates["gates"] if not g["passed"]] == ["min_accuracy"]
    assert json.loads((store / "rejected" / rid / "manifest.json").read_text())["status"] == "rejected"
    # the rejection is recorded completely by the gate (its manifest lists every file): the failure
    # callback leaves it intact, and no model file is kept
    listed = set(json.loads((store / "rejected" / rid / "manifest.json").read_text())["files"])
    present = {p.relative_to(store / "rejected" / rid).as_posix()
               for p in (store / "rejected" / rid).rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert present - listed == {"manifest.json"}
    assert not [p for p in present if p.endswith((".h5", ".tflite", ".keras"))]
    assert not (store / "staging" / rid).exists()
    assert "AirflowFailException: GateFailure: gate(s) failed: min_accuracy" in proc.stdout + proc.stderr


def test_bad_data_stops_at_validate_without_retry(airflow_home: AirflowHome, passed_run: str) -> None:
    bad = airflow_home.root / "bad" / "data.npz"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"PK\x03\x04 this is not an npz")
    proc, _ = airflow_home.dags_test("shears_pipeline", {"data_uri": str(bad)})
    assert proc.returncode != 0
    run_id, _, state = airflow_home.last_run("shears_pipeline")
    assert state == "failed"
    states = airflow_home.task_states("shears_pipeline", run_id)
    assert states["validate"] == ("failed", 1)
    assert {states[t][0] for t in STAGES[1:]} == {"upstream_failed"}
    rid = sanitize_run_id(run_id)
    failure = FailureRecord.from_bytes((airflow_home.store / "rejected" / rid / "failure.json").read_bytes())
    assert (failure.stage, failure.exit_code) == ("validate", 3)
    assert "cannot read NPZ" in failure.reason and str(bad) in failure.reason
    assert not (airflow_home.store / "runs" / rid).exists()
    assert not (airflow_home.store / "staging" / rid).exists()  # nothing to resume after bad data

    # the same bad input through the CLI: the same step, exit code and reason in failure.json
    cli_store = airflow_home.root / "cli-store"
    cli = subprocess.run([str(Path(sys.executable).parent / "shears"), "run", "--data", str(bad), "--out",
                          str(cli_store), "--run-id", "cli-bad"], capture_output=True, text=True, timeout=300,
                         env=airflow_home.env)
    assert cli.returncode == 3, cli.stderr[-2000:]
    from_cli = FailureRecord.from_bytes((cli_store / "rejected" / "cli-bad" / "failure.json").read_bytes())
    assert (from_cli.stage, from_cli.exit_code, from_cli.reason) == (failure.stage, failure.exit_code, failure.reason)


def test_the_store_passes_shears_audit(airflow_home: AirflowHome, passed_run: str) -> None:
    """Whatever the DAG left behind (a champion, a rejected run, a failed run) is consistent."""
    from shears.release.audit import audit_store
    from shears.store import LocalStore

    report = audit_store(LocalStore(airflow_home.store))
    assert report.problems == []
    assert [r.run_id for r in report.runs] == [sanitize_run_id(passed_run)]
    assert not [w for w in report.warnings if "staging" in w]


def test_invalid_params_are_refused_before_any_task_runs(airflow_home: AirflowHome) -> None:
    before = airflow_home.query("SELECT count(*) FROM dag_run WHERE dag_id = 'shears_pipeline'")[0][0]
    proc, _ = airflow_home.dags_test("shears_pipeline", {"config": "relative/path.yaml"})
    assert proc.returncode != 0
    assert "does not match" in proc.stdout + proc.stderr
    after = airflow_home.query("SELECT count(*) FROM dag_run WHERE dag_id = 'shears_pipeline'")[0][0]
    assert after == before


def test_plugins_folder_is_importable_and_store_defaults_to_airflow_home(tmp_path: Path) -> None:
    """Airflow puts the plugins folder on sys.path (that is how the DAGs find shears_airflow), and
    without SHEARS_STORE the tasks and the links agree on $AIRFLOW_HOME/shears-store."""
    home = AirflowHome(tmp_path)
    home.env.pop("SHEARS_STORE")
    code = "import airflow, shears_airflow as s; print(s.store_uri())"
    proc = subprocess.run([sys.executable, "-c", code], env=home.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(home.home / "shears-store")
