"""Shears' Airflow plugin: links from every task of a shears_pipeline run to the run's report and manifest.

Global operator extra links are evaluated by the API server when the UI asks for a task's links;
the URL is derived from the task instance's run id alone (shears_airflow.run_layout: the same keys the
tasks write), so no store access happens in the API server. Set SHEARS_STORE_BROWSE_URL to an HTTP(S)
base that serves the store (a static server, an S3 website or a CDN) to get clickable links; otherwise
local stores get file:// links and s3:// stores links into the AWS console.

Imports stay light (the API server loads this module): shears.store.layout and shears.store are stdlib-only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink
from shears.errors import ConfigError
from shears.store import layout as L
from shears.store import parse_s3_uri
from shears_airflow import PIPELINE_DAG_ID, run_layout, store_uri

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

ENV_BROWSE_URL = "SHEARS_STORE_BROWSE_URL"


def object_url(key: str, store: str | None = None) -> str:
    """A browser URL for `key` in the store ("" for an s3:// store URI without a bucket)."""
    base = os.environ.get(ENV_BROWSE_URL)
    if base:
        return f"{base.rstrip('/')}/{quote(key)}"
    root = store or store_uri()
    if root.startswith("s3://"):
        try:
            bucket, prefix = parse_s3_uri(root)
        except ConfigError:
            return ""
        full = f"{prefix}/{key}" if prefix else key
        return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={quote(full)}"
    return f"file://{quote(os.path.abspath(root))}/{quote(key)}"


class _RunArtifactLink(BaseOperatorLink):
    """A link to one file of the run's folder in the store (runs/<id>/ or rejected/<id>/); empty for
    tasks of other DAGs."""

    rejected: ClassVar[bool] = False
    file: ClassVar[str] = L.MANIFEST

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        if ti_key.dag_id != PIPELINE_DAG_ID:
            return ""
        layout = run_layout(ti_key.run_id)
        return object_url(layout.rejected(self.file) if self.rejected else layout.run(self.file))


class ShearsReportLink(_RunArtifactLink):
    name = "Shears report"
    file = L.REPORT


class ShearsManifestLink(_RunArtifactLink):
    name = "Shears manifest"
    file = L.MANIFEST


class ShearsRejectionLink(_RunArtifactLink):
    name = "Shears rejection"
    rejected = True
    file = L.FAILURE


class ShearsPlugin(AirflowPlugin):
    name = "shears"
    global_operator_extra_links = [  # noqa: RUF012 - AirflowPlugin declares it a plain list
        ShearsReportLink(), ShearsManifestLink(), ShearsRejectionLink(),
    ]
