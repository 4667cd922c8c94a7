"""Where new data lands: the data asset's URI and how data URIs map to local paths.

One implementation for both sides of the data hand-off: `shears data push` (tasks/cli_data.py) writes
to this URI and the Airflow glue (plugins/shears_airflow.py) declares it as the pipeline's asset and
reads from it, so the two agree without configuration. Stdlib only (the DAG processor imports it
when it parses the DAGs).

    SHEARS_DATA_URI   the data asset: file:///abs/path.npz or s3://bucket/key
                      (default: file://$AIRFLOW_HOME/shears-incoming/data.npz, AIRFLOW_HOME default ~/airflow)
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from shears.errors import ConfigError

ENV_DATA_URI = "SHEARS_DATA_URI"


def airflow_home() -> Path:
    """$AIRFLOW_HOME, else ~/airflow (Airflow's own default)."""
    return Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser()


def default_data_uri() -> str:
    """$SHEARS_DATA_URI, else file://$AIRFLOW_HOME/shears-incoming/data.npz."""
    return os.environ.get(ENV_DATA_URI) or (airflow_home() / "shears-incoming" / "data.npz").as_uri()


def local_path(uri: str) -> Path | None:
    """The local file a data URI names, or None for an s3:// URI.

    `file:///abs/path` (percent-decoded) and plain paths are local; any other scheme, or a file:// URI
    without an absolute path, is a ConfigError. Plain paths are returned as given (not resolved).
    """
    if uri.startswith("file://"):
        path = Path(unquote(urlsplit(uri).path))
        if not path.is_absolute():
            raise ConfigError(f"data URI {uri} names no absolute path: use file:///abs/path")
        return path
    if uri.startswith("s3://"):
        return None
    if "://" in uri:
        raise ConfigError(f"unsupported data URI {uri}: use /abs/path, file:///abs/path or s3://bucket/key")
    return Path(uri)


def location(uri: str) -> str:
    """What shears.store.read_uri reads: the local path of a file:// URI or plain path, or the s3:// URI."""
    path = local_path(uri)
    return uri if path is None else str(path)
