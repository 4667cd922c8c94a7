"""Test-only DAG: eight mapped tasks of one DAG run hold that run's claim at the same time.

What shears_pipeline's mapped sensitivity and trial tasks do (shears_airflow.runner.run_step: resume the
claim, heartbeat while the step runs), without TensorFlow: each `hold` task resumes the claim `begin` took,
heartbeats every second for HOLD_S (past the 5 s stale limit, so the claim lives only if the heartbeats
do) and checks it was never seen as taken over. `end` drops the claim as publish does and checks it is gone.
Runs on the queue $SHEARS_IT_CLAIM_QUEUE (a worker with concurrency >= MAPPED, so the eight overlap).
"""

from __future__ import annotations

import os
import time
from typing import Any

from airflow.sdk import dag, get_current_context, task

QUEUE = os.environ.get("SHEARS_IT_CLAIM_QUEUE", "default")
MAPPED = 8
HOLD_S = 7.0
CLAIM = {"claim.heartbeat_s": 1, "claim.stale_after_s": 5}


@dag(dag_id="shears_claim_probe", schedule=None, catchup=False, max_active_runs=1, max_active_tasks=MAPPED,
     tags=["shears-test"])
def shears_claim_probe() -> None:
    @task(queue=QUEUE)
    def begin() -> list[int]:
        from shears.config import load_config
        from shears.run import lifecycle
        from shears_airflow.callbacks import holder
        from shears_airflow.hooks import open_run_store
        from shears_airflow.settings import run_layout

        ctx = get_current_context()
        lifecycle.begin(open_run_store(), run_layout(ctx["run_id"]), load_config(None, CLAIM), holder(ctx))
        return list(range(MAPPED))

    @task(queue=QUEUE)
    def hold(index: int) -> dict[str, Any]:
        from shears.config import load_config
        from shears.run import lifecycle
        from shears_airflow.callbacks import holder
        from shears_airflow.hooks import open_run_store
        from shears_airflow.settings import run_layout

        ctx = get_current_context()
        started = time.time()
        claim = lifecycle.resume(open_run_store(), run_layout(ctx["run_id"]), load_config(None, CLAIM), holder(ctx))
        claim.start_heartbeat()
        time.sleep(HOLD_S)
        claim.stop_heartbeat()
        claim.check()  # ConfigError (the task fails) if a sibling's refresh was taken for a takeover
        return {"index": index, "pid": os.getpid(), "writes": claim.writes, "start": started, "end": time.time()}

    @task(queue=QUEUE)
    def end(held: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from shears.run import lifecycle
        from shears.run.claim import read_claim
        from shears_airflow.callbacks import holder
        from shears_airflow.hooks import open_run_store
        from shears_airflow.settings import run_layout

        ctx = get_current_context()
        store, layout = open_run_store(), run_layout(ctx["run_id"])
        lifecycle.end(store, layout, holder(ctx))
        if read_claim(store, layout.run_id) is not None:
            raise RuntimeError(f"the claim of {layout.run_id} is still there after the run ended")
        store.delete_prefix(layout.staging_prefix)
        return list(held)

    end(hold.expand(index=begin()))


shears_claim_probe()
