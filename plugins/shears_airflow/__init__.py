"""Airflow-side wiring for Shears, shared by the DAGs (dags/) and the plugin (shears_plugin.py, shears_web.py).

Laid out like an Airflow provider package:

    settings   the deployment's environment: store, data asset, config, policy, TensorFlow routing, DAG ids
    hooks      connections: S3 clients, the signing key, the store, the data object
    runner     one task runs one step (its @task arguments from the step's entry); Shears errors mapped to
               Airflow's failure semantics (TRANSIENT_IO_ONLY)
    links      the Shears view's URLs
    lineage    task lineage through the OpenLineage provider
    callbacks  the failure callback (why a run stopped, under rejected/<run_id>/) and the gate table

Nothing here trains, converts or judges anything. Importing it stays cheap (DAG files import it at parse
time): stdlib, airflow.sdk, the light shears.store.datauri and the step table shears.run.steps at module
level; the rest of shears.* and the Amazon provider inside the functions that need them. Airflow puts the
plugins folder on sys.path in every component, which is why this package lives there (plugins/.airflowignore
keeps the plugin manager from loading its modules one by one as plugins).
"""

from __future__ import annotations

from shears.run.steps import SEARCH_ROUNDS

from shears_airflow.callbacks import holder, log_gate_table, on_task_failure
from shears_airflow.hooks import (
    aws_conn_id,
    data_exists,
    describe_data,
    open_run_store,
    s3_client,
    signing_conn_id,
    signing_key,
)
from shears_airflow.lineage import emit_lineage
from shears_airflow.links import VIEW_PREFIX, view_base, view_run_url
from shears_airflow.runner import (
    TRANSIENT_IO_ONLY,
    fail_fast_on_shears_errors,
    one_line,
    run_context,
    run_step,
    start_run,
    task_args,
)
from shears_airflow.settings import (
    CONFIG_PATTERN,
    DATA_URI_PATTERN,
    MODEL_URI_PATTERN,
    PIPELINE_DAG_ID,
    PRODUCER_DAG_ID,
    data_asset,
    data_uri,
    deployment_policy,
    run_layout,
    search_jobs,
    store_uri,
    tf_routing,
)

__all__ = [
    "CONFIG_PATTERN", "DATA_URI_PATTERN", "MODEL_URI_PATTERN", "PIPELINE_DAG_ID", "PRODUCER_DAG_ID", "SEARCH_ROUNDS",
    "TRANSIENT_IO_ONLY", "VIEW_PREFIX", "aws_conn_id", "data_asset", "data_exists", "data_uri", "deployment_policy",
    "describe_data", "emit_lineage", "fail_fast_on_shears_errors", "holder", "log_gate_table", "on_task_failure",
    "one_line", "open_run_store", "run_context", "run_layout", "run_step", "s3_client", "search_jobs",
    "signing_conn_id", "signing_key", "start_run", "store_uri", "task_args", "tf_routing", "view_base",
    "view_run_url",
]
