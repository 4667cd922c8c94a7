"""The connections side (what a provider's hooks do): S3 clients, the signing key, the store, the data object.

    SHEARS_AWS_CONN_ID      Airflow connection for s3:// stores and data (default: aws_default)
    SHEARS_SIGNING_CONN_ID  Airflow connection holding the private signing key (default: shears_signing;
                            the PEM in its password, an optional passphrase in extra.passphrase; from the
                            metadata DB, AIRFLOW_CONN_* or any secrets backend). Missing: runs are unsigned.

The Amazon provider and the rest of shears.* are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shears.store.datauri import location

from shears_airflow.settings import store_uri

if TYPE_CHECKING:
    from shears.release.signing import SigningKey
    from shears.store import Store

ENV_AWS_CONN = "SHEARS_AWS_CONN_ID"
ENV_SIGNING_CONN = "SHEARS_SIGNING_CONN_ID"


def aws_conn_id() -> str:
    return os.environ.get(ENV_AWS_CONN) or "aws_default"


def s3_client() -> Any:
    """A boto3 S3 client built from the Airflow connection (credentials, region, endpoint_url)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    try:  # bounded botocore retries and timeouts, as the CLI's own client uses
        from shears.store.s3 import client_config

        config = client_config()
    except ImportError:
        config = None
    return S3Hook(aws_conn_id=aws_conn_id(), config=config).get_conn()


def signing_conn_id() -> str:
    return os.environ.get(ENV_SIGNING_CONN) or "shears_signing"


def signing_key() -> SigningKey | None:
    """The private signing key from the Airflow connection $SHEARS_SIGNING_CONN_ID, or None if there is none.

    The PEM is the connection's password (Airflow masks it in task logs), an optional passphrase is
    extra.passphrase. The key object goes straight to the library; nothing here logs or stores it.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from shears.errors import ConfigError
    from shears.release.signing import SigningKey

    conn_id = signing_conn_id()
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    if not conn.password:
        raise ConfigError(f"Airflow connection {conn_id} has no private key (PEM) in its password field")
    passphrase = conn.extra_dejson.get("passphrase")
    return SigningKey.from_pem(conn.password.encode(), passphrase.encode() if passphrase else None,
                               where=f"signing key in Airflow connection {conn_id}")


def open_run_store(uri: str | None = None) -> Store:
    """The store for this deployment; s3:// stores get their client from the Airflow connection."""
    from shears.store import open_store, parse_s3_uri

    text = uri or store_uri()
    if text.startswith("s3://"):
        from shears.store.s3 import S3Store

        bucket, prefix = parse_s3_uri(text)
        return S3Store(bucket, prefix, client=s3_client())
    return open_store(text)


def data_exists(uri: str) -> bool:
    loc = location(uri)
    if loc.startswith("s3://"):
        from shears.store import parse_s3_uri

        bucket, key = parse_s3_uri(loc)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True
    return Path(loc).is_file()


def describe_data(uri: str) -> dict[str, Any]:
    """Facts about the data object for the asset event's `extra` (sha256 for local files, etag on S3)."""
    loc = location(uri)
    if loc.startswith("s3://"):
        from shears.store import parse_s3_uri

        bucket, key = parse_s3_uri(loc)
        head = s3_client().head_object(Bucket=bucket, Key=key)
        return {"uri": uri, "bytes": int(head["ContentLength"]), "etag": str(head.get("ETag", "")).strip('"')}
    path = Path(loc)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"uri": uri, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


