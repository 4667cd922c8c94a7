"""A real, distributed Airflow 3 for tests: API server, scheduler, DAG processor and Celery workers as separate
processes on this machine's PostgreSQL (a fresh database per run) and Redis (an empty db number), bound to 127.0.0.1.

    db = PgDatabase.create()                      # shears_it_<random>; db.drop() at the end
    cluster = AirflowCluster(home, env)           # env: everything every Airflow process must share
    cluster.airflow("db", "migrate")
    cluster.start("api-server", "api-server")     # airflow api-server, own session, log in home/proc-logs/
    cluster.wait_healthy(120)
    cluster.api("POST", "/api/v2/dags/x/dagRuns", json={...})
    cluster.stop()                                # SIGTERM by PID, bounded wait, SIGKILL the process groups
    assert cluster.leftovers() == []              # no process of this run is left (marker in the environment)

Every wait is bounded. Nothing here is specific to Shears except the defaults of `airflow_env`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
MARKER = "SHEARS_IT_RUN"  # every process of one cluster carries MARKER=<token> in its environment


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tcp_open(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- PostgreSQL


def _pg_connect(dbname: str = "postgres") -> Any:
    """A superuser connection (trust auth): user postgres, else root."""
    import psycopg2

    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=user, dbname=dbname, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            last = exc
            continue
        conn.autocommit = True
        return conn
    raise RuntimeError(f"cannot connect to PostgreSQL at {PG_HOST}:{PG_PORT} as postgres or root: {last}")


@dataclass
class PgDatabase:
    name: str
    user: str

    @classmethod
    def create(cls, prefix: str = "shears_it_") -> PgDatabase:
        name = prefix + secrets.token_hex(4)
        conn = _pg_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
                cur.execute("SELECT current_user")
                user = str(cur.fetchone()[0])
        finally:
            conn.close()
        return cls(name=name, user=user)

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@{PG_HOST}:{PG_PORT}/{self.name}"

    @property
    def celery_backend_url(self) -> str:
        return f"db+postgresql+psycopg2://{self.user}@{PG_HOST}:{PG_PORT}/{self.name}"

    def drop(self) -> None:
        conn = _pg_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            conn.close()

    def exists(self) -> bool:
        conn = _pg_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,))
                return cur.fetchone() is not None
        finally:
            conn.close()


# --------------------------------------------------------------------------- Redis


def empty_redis_db(candidates: range = range(1, 16)) -> int:
    """An empty Redis db number (random order), so parallel runs and other users do not share a broker."""
    import random

    import redis

    order = list(candidates)
    random.shuffle(order)
    for db in order:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=5)
        try:
            if client.dbsize() == 0:
                return db
        finally:
            client.close()
    raise RuntimeError(f"no empty Redis db among {candidates} at {REDIS_HOST}:{REDIS_PORT}")


def redis_dbsize(db: int) -> int:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=5)
    try:
        return int(client.dbsize())
    finally:
        client.close()


def redis_delete_keys(db: int, patterns: tuple[str, ...]) -> int:
    """Delete the keys this run created (bounded SCAN); returns how many."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=5)
    deleted = 0
    try:
        for pattern in patterns:
            keys = list(client.scan_iter(match=pattern, count=500))[:100_000]
            if keys:
                deleted += int(client.delete(*keys))
    finally:
        client.close()
    return deleted


# --------------------------------------------------------------------------- Airflow processes


