"""Where bytes live: a local directory or S3, chosen at the edge and passed in.

Stages never see a Store; the run's steps and the release code do. Keys are always '/'-separated and
relative to the store's root (a directory, or bucket + prefix); shears.store.layout builds them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shears.errors import ConfigError
from shears.store.base import ObjectInfo, PreconditionFailed, Store, check_key, parse_s3_uri, sha256_hex
from shears.store.local import LocalStore

__all__ = [
    "LocalStore", "ObjectInfo", "PreconditionFailed", "Store", "check_key", "open_store", "parse_s3_uri",
    "read_uri", "sha256_hex",
]


def open_store(uri: str | Path) -> Store:
    """A Store for a local directory or an s3://bucket/prefix URI (boto3 only loaded for S3)."""
    text = str(uri)
    if text.startswith("s3://"):
        from shears.store.s3 import S3Store

        bucket, prefix = parse_s3_uri(text)
        return S3Store(bucket, prefix)
    if "://" in text:
        raise ConfigError(f"unsupported store URI scheme: {text} (use a directory or s3://bucket/prefix)")
    return LocalStore(text)


def read_uri(uri: str, s3_client: Callable[[], Any] | None = None, *, max_bytes: int | None = None) -> bytes:
    """Read one object by local path or s3:// URI; used for input data and user models.

    `s3_client` builds the boto3 client (the DAG passes one from its Airflow connection); without it
    the standard AWS environment/profile is used. With `max_bytes`, a larger object is refused (ConfigError)
    from its size, before it is read.
    """

    def check_size(size: int) -> None:
        if max_bytes is not None and size > max_bytes:
            raise ConfigError(f"{uri} is {size:,} bytes; the limit is {max_bytes:,}")

    if uri.startswith("s3://"):
        from shears.store.s3 import S3Store

        bucket, key = parse_s3_uri(uri)
        if not key:
            raise ConfigError(f"S3 URI names no object: {uri}")
        store = S3Store(bucket, "", client=s3_client() if s3_client else None)
        info = store.head(key)
        if info is None:  # the same answer as for a missing local file (exit 2, no retries)
            raise ConfigError(f"file not found: {uri}")
        check_size(info.size)
        data = store.get(key)
        check_size(len(data))  # it may have grown since
        return data
    path = Path(uri)
    if not path.is_file():
        raise ConfigError(f"file not found: {uri}")
    check_size(path.stat().st_size)
    with open(path, "rb") as fh:
        data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    check_size(len(data))
    return data
