"""
### shears_pipeline

validate → baseline → plan_sensitivity → sensitivity[layer…] → propose_1 → trials_1[trial…] → propose_2 →
trials_2[…] → propose_3 → trials_3[…] → select → evaluate → gate → publish

One task per step of `shears.run.steps.STEPS` (task id = step name): it builds the run's context, calls
the step and returns the step's small dict (keys in the store, metrics). The sensitivity points and the
search's trials are dynamically mapped tasks (`.expand()`) on the TensorFlow queue, so Celery workers
train them in parallel; `select` picks the winner. Models and arrays move through the artifact store
(`$SHEARS_STORE`, staging under `staging/<run_id>/`), never through XCom.

* **Results**: the [Shears view](/shears/) (in the navigation as "Shears"): runs published and rejected, the
  champion, reports and model cards; every task of a run links there ("Shears report", "Shears run", ...).
* **Schedule**: nightly at 02:00 UTC, or as soon as the data asset (`$SHEARS_DATA_URI`) gets an event
  (`shears data push` or the `shears_data_push` DAG).
* **Manual runs**: `config` (absolute YAML path), `data_uri`, `model_uri` override the defaults; a value of the
  wrong form is refused when triggering (the form says what each field accepts, with an example).
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
    SEARCH_ROUNDS,
    TRANSIENT_IO_ONLY,
    data_asset,
    on_task_failure,
    run_step,
    task_args,
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
            description="Absolute path of a pipeline YAML on the workers, ending in .yaml or .yml. "
                        "Example: /etc/shears/nightly.yaml. Empty: $SHEARS_CONFIG, else the embedded defaults.",
            examples=["/etc/shears/nightly.yaml"],
        ),
        "data_uri": Param(
            None, type=["null", "string"], pattern=DATA_URI_PATTERN, title="Data URI",
            description="An .npz, .csv or .parquet file as /abs/path, file:///abs/path or s3://bucket/key. "
                        "Example: s3://ml-data/incoming/digits.npz. Empty: the config's data.uri, else the data "
                        "asset if present, else sklearn digits.",
            examples=["s3://ml-data/incoming/digits.npz", "/data/incoming/digits.csv"],
        ),
        "force_claim": Param(
            False, type="boolean", title="Take over a stale run-id claim",
            description="Only for a run whose earlier writer died: a claim with no heartbeat for "
                        "claim.stale_after_s (or whose process is gone) is taken over and the takeover recorded.",
        ),
        "model_uri": Param(
            None, type=["null", "string"], pattern=MODEL_URI_PATTERN, title="Pre-trained model URI",
            description="A .keras or .h5 model to prune instead of training a baseline, as /abs/path, "
                        "file:///abs/path or s3://bucket/key. Example: s3://ml-models/base/model.keras. "
                        "Empty: train one.",
            examples=["s3://ml-models/base/model.keras"],
        ),
    },
    description="Prune, quantize, gate and publish a Keras model: nightly at 02:00 UTC or when the data asset "
                "updates. Results: the Shears view (/shears/).",
    tags=["shears", "ml"],
    doc_md=__doc__,
)
def shears_pipeline() -> None:
    # One task per step of shears.run.steps.STEPS: the task id is the step's name, and its queue/pool (the
    # TensorFlow steps: $SHEARS_TF_QUEUE, $SHEARS_TF_POOL), retries and trigger rule come from the step's entry
    # (shears_airflow.task_args), so they are declared once. A test checks the two lists match.
    @task(**task_args("validate"))
    def validate() -> dict[str, Any]:
        """Begin the run (claim its id, refuse a published one, clear staging) and validate the data."""
        return run_step("validate")

    @task(**task_args("baseline"))
    def baseline() -> dict[str, Any]:
        return run_step("baseline")

    @task(**task_args("plan_sensitivity"))
    def plan_sensitivity() -> list[dict[str, Any]]:
        """The prunable layers to fan out over (none with the search off)."""
        return run_step("plan_sensitivity")

    @task(**task_args("sensitivity"))
    def sensitivity(item: dict[str, Any]) -> dict[str, Any]:
        return run_step("sensitivity", item=item)

    def propose(round_no: int) -> Any:
        @task(**task_args(f"propose_{round_no}"))
        def propose_round() -> list[dict[str, Any]]:
            """The trials of this round (Optuna, seeded; empty when the budget is spent)."""
            return run_step(f"propose_{round_no}")

        return propose_round

    def trials(round_no: int) -> Any:
        @task(**task_args(f"trials_{round_no}"))
        def trial(item: dict[str, Any]) -> dict[str, Any]:
            """One trial, retry-safe (it rewrites only its own files)."""
            return run_step(f"trials_{round_no}", item=item)

        return trial

    @task(**task_args("select"))
    def select() -> dict[str, Any]:
        """The winner: the smallest trial passing every gate on the validation split (else the closest)."""
        return run_step("select")

    @task(**task_args("evaluate"))
    def evaluate() -> dict[str, Any]:
        return run_step("evaluate")

    @task(**task_args("gate"))
    def gate() -> dict[str, Any]:
        """Fails the run when a gate fails; the rejection is then recorded under rejected/<run_id>/."""
        return run_step("gate")

    @task(**task_args("publish"))
    def publish() -> dict[str, Any]:
        """Publish runs/<run_id>/ and promote; a retry after a completed publish is a no-op."""
        return run_step("publish")

    planned = plan_sensitivity()
    upstream: list[Any] = [validate(), baseline(), planned, sensitivity.expand(item=planned)]
    for round_no in range(1, SEARCH_ROUNDS + 1):
        proposed = propose(round_no)()
        upstream += [proposed, trials(round_no).expand(item=proposed)]
    chain(*upstream, select(), evaluate(), gate(), publish())


shears_pipeline()
