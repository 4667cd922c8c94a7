"""The real pipeline published to S3: champion pointer, regression gate, audit, promote/rollback, tampering."""

from __future__ import annotations

import json
from pathlib import Path

from shears.release.audit import audit_store
from shears.release.champion import read_champion
from shears.store import LocalStore, open_store, sha256_hex
from shears.store import layout as L

from tests.s3.util import BUCKET, DATA_KEY, Flow, Transcript, copy_prefix, run_cli
from tests.seaweed import SeaweedServer


def _deployable_accuracy(store_uri: str, run_id: str) -> float:
    manifest = json.loads(open_store(store_uri).get(L.RunLayout(run_id).run(L.MANIFEST)))
    return float(manifest["deployable"]["accuracy"])


def test_first_run_via_cli_reads_data_from_s3_and_becomes_champion(flow: Flow) -> None:
    store = open_store(flow.uri)
    assert f"run {flow.a}: PASSED" in flow.cli_a.stdout
    validation = json.loads(store.get(L.RunLayout(flow.a).run(L.VALIDATION)))
    manifest = json.loads(store.get(L.RunLayout(flow.a).run(L.MANIFEST)))
    assert manifest["config"]["data"]["uri"] == f"s3://{BUCKET}/{DATA_KEY}"
    assert validation["rows"] == 1797 and manifest["dataset"]["rows"] == 1797
    first = json.loads(store.get(L.champion_history(1)))
    assert first["run_id"] == flow.a and first["previous"] is None and first["action"] == "promote"


def test_better_run_becomes_champion(flow: Flow) -> None:
    store = open_store(flow.uri)
    outcome = flow.outcomes[flow.b]
    assert outcome.passed, outcome.error
    assert _deployable_accuracy(flow.uri, flow.b) > _deployable_accuracy(flow.uri, flow.a)
    champion = read_champion(store)
    assert champion is not None and champion.run_id == flow.b and champion.seq == 2
    assert champion.pointer.previous == flow.a
    assert champion.pointer.manifest_sha256 == sha256_hex(store.get(L.RunLayout(flow.b).run(L.MANIFEST)))
    gates = json.loads(store.get(L.RunLayout(flow.b).run(L.GATES)))
    assert gates["champion"]["run_id"] == flow.a  # B was compared against A
    assert {g["name"] for g in gates["gates"]} >= {"champion_max_accuracy_drop_pp", "champion_max_size_increase_pct"}


def test_worse_run_is_rejected_and_champion_unchanged(flow: Flow) -> None:
    store = open_store(flow.uri)
    outcome = flow.outcomes[flow.c]
    assert not outcome.passed and outcome.error is not None
    assert "champion_max_accuracy_drop_pp" in str(outcome.error)
    champion = read_champion(store)
    assert champion is not None and champion.run_id == flow.b and champion.seq == 2
    assert [e.split("/")[-1] for e in store.list(L.CHAMPIONS_DIR + "/")] == ["000001.json", "000002.json"]
    lay = L.RunLayout(flow.c)
    gates = json.loads(store.get(lay.rejected(L.GATES)))
    assert not gates["passed"] and gates["champion"]["run_id"] == flow.b
    failed = [g["name"] for g in gates["gates"] if not g["passed"]]
    assert failed == ["champion_max_accuracy_drop_pp"], failed
    rejected = store.list(lay.rejected_prefix + "/")
    assert rejected and not [k for k in rejected if "/models/" in k or k.endswith((".h5", ".tflite", ".keras"))]
    assert store.list(lay.run_prefix + "/") == []  # nothing published under runs/
    assert json.loads(store.get(lay.rejected(L.MANIFEST)))["status"] == "rejected"


