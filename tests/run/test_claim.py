"""One writer per run id: claims are exclusive, stale ones are taken over only explicitly, heartbeats notice."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from shears.errors import ConfigError
from shears.records import ClaimRecord
from shears.release.audit import audit_store
from shears.run.claim import acquire, drop_if_ours, read_claim, resume, this_process, why_stale
from shears.store import LocalStore, PreconditionFailed
from shears.store import layout as L

KW = {"stale_after_s": 60.0, "heartbeat_s": 1.0}
REPO = Path(__file__).resolve().parents[2]


def _dead_process_holder():  # type: ignore[no-untyped-def]
    """A holder record of a process that has exited (same host)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True, timeout=60)
    return this_process().model_copy(update={"pid": int(proc.stdout), "pid_started": None})


def test_a_second_claim_on_a_live_run_id_is_refused_naming_the_holder(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = acquire(store, "r1", this_process(), **KW)
    other = this_process().model_copy(update={"pid": first.record.holder.pid + 1, "host": "elsewhere"})
    with pytest.raises(ConfigError, match=r"run id r1 is claimed by shears \(pid \d+ on .*another run is writing"):
        acquire(store, "r1", other, **KW)
    with pytest.raises(ConfigError, match="another run is writing"):  # force never takes a live claim
        acquire(store, "r1", other, force=True, **KW)
    first.release()
    assert read_claim(store, "r1") is None
    acquire(store, "r1", other, **KW)  # free again


def test_a_dead_holders_claim_is_taken_over_only_with_force_and_recorded(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    dead = _dead_process_holder()
    acquire(store, "r2", dead, **KW)
    with pytest.raises(ConfigError, match=r"looks stale \(process \d+ on .* is no longer running\); rerun with "
                                          r"--force-claim"):
        acquire(store, "r2", this_process(), **KW)
    claim = acquire(store, "r2", this_process(), force=True, **KW)
    assert claim.record.took_over == dead and "no longer running" in (claim.record.took_over_why or "")
    found = read_claim(store, "r2")
    assert found is not None and found[0].took_over == dead


def test_an_old_heartbeat_is_stale(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    holder = this_process().model_copy(update={"host": "another-host"})  # cannot check its pid from here
    acquire(store, "r3", holder, **KW)
    record, _ = read_claim(store, "r3") or (None, None)
    assert record is not None and why_stale(record) is None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    assert "no heartbeat for" in (why_stale(record, now=later) or "")
    old = record.model_copy(update={"heartbeat_at": "2026-01-01T00:00:00+00:00"})
    store.put(L.claim_key("r3"), old.to_bytes())
    assert any("no heartbeat for" in w and "--force-claim" in w for w in audit_store(store).warnings)
    taken = acquire(store, "r3", this_process(), force=True, **KW)
    assert taken.record.took_over == holder


def test_a_heartbeat_notices_a_takeover_and_the_loser_stops(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    mine = acquire(store, "r4", this_process(), **KW)
    mine.beat()
    assert mine.lost is None
    mine.check()
    thief = ClaimRecord.from_bytes(store.get(L.claim_key("r4"))).model_copy(
        update={"holder": this_process().model_copy(update={"host": "thief-host"})})
    store.put(L.claim_key("r4"), thief.to_bytes())
    mine.beat()
    with pytest.raises(ConfigError, match=r"taken over by shears .*thief-host.*this run stops here"):
        mine.check()
    mine.release()  # never deletes the new holder's claim
    assert read_claim(store, "r4") is not None


def test_the_same_airflow_run_takes_its_own_claim_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = this_process("airflow", "shears_pipeline/manual__1")
    acquire(store, "r5", first, **KW)
    again = acquire(store, "r5", first.model_copy(update={"pid": 1, "host": "worker-2"}), **KW)  # cleared run
    assert again.record.reclaimed == 1 and again.record.took_over is None
    later_task = resume(store, "r5", first.model_copy(update={"host": "worker-3"}), heartbeat_s=1.0)
    assert later_task.record.holder.host == "worker-3"
    with pytest.raises(ConfigError, match="not by this run"):
        resume(store, "r5", this_process("airflow", "shears_pipeline/manual__2"), heartbeat_s=1.0)
    with pytest.raises(ConfigError, match="another run is writing"):
        acquire(store, "r5", this_process("airflow", "shears_pipeline/manual__2"), **KW)


def test_eight_mapped_tasks_of_one_run_keep_its_claim_with_1s_heartbeats(tmp_path: Path) -> None:
    """8 processes (the mapped tasks of one Airflow run, each with its own 1 s heartbeat) hold one claim at
    once: each recognises its siblings' refreshes, none thinks the claim was taken over, and the run ends clean."""
    store = LocalStore(tmp_path)
    run = "shears_pipeline/manual__mapped"
    begun = acquire(store, "r8", this_process("airflow", run), stale_after_s=5.0, heartbeat_s=1.0)
    cmd = [sys.executable, "-m", "tests.run.claim_holder", str(tmp_path), "r8", run, "4", "1"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, out + err[-2000:]
            results.append(json.loads(out))
    finally:
        for p in procs:
            p.kill()
    assert [r["lost"] for r in results] == [None] * 8
    assert len({r["pid"] for r in results}) == 8
    assert sum(r["writes"] for r in results) >= 1  # the run's heartbeat was refreshed by its tasks
    record, _ = read_claim(store, "r8") or (None, None)
    assert record is not None and why_stale(record) is None and record.holder.airflow_run == run
    assert record.claimed_at == begun.record.claimed_at
    assert drop_if_ours(store, "r8", this_process("airflow", run)) is True  # the run ends: claim dropped
    assert read_claim(store, "r8") is None


def test_a_heartbeat_from_a_sibling_is_adopted_but_a_foreign_write_is_a_takeover(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    run = "shears_pipeline/manual__9"
    a = resume_after_begin = acquire(store, "r9", this_process("airflow", run), **KW)
    b = resume(store, "r9", this_process("airflow", run).model_copy(update={"host": "worker-2"}), heartbeat_s=1.0)
    a.beat()  # its etag is stale (b refreshed): adopts b's refresh, does not lose
    assert a.lost is None and b.lost is None
    resume_after_begin.check()
    foreign = ClaimRecord.from_bytes(store.get(L.claim_key("r9"))).model_copy(
        update={"holder": this_process("airflow", "shears_pipeline/manual__other")})
    store.put(L.claim_key("r9"), foreign.to_bytes())
    b.beat()
    with pytest.raises(ConfigError, match=r"taken over by .*manual__other"):
        b.check()


def test_a_local_release_waits_for_the_lock_and_never_deletes_a_newer_claim(tmp_path: Path) -> None:
    """The local store's conditional delete holds put_if's lock: a write made while it waits wins."""
    store = LocalStore(tmp_path)
    key = L.claim_key("r10")
    old = store.put_if(key, b"old", if_match=None, if_none_match=True)
    outcome: list[str] = []

    def release() -> None:
        try:
            store.delete_if(key, if_match=old)
            outcome.append("deleted")
        except PreconditionFailed as exc:
            outcome.append(str(exc))

    lock_path = tmp_path / "claims" / ".r10.json.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a writer in the middle of its put_if
        t = threading.Thread(target=release)
        t.start()
        time.sleep(0.3)
        assert outcome == []  # the delete waits for the lock
        store.put(key, b"new holder")  # what that writer writes before it unlocks
    t.join(timeout=10)
    assert outcome and "changed" in outcome[0]
    assert store.get(key) == b"new holder"
    store.delete_prefix(key)  # a plain delete of one key keeps the lock file (another writer may hold it)
    assert not store.exists(key) and lock_path.exists()
