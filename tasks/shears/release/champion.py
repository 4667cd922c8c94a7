"""The champion: champion.json (the pointer) and champions/<seq>.json (its append-only history).

The one place that reads and writes them. Every change is two conditional writes: the history entry
champions/<seq>.json is created with If-None-Match (of two racing promotions exactly one claims the next
sequence number), then champion.json is replaced with If-Match on the etag read before. A claim left
behind by a crash between the two writes is completed by the next promotion or rollback.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shears.errors import PromotionRefused, RecordError, StoreError
from shears.records import ChampionRecord, ManifestRecord
from shears.release.verify import verify_run
from shears.store import PreconditionFailed, Store, sha256_hex
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.release.signing import Trust


@dataclass(frozen=True)
class Champion:
    """The pointer as read, and the etag of exactly those bytes (for the conditional write that replaces it)."""

    pointer: ChampionRecord
    etag: str
    raw: bytes

    @property
    def run_id(self) -> str:
        return self.pointer.run_id

    @property
    def seq(self) -> int:
        return self.pointer.seq


def read_champion(store: Store, attempts: int = 5) -> Champion | None:
    """champion.json and its etag (head, get, head again until both heads agree); None without one.

    A pointer that is not valid JSON, or not a valid champion record (e.g. a run id that is not a
    run id), is a RecordError naming the file: nothing may be compared against or promoted over it.
    """
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
    pointer = ChampionRecord.from_bytes(data, f"{L.CHAMPION} in {store.uri}")
    return Champion(pointer, info.etag, data)


def read_champion_manifest(store: Store, champion: Champion) -> ManifestRecord:
    """The champion run's manifest, checked against the sha256 the pointer pinned."""
    key = L.RunLayout(champion.run_id).run(L.MANIFEST)
    if not store.exists(key):
        raise RecordError(f"{L.CHAMPION} in {store.uri} points to run {champion.run_id}, which has no {key}")
    raw = store.get(key)
    if sha256_hex(raw) != champion.pointer.manifest_sha256:
        raise RecordError(f"{key} in {store.uri} does not match the sha256 {L.CHAMPION} pinned; run `shears audit`")
    return ManifestRecord.from_bytes(raw, f"{key} in {store.uri}")


@dataclass(frozen=True)
class History:
    """champions/*.json sorted by seq, their raw bytes by seq, and one problem line per unusable entry."""

    entries: list[ChampionRecord]
    raw_by_seq: dict[int, bytes]
    problems: list[str]


def read_champion_history(store: Store) -> History:
    entries: list[ChampionRecord] = []
    raw_by_seq: dict[int, bytes] = {}
    problems: list[str] = []
    for key in store.list(L.CHAMPIONS_DIR + "/"):
        raw = store.get(key)
        try:
            entry = ChampionRecord.from_bytes(raw, key)
        except RecordError as exc:
            problems.append(str(exc))
            continue
        if key != L.champion_history(entry.seq):
            problems.append(f"{key}: holds seq {entry.seq} (expected {L.champion_history(entry.seq)})")
            continue
        entries.append(entry)
        raw_by_seq[entry.seq] = raw
    entries.sort(key=lambda e: e.seq)
    return History(entries, raw_by_seq, problems)


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
        entry = ChampionRecord.from_bytes(body, f"{key} in {store.uri}")
    except RecordError as exc:
        raise StoreError(f"{exc}; run `shears audit`") from None
    previous = current.run_id if current else None
    if entry.seq != seq or entry.previous != previous:
        raise StoreError(f"{key} in {store.uri} does not follow {L.CHAMPION} (seq {seq - 1}); "
                         "run `shears audit`")
    etag = current.etag if current else None
    _put_once(store, L.CHAMPION, body, if_match=etag, if_none_match=etag is None)
    return read_champion(store)


