from __future__ import annotations

from pathlib import Path

import pytest
from shears.config import PipelineConfig
from shears.errors import ConfigError, DataError, StoreError
from shears.records import FailureRecord
from shears.run import lifecycle
from shears.run.claim import this_process
from shears.store import LocalStore
from shears.store import layout as L


def test_record_failure_replaces_partial_records_but_keeps_a_recorded_rejection(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    lay = L.RunLayout("r9")
    store.put(lay.rejected("stale.json"), b"{}")
    store.put(lay.staging(L.VALIDATION), b'{"staged": true}')
    key = lifecycle.record_failure(store, lay, "validate", DataError("data failed validation: x"))
    rec = FailureRecord.from_bytes(store.get(key))
    assert (rec.stage, rec.reason, rec.exit_code) == ("validate", "data failed validation: x", 3)
    assert store.list("rejected/r9/") == ["rejected/r9/failure.json", "rejected/r9/validation.json"]
    assert store.list("staging/r9/") == []  # a data error leaves nothing to resume
    store.put(lay.rejected(L.MANIFEST), b"{}")
    before = store.list("rejected/r9/")
    assert lifecycle.record_failure(store, lay, "gate", "gate(s) failed") == lay.rejected(L.MANIFEST)
    assert store.list("rejected/r9/") == before


def test_record_failure_keeps_staging_after_an_io_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    lay = L.RunLayout("r8")
    store.put(lay.staging(L.BASELINE_MODEL), b"model")
    lifecycle.record_failure(store, lay, "prune", StoreError("S3 endpoint unreachable"))
    assert store.exists(lay.staging(L.BASELINE_MODEL))  # a failed I/O step can be resumed
    assert FailureRecord.from_bytes(store.get(lay.rejected(L.FAILURE))).exit_code == 1


def test_begin_refuses_a_published_run_id_and_clears_an_earlier_attempt(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    lay = L.RunLayout("r7")
    store.put(lay.staging("models/model_float16.tflite"), b"old attempt")
    store.put(lay.rejected(L.FAILURE), b"{}")
    claim = lifecycle.begin(store, lay, PipelineConfig(), this_process())
    assert store.list("staging/r7/") == ["staging/r7/claim.json"] and store.list("rejected/r7/") == []
    claim.release()
    store.put(lay.run(L.MANIFEST), b"{}")
    with pytest.raises(ConfigError, match="already published"):
        lifecycle.begin(store, lay, PipelineConfig(), this_process())
    assert not store.exists(L.claim_key("r7"))  # refused before claiming


def test_which_data_source_wins() -> None:
    assert lifecycle.choose_data("/p.npz", "/c.npz", "file:///a.npz", lambda: True) == ("/p.npz", "param")
    assert lifecycle.choose_data(None, "/c.npz", "file:///a.npz", lambda: True) == ("/c.npz", "config")
    assert lifecycle.choose_data(None, None, "file:///a.npz", lambda: True) == ("file:///a.npz", "asset")
    assert lifecycle.choose_data(None, None, "file:///a.npz", lambda: False) == (None, "embedded")
    assert lifecycle.choose_data(None, None) == (None, "embedded")
