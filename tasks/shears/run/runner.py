"""Run one step, the same way from the CLI (shears.run.pipeline) and from an Airflow task (the plugin).

The one thing a step does not do itself: when the gate step fails, the rejection is published here
(shears.run.lifecycle.reject: records and report under rejected/<run_id>/, never model files), so every
publication goes through the lifecycle and no step writes outside staging.
"""

from __future__ import annotations

from typing import Any

from shears.errors import GateFailure
from shears.records import GatesRecord
from shears.run import lifecycle
from shears.run.context import RunContext
from shears.run.steps import Step
from shears.store import layout as L


def execute(ctx: RunContext, step: Step, item: Any = None) -> Any:
    """The step's result; a failed gate is published as a rejection, then GateFailure propagates."""
    try:
        return step.run(ctx, item)
    except GateFailure:
        if L.GATES in step.writes and ctx.has(L.GATES):  # the gate step judged and recorded: publish why
            lifecycle.reject(ctx, ctx.get_record(GatesRecord))  # raises GateFailure
        raise
