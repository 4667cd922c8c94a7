"""Benchmark: the search's trial phase through the DAG on Celery, one TensorFlow worker vs two.

    python bench/dag_workers.py            # ~10 min: starts Airflow on this machine's PostgreSQL + Redis

Starts the integration setup's topology as local processes (tests/integration/cluster.py: API server,
scheduler, DAG processor, triggerer, a default Celery worker and TensorFlow workers on their own queue and a
2-slot pool), runs `shears_pipeline` on a Fashion-MNIST subset with one round of six trials (`trials_1`, a
mapped task), first with one TensorFlow worker using both cores (SHEARS_TF_THREADS=2), then with two workers
using one core each (SHEARS_TF_THREADS=1), and prints the trial phase's wall time (first trial start to last
trial end, from the task instances) for both. Needs the Debian package dataset-fashion-mnist.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CONFIG: dict[str, Any] = {
    "data": {"validation_fraction": 0.1},
    "model": {"builder": "shears.keras.builders:tutorial_cnn", "epochs": 2},
    "prune": {"epochs": 2, "batch_size": 128},
    "convert": {"variants": ["int8"], "deployable": "int8", "latency_runs": 5},
    "search": {"max_trials": 6, "rounds": 1, "trials_per_round": 6, "max_minutes": 60,
               "space": {"epochs": [2], "clusters": [8, 4], "qat": [True], "variants": ["int8"]}},
    "gates": {"min_accuracy": 0.75, "max_accuracy_drop_pp": 5.0, "min_compression_ratio": 5.0,
              "champion_max_size_increase_pct": None, "champion_max_accuracy_drop_pp": None},
    "validation": {"min_rows": 1000, "min_rows_per_class": 100, "max_class_imbalance": 2.0},
}


def subset_npz(path: Path, train: int = 15_000, test: int = 3_000) -> None:
    from fashion_mnist import SRC, read_idx

    rng = np.random.default_rng(0)
    x = read_idx(SRC / "train-images-idx3-ubyte.gz")
    y = read_idx(SRC / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = read_idx(SRC / "t10k-images-idx3-ubyte.gz")
    yt = read_idx(SRC / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    i, j = rng.choice(len(x), train, replace=False), rng.choice(len(xt), test, replace=False)
    buf = io.BytesIO()
    np.savez(buf, x=x[i], y=y[i], x_test=xt[j], y_test=yt[j])  # uint8: Shears scales them (recorded)
    path.write_bytes(buf.getvalue())


def trial_phase(cluster: Any, run_id: str) -> tuple[float, int]:
    """(seconds from the first trials_1 start to the last trials_1 end, number of trials)."""
    from urllib.parse import quote

    body = cluster.api("GET", f"/api/v2/dags/shears_pipeline/dagRuns/{quote(run_id)}/taskInstances?limit=200")
    tis = [t for t in body["task_instances"] if t["task_id"] == "trials_1" and t["start_date"] and t["end_date"]]
    starts = [datetime.fromisoformat(t["start_date"]) for t in tis]
    ends = [datetime.fromisoformat(t["end_date"]) for t in tis]
    return (max(ends) - min(starts)).total_seconds(), len(tis)


def run_once(cluster: Any, config: Path, data: Path, label: str) -> tuple[str, str]:
    run = cluster.api("POST", "/api/v2/dags/shears_pipeline/dagRuns",
                      json={"logical_date": None, "dag_run_id": f"bench_{label}_{int(time.time())}",
                            "conf": {"config": str(config), "data_uri": str(data)}})
    run_id = run["dag_run_id"]

    def done() -> str | None:
        from urllib.parse import quote

        state = cluster.api("GET", f"/api/v2/dags/shears_pipeline/dagRuns/{quote(run_id)}")["state"]
        return state if state in ("success", "failed") else None

    state = cluster.wait_for(f"run {run_id}", done, timeout=3600, interval=5)
    return run_id, state


def main() -> int:
    from tests.integration.cluster import (
        AirflowCluster,
        PgDatabase,
        airflow_env,
        empty_redis_db,
        free_port,
        redis_delete_keys,
    )

    root = Path(tempfile.mkdtemp(prefix="shears-bench-workers-"))
    data = root / "fashion_subset.npz"
    subset_npz(data)
    config = root / "bench.yaml"
    config.write_text(json.dumps(CONFIG))
    db = PgDatabase.create(prefix="shears_bench_")
    redis_db = empty_redis_db()
    queue = db.name
    tf_queue = f"{queue}_tensorflow"
    env = airflow_env(root / "airflow", db=db, redis_db=redis_db, api_port=free_port(), default_queue=queue,
                      parallelism=8, extra={"SHEARS_STORE": str(root / "store"), "SHEARS_TF_QUEUE": tf_queue,
                                            "SHEARS_TF_POOL": "shears_training"})
    (root / "airflow").mkdir()
    cluster = AirflowCluster(root / "airflow", env)
    results = []
    try:
        cluster.airflow("db", "migrate", timeout=300)
        cluster.airflow("pools", "set", "shears_training", "2", "Shears TensorFlow tasks")
        for name, args in (("api-server", ["api-server"]), ("scheduler", ["scheduler", "--skip-serve-logs"]),
                           ("dag-processor", ["dag-processor"]), ("triggerer", ["triggerer", "--skip-serve-logs"]),
                           ("worker-default", ["celery", "worker", "--queues", queue, "--concurrency", "2",
                                               "--skip-serve-logs", "--without-mingle", "--without-gossip"])):
            cluster.start(name, *args)
        cluster.wait_healthy(180, components=("metadatabase", "scheduler", "dag_processor", "triggerer"))
        cluster.wait_for("the DAG", lambda: cluster.api("GET", "/api/v2/dags/shears_pipeline", expect=(200, 404))
                         .get("dag_id"), timeout=180)
        cluster.api("PATCH", "/api/v2/dags/shears_pipeline", json={"is_paused": False})

        def tf_worker(name: str, threads: int) -> Any:
            cluster.env = {**env, "SHEARS_TF_THREADS": str(threads)}
            try:
                return cluster.start(name, "celery", "worker", "--queues", tf_queue, "--concurrency", "1",
                                     "--celery-hostname", f"{name}@%h", "--skip-serve-logs", "--without-mingle",
                                     "--without-gossip")
            finally:
                cluster.env = env

        one = tf_worker("tf-one", 2)
        time.sleep(10)
        run_id, state = run_once(cluster, config, data, "one")
        seconds, n = trial_phase(cluster, run_id)
        results.append(("1 worker x 2 threads", state, n, seconds))
        one.popen.terminate()
        one.popen.wait(timeout=120)
        cluster.procs.remove(one)
        tf_worker("tf-a", 1)
        tf_worker("tf-b", 1)
        time.sleep(10)
        run_id, state = run_once(cluster, config, data, "two")
        seconds, n = trial_phase(cluster, run_id)
        results.append(("2 workers x 1 thread", state, n, seconds))
    finally:
        cluster.stop()
        db.drop()
        redis_delete_keys(redis_db, (f"*{queue}*",))
    print(f"{'TensorFlow workers':<24}{'run':>9}{'trials':>8}{'trial phase (s)':>17}{'vs one':>8}")
    for label, state, n, seconds in results:
        print(f"{label:<24}{state:>9}{n:>8}{seconds:>17.1f}{seconds / results[0][3]:>8.2f}")
    print(f"(state and logs in {root}; pool shears_training has 2 slots; each worker --concurrency 1)")
    return 0 if all(r[1] == "success" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
