"""A controlled child process for crash tests: real S3 writes, then the parent SIGKILLs it (or it dies itself).

    python -m tests.s3.child publish <store-uri> <source-run> <new-run> [--pause-before-last] [--stale]
        Publish the real artifacts of <source-run> as <new-run> through shears.release.publish.publish_files.
        --pause-before-last: print PAUSED and sleep before uploading the last file (the manifest comes
        after it), so the parent can kill it mid-upload. --stale: add an extra file that a later, complete
        publish of the same run will not have (like a TensorBoard event file of an earlier attempt).
    python -m tests.s3.child promote-crash <store-uri> <run>
        Call shears.release.publish.set_champion and SIGKILL itself right after the history entry is written,
        before champion.json is replaced.

Credentials and endpoint come from the AWS_* environment like the CLI's.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from shears.records import ManifestRecord
from shears.release.champion import read_champion, set_champion
from shears.release.manifest import file_entry
from shears.release.publish import publish_files
from shears.store import ObjectInfo, Store, open_store
from shears.store import layout as L

PAUSE_LIMIT_S = 120  # bounded: the parent kills us long before


class Hooked:
    """Delegates to a real Store; runs `before_put(key)` / `after_put_if(key)` around writes."""

    def __init__(self, inner: Store, before_put: Any = None, after_put_if: Any = None) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.before_put = before_put
        self.after_put_if = after_put_if

    def put(self, key: str, data: bytes) -> None:
        if self.before_put:
            self.before_put(key)
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Any:
        return self.inner.iter_bytes(key, chunk_size)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete_prefix(self, prefix: str) -> None:
        self.inner.delete_prefix(prefix)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def put_if(self, key: str, data: bytes, *, if_match: str | None, if_none_match: bool) -> str:
        etag = self.inner.put_if(key, data, if_match=if_match, if_none_match=if_none_match)
        if self.after_put_if:
            self.after_put_if(key)
        return etag

    def delete_if(self, key: str, *, if_match: str) -> None:
        self.inner.delete_if(key, if_match=if_match)

    def versions(self, key: str) -> list[str]:
        return self.inner.versions(key)

    def list(self, prefix: str) -> list[str]:  # last: the name shadows the builtin inside the class
        return self.inner.list(prefix)


def publish(uri: str, source: str, run_id: str, pause_before_last: bool, stale: bool) -> None:
    store = open_store(uri)
    src = L.RunLayout(source).run_prefix + "/"
    files = {k[len(src):]: store.get(k) for k in store.list(src) if not k.endswith("/" + L.MANIFEST)}
    if stale:
        files[f"{L.TENSORBOARD}/train/events.out.tfevents.0.stale-attempt"] = b"stale event file"
    old = ManifestRecord.from_bytes(store.get(src + L.MANIFEST))
    manifest = old.model_copy(update={"run_id": run_id,
                                      "files": {name: file_entry(data) for name, data in sorted(files.items())}})
    last = f"{L.RunLayout(run_id).run_prefix}/{sorted(files)[-1]}"

    def before_put(key: str) -> None:
        if pause_before_last and key == last:
            print("PAUSED", flush=True)
            time.sleep(PAUSE_LIMIT_S)
            sys.exit(3)  # never reached when the parent kills us

    publish_files(Hooked(store, before_put=before_put), L.RunLayout(run_id), "runs", files, manifest)
    print("PUBLISHED", flush=True)


def promote_crash(uri: str, run_id: str) -> None:
    store = open_store(uri)
    current = read_champion(store)

    def after_put_if(key: str) -> None:
        if key.startswith(L.CHAMPIONS_DIR + "/"):
            print("CLAIMED", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    set_champion(Hooked(store, after_put_if=after_put_if), run_id, action="promote", by="crasher",
                 expected_etag=current.etag if current else None)
    print("NOT KILLED", flush=True)


def main(argv: list[str]) -> None:
    mode, *args = argv
    flags = {a for a in args if a.startswith("--")}
    pos = [a for a in args if not a.startswith("--")]
    if mode == "publish":
        publish(pos[0], pos[1], pos[2], "--pause-before-last" in flags, "--stale" in flags)
    elif mode == "promote-crash":
        promote_crash(pos[0], pos[1])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
