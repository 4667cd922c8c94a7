"""One writer per run id on S3: the claim is an If-None-Match create on the bucket."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import numpy as np
import yaml
from shears.records import ManifestRecord, ValidationRecord
from shears.store import open_store

from tests.s3.util import BUCKET, DATA_KEY, Transcript, cli_env, digits_npz, fast_raw, run_cli, shears_cmd
from tests.seaweed import SeaweedServer


def test_two_runs_with_the_same_run_id_on_s3_one_writer(seaweed: SeaweedServer, transcript: Transcript,
                                                        tmp_path: Path) -> None:
    uri = f"s3://{BUCKET}/claims-race"
    client = seaweed.client()
    client.put_object(Bucket=BUCKET, Key=DATA_KEY, Body=digits_npz())
    smaller = tmp_path / "b.npz"
    with np.load(io.BytesIO(digits_npz())) as z:
        buf = io.BytesIO()
        np.savez(buf, x=z["x"][:1500], y=z["y"][:1500])
    smaller.write_bytes(buf.getvalue())
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(fast_raw(3)))
    first = subprocess.Popen([*shears_cmd(), "run", "--config", str(cfg), "--data", f"s3://{BUCKET}/{DATA_KEY}",
                              "--store", uri, "--run-id", "same"], env=cli_env(seaweed), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while "Contents" not in client.list_objects_v2(Bucket=BUCKET, Prefix="claims-race/claims/same.json"):
            assert time.monotonic() < deadline and first.poll() is None, "the first run never claimed its id"
            time.sleep(0.2)
        second = run_cli(seaweed, transcript, "run", "--config", str(cfg), "--data", str(smaller), "--store", uri,
                         "--run-id", "same")
        out, err = first.communicate(timeout=600)
    finally:
        first.kill()
    transcript.add(out, err)
    errors = [ln for ln in second.stderr.splitlines() if ln.startswith("error:")]
    assert second.returncode == 2 and len(errors) == 1, second.stderr[-2000:]
    assert f"run id same is claimed by shears (pid {first.pid} on" in errors[0]
    assert first.returncode == 0, err[-3000:]
    store = open_store(uri)
    manifest = ManifestRecord.from_bytes(store.get("runs/same/manifest.json"))
    validation = ValidationRecord.from_bytes(store.get("runs/same/validation.json"))
    assert manifest.config["data"]["uri"] == f"s3://{BUCKET}/{DATA_KEY}" and validation.rows == 1797
    assert store.list("claims/") == []  # released
    audit = run_cli(seaweed, transcript, "audit", uri)
    assert audit.returncode == 0, audit.stderr


def test_a_claim_is_released_with_a_conditional_delete_on_s3(seaweed: SeaweedServer) -> None:
    """DeleteObject If-Match: a release holding an old etag never removes what a new holder wrote."""
    import pytest
    from shears.run.claim import acquire, drop_if_ours, read_claim, this_process
    from shears.store import PreconditionFailed
    from shears.store import layout as L

    store = open_store(f"s3://{BUCKET}/claims-delete")
    key = L.claim_key("r")
    first = store.put_if(key, b"first", if_match=None, if_none_match=True)
    second = store.put_if(key, b"second", if_match=first, if_none_match=False)
    with pytest.raises(PreconditionFailed, match="changed since it was read"):
        store.delete_if(key, if_match=first)
    assert store.get(key) == b"second"
    store.delete_if(key, if_match=second)
    assert store.head(key) is None
    with pytest.raises(PreconditionFailed):  # gone: nothing to delete is not a success
        store.delete_if(key, if_match=second)

    run = "shears_pipeline/manual__s3"
    claim = acquire(store, "r2", this_process("airflow", run), stale_after_s=60, heartbeat_s=1)
    sibling = this_process("airflow", run).model_copy(update={"host": "worker-2"})
    other = this_process("airflow", "shears_pipeline/manual__other")
    assert drop_if_ours(store, "r2", other) is False and read_claim(store, "r2") is not None
    claim.beat()
    assert drop_if_ours(store, "r2", sibling) is True and read_claim(store, "r2") is None
