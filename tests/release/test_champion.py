from __future__ import annotations

from pathlib import Path

import pytest
from shears.errors import ConfigError, RecordError, StoreError
from shears.records import DatasetRef, DeployableRef
from shears.release.champion import promote, read_champion, read_champion_history, rollback, set_champion
from shears.release.manifest import build_manifest
from shears.store import LocalStore, PreconditionFailed
from shears.store import layout as L


def publish_fake_run(store: LocalStore, run_id: str, status: str = "passed") -> None:
    m = build_manifest(run_id=run_id, status="passed" if status == "passed" else "rejected", files={"a.txt": b"a"},
                       config={}, dataset=DatasetRef(name="d", sha256=None, rows=1), timings={},
                       gates_passed=status == "passed",
                       deployable=DeployableRef(name="t", file="m", accuracy=0.9, gzip_bytes=10, raw_bytes=20),
                       champion_compared=None, commit=None)
    store.put(f"runs/{run_id}/a.txt", b"a")
    store.put(f"runs/{run_id}/manifest.json", m.to_bytes())


def test_champion_promotion_is_conditional_and_recorded(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    publish_fake_run(store, "r1")
    publish_fake_run(store, "r2")
    publish_fake_run(store, "bad", status="rejected")
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
    assert pointer is not None and pointer.run_id == "r2" and pointer.pointer.previous == "r1"
    assert [e.run_id for e in read_champion_history(store).entries] == ["r1", "r2"]
    assert rollback(store, by="t").run_id == "r1"


def test_retry_that_finds_its_own_interrupted_claim_succeeds(tmp_path: Path) -> None:
    """A crash between the history claim and the pointer write, then a retry of the same promotion."""
    store = LocalStore(tmp_path)
    publish_fake_run(store, "r1")
    publish_fake_run(store, "r2")
    set_champion(store, "r1", action="promote", by="t", expected_etag=None)
    first = read_champion(store)
    assert first is not None
    claim = first.pointer.model_copy(update={"run_id": "r2", "seq": 2, "previous": "r1"})
    store.put(L.champion_history(2), claim.to_bytes())  # the first attempt died right after this
    pointer = set_champion(store, "r2", action="promote", by="t", expected_etag=first.etag)
    assert pointer.run_id == "r2"
    now = read_champion(store)
    assert now is not None and now.run_id == "r2" and now.seq == 2
    assert len(store.list("champions/")) == 2


@pytest.mark.parametrize("body", [b"{not json", b'{"run_id": "../../etc", "seq": 1}', b"[]"])
def test_a_broken_champion_pointer_is_one_record_error(tmp_path: Path, body: bytes) -> None:
    store = LocalStore(tmp_path)
    store.put(L.CHAMPION, body)
    with pytest.raises(RecordError, match=r"champion\.json") as info:
        read_champion(store)
    assert info.value.exit_code == 1


def test_promote_refuses_a_bad_run_id_like_every_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid run id"):
        promote(LocalStore(tmp_path), "../x", by="t")
