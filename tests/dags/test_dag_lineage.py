"""`airflow dags test shears_pipeline` with the OpenLineage provider's file transport and a signing connection.

The run trains on the data asset (a file at $SHEARS_DATA_URI), so the lineage's input is the asset's file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shears.records import ManifestRecord, ValidationRecord
from shears.release.audit import audit_store
from shears.release.signing import Trust, TrustedKey, write_key_pair
from shears.run.steps import STEP_NAMES
from shears.store import LocalStore, sha256_hex
from shears.store.layout import sanitize_run_id

from tests.dags.airflow_env import AirflowHome, tail, write_config, write_digits_npz


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def lineage_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[AirflowHome, str, Path, Path]:
    root = tmp_path_factory.mktemp("lineage")
    write_key_pair(root / "keys" / "k.key", root / "keys" / "k.pub")
    events = root / "openlineage.jsonl"
    home = AirflowHome(
        root,
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        AIRFLOW__OPENLINEAGE__NAMESPACE="shears-dag-test",
        AIRFLOW_CONN_SHEARS_SIGNING=json.dumps({"conn_type": "generic",
                                                "password": (root / "keys" / "k.key").read_text()}),
    )
    home.migrate()
    write_digits_npz(home.data)
    proc, seconds = home.dags_test("shears_pipeline", {"config": str(write_config(root / "fast.yaml"))})
    assert proc.returncode == 0, tail(proc)
    (root / "dags-test.log").write_text(proc.stdout + proc.stderr)
    print(f"dags test with lineage and signing: {seconds:.1f} s")
    run_id, _, state = home.last_run("shears_pipeline")
    assert state == "success"
    return home, run_id, events, root


def test_every_task_reports_the_data_asset_as_input(lineage_run: tuple[AirflowHome, str, Path, Path]) -> None:
    home, run_id, path, _ = lineage_run
    events = _events(path)
    rid = sanitize_run_id(run_id)
    validation = ValidationRecord.from_bytes((home.store / "runs" / rid / "validation.json").read_bytes())
    task_runs: dict[str, set[str]] = {}
    for e in events:
        task_runs.setdefault(e["job"]["name"], set()).add(e["run"]["runId"])
    with_data = {e["job"]["name"]: e for e in events if e["eventType"] == "RUNNING"}
    ran = {t for t, states in home.mapped_states("shears_pipeline", run_id).items() if "success" in states}
    assert ran and set(with_data) == {f"shears_pipeline.{s}" for s in STEP_NAMES if s in ran}
    assert ran >= {"validate", "baseline", "trials_1", "select", "evaluate", "gate", "publish"}
    for job, e in with_data.items():
        assert e["job"]["namespace"] == "shears-dag-test"
        assert task_runs[job] == {e["run"]["runId"]}  # attributed to the task's own run (START/COMPLETE)
        data = e["inputs"][0]
        assert (data["namespace"], data["name"]) == ("file", str(home.data))
        assert data["facets"]["shears_data"]["sha256"] == validation.dataset_sha256
        assert data["facets"]["shears_data"]["rows"] == 1797
    assert {e["eventType"] for e in events if e["job"]["name"] == "shears_pipeline.publish"} >= {"RUNNING", "COMPLETE"}


def test_publish_reports_the_run_folder_and_the_deployable_with_facets(
        lineage_run: tuple[AirflowHome, str, Path, Path]) -> None:
    home, run_id, path, _ = lineage_run
    rid = sanitize_run_id(run_id)
    publish = next(e for e in _events(path) if e["eventType"] == "RUNNING" and e["job"]["name"].endswith(".publish"))
    outputs = {o["name"]: o["facets"] for o in publish["outputs"]}
    folder = home.store / "runs" / rid
    manifest_raw = (folder / "manifest.json").read_bytes()
    manifest = ManifestRecord.from_bytes(manifest_raw)
    assert manifest.deployable is not None
    run_facets = outputs[str(folder)]
    assert run_facets["shears_run"]["manifestSha256"] == sha256_hex(manifest_raw)
    assert run_facets["shears_run"]["status"] == "passed"
    model = outputs[str(folder / manifest.deployable.file)]
    assert model["shears_model"]["gzipBytes"] == manifest.deployable.gzip_bytes
    assert model["shears_model"]["accuracy"] == manifest.deployable.accuracy
    assert model["version"]["datasetVersion"] == manifest.files[manifest.deployable.file].sha256
    verdicts = {g["name"]: (g["threshold"], g["passed"]) for g in model["shears_gates"]["gates"]}
    assert verdicts["min_accuracy"] == (0.8, True) and model["shears_gates"]["passed"] is True


def test_the_run_is_signed_with_the_connections_key_which_is_never_logged(
        lineage_run: tuple[AirflowHome, str, Path, Path]) -> None:
    home, run_id, _, root = lineage_run
    trusted = TrustedKey.from_file(root / "keys" / "k.pub")
    report = audit_store(LocalStore(home.store), trust=Trust(keys=(trusted,), required=True))
    assert report.problems == []
    assert [(r.run_id, r.signature, r.signed_by) for r in report.runs] == [
        (sanitize_run_id(run_id), "verified", trusted.key_id)]
    log = (root / "dags-test.log").read_text()
    secret = [ln for ln in (root / "keys" / "k.key").read_text().splitlines() if "-----" not in ln]
    assert secret and not [s for s in secret if s in log]