def airflow_env(
    home: Path, *, db: PgDatabase, redis_db: int, api_port: int, default_queue: str, parallelism: int = 4,
    worker_concurrency: int = 1, dags_folder: Path | None = None, extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment every Airflow process of one cluster shares (secrets are random per run)."""
    from cryptography.fernet import Fernet

    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "AWS_", "SHEARS_", "PYTEST_", "CELERY", "_AIRFLOW"))}
    api = f"http://127.0.0.1:{api_port}"
    env = {
        **base,
        "PATH": f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.sqlalchemy_url,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": db.celery_backend_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        # Longer than any task may run (Celery redelivers a task still unacknowledged after this).
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": default_queue,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        # Shared by the API server (which checks task tokens) and the scheduler (which signs them).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        # Manual runs only: no scheduled (cron) run may start while the test runs.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
        MARKER: secrets.token_hex(8),
    }
    env.update(extra or {})
    return env


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class AirflowCluster:
    home: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    @property
    def token(self) -> str:
        return self.env[MARKER]

    @property
    def base_url(self) -> str:
        return self.env["AIRFLOW__API__BASE_URL"]

    @property
    def log_dir(self) -> Path:
        path = self.home / "proc-logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one `airflow ...` command to completion (bounded); raises with its output on failure."""
        proc = subprocess.run(
            [str(VENV_BIN / "airflow"), *args], env=self.env, cwd=self.home, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
                               f"{proc.stderr[-4000:]}")
        return proc

    def start(self, name: str, *args: str) -> Proc:
        """Start `airflow <args>` in its own session (its PID is its process group id), output to a log file."""
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as fh:
            popen = subprocess.Popen(
                [str(VENV_BIN / "airflow"), *args], env=self.env, cwd=self.home, stdout=fh,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for p in self.procs:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.popen.returncode}:\n{tail(p.log)}")

    # ----------------------------------------------------------------------- REST API

    def api(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), timeout: float = 15,
            **kwargs: Any) -> Any:
        """One REST call (the simple auth manager's all-admins mode needs no token); returns the JSON body."""
        import httpx

        resp = httpx.request(method, self.base_url + path, timeout=timeout, **kwargs)
        if resp.status_code not in expect:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:2000]}")
        ctype = resp.headers.get("content-type", "")
        return resp.json() if ctype.startswith("application/json") else resp.text

    def wait_healthy(self, timeout: float, components: tuple[str, ...] = ("metadatabase", "scheduler",
                                                                            "dag_processor")) -> dict[str, Any]:
        import httpx

        deadline = time.monotonic() + timeout
        last: Any = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                body = self.api("GET", "/api/v2/monitor/health", timeout=5)
                last = body
                if all((body.get(c) or {}).get("status") == "healthy" for c in components):
                    return dict(body)
            except (httpx.HTTPError, RuntimeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(1)
        raise TimeoutError(f"Airflow not healthy after {timeout:.0f} s: {last}\n{self.describe()}")

    def wait_for(self, what: str, probe: Any, timeout: float, interval: float = 2.0) -> Any:
        """Poll probe() until it returns something truthy (bounded); checks the processes are alive."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            last = probe()
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(f"{what}: not reached after {timeout:.0f} s (last: {last})\n{self.describe()}")

    def describe(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.popen.pid}, rc {p.popen.poll()}):\n{tail(p.log, 25)}"
                         for p in self.procs)

    # ----------------------------------------------------------------------- shutdown

    def members(self) -> list[Any]:
        """Every live process of this cluster: our session leaders, their process groups and descendants, and
        anything else carrying this cluster's marker in its environment (e.g. a task process that left the group)."""
        import psutil

        found: dict[int, Any] = {}
        leaders = {p.popen.pid for p in self.procs}
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid == os.getpid():
                    continue
                if proc.pid in leaders or os.getpgid(proc.pid) in leaders or \
                        proc.environ().get(MARKER) == self.token:
                    found[proc.pid] = proc
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
        for proc in list(found.values()):
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    found.setdefault(child.pid, child)
        return [p for p in found.values() if _alive(p)]

    def stop(self, grace: float = 30.0) -> list[str]:
        """SIGTERM every leader (by PID), wait up to `grace` s, then SIGKILL whatever of the cluster is left.

        Returns the names of the processes that had to be killed."""
        import psutil

        for p in self.procs:
            if p.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        killed = [p.name for p in self.procs if p.popen.poll() is None]
        # Leaders are gone or get SIGKILL now, then every other process of the cluster, by PID.
        for _ in range(3):
            rest = self.members()
            if not rest:
                break
            for proc in rest:
                with contextlib.suppress(psutil.Error):
                    killed.append(f"{proc.name()}[{proc.pid}]")
                    proc.kill()
            psutil.wait_procs(rest, timeout=10)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=10)
        return killed

    def listening(self) -> list[tuple[str, str, int]]:
        """(process name, address, port) of every TCP socket a process of this cluster listens on."""
        import psutil

        pids = {p.pid: p for p in self.members()}
        out = []
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.pid in pids and conn.laddr:
                with contextlib.suppress(psutil.Error):
                    out.append((pids[conn.pid].name(), str(conn.laddr.ip), int(conn.laddr.port)))
        return out

    def leftovers(self) -> list[str]:
        return [f"{p.name()}[{p.pid}]" for p in self.members()]


def _alive(proc: Any) -> bool:
    import psutil

    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
