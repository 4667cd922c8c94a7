"""
### shears_pipeline

validate → baseline → prune → strip → convert → evaluate → gate → publish

One task per step of `shears.run.steps.STEPS` (task id = step name): it builds the run's context, calls
the step and returns the step's small dict (keys in the store, metrics). Models and arrays move through
the artifact store (`$SHEARS_STORE`, staging under `staging/<run_id>/`), never through XCom.

* **Schedule**: nightly at 02:00 UTC, or as soon as the data asset (`$SHEARS_DATA_URI`) gets an event
  (`shears data push` or the `shears_data_push` DAG).
* **Manual runs**: `config` (absolute YAML path), `data_uri`, `model_uri` override the defaults.
* **Run id**: artifacts live under the sanitized Airflow run id, so a retried task rewrites its own
  outputs only; a cleared run that was already published is refused.
* **Failures**: bad config/data and failed gates fail at once (no retry) and are recorded under
  `rejected/<run_id>/`; store/network errors retry 3× with exponential backoff.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, chain, dag, task
from shears_airflow import (
    CONFIG_PATTERN,
    DATA_URI_PATTERN,
    MODEL_URI_PATTERN,
    PIPELINE_DAG_ID,
    TRANSIENT_IO_ONLY,
    data_asset,
    on_task_failure,
    run_step,
    tf_task_args,
)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "shears",
    "retries": 3,
    "retry_delay": timedelta(seconds=5),
    # A multiplier since Airflow 3.3 (`True` would mean 1.0: no backoff). 2.0: ~5 s, 10 s, 20 s (jittered).
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
    "retry_policy": TRANSIENT_IO_ONLY,
    "on_failure_callback": on_task_failure,
}
# Queue/pool of the tasks that import TensorFlow ($SHEARS_TF_QUEUE, $SHEARS_TF_POOL; unset: defaults).
TF_TASK: dict[str, Any] = {"multiple_outputs": False, **tf_task_args()}


@dag(
    dag_id=PIPELINE_DAG_ID,
    schedule=AssetOrTimeSchedule(
        # run_immediately=timedelta(0): without it, deploying or unpausing within 2.4 h after 02:00 UTC (10% of
        # the cron period: Airflow 3.3 treats False like None) would immediately run "last night's" pipeline.
        timetable=CronTriggerTimetable("0 2 * * *", timezone="UTC", run_immediately=timedelta(0)),
        assets=[data_asset()],
    ),
    # No start_date: the first nightly run is the next 02:00 UTC (with a past start_date, deploying or
    # unpausing would immediately run "last night's" pipeline).
    catchup=False,
    max_active_runs=1,  # runs compete for the champion; one at a time also bounds memory
    dagrun_timeout=timedelta(hours=6),
    default_args=DEFAULT_ARGS,
    params={
        "config": Param(
            None, type=["null", "string"], pattern=CONFIG_PATTERN, title="Pipeline config",
            description="Absolute path of a pipeline YAML (empty: $SHEARS_CONFIG or the embedded defaults).",
        ),
        "data_uri": Param(
            None, type=["null", "string"], pattern=DATA_URI_PATTERN, title="Data URI",
            description="NPZ/CSV/Parquet: /abs/path, file:///abs/path or s3://bucket/key "
                        "(empty: config data.uri, else the data asset if present, else sklearn digits).",
        ),
        "force_claim": Param(
            False, type="boolean", title="Take over a stale run-id claim",
            description="Only for a run whose earlier writer died: a claim with no heartbeat for "
                        "claim.stale_after_s (or whose process is gone) is taken over and the takeover recorded.",
        ),
        "model_uri": Param(
            None, type=["null", "string"], pattern=MODEL_URI_PATTERN, title="Pre-trained model URI",
            description="A .keras/.h5 model to prune instead of training a baseline (empty: train one).",
        ),
    },
    tags=["shears", "ml"],
    doc_md=__doc__,
)
def shears_pipeline() -> None:
    # One task per step of shears.run.steps.STEPS; each task id is the step's name (a test asserts it).
    # multiple_outputs=False: one XCom per task (the step's small dict), not one more per key.
    @task(retries=0, multiple_outputs=False)
    def validate() -> dict[str, Any]:
        """Begin the run (refuse a published run id, clear staging) and validate the data."""
        return run_step("validate")

    @task(**TF_TASK)
    def baseline() -> dict[str, Any]:
        return run_step("baseline")

    @task(**TF_TASK)
    def prune() -> dict[str, Any]:
        return run_step("prune")

    @task(**TF_TASK)
    def strip() -> dict[str, Any]:
        return run_step("strip")

    @task(**TF_TASK)
    def convert() -> dict[str, Any]:
        return run_step("convert")

    @task(**TF_TASK)
    def evaluate() -> dict[str, Any]:
        return run_step("evaluate")

    @task(retries=0, multiple_outputs=False)
    def gate() -> dict[str, Any]:
        """Fails the run when a gate fails; the gate step itself records the rejection under rejected/<run_id>/."""
        return run_step("gate")

    @task(multiple_outputs=False)
    def publish() -> dict[str, Any]:
        """Publish runs/<run_id>/ and promote; a retry after a completed publish is a no-op."""
        return run_step("publish")

    chain(validate(), baseline(), prune(), strip(), convert(), evaluate(), gate(), publish())


shears_pipeline()
