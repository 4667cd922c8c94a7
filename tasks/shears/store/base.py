"""The Store protocol every artifact store implements, and what all stores share (keys, errors, hashes)."""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shears.errors import ConfigError, StoreError


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

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> builtins.list[str]: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def put_if(self, key: str, data: bytes, *, if_match: str | None, if_none_match: bool) -> str:
        """Write only if the object's etag is `if_match` (or absent when `if_none_match`); return the new etag."""
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


