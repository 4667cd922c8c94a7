"""
### shears_data_push

Producer side of the `shears_pipeline` data asset. Copy new data to `$SHEARS_DATA_URI` (or run
`shears data push FILE`, which copies *and* emits the event through the REST API), then trigger
this DAG: its one task checks the object exists and emits an asset event carrying its size and
sha256 (S3: etag). `shears_pipeline` is scheduled on that asset and starts a run; its results are in the
[Shears view](/shears/).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from shears_airflow import PRODUCER_DAG_ID, data_asset, data_exists, data_uri, describe_data

DATA = data_asset()


@dag(
    dag_id=PRODUCER_DAG_ID,
    schedule=None,
    catchup=False,
    default_args={"owner": "shears"},
    description="Announce new data for shears_pipeline (emits the data asset event that starts a run).",
    tags=["shears", "data"],
    doc_md=__doc__,
)
def shears_data_push() -> None:
    @task(outlets=[DATA], retries=2, multiple_outputs=False)
    def announce_data() -> dict[str, Any]:
        """Emit the asset event only if the data is really there (a failed task emits nothing)."""
        uri = data_uri()
        if not data_exists(uri):
            raise AirflowFailException(f"no data at {uri}: copy it there, or use `shears data push FILE`")
        info = describe_data(uri)
        get_current_context()["outlet_events"][DATA].extra = info
        return info

    announce_data()


shears_data_push()
