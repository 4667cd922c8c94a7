"""A throw-away Airflow installation for tests and benchmarks: its own AIRFLOW_HOME, SQLite DB, store.

Everything runs through the real `airflow` command in a subprocess, so the DAG sees exactly what a
deployment sees (environment, plugins folder, DAG bundle), and the test process never has to
configure Airflow's ORM.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"
BIN = Path(sys.executable).parent
HEAVY = ("tensorflow", "tensorflow_model_optimization", "great_expectations", "tf_keras")

# Quick but real: digits, 3 + 1 epochs, one TFLite variant. One pruning epoch costs ~7 pp of
# accuracy, so the default 2 pp drop gate is loosened; the accuracy and compression gates stay real.
FAST_CONFIG: dict[str, Any] = {
    "model": {"epochs": 3},
    "prune": {"epochs": 1},
    "convert": {"variants": ["dynamic_range"], "latency_runs": 5},
    "gates": {"min_accuracy": 0.8, "min_compression_ratio": 3, "max_accuracy_drop_pp": 15},
    "search": {"enabled": False},
}
# A small search: the DAG's mapped tasks (sensitivity per layer, trials per round, a second round proposed by
# the sampler) on a tiny budget. Sparsity only: clustering and QAT are tested in tests/stages and tests/run.
SMALL_SEARCH: dict[str, Any] = {"enabled": True, "max_trials": 3, "rounds": 2, "trials_per_round": 2,
                                "space": {"epochs": [1], "clusters": [0], "qat": [False],
                                          "variants": ["dynamic_range"]}}


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    raw = json.loads(json.dumps(FAST_CONFIG))
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(raw))
    return path


def write_digits_npz(path: Path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.savez(fh, x=(d.images / 16.0).astype(np.float32), y=d.target.astype(np.int64))
    return path


class AirflowHome:
    def __init__(self, root: Path, **extra_env: str) -> None:
        self.root = root
        self.home = root / "airflow-home"
        self.store = root / "store"
        self.data = root / "incoming" / "data.npz"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "TF_USE_LEGACY_KERAS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SHEARS_STORE": str(self.store),
            "SHEARS_DATA_URI": self.data.as_uri(),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **extra_env,
        }
        self.env.pop("SHEARS_CONFIG", None)
        self.home.mkdir(parents=True, exist_ok=True)

    def airflow(self, *args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN / "airflow"), *args], env=self.env, cwd=self.root, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{tail(proc)}")
        return proc

    def migrate(self) -> None:
        self.airflow("db", "migrate", check=True, timeout=300)

    def dags_test(
        self, dag_id: str, conf: dict[str, Any] | None = None
    ) -> tuple[subprocess.CompletedProcess[str], float]:
        args = ["dags", "test", dag_id]
        if conf:
            args += ["--conf", json.dumps(conf)]
        t0 = time.perf_counter()
        proc = self.airflow(*args, timeout=900)
        return proc, time.perf_counter() - t0

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return list(db.execute(sql, params).fetchall())

    def last_run(self, dag_id: str) -> tuple[str, str, str]:
        """(run_id, run_type, state) of the DAG's newest run."""
        rows = self.query("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                          dag_id)
        assert rows, f"no run of {dag_id}"
        return rows[0]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
        rows = self.query("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
                          dag_id, run_id)
        return {task_id: (state, tries) for task_id, state, tries in rows}

    def mapped_states(self, dag_id: str, run_id: str) -> dict[str, list[str | None]]:
        """Every task instance's state, mapped tasks with one entry per map index (in index order)."""
        rows = self.query("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ? "
                          "ORDER BY task_id, map_index", dag_id, run_id)
        out: dict[str, list[str | None]] = {}
        for task_id, _, state in rows:
            out.setdefault(task_id, []).append(state)
        return out

    def xcom_sizes(self, dag_id: str, run_id: str) -> dict[str, int]:
        rows = self.query("SELECT task_id, length(value) FROM xcom WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
        return {task_id: int(n or 0) for task_id, n in rows}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        rows = self.query("SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
                          dag_id, run_id, task_id, key)
        assert rows, f"no xcom {key} of {task_id}"
        value = json.loads(rows[0][0])
        return json.loads(value) if isinstance(value, str) else value


def tail(proc: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    text = (proc.stdout or "") + "\n" + (proc.stderr or "")
    return "\n".join(text.splitlines()[-lines:])
