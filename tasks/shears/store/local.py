"""A local directory as an artifact store (the default: ./artifacts)."""

from __future__ import annotations

import builtins
import os
import tempfile
from pathlib import Path

from shears.errors import ConfigError, StoreError
from shears.store import layout as L
from shears.store.base import ObjectInfo, PreconditionFailed, check_key, sha256_hex


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

        base = self.root / check_key(prefix.rstrip("/"))
        if base.is_dir():
            shutil.rmtree(base)
        elif base.is_file():
            base.unlink()
            (base.parent / f".{base.name}.lock").unlink(missing_ok=True)  # its put_if lock, if any

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


