"""Publishing: a passing run to runs/<id>/ and the champion pointer; a failing one to rejected/<id>/.

Works on any Store (local directory or S3). Order matters for crash safety: every file first, the
manifest last (a run without one is incomplete), and the champion pointer only after that, with a
conditional write so concurrent promotions can never lose an update.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks import layout as L
from tasks.errors import ConfigError, StoreError
from tasks.manifest import dumps
from tasks.storage import PreconditionFailed, Store, sha256_hex

if TYPE_CHECKING:  # tasks.gates pulls in TensorFlow (via tasks.strip); promote/rollback/audit must not
    from tasks.gates import ChampionRef


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


def read_champion(store: Store, attempts: int = 5) -> Champion | None:
    """The pointer and the etag of exactly those bytes (head, get, head again until both heads agree)."""
    for _ in range(attempts):
        info = store.head(L.CHAMPION)
        if info is None:
            return None
        data = store.get(L.CHAMPION)
        again = store.head(L.CHAMPION)
        if again is not None and again.etag == info.etag:
            break
    else:
        raise StoreError(f"{L.CHAMPION} in {store.uri} kept changing while being read ({attempts} attempts)")
    try:
        pointer = json.loads(data)
    except ValueError:
        raise StoreError(f"{L.CHAMPION} in {store.uri} is not valid JSON") from None
    if not isinstance(pointer, dict) or "run_id" not in pointer:
        raise StoreError(f"{L.CHAMPION} in {store.uri} has no run_id")
    return Champion(pointer, info.etag)


def champion_ref(store: Store, champion: Champion) -> ChampionRef:
    """The champion's deployable accuracy and size, read from its manifest."""
    from tasks.gates import ChampionRef

    manifest = json.loads(store.get(L.RunLayout(champion.run_id).run(L.MANIFEST)))
    dep = manifest["deployable"]
    return ChampionRef(champion.run_id, float(dep["accuracy"]), int(dep["gzip_bytes"]))


def read_champion_history(store: Store) -> tuple[list[dict[str, Any]], dict[int, bytes], list[str]]:
    """champions/*.json sorted by seq, their raw bytes by seq, and one problem line per unusable entry."""
    entries: list[dict[str, Any]] = []
    raw_by_seq: dict[int, bytes] = {}
    problems: list[str] = []
    for key in store.list(L.CHAMPIONS_DIR + "/"):
        raw = store.get(key)
        try:
            entry = json.loads(raw)
        except ValueError:
            problems.append(f"{key}: not valid JSON")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            problems.append(f"{key}: history entry without an integer seq")
            continue
        if key != L.champion_history(entry["seq"]):
            problems.append(f"{key}: holds seq {entry['seq']} (expected {L.champion_history(entry['seq'])})")
            continue
        entries.append(entry)
        raw_by_seq[entry["seq"]] = raw
    entries.sort(key=lambda e: int(e["seq"]))
    return entries, raw_by_seq, problems


def _put_once(store: Store, key: str, body: bytes, *, if_match: str | None, if_none_match: bool) -> None:
    """A conditional write that is idempotent: losing to the very same bytes counts as written.

    That happens when a retried request's first try had landed, or when an interrupted promotion
    was completed by someone else with the bytes we were about to write.
    """
    try:
        store.put_if(key, body, if_match=if_match, if_none_match=if_none_match)
    except PreconditionFailed:
        try:
            same = store.get(key) == body
        except StoreError:
            same = False
        if not same:
            raise


def _finish_interrupted(store: Store, current: Champion | None) -> Champion | None:
    """Complete a promotion that claimed its history entry but never moved the pointer.

    A history entry champions/<seq+1>.json is only created by the promotion that read the pointer at
    <seq>; the only way its pointer write can fail is a crash (or it simply has not happened yet).
    Without this, one crash between the two writes would block every later promotion forever.
    """
    seq = (current.seq if current else 0) + 1
    key = L.champion_history(seq)
    if not store.exists(key):
        return current
    body = store.get(key)
    try:
        entry = json.loads(body)
    except ValueError:
        raise StoreError(f"{key} in {store.uri} is not valid JSON; run `shears audit`") from None
    previous = current.run_id if current else None
    if not isinstance(entry, dict) or entry.get("seq") != seq or entry.get("previous") != previous:
        raise StoreError(f"{key} in {store.uri} does not follow {L.CHAMPION} (seq {seq - 1}); "
                         "run `shears audit`")
    etag = current.etag if current else None
    _put_once(store, L.CHAMPION, body, if_match=etag, if_none_match=etag is None)
    return read_champion(store)


