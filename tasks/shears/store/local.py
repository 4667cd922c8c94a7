"""A local directory as an artifact store (the default: ./artifacts)."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from shears.errors import ConfigError, StoreError
from shears.store import layout as L
from shears.store.base import CHUNK_BYTES, ObjectInfo, PreconditionFailed, check_key, sha256_hex


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class LocalStore:
    """A directory as an artifact store. Writes are atomic (temp file + rename) so readers never see halves."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def check_writable(self) -> None:
        """A ConfigError (exit 2) now, not a traceback later, when the root is a file or cannot be written."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"store {self.root} is a file, not a directory")
        try:  # the real test (permissions, read-only or special file systems): create the root and a file in it
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise ConfigError(f"store {self.root} cannot be written: {exc.strerror or type(exc).__name__}") from None

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _regular(self, key: str) -> Path | None:
        """The path of `key` when it is a regular file reached without a symbolic link (else None).

        A symlink inside the store (planted in a run folder, say) would let a reader such as the Shears view
        serve any file the process can read: every read goes through here and refuses it.
        """
        path = self._path(key)
        if os.path.realpath(path) != str(path):  # a symlink somewhere between the root and the file
            if path.is_symlink() or path.exists():
                raise StoreError(f"{key} in store {self.uri} is reached through a symbolic link: refused")
            return None
        return path if path.is_file() else None

    def put(self, key: str, data: bytes) -> None:
        try:
            self._put(key, data)
        except OSError as exc:
            raise StoreError(f"cannot write {key} in store {self.uri}: {exc.strerror or type(exc).__name__}") from None

    def _put(self, key: str, data: bytes) -> None:
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

    def _open(self, key: str) -> BinaryIO:
        path = self._regular(key)
        if path is None:
            raise StoreError(f"not found in store {self.uri}: {key}")
        try:  # O_NOFOLLOW: a symlink swapped in after the check above is refused by the kernel
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StoreError(f"not found in store {self.uri}: {key}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {key} in store {self.uri}: {exc.strerror or type(exc).__name__}") from None
        return os.fdopen(fd, "rb")

    def get(self, key: str) -> bytes:
        with self._open(key) as fh:
            return fh.read()

    def iter_bytes(self, key: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        with self._open(key) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._regular(key) is not None

    def list(self, prefix: str) -> builtins.list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        out = []
        for p in base.rglob("*"):
            rel = p.relative_to(self.root)
            # dot-files and dot-folders are the store's own bookkeeping (temp files, locks, versions)
            if p.is_file() and not p.is_symlink() and not any(part.startswith(".") for part in rel.parts):
                out.append(rel.as_posix())
        return sorted(out)

    def delete_prefix(self, prefix: str) -> None:
        import shutil

        base = self.root / check_key(prefix.rstrip("/"))
        if base.is_dir():
            shutil.rmtree(base)
        elif base.is_file():
            # under put_if's lock when the key has one, so a delete never interleaves with a conditional write;
            # the lock file stays (unlinking it would let the next writer lock a different inode)
            with self._locked(base, create=False):
                base.unlink(missing_ok=True)

    def head(self, key: str) -> ObjectInfo | None:
        if self._regular(key) is None:
            return None
        digest = hashlib.sha256()
        size = 0
        for chunk in self.iter_bytes(key):
            digest.update(chunk)
            size += len(chunk)
        return ObjectInfo(key=key, size=size, etag=digest.hexdigest())

    @contextlib.contextmanager
    def _locked(self, path: Path, *, create: bool = True) -> Iterator[None]:
        """The key's exclusive lock file (.<name>.lock beside it): conditional writes and deletes hold it."""
        import fcntl

        lock_path = path.parent / f".{path.name}.lock"
        if not create and not lock_path.exists():
            yield
            return
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def delete_if(self, key: str, *, if_match: str) -> None:
        """Conditional delete under the same lock as put_if: a new holder's write is never removed."""
        path = self._path(key)
        if not path.parent.is_dir():
            raise PreconditionFailed(f"{key} is not in {self.uri}")
        with self._locked(path):
            current = self.head(key)
            if current is None or current.etag != if_match:
                raise PreconditionFailed(f"{key} changed in {self.uri} since it was read")
            path.unlink()

    def put_if(self, key: str, data: bytes, *, if_match: str | None, if_none_match: bool) -> str:
        """Conditional write under an exclusive lock file, so local promotions are race-free too."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(path):
            current = self.head(key)
            if if_none_match and current is not None:
                raise PreconditionFailed(f"{key} already exists in {self.uri}")
            if if_match is not None and (current is None or current.etag != if_match):
                raise PreconditionFailed(f"{key} changed in {self.uri} since it was read")
            if current is not None and not key.startswith(L.CLAIMS_DIR + "/"):
                # keep the history the way a versioned bucket would (not for claims: their heartbeats
                # rewrite them every few seconds and nobody reads their past)
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


