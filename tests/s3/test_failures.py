"""Failure modes against a real S3 server: bad credentials, an outage, a killed upload, a crash mid-promotion,
racing promotions."""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from shears.config import build_config
from shears.errors import StoreError
from shears.release.audit import audit_store
from shears.release.champion import read_champion, set_champion
from shears.run.pipeline import run_pipeline
from shears.store import PreconditionFailed, open_store
from shears.store import layout as L
from shears.store.s3 import S3Store

from tests.s3.util import BUCKET, VERSIONED, Flow, Transcript, cli_env, copy_prefix, fast_raw, run_cli
from tests.seaweed import SeaweedServer

ROOT = Path(__file__).resolve().parents[2]


def _child(server: SeaweedServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.s3.child", *args], env=cli_env(server), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(proc: subprocess.Popen[str], wanted: str, timeout: float = 120) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if line.strip() == wanted:
            return
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"child never printed {wanted}: {proc.communicate(timeout=10)}")


@pytest.mark.parametrize(("override", "code"), [
    ({"AWS_SECRET_ACCESS_KEY": "wrong-secret-0123456789"}, "SignatureDoesNotMatch"),
    ({"AWS_ACCESS_KEY_ID": "AKNOSUCHKEY000000"}, "InvalidAccessKeyId"),
])
def test_wrong_credentials_fail_clearly_without_partial_run(
    seaweed: SeaweedServer, transcript: Transcript, override: dict[str, str], code: str
) -> None:
    uri = f"s3://{BUCKET}/badcreds"
    t0 = time.perf_counter()
    proc = run_cli(seaweed, transcript, "run", "--store", uri, "--run-id", "bad-creds", env=override)
    assert proc.returncode == 1, proc.stderr
    expected = f"error: S3 access denied for bucket {BUCKET} at {seaweed.endpoint}: {code}"
    assert expected in proc.stderr.splitlines(), proc.stderr
    assert time.perf_counter() - t0 < 60  # failed up front, before any training
    assert open_store(uri).list("") == []  # no partial run, no rejected record
    audit = run_cli(seaweed, transcript, "audit", uri, env=override)
    assert audit.returncode == 1 and expected in audit.stderr.splitlines()
    for value in override.values():
        assert value not in proc.stdout + proc.stderr + audit.stdout + audit.stderr


def test_server_stopped_before_publish_then_rerun_completes(
    flow: Flow, outage: SeaweedServer, transcript: Transcript
) -> None:
    uri = f"s3://{BUCKET}/outage"
    copy_prefix(outage.client(), "flow", "outage")
    store = S3Store(BUCKET, "outage")  # the production client (AWS env): bounded standard retries, timeouts
    before = store.get(L.CHAMPION)
    sends: list[str] = []
    store.client.meta.events.register("before-send.s3", lambda **kw: sends.append(kw["request"].url))

    def on_step(name: str, state: str) -> None:
        if name == "publish" and state == "start":
            outage.stop()
            sends.clear()

    cfg = build_config(fast_raw(6))
    t0 = time.perf_counter()
    with pytest.raises(StoreError) as failure:
        run_pipeline(store, cfg, "run-outage", on_step=on_step)
    message = str(failure.value)
    assert re.fullmatch(rf"S3 endpoint {re.escape(outage.endpoint)} unreachable after 4 attempts for bucket "
                        rf"{BUCKET} \((head|put)\): EndpointConnectionError", message), message
    assert len(sends) == 4 and len(set(sends)) == 1  # one request, retried, then given up
    assert time.perf_counter() - t0 < 120
    outage.restart()
    assert store.get(L.CHAMPION) == before  # champion untouched
    assert not store.exists(L.RunLayout("run-outage").run(L.MANIFEST))
    outcome = run_pipeline(store, cfg, "run-outage")  # the same run id again
    assert outcome.passed, outcome.error
    champion = read_champion(store)
    assert champion is not None and champion.run_id == "run-outage" and champion.pointer.previous == flow.b
    report = audit_store(store)
    assert report.problems == [] and report.warnings == []
    assert run_cli(outage, transcript, "audit", uri).returncode == 0


