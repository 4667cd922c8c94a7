"""Publishing: a passing run to runs/<id>/ and the champion pointer; a failing one to rejected/<id>/.

Works on any Store (local directory or S3). Order matters for crash safety: every file first, the
manifest last (a run without one is incomplete), and the champion pointer only after that, with a
conditional write so concurrent promotions can never lose an update.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from tasks import layout as L
from tasks.errors import StoreError
from tasks.gates import ChampionRef
from tasks.manifest import dumps
from tasks.storage import PreconditionFailed, Store, sha256_hex


@dataclass(frozen=True)
class Champion:
    pointer: dict[str, Any]
    etag: str

    @property
    def run_id(self) -> str:
        return str(self.pointer["run_id"])

    @property
    def seq(self) -> int:
        return int(self.pointer.get("seq", 0))


def read_champion(store: Store) -> Champion | None:
    info = store.head(L.CHAMPION)
    if info is None:
        return None
    data = store.get(L.CHAMPION)
    try:
        pointer = json.loads(data)
    except ValueError:
        raise StoreError(f"{L.CHAMPION} in {store.uri} is not valid JSON") from None
    return Champion(pointer, info.etag)


def champion_ref(store: Store, champion: Champion) -> ChampionRef:
    """The champion's deployable accuracy and size, read from its manifest."""
    manifest = json.loads(store.get(L.RunLayout(champion.run_id).run(L.MANIFEST)))
    dep = manifest["deployable"]
    return ChampionRef(champion.run_id, float(dep["accuracy"]), int(dep["gzip_bytes"]))


def champion_history(store: Store) -> list[dict[str, Any]]:
    out = []
    for key in store.list(L.CHAMPIONS_DIR + "/"):
        if key.endswith(".json"):
            out.append(json.loads(store.get(key)))
    return sorted(out, key=lambda e: int(e.get("seq", 0)))


def set_champion(store: Store, run_id: str, *, action: str, by: str, expected_etag: str | None) -> dict[str, Any]:
    """Point champion.json at `run_id` if it still has `expected_etag` (None: there must be no champion).

    The history entry champions/<seq>.json is created first with If-None-Match, so of two racing
    promotions exactly one claims the next sequence number; the loser raises PreconditionFailed and
    leaves no trace. The pointer itself is then replaced with If-Match on the etag read before.
    """
    manifest_key = L.RunLayout(run_id).run(L.MANIFEST)
    if not store.exists(manifest_key):
        raise StoreError(f"run {run_id} has no manifest in {store.uri}: it is incomplete and cannot be champion")
    manifest_bytes = store.get(manifest_key)
    manifest = json.loads(manifest_bytes)
    if manifest.get("status") != "passed":
        raise StoreError(f"run {run_id} did not pass its gates and cannot be champion")
    current = read_champion(store)
    current_etag = current.etag if current else None
    if current_etag != expected_etag:
        was = current.run_id if current else "none"
        raise PreconditionFailed(f"champion changed since it was read (now {was}); rerun to compare against it")
    seq = (current.seq if current else 0) + 1
    pointer = {
        "run_id": run_id,
        "manifest_sha256": sha256_hex(manifest_bytes),
        "seq": seq,
        "action": action,
        "by": by,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "previous": current.run_id if current else None,
        "deployable": manifest.get("deployable"),
    }
    body = dumps(pointer)
    store.put_if(L.champion_history(seq), body, if_match=None, if_none_match=True)
    store.put_if(L.CHAMPION, body, if_match=expected_etag, if_none_match=expected_etag is None)
    return pointer


def publish_files(store: Store, prefix: str, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """Upload every file, then the manifest last (its presence marks the folder complete)."""
    for name in sorted(files):
        store.put(f"{prefix}/{name}", files[name])
    store.put(f"{prefix}/{L.MANIFEST}", dumps(manifest))
