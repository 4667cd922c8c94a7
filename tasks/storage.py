"""Where bytes live: a local directory or S3, chosen at the edge and passed in.

Stages never see a Store; the step adapters (tasks.steps) and the publisher do. Keys are always
'/'-separated and relative to the store's root (a directory, or bucket + prefix).
"""

from __future__ import annotations

import builtins
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tasks.errors import ConfigError, StoreError


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


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise StoreError(f"invalid store key: {key!r}")
    return key


class LocalStore:
    """A directory as an artifact store. Writes are atomic (temp file + rename) so readers never see halves."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; workers may run as another user
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"not found in store {self.uri}: {key}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> builtins.list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        out = []
        for p in base.rglob("*"):
            rel = p.relative_to(self.root)
            # dot-files and dot-folders are the store's own bookkeeping (temp files, locks, versions)
            if p.is_file() and not any(part.startswith(".") for part in rel.parts):
                out.append(rel.as_posix())
        return sorted(out)

    def delete_prefix(self, prefix: str) -> None:
        import shutil

        base = self.root / _check_key(prefix.rstrip("/"))
        if base.is_dir():
            shutil.rmtree(base)
        elif base.is_file():
            base.unlink()

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        data = path.read_bytes()
        return ObjectInfo(key=key, size=len(data), etag=sha256_hex(data))

    def put_if(self, key: str, data: bytes, *, if_match: str | None, if_none_match: bool) -> str:
        """Conditional write under an exclusive lock file, so local promotions are race-free too."""
        import fcntl

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.head(key)
            if if_none_match and current is not None:
                raise PreconditionFailed(f"{key} already exists in {self.uri}")
            if if_match is not None and (current is None or current.etag != if_match):
                raise PreconditionFailed(f"{key} changed in {self.uri} since it was read")
            if current is not None:
                # keep the history the way a versioned bucket would
                n = len(self.versions(key))
                hist = path.parent / f".{path.name}.versions" / f"{n:06d}"
                hist.parent.mkdir(parents=True, exist_ok=True)
                hist.write_bytes(path.read_bytes())
            self.put(key, data)
            return sha256_hex(data)

    def versions(self, key: str) -> builtins.list[str]:
        path = self._path(key)
        hist = path.parent / f".{path.name}.versions"
        older = sorted(p.name for p in hist.iterdir()) if hist.is_dir() else []
        return older + (["current"] if path.is_file() else [])


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix')."""
    if not uri.startswith("s3://"):
        raise ConfigError(f"not an s3:// URI: {uri}")
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"S3 URI has no bucket: {uri}")
    return bucket, prefix.strip("/")


def open_store(uri: str | Path) -> Store:
    """A Store for a local directory or an s3://bucket/prefix URI (boto3 only loaded for S3)."""
    text = str(uri)
    if text.startswith("s3://"):
        from tasks.s3 import S3Store

        bucket, prefix = parse_s3_uri(text)
        return S3Store(bucket, prefix)
    if "://" in text:
        raise ConfigError(f"unsupported store URI scheme: {text} (use a directory or s3://bucket/prefix)")
    return LocalStore(text)


def read_uri(uri: str, s3_client: Callable[[], Any] | None = None) -> bytes:
    """Read one object by local path or s3:// URI; used for input data and user models.

    `s3_client` builds the boto3 client (the DAG passes one from its Airflow connection); without it
    the standard AWS environment/profile is used.
    """
    if uri.startswith("s3://"):
        from tasks.s3 import S3Store

        bucket, key = parse_s3_uri(uri)
        if not key:
            raise ConfigError(f"S3 URI names no object: {uri}")
        store = S3Store(bucket, "", client=s3_client() if s3_client else None)
        if store.head(key) is None:  # the same answer as for a missing local file (exit 2, no retries)
            raise ConfigError(f"file not found: {uri}")
        return store.get(key)
    path = Path(uri)
    if not path.is_file():
        raise ConfigError(f"file not found: {uri}")
    return path.read_bytes()