def set_champion(
    store: Store, run_id: str, *, action: str, by: str, expected_etag: str | None
) -> dict[str, Any]:
    """Point champion.json at `run_id` if it still has `expected_etag` (None: there must be no champion).

    The history entry champions/<seq>.json is created first with If-None-Match, so of two racing
    promotions exactly one claims the next sequence number; the loser raises PreconditionFailed and
    leaves no trace. The pointer itself is then replaced with If-Match on the etag read before.
    A claim left behind by a crash between the two writes is completed by the next call (which then
    reports that the champion changed).
    """
    manifest_key = L.RunLayout(run_id).run(L.MANIFEST)
    if not store.exists(manifest_key):
        raise StoreError(
            f"run {run_id} has no manifest in {store.uri}: it is incomplete and cannot be champion"
        )
    manifest_bytes = store.get(manifest_key)
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        raise StoreError(f"{manifest_key} in {store.uri} is not valid JSON; run `shears audit`") from None
    if not isinstance(manifest, dict) or manifest.get("status") != "passed":
        raise StoreError(f"run {run_id} did not pass its gates and cannot be champion")
    current = _finish_interrupted(store, read_champion(store))
    if current is not None and current.run_id == run_id and current.pointer.get("by") == by:
        return current.pointer  # a retry of this very promotion whose claim was completed just above
    current_etag = current.etag if current else None
    if current_etag != expected_etag:
        was = current.run_id if current else "none"
        raise PreconditionFailed(
            f"champion changed since it was read (now {was}); rerun to compare against it"
        )
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
    try:
        _put_once(store, L.champion_history(seq), body, if_match=None, if_none_match=True)
    except PreconditionFailed:
        raise PreconditionFailed(
            f"another promotion claimed champion seq {seq} first; champion changed since it was read"
        ) from None
    _put_once(store, L.CHAMPION, body, if_match=expected_etag, if_none_match=expected_etag is None)
    return pointer


def promote(store: Store, run_id: str, *, by: str, action: str = "promote") -> dict[str, Any]:
    """Make a verified, passing run the champion (a no-op returning the pointer if it already is)."""
    from tasks.audit import verify_run  # lazy: tasks.audit reads the champion through this module

    if not L.RUN_ID_RE.match(run_id):
        raise ConfigError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' or '-'")
    # an explicit promotion first completes a crashed one, then applies on top of it
    current = _finish_interrupted(store, read_champion(store))
    if current is not None and current.run_id == run_id:
        return current.pointer
    checked = verify_run(store, "runs", run_id)
    if checked.objects == 0:
        raise StoreError(f"run {run_id} is not published under runs/ in {store.uri}")
    if checked.state != "complete":
        raise StoreError(f"run {run_id} is {checked.state} in {store.uri} and cannot be champion")
    if checked.problems:
        raise StoreError(f"run {run_id} fails verification and cannot be champion: {checked.problems[0]}")
    return set_champion(store, run_id, action=action, by=by, expected_etag=current.etag if current else None)


def rollback(store: Store, *, by: str) -> dict[str, Any]:
    """Point the champion back at the pointer's `previous` run (recorded as a new history entry).

    Rolling back twice returns to where you started: each rollback's `previous` is the run it replaced.
    """
    current = _finish_interrupted(store, read_champion(store))
    if current is None:
        raise StoreError(f"no champion in {store.uri}: nothing to roll back")
    previous = current.pointer.get("previous")
    if not previous:
        raise StoreError(f"champion {current.run_id} in {store.uri} has no previous champion to roll back to")
    return promote(store, str(previous), by=by, action="rollback")


def publish_files(store: Store, prefix: str, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """Upload every file, then the manifest last (its presence marks the folder complete).

    Idempotent: a folder already published with exactly these files is left alone (a retried publish
    must not rewrite a manifest champion.json may pin by sha256). Objects left by an interrupted
    earlier attempt that are not part of this publication are removed before the manifest is written.
    """
    manifest_key = f"{prefix}/{L.MANIFEST}"
    if store.exists(manifest_key):
        try:
            old = json.loads(store.get(manifest_key))
        except ValueError:
            old = None
        if isinstance(old, dict) and old.get("files") == manifest.get("files"):
            return
        if prefix.startswith("runs/"):
            raise StoreError(
                f"{prefix} in {store.uri} is already published with different content; use a new run id"
            )
        store.delete_prefix(manifest_key)  # superseded record: drop the old manifest before rewriting
    for key in store.list(prefix + "/"):
        name = key[len(prefix) + 1 :]
        if name not in files and name != L.MANIFEST:
            store.delete_prefix(key)
    for name in sorted(files):
        store.put(f"{prefix}/{name}", files[name])
    store.put(manifest_key, dumps(manifest))