def test_audit_is_clean(flow: Flow, seaweed: SeaweedServer, transcript: Transcript) -> None:
    report = audit_store(open_store(flow.uri))
    assert report.problems == [] and report.warnings == []
    assert [r.run_id for r in report.runs] == [flow.a, flow.b] and [r.run_id for r in report.rejected] == [flow.c]
    assert report.champion is not None and report.champion.run_id == flow.b
    assert [e.seq for e in report.history] == [1, 2]
    proc = run_cli(seaweed, transcript, "audit", flow.uri)
    assert proc.returncode == 0, proc.stderr
    assert "consistent" in proc.stderr and flow.b in proc.stdout
    one = run_cli(seaweed, transcript, "audit", flow.uri, "--run", flow.c, "--json")
    assert one.returncode == 0, one.stderr
    data = json.loads(one.stdout)
    assert data["ok"] and [r["run_id"] for r in data["rejected"]] == [flow.c]


def test_promote_and_rollback_are_conditional_and_recorded(
    flow: Flow, seaweed: SeaweedServer, transcript: Transcript
) -> None:
    uri = f"s3://{BUCKET}/promo"
    copy_prefix(seaweed.client(), "flow", "promo")
    back = run_cli(seaweed, transcript, "rollback", uri)
    assert back.returncode == 0, back.stderr
    store = open_store(uri)
    champion = read_champion(store)
    assert champion is not None and champion.run_id == flow.a and champion.seq == 3
    assert champion.pointer.action == "rollback" and champion.pointer.previous == flow.b
    again = run_cli(seaweed, transcript, "promote", uri, flow.b)
    assert again.returncode == 0, again.stderr
    champion = read_champion(store)
    assert champion is not None and champion.run_id == flow.b and champion.seq == 4
    bad = run_cli(seaweed, transcript, "promote", uri, flow.c)  # rejected: never under runs/
    assert bad.returncode == 1 and "not published under runs/" in bad.stderr
    history = [json.loads(store.get(k)) for k in store.list(L.CHAMPIONS_DIR + "/")]
    assert [(e["seq"], e["action"], e["run_id"]) for e in history] == [
        (1, "promote", flow.a), (2, "promote", flow.b), (3, "rollback", flow.a), (4, "promote", flow.b)]
    audit = run_cli(seaweed, transcript, "audit", uri)
    assert audit.returncode == 0, audit.stderr


def test_overwritten_artifact_fails_audit_naming_the_object(
    flow: Flow, seaweed: SeaweedServer, transcript: Transcript
) -> None:
    client = seaweed.client()
    copy_prefix(client, "flow", "tamper")
    victim = f"{L.RunLayout(flow.b).run_prefix}/{L.tflite_model('dynamic_range')}"
    original = client.get_object(Bucket=BUCKET, Key=f"tamper/{victim}")["Body"].read()
    client.put_object(Bucket=BUCKET, Key=f"tamper/{victim}", Body=original[:-16] + b"\0" * 16)  # behind our back
    proc = run_cli(seaweed, transcript, "audit", f"s3://{BUCKET}/tamper")
    assert proc.returncode == 1
    problems = [line for line in proc.stderr.splitlines() if line.startswith("problem: ")]
    assert any(victim in p and "sha256 mismatch" in p for p in problems), proc.stderr
    assert any(p.startswith(f"problem: {L.CHAMPION}: champion run {flow.b} fails verification") for p in problems)
    assert len(problems) == 2, problems  # one line per problem, nothing else flagged


def test_audit_works_on_a_local_copy(flow: Flow, seaweed: SeaweedServer, transcript: Transcript,
                                     tmp_path: Path) -> None:
    src = open_store(flow.uri)
    local = LocalStore(tmp_path / "store")
    for key in src.list(""):
        local.put(key, src.get(key))
    ok = run_cli(seaweed, transcript, "audit", str(local.root))
    assert ok.returncode == 0, ok.stderr
    key = f"{L.RunLayout(flow.a).run_prefix}/{L.METRICS}"
    local.put(key, local.get(key).replace(b"accuracy", b"accuracY"))
    bad = run_cli(seaweed, transcript, "audit", str(local.root))
    assert bad.returncode == 1 and f"problem: {key}: sha256 mismatch" in bad.stderr