def set_champion(
    store: Store, run_id: str, *, action: Literal["promote", "rollback"], by: str, expected_etag: str | None
) -> ChampionRecord:
    """Point champion.json at `run_id` if it still has `expected_etag` (None: there must be no champion).

    The loser of a race raises PreconditionFailed and leaves no trace.
    """
    manifest_key = L.RunLayout(run_id).run(L.MANIFEST)
    if not store.exists(manifest_key):
        raise StoreError(
            f"run {run_id} has no manifest in {store.uri}: it is incomplete and cannot be champion"
        )
    manifest_bytes = store.get(manifest_key)
    try:
        manifest = ManifestRecord.from_bytes(manifest_bytes, f"{manifest_key} in {store.uri}")
    except RecordError as exc:
        raise StoreError(f"{exc}; run `shears audit`") from None
    if manifest.status != "passed":
        raise StoreError(f"run {run_id} did not pass its gates and cannot be champion")
    current = _finish_interrupted(store, read_champion(store))
    if current is not None and current.run_id == run_id and current.pointer.by == by:
        return current.pointer  # a retry of this very promotion whose claim was completed just above
    current_etag = current.etag if current else None
    if current_etag != expected_etag:
        was = current.run_id if current else "none"
        raise PreconditionFailed(
            f"champion changed since it was read (now {was})"
        )
    seq = (current.seq if current else 0) + 1
    pointer = ChampionRecord(
        run_id=run_id,
        manifest_sha256=sha256_hex(manifest_bytes),
        seq=seq,
        action=action,
        by=by,
        at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        previous=current.run_id if current else None,
        deployable=manifest.deployable,
    )
    body = pointer.to_bytes()
    try:
        _put_once(store, L.champion_history(seq), body, if_match=None, if_none_match=True)
    except PreconditionFailed:
        raise PreconditionFailed(
            f"another promotion claimed champion seq {seq} first; champion changed since it was read"
        ) from None
    _put_once(store, L.CHAMPION, body, if_match=expected_etag, if_none_match=expected_etag is None)
    return pointer


def promote(
    store: Store, run_id: str, *, by: str, action: Literal["promote", "rollback"] = "promote",
    trust: Trust | None = None,
) -> ChampionRecord:
    """Make a verified, passing run the champion (a no-op returning the pointer if it already is, once a crashed
    promotion is completed).

    The run must pass what `shears audit --run` checks of it (every sha256 and size in its manifest, no file
    it does not list, its status) and, with `trust`, its signature; the champion history must be intact.
    Otherwise PromotionRefused, and champion.json and its history are left untouched.
    """
    L.check_run_id(run_id)
    checked = verify_run(store, "runs", run_id, trust=trust)  # before anything is written
    if checked.objects == 0:
        raise PromotionRefused(f"run {run_id} is not published under runs/ in {store.uri}")
    if checked.state != "complete":
        raise PromotionRefused(f"run {run_id} is {checked.state} in {store.uri} and cannot be champion")
    if checked.problems:
        raise PromotionRefused(f"run {run_id} fails verification and cannot be champion: {checked.problems[0]}"
                               + (f" (+{len(checked.problems) - 1} more; run `shears audit`)"
                                  if len(checked.problems) > 1 else ""))
    history = read_champion_history(store)
    if history.problems:
        raise PromotionRefused(f"the champion history in {store.uri} is broken ({history.problems[0]}): run "
                               "`shears audit`; nothing was promoted")
    # an explicit promotion first completes a crashed one, then applies on top of it
    current = _finish_interrupted(store, read_champion(store))
    if current is not None and current.run_id == run_id:
        return current.pointer
    return set_champion(store, run_id, action=action, by=by, expected_etag=current.etag if current else None)


def rollback(store: Store, *, by: str, trust: Trust | None = None) -> ChampionRecord:
    """Point the champion back at the pointer's `previous` run (recorded as a new history entry).

    Rolling back twice returns to where you started: each rollback's `previous` is the run it replaced.
    """
    current = _finish_interrupted(store, read_champion(store))
    if current is None:
        raise StoreError(f"no champion in {store.uri}: nothing to roll back")
    previous = current.pointer.previous
    if not previous:
        raise StoreError(f"champion {current.run_id} in {store.uri} has no previous champion to roll back to")
    return promote(store, previous, by=by, action="rollback", trust=trust)
