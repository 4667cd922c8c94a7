"""Callbacks: why a run stopped, recorded under rejected/<run_id>/ when a task fails for good; the gate table."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from shears_airflow.hooks import open_run_store
from shears_airflow.links import view_run_url
from shears_airflow.settings import PIPELINE_DAG_ID, run_layout

if TYPE_CHECKING:
    from airflow.sdk import Context
    from shears.run.context import RunContext

log = logging.getLogger("shears.airflow")


def holder(context: Context) -> Any:
    """Who holds the run's claim: this Airflow DAG run (every task of it, on any worker)."""
    from shears.run.claim import this_process

    return this_process("airflow", f"{PIPELINE_DAG_ID}/{context['run_id']}")


def log_gate_table(run: RunContext) -> None:
    """The gate table as the last thing a gate failure logs (read back from rejected/<id>/gates.json), with the
    same rows as the CLI's table (shears.report.tables.gate_rows)."""
    from shears.records import GatesRecord
    from shears.report.tables import gate_rows, plain_table
    from shears.store import layout as L

    try:
        gates = GatesRecord.model_validate_json(run.store.get(run.layout.rejected(L.GATES)))
    except Exception:  # the rejection itself is what matters; the table is a convenience
        log.warning("shears: could not read the gate table back", exc_info=True)
        return
    log.info("shears gate: REJECTED, recorded at %s/%s\n%s", run.store.uri, run.layout.rejected_prefix,
             plain_table(gate_rows(gates)))


# --------------------------------------------------------------------------- failure callback


def on_task_failure(context: Context) -> None:
    """on_failure_callback: record why the run stopped under rejected/<run_id>/, next to its artifacts.

    Runs once per task instance that fails for good (not on retries) and calls the library's
    lifecycle.record_failure, exactly as `shears run` does: failure.json names the step (= task id),
    the reason and the Shears exit code; a gate rejection recorded by the gate step is kept intact.
    Skips runs that are already published (a cleared, refused re-run is not a rejection). Never raises:
    it must not mask the task's own error.
    """
    try:
        _record_failure(context)
    except Exception:
        log.exception("shears: could not record why the task failed")


def _record_failure(context: Context) -> None:
    from shears.errors import ShearsError
    from shears.run import lifecycle
    from shears.store import layout as L

    ti = context["ti"]
    exc = context.get("exception")
    layout = run_layout(context["run_id"])
    store = open_run_store()
    if store.exists(layout.run(L.MANIFEST)):
        log.info("run %s is published; not recording a failure of %s", layout.run_id, ti.task_id)
        return
    from shears.run.claim import read_claim, same_holder

    found = read_claim(store, layout.run_id)
    if found is not None and not same_holder(found[0].holder, holder(context)):
        log.info("run id %s is claimed by %s: not recording this run's failure over it", layout.run_id,
                 found[0].holder.describe())
        return
    cause: BaseException | str | None = exc if isinstance(exc, BaseException) or exc is None else str(exc)
    if isinstance(exc, BaseException) and isinstance(exc.__cause__, ShearsError):
        cause = exc.__cause__
    key = lifecycle.record_failure(store, layout, ti.task_id, cause)
    log.info("failure of %s recorded at %s/%s; Shears view: %s", ti.task_id, store.uri, key,
             view_run_url(layout.run_id))
    lifecycle.end(store, layout, holder(context))
