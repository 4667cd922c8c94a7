"""docker/Dockerfile installs Shears with the project's pins, on the Airflow image the pins name.

Parses docker/Dockerfile, pyproject.toml and requirements.lock; needs no Docker engine.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: list[str]) -> dict[str, str]:
    out = {}
    for req in requirements:
        m = PIN.match(req)
        assert m, f"not an exact pin: {req!r}"
        out[norm(m.group(1))] = m.group(2)
    return out


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def lock() -> dict[str, str]:
    text = (REPO / "requirements.lock").read_text()
    return pins([ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")])


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def dockerfile_args() -> dict[str, str]:
    return dict(arg.split("=", 1) for kind, arg in instructions() if kind == "ARG" and "=" in arg)


def base_image() -> str:
    (image,) = [rest for kind, rest in instructions() if kind == "FROM"]
    return re.sub(r"\$\{(\w+)\}", lambda m: dockerfile_args()[m.group(1)], image)


def run_lines() -> list[str]:
    return [rest for kind, rest in instructions() if kind == "RUN"]


def test_base_image_is_the_official_airflow_image_of_the_pinned_version() -> None:
    project = pyproject()
    airflow = pins(project["project"]["optional-dependencies"]["airflow"])["apache-airflow"]
    python = re.search(r">=\s*(3\.\d+)", project["project"]["requires-python"])
    assert python, project["project"]["requires-python"]
    assert base_image() == f"apache/airflow:{airflow}-python{python.group(1)}"


def test_pip_installs_the_project_with_the_lock_as_constraints() -> None:
    installs = [shlex.split(cmd) for line in run_lines() for cmd in re.split(r"&&|;", line) if "pip install" in cmd]
    assert len(installs) == 1, installs
    (argv,) = installs
    assert argv[argv.index("-c") + 1] == "requirements.lock"
    assert ".[airflow]" in argv
    # Nothing else is installed by name: every version comes from pyproject.toml or the lock.
    extras = [a for a in argv[argv.index("install") + 1:] if not a.startswith("-") and a not in (".[airflow]",
                                                                                                 "requirements.lock")]
    assert extras == []
    copies = " ".join(rest for kind, rest in instructions() if kind == "COPY")
    assert "pyproject.toml" in copies and "requirements.lock" in copies and "tasks/" in copies


def test_every_pyproject_pin_is_the_lock_pin() -> None:
    """The image gets pyproject's pins (`.[airflow]`) and the lock's for the rest: they must agree."""
    project = pyproject()["project"]
    wanted = {**pins(project["dependencies"]), **pins(project["optional-dependencies"]["airflow"])}
    locked = lock()
    assert {n: (v, locked.get(n)) for n, v in wanted.items() if locked.get(n) != v} == {}


def test_legacy_keras_is_set_for_every_process() -> None:
    env = " ".join(rest for kind, rest in instructions() if kind == "ENV")
    assert re.search(r"(^|\s)TF_USE_LEGACY_KERAS=1(\s|$)", env), env


def test_dags_and_plugins_are_where_airflow_looks() -> None:
    copies = [shlex.split(rest) for kind, rest in instructions() if kind == "COPY"]
    targets = {args[-2].rstrip("/"): args[-1].rstrip("/") for args in copies if not args[-2].startswith("--")}
    assert targets.get("dags") == "/opt/airflow/dags"
    assert targets.get("plugins") == "/opt/airflow/plugins"


def test_build_context_is_an_allowlist() -> None:
    """The repository holds a multi-GB .venv: the context sends only what the Dockerfile copies."""
    rules = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "*"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied: set[str] = set()
    for kind, rest in instructions():
        if kind == "COPY":
            copied.update(a.rstrip("/") for a in shlex.split(rest)[:-1] if not a.startswith("--"))
    assert copied <= allowed, copied - allowed
    assert ".venv" not in allowed


@pytest.mark.parametrize("package", ["asyncpg", "psycopg2-binary", "celery"])
def test_lock_pins_the_runtime_of_a_postgres_celery_deployment(package: str) -> None:
    """What the image (and the integration test) runs must be what the lock pins.

    Airflow 3 on PostgreSQL also opens an async engine (postgresql+asyncpg) in the API server, so asyncpg is
    required; and apache-airflow-providers-celery 3.26.0 imports `retry` from celery.backends.database, which
    celery 5.7.0 removed (every Celery worker and the scheduler fail to start), so celery must be < 5.7.
    """
    locked = lock()
    assert norm(package) in locked, f"{package} is not pinned in requirements.lock"
    assert importlib.metadata.version(package) == locked[norm(package)], f"installed {package} differs from the lock"


def test_the_celery_executor_imports() -> None:
    import airflow.providers.celery.executors.celery_executor_utils  # noqa: F401
