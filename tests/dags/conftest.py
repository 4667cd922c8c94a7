"""Fixtures for the Airflow DAG tests.

Airflow reads AIRFLOW_HOME and its folders when it is first imported, so they are set here, before
any test module imports it: a throw-away AIRFLOW_HOME, the project's dags/ and plugins/, no examples.
Runs that need a metadata DB use their own AIRFLOW_HOME in a subprocess (see airflow_env.AirflowHome).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dags.airflow_env import DAGS, PLUGINS, AirflowHome

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="shears-airflow-home-"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PLUGINS)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
if str(PLUGINS) not in sys.path:  # Airflow adds it on import; be explicit in case it was imported earlier
    sys.path.append(str(PLUGINS))


@pytest.fixture
def shears_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SHEARS_* for in-process tests: a fresh store and a (missing) data asset under tmp_path."""
    monkeypatch.setenv("SHEARS_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("SHEARS_DATA_URI", (tmp_path / "incoming" / "data.npz").as_uri())
    monkeypatch.delenv("SHEARS_CONFIG", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHome]:
    """A migrated SQLite AIRFLOW_HOME with its own store, shared by one test module."""
    home = AirflowHome(tmp_path_factory.mktemp("airflow"))
    home.migrate()
    yield home
