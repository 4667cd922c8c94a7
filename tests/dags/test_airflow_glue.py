"""The Airflow glue in-process (no scheduler, no TF): run ids, config/data resolution, refusals,
idempotent publish, failure records and the plugin's links."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.dags.airflow_env import write_config, write_digits_npz

AIRFLOW_RUN_ID = "manual__2026-11-21T05:24:21.903695+00:00"
RID = "manual__2026-11-21T05_24_21.903695_00_00"


def _context(params: dict[str, Any] | None = None, task_id: str = "validate",
             exception: object = None) -> dict[str, Any]:
    base = {"config": None, "data_uri": None, "model_uri": None}
    return {"params": {**base, **(params or {})}, "run_id": AIRFLOW_RUN_ID,
            "ti": SimpleNamespace(task_id=task_id), "exception": exception}


def test_run_layout_is_the_sanitized_airflow_run_id() -> None:
    from shears_airflow import run_layout

    assert run_layout(AIRFLOW_RUN_ID).run_id == RID
    assert run_layout("asset_triggered__2026-11-21T05:27:29.818606+00:00_R6q9Tvsl").run_prefix == (
        "runs/asset_triggered__2026-11-21T05_27_29.818606_00_00_R6q9Tvsl"
    )


def test_store_and_data_asset_follow_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from shears_airflow import data_asset, store_uri

    for var in ("SHEARS_STORE", "SHEARS_DATA_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert store_uri() == str(tmp_path / "shears-store")
    assert data_asset().uri == (tmp_path / "shears-incoming" / "data.npz").as_uri()  # shears.store.datauri's default
    monkeypatch.setenv("SHEARS_STORE", "s3://bucket/prod")
    monkeypatch.setenv("SHEARS_DATA_URI", "s3://bucket/incoming/data.npz")
    assert (store_uri(), data_asset().uri) == ("s3://bucket/prod", "s3://bucket/incoming/data.npz")


def test_start_run_resolves_embedded_defaults_and_resets_only_its_own_outputs(shears_env: Path) -> None:
    from shears_airflow import open_run_store, start_run

    store = open_run_store()
    for key in (f"staging/{RID}/models/old.h5", f"rejected/{RID}/failure.json", "staging/other-run/x.json",
                "rejected/other-run/failure.json"):
        store.put(key, b"{}")
    run, info = start_run(_context())  # type: ignore[arg-type]
    assert run.layout.run_id == RID and run.cfg.data.uri is None
    assert info["data_source"] == "embedded" and info["config"] is None
    assert store.list(f"staging/{RID}/") == [f"staging/{RID}/claim.json"] and store.list(f"rejected/{RID}/") == []
    assert store.exists("staging/other-run/x.json") and store.exists("rejected/other-run/failure.json")


def test_start_run_data_precedence(shears_env: Path) -> None:
    from shears_airflow import start_run

    cfg = write_config(shears_env / "c.yaml")
    cfg_with_data = write_config(shears_env / "d.yaml", data={"uri": "/srv/data/from-config.npz"})
    asset = write_digits_npz(shears_env / "incoming" / "data.npz")  # the asset now exists

    run, info = start_run(_context({"config": str(cfg)}))  # type: ignore[arg-type]
    assert (run.cfg.data.uri, info["data_source"]) == (str(asset), "asset")
    assert run.cfg.model.epochs == 3  # the YAML was applied
    run, info = start_run(_context({"config": str(cfg_with_data)}))  # type: ignore[arg-type]
    assert (run.cfg.data.uri, info["data_source"]) == ("/srv/data/from-config.npz", "config")
    run, info = start_run(_context({"config": str(cfg_with_data), "data_uri": "file:///srv/p.npz",  # type: ignore[arg-type]
                                    "model_uri": "/srv/m.keras"}))
    assert (run.cfg.data.uri, info["data_source"], run.cfg.model.pretrained) == ("/srv/p.npz", "param", "/srv/m.keras")


def test_config_env_is_the_default_config(shears_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shears_airflow import start_run

    monkeypatch.setenv("SHEARS_CONFIG", str(write_config(shears_env / "env.yaml", model={"epochs": 7})))
    run, info = start_run(_context())  # type: ignore[arg-type]
    assert run.cfg.model.epochs == 7 and info["config"].endswith("env.yaml")


def test_a_published_run_is_never_redone(shears_env: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from shears_airflow import fail_fast_on_shears_errors, open_run_store, start_run

    store = open_run_store()
    store.put(f"runs/{RID}/manifest.json", b'{"status": "passed"}')
    with pytest.raises(AirflowFailException, match="already published"), fail_fast_on_shears_errors():
        start_run(_context())  # type: ignore[arg-type]
    assert store.exists(f"runs/{RID}/manifest.json")


def test_fail_fast_maps_only_non_transient_errors() -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from shears.errors import ConfigError, DataError, GateFailure, StoreError
    from shears_airflow import fail_fast_on_shears_errors

    for exc in (ConfigError("c"), DataError("d"), GateFailure("gate(s) failed: min_accuracy")):
        with pytest.raises(AirflowFailException) as info, fail_fast_on_shears_errors():
            raise exc
        assert info.value.__cause__ is exc and type(exc).__name__ in str(info.value)
    with pytest.raises(StoreError), fail_fast_on_shears_errors():
        raise StoreError("timeout")  # left alone: the retry policy retries it


def test_publish_once_is_a_no_op_after_a_completed_publish(shears_env: Path) -> None:
    from shears.config import PipelineConfig
    from shears.errors import StoreError
    from shears.run.lifecycle import publish_once
    from shears.run.pipeline import make_context
    from shears_airflow import open_run_store, run_layout

    store, layout = open_run_store(), run_layout(AIRFLOW_RUN_ID)
    ctx = make_context(store, layout.run_id, PipelineConfig())
    with pytest.raises(StoreError, match="nothing staged and nothing published"):
        publish_once(ctx)
    store.put(f"runs/{RID}/manifest.json", json.dumps({"status": "passed"}).encode())
    out = publish_once(ctx)  # staging already gone: an earlier attempt finished
    assert out["already_published"] is True and out["manifest"] == f"runs/{RID}/manifest.json"


def test_failure_callback_records_task_reason_and_exit_code(shears_env: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from shears.errors import DataError
    from shears_airflow import on_task_failure, open_run_store

    store = open_run_store()
    store.put(f"staging/{RID}/config.json", b'{"model": {}}')
    store.put(f"staging/{RID}/validation.json", b'{"success": false}')
    cause = DataError("label column 'label' not found")
    try:
        raise AirflowFailException(f"DataError: {cause}") from cause
    except AirflowFailException as exc:
        on_task_failure(_context(task_id="validate", exception=exc))  # type: ignore[arg-type]
    record = json.loads(store.get(f"rejected/{RID}/failure.json"))
    assert record["stage"] == "validate" and record["exit_code"] == 3
    assert record["reason"] == "label column 'label' not found"  # the same text `shears run` records
    assert store.get(f"rejected/{RID}/validation.json") == b'{"success": false}'
    assert store.exists(f"rejected/{RID}/config.json")
    assert store.list(f"staging/{RID}/") == []  # bad data: nothing to resume


def test_failure_callback_keeps_staging_after_io_failures_and_recorded_rejections(shears_env: Path) -> None:
    from shears.errors import StoreError
    from shears_airflow import on_task_failure, open_run_store

    store = open_run_store()
    store.put(f"staging/{RID}/models/baseline.h5", b"model")
    on_task_failure(_context(task_id="prune", exception=StoreError("s3 timed out")))  # type: ignore[arg-type]
    assert json.loads(store.get(f"rejected/{RID}/failure.json"))["stage"] == "prune"
    assert store.exists(f"staging/{RID}/models/baseline.h5")  # clear the task to resume

    store.delete_prefix(f"rejected/{RID}")
    store.put(f"rejected/{RID}/manifest.json", b'{"status": "rejected"}')  # what a failed gate records
    on_task_failure(_context(task_id="gate", exception=ValueError("gate(s) failed")))  # type: ignore[arg-type]
    assert store.list(f"rejected/{RID}/") == [f"rejected/{RID}/manifest.json"]


def test_failure_callback_handles_plain_errors_and_skips_published_runs(shears_env: Path) -> None:
    from shears_airflow import on_task_failure, open_run_store

    store = open_run_store()
    on_task_failure(_context(task_id="prune", exception=MemoryError("oom")))  # type: ignore[arg-type]
    record = json.loads(store.get(f"rejected/{RID}/failure.json"))
    assert (record["stage"], record["exit_code"], record["reason"]) == ("prune", 1, "MemoryError: oom")
    on_task_failure(_context(task_id="prune", exception=None))  # type: ignore[arg-type]
    assert "without an exception" in json.loads(store.get(f"rejected/{RID}/failure.json"))["reason"]

    store.delete_prefix(f"rejected/{RID}")
    store.put(f"runs/{RID}/manifest.json", b"{}")
    on_task_failure(_context(task_id="validate", exception=ValueError("refused re-run")))  # type: ignore[arg-type]
    assert not store.exists(f"rejected/{RID}/failure.json")


def test_failure_callback_never_raises(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An unusable store: the callback logs why it could not record the failure and returns."""
    from shears.errors import ConfigError
    from shears_airflow import on_task_failure

    monkeypatch.setenv("SHEARS_STORE", "ftp://nowhere")  # open_run_store raises ConfigError
    with caplog.at_level(logging.ERROR, logger="shears.airflow"):
        on_task_failure(_context(task_id="prune", exception=ValueError("x")))  # type: ignore[arg-type]
    [rec] = [r for r in caplog.records if r.name == "shears.airflow"]
    assert rec.levelno == logging.ERROR and rec.getMessage() == "shears: could not record why the task failed"
    assert rec.exc_info is not None and isinstance(rec.exc_info[1], ConfigError)
    assert "ftp://nowhere" in str(rec.exc_info[1])


def test_failure_callback_that_cannot_write_keeps_staging(shears_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A write that fails mid-way: logged, no failure.json, and (even after bad data) staging kept."""
    import shears.run.lifecycle
    from shears.errors import DataError, StoreError
    from shears_airflow import on_task_failure, open_run_store

    def broken(*args: Any, **kwargs: Any) -> str:
        raise StoreError("disk full")

    monkeypatch.setattr(shears.run.lifecycle, "record_failure", broken)
    store = open_run_store()
    store.put(f"staging/{RID}/validation.json", b'{"success": false}')
    with caplog.at_level(logging.ERROR, logger="shears.airflow"):
        on_task_failure(_context(task_id="validate", exception=DataError("bad")))  # type: ignore[arg-type]
    [rec] = [r for r in caplog.records if r.name == "shears.airflow"]
    assert rec.exc_info is not None and isinstance(rec.exc_info[1], StoreError)
    assert store.list(f"rejected/{RID}/") == []
    assert store.exists(f"staging/{RID}/validation.json")  # nothing dropped when nothing was recorded
