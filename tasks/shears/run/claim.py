"""One writer per run id: a claim created atomically in the store and kept fresh by a heartbeat.

`claims/<run_id>.json` is created with a conditional write (If-None-Match on S3, an exclusive lock plus
an existence check on a local store), so of two runs started with the same id exactly one gets it; the
other is refused at start, naming the holder. The holder refreshes the claim's heartbeat while it works
(If-Match on the etag it last saw, so a takeover is noticed; the tasks of one Airflow run, mapped ones
included, recognise each other's refreshes) and deletes it when the run ends, with a conditional delete.

A claim is stale when its holder is gone (same host, process no longer running, or its pid reused by
another process) or its heartbeat is older than `stale_after_s`. Only an explicit `--force-claim` (or
the DAG's `force_claim` param) takes a stale claim over; the takeover is recorded in the new claim,
which the run publishes as claim.json. A live claim is never taken over.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import socket
import threading
from dataclasses import dataclass, field

from shears.errors import ConfigError, ShearsError, StoreError
from shears.records import ClaimRecord, HolderRecord
from shears.store import PreconditionFailed, Store
from shears.store import layout as L

log = logging.getLogger(__name__)
SIBLING_RETRIES = 5  # a conditional write or delete retried after a same-run sibling changed the claim


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def _pid_started(pid: int) -> str | None:
    """The process start time in clock ticks since boot (field 22 of /proc/<pid>/stat); None off Linux."""
    try:
        stat = open(f"/proc/{pid}/stat", encoding="ascii", errors="replace").read()  # noqa: SIM115
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def this_process(kind: str = "cli", airflow_run: str | None = None) -> HolderRecord:
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    pid = os.getpid()
    return HolderRecord(kind="airflow" if kind == "airflow" else "cli", host=socket.gethostname(), pid=pid,
                        pid_started=_pid_started(pid), user=user, airflow_run=airflow_run)


def holder_gone(holder: HolderRecord) -> bool:
    """True when the holder ran on this host and its process is no longer there (or the pid was reused)."""
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's process
    started = _pid_started(holder.pid)
    return holder.pid_started is not None and started is not None and started != holder.pid_started


def why_stale(claim: ClaimRecord, now: dt.datetime | None = None) -> str | None:
    """Why a claim may be taken over, or None while its holder is alive and its heartbeat fresh.

    An Airflow run spans many task processes (and gaps between them), so only its heartbeat's age counts;
    a CLI run is one process, gone when that process is.
    """
    if claim.holder.kind != "airflow" and holder_gone(claim.holder):
        return f"process {claim.holder.pid} on {claim.holder.host} is no longer running"
    try:
        beat = dt.datetime.fromisoformat(claim.heartbeat_at)
    except ValueError:
        return f"its heartbeat time {claim.heartbeat_at!r} is unreadable"
    age = ((now or _now()) - beat).total_seconds()
    if age > claim.stale_after_s:
        return f"no heartbeat for {age:.0f} s (stale after {claim.stale_after_s:.0f} s)"
    return None


def _same_airflow_run(a: HolderRecord, b: HolderRecord) -> bool:
    return a.kind == b.kind == "airflow" and a.airflow_run is not None and a.airflow_run == b.airflow_run


def same_holder(a: HolderRecord, b: HolderRecord) -> bool:
    """The same Airflow DAG run (any task, any worker), or the very same process.

    Two Airflow holders compare by run only: a worker process that ran a task of another DAG run is
    not that run's holder, whatever its pid.
    """
    if a.kind == b.kind == "airflow":
        return _same_airflow_run(a, b)
    return (a.host, a.pid, a.pid_started) == (b.host, b.pid, b.pid_started)


@dataclass
class Claim:
    """A held claim: refresh it (`beat`, or a background heartbeat), check it, release it."""

    store: Store
    record: ClaimRecord
    etag: str
    heartbeat_s: float
    lost: str | None = None
    writes: int = 0  # heartbeats this holder wrote (siblings' fresh refreshes are adopted, not rewritten)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def key(self) -> str:
        return L.claim_key(self.record.run_id)

    def beat(self) -> None:
        """Refresh the heartbeat (If-Match on the etag last seen); a claim taken over is marked lost, not rewritten.

        Mapped Airflow tasks of one run each keep a heartbeat on the same claim, so a changed etag is often a
        sibling's refresh: a same-run holder adopts it, and writes only when that refresh is older than half a
        heartbeat, so the run as a whole refreshes about once per period however many tasks it has.
        """
        with self._lock:
            for _ in range(SIBLING_RETRIES):
                if self.lost:
                    return
                fresh = self.record.model_copy(update={"heartbeat_at": _iso(_now())})
                try:
                    self.etag = self.store.put_if(self.key, fresh.to_bytes(), if_match=self.etag, if_none_match=False)
                    self.record = fresh
                    self.writes += 1
                    return
                except PreconditionFailed:
                    if self._adopt_sibling():
                        return
                except ShearsError as exc:  # a transient store error: the next beat tries again
                    log.warning("heartbeat of run %s failed: %s", self.record.run_id, exc)
                    return
            log.warning("heartbeat of run %s: the claim changed %d times in a row; next beat tries again",
                        self.record.run_id, SIBLING_RETRIES)

    def _adopt_sibling(self) -> bool:
        """After a lost If-Match: take a same-run sibling's claim as ours (True when it is fresh enough to need
        no write now), or mark the claim lost when another holder has it or it is gone."""
        try:
            found = read_claim(self.store, self.record.run_id)
        except ShearsError as exc:
            log.warning("heartbeat of run %s: cannot re-read its claim: %s", self.record.run_id, exc)
            return True
        if found is None:
            self.lost = f"its claim {self.key} disappeared"
            return True
        current, etag = found
        if not _same_airflow_run(current.holder, self.record.holder):
            self.lost = f"its claim was taken over by {current.holder.describe()} at {current.claimed_at}"
            return True
        self.etag, self.record = etag, current.model_copy(update={"holder": self.record.holder})
        try:
            age = (_now() - dt.datetime.fromisoformat(current.heartbeat_at)).total_seconds()
        except ValueError:
            return False
        return age < self.heartbeat_s / 2

    def check(self) -> None:
        """Raise ConfigError (exit 2) if another run took this run id over: stop before writing anything."""
        if self.lost:
            raise ConfigError(f"run id {self.record.run_id}: {self.lost}; this run stops here")

    def start_heartbeat(self) -> None:
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.heartbeat_s):
                self.beat()

        self._thread = threading.Thread(target=loop, name=f"claim-{self.record.run_id}", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def release(self) -> None:
        """Stop the heartbeat and delete the claim if it is still ours (a conditional delete: never another's)."""
        self.stop_heartbeat()
        with self._lock:
            if self.lost:
                return
            drop_if_ours(self.store, self.record.run_id, self.record.holder)
            self.lost = "released"


def drop_if_ours(store: Store, run_id: str, holder: HolderRecord) -> bool:
    """Delete the run id's claim if `holder` (or a task of its Airflow run) has it; True when it was dropped.

    Each attempt reads the claim and deletes it only while its etag is the one read (If-Match on S3, under
    the lock locally), so a new holder's claim written in between is never removed. A sibling task's
    heartbeat changing the etag meanwhile just costs another attempt (bounded).
    """
    key = L.claim_key(run_id)
    for _ in range(SIBLING_RETRIES):
        found = read_claim(store, run_id)
        if found is None or not same_holder(found[0].holder, holder):
            return False
        try:
            store.delete_if(key, if_match=found[1])
            return True
        except PreconditionFailed:
            continue
    raise StoreError(f"run id {run_id}: its claim kept changing while being released ({SIBLING_RETRIES} tries)")


def read_claim(store: Store, run_id: str) -> tuple[ClaimRecord, str] | None:
    info = store.head(L.claim_key(run_id))
    if info is None:
        return None
    return ClaimRecord.from_bytes(store.get(L.claim_key(run_id)), L.claim_key(run_id)), info.etag


def acquire(
    store: Store, run_id: str, holder: HolderRecord, *, stale_after_s: float, heartbeat_s: float, force: bool = False,
) -> Claim:
    """Claim `run_id` for `holder`, or raise ConfigError (exit 2) naming who holds it.

    The same Airflow DAG run takes its own claim again (a cleared run restarts from validate). A stale claim
    is taken over only with `force`; the new claim records whom it replaced and why.
    """
    key = L.claim_key(run_id)
    now = _iso(_now())
    record = ClaimRecord(run_id=run_id, holder=holder, claimed_at=now, heartbeat_at=now, stale_after_s=stale_after_s)
    try:
        etag = store.put_if(key, record.to_bytes(), if_match=None, if_none_match=True)
        return Claim(store, record, etag, heartbeat_s)
    except PreconditionFailed:
        pass
    found = read_claim(store, run_id)
    if found is None:  # released between our write and our read: try once more
        etag = store.put_if(key, record.to_bytes(), if_match=None, if_none_match=True)
        return Claim(store, record, etag, heartbeat_s)
    current, etag = found
    if same_holder(current.holder, holder):
        # the same Airflow DAG run started again (a cleared run), or this very process reruns the id it held
        record = record.model_copy(update={"reclaimed": current.reclaimed + 1, "claimed_at": current.claimed_at})
        why: str | None = "the same holder started the run id again"
    else:
        why = why_stale(current)
        held = (f"run id {run_id} is claimed by {current.holder.describe()} since {current.claimed_at} "
                f"(last heartbeat {current.heartbeat_at})")
        if why is None:
            raise ConfigError(f"{held}: another run is writing it; choose another run id or wait")
        if not force:
            raise ConfigError(f"{held}, which looks stale ({why}); rerun with --force-claim to take it over")
        record = record.model_copy(update={"took_over": current.holder, "took_over_why": why})
    try:
        etag = store.put_if(key, record.to_bytes(), if_match=etag, if_none_match=False)
    except PreconditionFailed:
        raise ConfigError(f"run id {run_id}: its claim changed while taking it over; rerun") from None
    log.warning("run id %s: took over the claim of %s (%s)", run_id, current.holder.describe(), why)
    return Claim(store, record, etag, heartbeat_s)


def resume(store: Store, run_id: str, holder: HolderRecord, *, heartbeat_s: float) -> Claim:
    """A later Airflow task of the run that holds the claim: refresh it, or refuse if another holder has it."""
    found = read_claim(store, run_id)
    if found is None:
        raise ConfigError(f"run id {run_id} holds no claim (released or never taken): start the run again")
    current, etag = found
    if not _same_airflow_run(current.holder, holder):
        raise ConfigError(f"run id {run_id} is claimed by {current.holder.describe()}, not by this run")
    claim = Claim(store, current.model_copy(update={"holder": holder}), etag, heartbeat_s)
    claim.beat()
    claim.check()
    return claim