def test_killed_mid_upload_leaves_an_incomplete_run_not_a_corrupt_champion(
    flow: Flow, seaweed: SeaweedServer, transcript: Transcript
) -> None:
    uri = f"s3://{BUCKET}/killed"
    copy_prefix(seaweed.client(), "flow", "killed")
    store = open_store(uri)
    before = store.get(L.CHAMPION)
    lay = L.RunLayout("run-killed")
    child = _child(seaweed, "publish", uri, flow.b, lay.run_id, "--pause-before-last", "--stale")
    _wait_for_line(child, "PAUSED")
    os.kill(child.pid, signal.SIGKILL)  # mid-upload: all but the last file and the manifest are stored
    child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    uploaded = store.list(lay.run_prefix + "/")
    assert uploaded and lay.run(L.MANIFEST) not in uploaded
    assert store.get(L.CHAMPION) == before

    report = audit_store(store)
    assert report.problems == []
    assert report.warnings == [f"INCOMPLETE runs/{lay.run_id}/: {len(uploaded)} object(s) but no manifest.json "
                               "(interrupted upload; not published, cannot be champion)"]
    audit = run_cli(seaweed, transcript, "audit", uri)
    assert audit.returncode == 0, audit.stderr
    assert f"warning: INCOMPLETE runs/{lay.run_id}/" in audit.stderr and "problem:" not in audit.stderr
    assert run_cli(seaweed, transcript, "audit", uri, "--strict").returncode == 1
    refused = run_cli(seaweed, transcript, "promote", uri, lay.run_id)
    assert refused.returncode == 1 and "incomplete" in refused.stderr

    rerun = _child(seaweed, "publish", uri, flow.b, lay.run_id)  # same run id, complete this time
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0 and "PUBLISHED" in out, err
    assert not [k for k in store.list(lay.run_prefix + "/") if "stale-attempt" in k]  # debris removed
    after = audit_store(store)
    assert after.problems == [] and after.warnings == []
    assert store.get(L.CHAMPION) == before


def test_crash_between_history_claim_and_pointer_is_completed_by_next_promotion(
    flow: Flow, seaweed: SeaweedServer, transcript: Transcript
) -> None:
    uri = f"s3://{BUCKET}/crash"
    copy_prefix(seaweed.client(), "flow", "crash")
    store = open_store(uri)
    before = store.get(L.CHAMPION)
    child = _child(seaweed, "promote-crash", uri, flow.a)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL and "CLAIMED" in out and "NOT KILLED" not in out
    assert store.get(L.CHAMPION) == before and store.exists(L.champion_history(3))
    report = audit_store(store)
    assert report.problems == []
    assert any("interrupted promotion of run-a" in w for w in report.warnings), report.warnings

    proc = run_cli(seaweed, transcript, "promote", uri, flow.b)  # completes seq 3, then adds seq 4
    assert proc.returncode == 0, proc.stderr
    history = [json.loads(store.get(k)) for k in store.list(L.CHAMPIONS_DIR + "/")]
    assert [(e["seq"], e["run_id"], e["previous"]) for e in history] == [
        (1, flow.a, None), (2, flow.b, flow.a), (3, flow.a, flow.b), (4, flow.b, flow.a)]
    after = audit_store(store)
    assert after.problems == [] and after.warnings == []


def test_racing_promotions_exactly_one_wins(flow: Flow, seaweed: SeaweedServer) -> None:
    uri = f"s3://{VERSIONED}/race"
    copy_prefix(seaweed.client(), "flow", "race", dst_bucket=VERSIONED, under="runs/")
    rounds, racers = 6, 4
    winners: list[str] = []
    for r in range(rounds):
        current = read_champion(open_store(uri))
        expected = current.etag if current else None
        target = flow.b if current is None or current.run_id == flow.a else flow.a
        barrier = threading.Barrier(racers)
        won: list[str] = []
        lost: list[str] = []
        other: list[BaseException] = []

        def race(i: int, expected: str | None = expected, target: str = target, barrier: threading.Barrier = barrier,
                 won: list[str] = won, lost: list[str] = lost, other: list[BaseException] = other,
                 r: int = r) -> None:
            store = open_store(uri)  # each racer with its own client
            barrier.wait(timeout=30)
            try:
                set_champion(store, target, action="promote", by=f"r{r}-t{i}", expected_etag=expected)
                won.append(f"r{r}-t{i}")
            except PreconditionFailed as exc:
                lost.append(str(exc))
            except BaseException as exc:  # reported below
                other.append(exc)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert other == [] and len(won) == 1 and len(lost) == racers - 1, (won, lost, other)
        winners += won
    store = open_store(uri)
    history = [json.loads(store.get(k)) for k in store.list(L.CHAMPIONS_DIR + "/")]
    assert [e["seq"] for e in history] == list(range(1, rounds + 1))  # nothing lost, nothing duplicated
    assert [e["by"] for e in history] == winners
    assert all(e["previous"] == p["run_id"] for p, e in itertools.pairwise(history))
    champion = read_champion(store)
    assert champion is not None and champion.pointer.to_json() == history[-1]
    assert len(store.versions(L.CHAMPION)) == rounds  # versioned bucket: one pointer write per round
    report = audit_store(store)
    assert report.problems == [] and report.champion_versions == rounds
