"""The Store protocol every artifact store implements, and what all stores share (keys, errors, hashes)."""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shears.errors import ConfigError, StoreError

CHUNK_BYTES = 1 << 20  # what a streaming reader holds at a time


class PreconditionFailed(StoreError):
    """A conditional write lost: the object changed (or appeared) since it was read."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


@runtime_checkable
class Store(Protocol):
    """The few operations Shears needs from an artifact store."""

    uri: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def iter_bytes(self, key: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The object in chunks of at most `chunk_size` bytes (for serving large files with bounded memory)."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> builtins.list[str]: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def put_if(self, key: str, data: bytes, *, if_match: str | None, if_none_match: bool) -> str:
        """Write only if the object's etag is `if_match` (or absent when `if_none_match`); return the new etag."""
        ...

    def delete_if(self, key: str, *, if_match: str) -> None:
        """Delete `key` only while its etag is `if_match`; PreconditionFailed if it changed or is gone."""
        ...

    def versions(self, key: str) -> builtins.list[str]: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise StoreError(f"invalid store key: {key!r}")
    return key


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix')."""
    if not uri.startswith("s3://"):
        raise ConfigError(f"not an s3:// URI: {uri}")
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"S3 URI has no bucket: {uri}")
    return bucket, prefix.strip("/")


