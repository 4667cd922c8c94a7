from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks import layout as L
from tasks.errors import ConfigError, StoreError
from tasks.manifest import build_manifest, dumps, schema_problems
from tasks.publish import read_champion, set_champion
from tasks.storage import LocalStore, PreconditionFailed, open_store, parse_s3_uri


def test_local_store_roundtrip_and_listing(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    s.put("a/b/c.bin", b"123")
    s.put("a/d.json", b"{}")
    assert s.get("a/b/c.bin") == b"123" and s.exists("a/d.json") and not s.exists("a/x")
    assert s.list("a/") == ["a/b/c.bin", "a/d.json"]
    s.delete_prefix("a/b")
    assert s.list("a/") == ["a/d.json"]
    with pytest.raises(StoreError):
        s.get("nope")
    with pytest.raises(StoreError):
        s.put("../escape", b"")


def test_conditional_writes(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    etag = s.put_if("k.json", b"1", if_match=None, if_none_match=True)
    with pytest.raises(PreconditionFailed):
        s.put_if("k.json", b"2", if_match=None, if_none_match=True)
    with pytest.raises(PreconditionFailed):
        s.put_if("k.json", b"2", if_match="stale", if_none_match=False)
    s.put_if("k.json", b"2", if_match=etag, if_none_match=False)
    assert s.get("k.json") == b"2" and len(s.versions("k.json")) == 2


def test_run_layout_and_ids() -> None:
    lay = L.RunLayout("r1")
    assert lay.run(L.MANIFEST) == "runs/r1/manifest.json" and lay.staging(L.SPLITS) == "staging/r1/data/splits.npz"
    assert L.sanitize_run_id("manual__2026-11-21T05:00:00+00:00") == "manual__2026-11-21T05_00_00_00_00"
    with pytest.raises(ValueError):
        L.RunLayout("../x")


def test_store_uris() -> None:
    assert parse_s3_uri("s3://b/p/q/") == ("b", "p/q")
    with pytest.raises(ConfigError):
        open_store("gs://bucket")


def _publish_fake_run(store: LocalStore, run_id: str, status: str = "passed") -> None:
    m = build_manifest(run_id=run_id, status=status, files={"a.txt": b"a"}, config={}, dataset={}, timings={},
                       gates_passed=status == "passed", deployable={"accuracy": 0.9, "gzip_bytes": 10},
                       champion_compared=None, commit=None)
    store.put(f"runs/{run_id}/a.txt", b"a")
    store.put(f"runs/{run_id}/manifest.json", dumps(m))


def test_manifest_schema() -> None:
    m = build_manifest(run_id="r", status="passed", files={"x": b"abc"}, config={}, dataset={}, timings={},
                       gates_passed=True, deployable=None, champion_compared=None, commit=None)
    assert schema_problems(m) == [] and m["files"]["x"]["bytes"] == 3
    assert "missing key 'files'" in schema_problems({k: v for k, v in m.items() if k != "files"})
    assert json.loads(dumps(m)) == m


def test_champion_promotion_is_conditional_and_recorded(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    _publish_fake_run(store, "r1")
    _publish_fake_run(store, "r2")
    _publish_fake_run(store, "bad", status="rejected")
    set_champion(store, "r1", action="promote", by="t", expected_etag=None)
    first = read_champion(store)
    assert first is not None and first.run_id == "r1"
    with pytest.raises(PreconditionFailed):  # a second "first champion" loses
        set_champion(store, "r2", action="promote", by="t", expected_etag=None)
    with pytest.raises(StoreError, match="did not pass"):
        set_champion(store, "bad", action="promote", by="t", expected_etag=first.etag)
    with pytest.raises(StoreError, match="incomplete"):
        set_champion(store, "ghost", action="promote", by="t", expected_etag=first.etag)
    set_champion(store, "r2", action="promote", by="t", expected_etag=first.etag)
    pointer = read_champion(store)
    assert pointer is not None and pointer.run_id == "r2" and pointer.pointer["previous"] == "r1"
    assert [json.loads(store.get(k))["run_id"] for k in store.list("champions/")] == ["r1", "r2"]


def test_record_failure_replaces_partial_records_but_keeps_a_recorded_rejection(tmp_path: Path) -> None:
    from tasks.steps import record_failure

    store = LocalStore(tmp_path)
    lay = L.RunLayout("r9")
    store.put(lay.rejected("stale.json"), b"{}")
    key = record_failure(store, lay, "validate", "data failed validation: x", 3, {L.VALIDATION: b"{}"})
    assert json.loads(store.get(key))["reason"] == "data failed validation: x"
    assert store.list("rejected/r9/") == ["rejected/r9/failure.json", "rejected/r9/validation.json"]
    store.put(lay.rejected(L.MANIFEST), b"{}")
    store.put(lay.rejected(L.GATES), b'{"passed": false}')
    before = store.list("rejected/r9/")
    assert record_failure(store, lay, "gate", "gate(s) failed", 4) == lay.rejected(L.MANIFEST)
    assert store.list("rejected/r9/") == before


def test_local_store_files_honour_the_umask(tmp_path: Path) -> None:
    """Workers may run as another user than the one who pushed the data: files must not be 0600."""
    import stat

    from tasks import storage

    LocalStore(tmp_path).put("d/x.bin", b"1")
    mode = stat.S_IMODE((tmp_path / "d" / "x.bin").stat().st_mode)
    assert mode == 0o666 & ~storage._UMASK


def test_retry_that_finds_its_own_interrupted_claim_succeeds(tmp_path: Path) -> None:
    """A crash between the history claim and the pointer write, then a retry of the same promotion."""
    store = LocalStore(tmp_path)
    _publish_fake_run(store, "r1")
    _publish_fake_run(store, "r2")
    set_champion(store, "r1", action="promote", by="t", expected_etag=None)
    first = read_champion(store)
    assert first is not None
    claim = dict(first.pointer, run_id="r2", seq=2, previous="r1")
    store.put(L.champion_history(2), dumps(claim))  # the first attempt died right after this
    pointer = set_champion(store, "r2", action="promote", by="t", expected_etag=first.etag)
    assert pointer["run_id"] == "r2"
    now = read_champion(store)
    assert now is not None and now.run_id == "r2" and now.seq == 2
    assert len(store.list("champions/")) == 2


def test_local_store_listing_hides_its_bookkeeping(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_if("champion.json", b"1", if_match=None, if_none_match=True)
    store.put_if("champion.json", b"2", if_match=storage_sha(b"1"), if_none_match=False)
    assert store.list("") == ["champion.json"]


def storage_sha(data: bytes) -> str:
    from tasks.storage import sha256_hex

    return sha256_hex(data)
