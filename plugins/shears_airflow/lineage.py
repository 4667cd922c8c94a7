"""Task lineage: each step's datasets (shears.release.lineage) reported through Airflow's OpenLineage provider."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shears.run.context import RunContext

log = logging.getLogger("shears.airflow")


def emit_lineage(run: RunContext, name: str) -> None:
    """Attribute the step's datasets (shears.release.lineage) to the running task through the OpenLineage
    provider's public API (`emit_dataset_lineage`: a RUNNING event with the task's run id, sent to the
    provider's transport). Does nothing when OpenLineage is not configured; never raises."""
    try:
        from airflow.providers.openlineage.api import emit_dataset_lineage, is_openlineage_active
    except ImportError:  # the provider is not installed
        return
    try:
        if not is_openlineage_active():
            return
        from shears.release.lineage import step_lineage

        lineage = step_lineage(run.store, run.layout, run.cfg.data.uri, name, run.work)
        emit_dataset_lineage(inputs=list(lineage.inputs), outputs=list(lineage.outputs))
    except Exception:
        log.warning("shears: could not report the lineage of %s", name, exc_info=True)


