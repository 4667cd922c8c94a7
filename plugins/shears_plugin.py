"""Shears' Airflow plugin: the Shears view (a FastAPI app at /shears, shears_web.py) and links into it.

* `fastapi_apps`: the API server mounts shears_web's app at /shears: same origin as the UI, behind its login.
* `external_views`: "Shears" in the navigation (runs, champion, trend) and a "Shears" tab on every DAG run
  (that run's outcome, report and model card).
* `global_operator_extra_links`: "Shears run", "Shears report", "Shears model card", "Shears manifest" and
  "Shears rejection" on every task of a shears_pipeline run. Evaluated by the API server when the UI asks: the
  run's outcome is read from the store (runs/<id>/ once published, rejected/<id>/ when refused) and a link is
  offered only when its target exists, so a rejected run's links open rejected/<id>/report.html, and a passing
  run has no "rejection" link.

Where links point: into the Shears view (`[api] base_url` + /shears/files/...), which serves both local and S3
stores; or, with $SHEARS_STORE_BROWSE_URL set, at that http(s) base + the store key (a static server, an S3
website or a CDN the operator runs). Never file:// (the UI does not render it).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink
from shears.store import layout as L
from shears_airflow import PIPELINE_DAG_ID, VIEW_PREFIX, open_run_store, run_layout, view_base, view_run_url
from shears_web import Outcome, create_app, file_path, outcome_of

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey
    from shears.store import Store

ENV_BROWSE_URL = "SHEARS_STORE_BROWSE_URL"
log = logging.getLogger("shears.airflow.links")


def object_url(area: Outcome, run_id: str, name: str) -> str:
    """The URL a browser opens for one file of a run folder: $SHEARS_STORE_BROWSE_URL + key, else the view."""
    base = os.environ.get(ENV_BROWSE_URL)
    if base:
        return f"{base.rstrip('/')}/{quote(L.RunLayout(run_id).key(area, name))}"
    return view_base() + quote(file_path(area, run_id, name))


class _RunArtifactLink(BaseOperatorLink):
    """A link to one file of the run's folder, wherever the run's outcome put it; "" (not offered) for tasks of
    other DAGs, runs with no folder yet, or a file that folder does not hold."""

    file: ClassVar[str] = L.REPORT
    only: ClassVar[str | None] = None  # "rejected": offered only for rejected runs

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        if ti_key.dag_id != PIPELINE_DAG_ID:
            return ""
        try:
            run_id = run_layout(ti_key.run_id).run_id
            store = open_run_store()
            return self.resolve(store, run_id)
        except Exception:  # a link must never break the UI's task page
            log.warning("shears: could not resolve the %s link of %s", self.name, ti_key.run_id, exc_info=True)
            return ""

    def resolve(self, store: Store, run_id: str) -> str:
        area = outcome_of(store, run_id)
        if area is None or (self.only is not None and area != self.only):
            return ""
        return object_url(area, run_id, self.file) if store.exists(L.RunLayout(run_id).key(area, self.file)) else ""


class ShearsRunLink(_RunArtifactLink):
    name = "Shears run"

    def resolve(self, store: Store, run_id: str) -> str:
        return view_run_url(run_id) if outcome_of(store, run_id) is not None else ""


class ShearsReportLink(_RunArtifactLink):
    name = "Shears report"
    file = L.REPORT


class ShearsModelCardLink(_RunArtifactLink):
    name = "Shears model card"
    file = L.MODEL_CARD_MD


class ShearsManifestLink(_RunArtifactLink):
    name = "Shears manifest"
    file = L.MANIFEST


class ShearsRejectionLink(_RunArtifactLink):
    name = "Shears rejection"
    file = L.FAILURE
    only = "rejected"


class ShearsPlugin(AirflowPlugin):
    name = "shears"
    fastapi_apps = [  # noqa: RUF012 - AirflowPlugin declares these plain lists
        {"app": create_app(), "url_prefix": VIEW_PREFIX, "name": "Shears"},
    ]
    external_views = [  # noqa: RUF012
        {"name": "Shears", "href": VIEW_PREFIX.lstrip("/") + "/", "url_route": "shears", "destination": "nav"},
        {"name": "Shears", "href": VIEW_PREFIX.lstrip("/") + "/run/{RUN_ID}?dag_id={DAG_ID}", "url_route": "shears_run",
         "destination": "dag_run"},
    ]
    global_operator_extra_links = [  # noqa: RUF012
        ShearsRunLink(), ShearsReportLink(), ShearsModelCardLink(), ShearsManifestLink(), ShearsRejectionLink(),
    ]
