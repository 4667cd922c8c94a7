"""Every record Shears writes has a typed model; records written by Shears 0.1 (no `schema` key) still load."""

from __future__ import annotations

from pathlib import Path

import pytest
from shears.config import PipelineConfig
from shears.errors import RecordError
from shears.records import RUN_RECORDS, ChampionRecord, GatesRecord, ManifestRecord, MetricsRecord
from shears.release.audit import audit_store
from shears.report import load_run_records, load_trend_entries
from shears.store import LocalStore

V0 = Path(__file__).parent / "fixtures" / "store_v0"


def test_every_record_of_a_store_written_by_shears_0_1_loads() -> None:
    seen = 0
    for path in sorted(V0.rglob("*.json")):
        name = path.name
        if name in RUN_RECORDS:
            RUN_RECORDS[name].from_bytes(path.read_bytes(), str(path))
        elif name == "config.json":
            PipelineConfig.model_validate_json(path.read_bytes())
        else:  # champion.json and champions/<seq>.json
            ChampionRecord.from_bytes(path.read_bytes(), str(path))
        seen += 1
    assert seen == 20


V0_2 = Path(__file__).parent / "fixtures" / "store_v0_2"


def test_every_record_of_a_store_written_by_shears_0_2_loads() -> None:
    from shears.records import ModelCardRecord

    seen = 0
    for path in sorted(V0_2.rglob("*.json")):
        name = path.name
        if name in RUN_RECORDS:
            RUN_RECORDS[name].from_bytes(path.read_bytes(), str(path))
        elif name == "config.json":
            PipelineConfig.model_validate_json(path.read_bytes())
        else:  # champion.json and champions/<seq>.json
            ChampionRecord.from_bytes(path.read_bytes(), str(path))
        seen += 1
    assert seen == 29
    card = ModelCardRecord.from_bytes((V0_2 / "runs" / "v02-pass" / "model_card.json").read_bytes())
    assert card.run_id == "v02-pass" and card.status == "passed"
    gates = GatesRecord.from_bytes((V0_2 / "runs" / "v02-pass" / "gates.json").read_bytes())
    assert gates.passed and gates.policy is None  # no policy floors were recorded before Shears 0.3


def test_old_records_read_through_the_report_and_trend_readers() -> None:
    store = LocalStore(V0)
    passed = load_run_records(store, "runs/v0-pass")
    assert passed.status == "passed" and passed.problems == ()
    assert passed.metrics is not None and passed.metrics.deployable_artifact.gzip_bytes == 52674
    rejected = load_run_records(store, "rejected/v0-rejected")
    assert rejected.status == "rejected" and rejected.gates is not None and not rejected.gates.passed
    trend = {e.run_id: e for e in load_trend_entries(store)}
    assert trend["v0-pass"].current_champion and trend["v0-baddata"].status == "failed"


def test_old_store_audits_only_the_files_left_out_of_the_fixture() -> None:
    report = audit_store(LocalStore(V0))
    # the fixture omits model files, events and report.html: exactly those are reported missing, nothing else
    assert report.problems
    assert all(p.endswith(("missing (listed in manifest)", "problem(s) above)")) for p in report.problems)
    missing = [p.split(": ")[0] for p in report.problems if p.endswith("missing (listed in manifest)")]
    assert all("/models/" in k or "/tensorboard/" in k or k.endswith("report.html") for k in missing)
    assert report.champion is not None and report.champion.run_id == "v0-pass"


def test_records_refuse_unknown_keys_and_other_schemas() -> None:
    good = (V0 / "runs" / "v0-pass" / "gates.json").read_bytes()
    rec = GatesRecord.from_bytes(good)
    assert rec.to_json()["schema"] == "shears.gates/v1"
    assert GatesRecord.from_bytes(rec.to_bytes()) == rec
    with pytest.raises(RecordError, match="unknown key"):
        GatesRecord.from_json({**rec.to_json(), "pased": True})
    with pytest.raises(RecordError, match="schema"):
        MetricsRecord.from_json({**rec.to_json(), "schema": "shears.gates/v1"})
    with pytest.raises(RecordError, match="not valid JSON"):
        ManifestRecord.from_bytes(b"{")


def test_record_errors_are_one_bounded_line_even_for_huge_input() -> None:
    with pytest.raises(RecordError) as info:
        GatesRecord.from_json({"passed": "x" * 10_000_000, "summary": 1, "gates": None})
    assert len(str(info.value)) <= 300 and "\n" not in str(info.value)


def test_deeply_nested_and_oversized_records_are_one_line() -> None:
    from shears.errors import RecordError
    from shears.records import MAX_RECORD_BYTES, GatesRecord

    with pytest.raises(RecordError, match=r"^gates\.json is nested too deeply \(more than 100 levels\)$"):
        GatesRecord.from_bytes(b'{"gates": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "gates.json")
    with pytest.raises(RecordError, match=r"^gates\.json is nested too deeply"):
        GatesRecord.from_bytes(b'{"gates": ' + b"[" * 150 + b"]" * 150 + b"}", "gates.json")
    with pytest.raises(RecordError, match=f"the limit is {MAX_RECORD_BYTES:,}"):
        GatesRecord.from_bytes(b" " * (MAX_RECORD_BYTES + 1), "gates.json")
