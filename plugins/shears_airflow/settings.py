"""Where a deployment's Shears lives and how it is configured: the environment of every Airflow component.

    SHEARS_STORE        artifact store: a directory or s3://bucket/prefix
                        (default: $AIRFLOW_HOME/shears-store). Staging lives in the same store.
    SHEARS_DATA_URI     the data asset: file:///abs/path.npz or s3://bucket/key
                        (default: file://$AIRFLOW_HOME/shears-incoming/data.npz; shears.store.datauri, shared
                        with `shears data push`)
    SHEARS_CONFIG       pipeline YAML used when a run has no `config` param (default: embedded defaults)
    SHEARS_POLICY       the deployment's policy YAML: gate floors a run's config cannot loosen, required
                        signatures (shears.policy; default: the built-in floor, no-skill margin 0)
    SHEARS_SEARCH_JOBS  trials the search budgets as running at once (default 1): the TensorFlow workers
                        (or pool slots) that run a round's mapped trials side by side
    SHEARS_TF_QUEUE     (parse time, optional) worker queue for the TensorFlow tasks
    SHEARS_TF_POOL      (parse time, optional) pool for the TensorFlow tasks, e.g. to cap concurrent trainings

Connections (SHEARS_AWS_CONN_ID, SHEARS_SIGNING_CONN_ID) are read in shears_airflow.hooks.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow.sdk import Asset

# The data asset's URI and file:// handling, shared with `shears data push` (re-exported for the DAGs).
from shears.store.datauri import airflow_home
from shears.store.datauri import default_data_uri as data_uri

if TYPE_CHECKING:
    from shears.policy import Policy
    from shears.store.layout import RunLayout

PIPELINE_DAG_ID = "shears_pipeline"
PRODUCER_DAG_ID = "shears_data_push"

ENV_STORE = "SHEARS_STORE"
ENV_CONFIG = "SHEARS_CONFIG"
ENV_TF_QUEUE = "SHEARS_TF_QUEUE"
ENV_TF_POOL = "SHEARS_TF_POOL"
ENV_SEARCH_JOBS = "SHEARS_SEARCH_JOBS"

# Parameter patterns (JSON-schema regexes, checked by Airflow when a run is triggered: a bad value creates no run).
# Airflow shows the raw pattern when one fails, so they stay short; each Param's description says the rule in
# words with an example. Finer checks (bucket names, that the file exists) are validate's, with one-line errors.
CONFIG_PATTERN = r"^/\S*\.ya?ml$"
DATA_URI_PATTERN = r"^(/|file:///|s3://)\S+\.(npz|csv|parquet|pq)$"
MODEL_URI_PATTERN = r"^(/|file:///|s3://)\S+\.(keras|h5)$"



def store_uri() -> str:
    """The artifact store every task (and the links) use: $SHEARS_STORE or $AIRFLOW_HOME/shears-store."""
    return os.environ.get(ENV_STORE) or str(airflow_home() / "shears-store")


def data_asset() -> Asset:
    """The data asset. Its name is its URI: Airflow keeps one active asset per name, so a fixed name
    would turn the asset inactive (and fail the producer) after SHEARS_DATA_URI changes."""
    return Asset(uri=data_uri(), group="shears")



def tf_routing() -> dict[str, str]:
    """Queue and pool of the tasks that import TensorFlow: $SHEARS_TF_QUEUE / $SHEARS_TF_POOL when set
    (workers with TF and enough memory; a pool capping concurrent trainings), else Airflow's defaults."""
    out: dict[str, str] = {}
    if queue := os.environ.get(ENV_TF_QUEUE):
        out["queue"] = queue
    if pool := os.environ.get(ENV_TF_POOL):
        out["pool"] = pool
    return out


def search_jobs() -> int:
    """$SHEARS_SEARCH_JOBS: trials the search budgets as running at once (1 when unset or not a number >= 1)."""
    try:
        return max(1, int(os.environ.get(ENV_SEARCH_JOBS) or 1))
    except ValueError:
        return 1


def deployment_policy() -> Policy:
    """The deployment's gate floors: the policy file $SHEARS_POLICY names (on every worker), else the built-in one.
    Never the run's config or DAG params: whoever triggers a run must not be able to loosen them."""
    from shears.policy import ENV_POLICY, load_policy

    return load_policy(os.environ.get(ENV_POLICY))



def run_layout(airflow_run_id: str) -> RunLayout:
    """Artifact keys of an Airflow run: the run id is sanitized deterministically, so retries reuse them."""
    from shears.store.layout import RunLayout, sanitize_run_id

    return RunLayout(sanitize_run_id(airflow_run_id))


