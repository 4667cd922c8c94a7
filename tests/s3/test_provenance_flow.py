"""Signed runs, model cards and lineage on a real SeaweedFS bucket, with real keys and real pipeline runs.

Two `shears run` subprocesses publish to s3://shears-test/signed with a signing key and the OpenLineage
file transport: sig-a passes (the first champion), sig-c is rejected by the champion gate (its rejected
folder is signed too). Each tamper case then works on its own server-side copy of sig-a.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from shears.records import ManifestRecord, ModelCardRecord, ValidationRecord
from shears.release.manifest import file_entry
from shears.release.signing import SigningKey, TrustedKey, sign_files, write_key_pair
from shears.store import layout as L
from shears.store import open_store, sha256_hex

from tests.s3.util import BUCKET, DATA_KEY, Transcript, all_objects, copy_prefix, digits_npz, fast_raw, run_cli
from tests.seaweed import SeaweedServer

PREFIX = "signed"
URI = f"s3://{BUCKET}/{PREFIX}"


@dataclass(frozen=True)
class Signed:
    keys: Path
    key: SigningKey
    lineage: Path
    cli: dict[str, subprocess.CompletedProcess[str]]

    @property
    def pub(self) -> str:
        return str(self.keys / "prod.pub")


@pytest.fixture(scope="module")
def signed(seaweed: SeaweedServer, transcript: Transcript, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    root = tmp_path_factory.mktemp("signed")
    write_key_pair(root / "prod.key", root / "prod.pub")
    write_key_pair(root / "attacker.key", root / "attacker.pub")
    seaweed.client().put_object(Bucket=BUCKET, Key=DATA_KEY, Body=digits_npz())
    lineage = root / "openlineage.jsonl"
    env = {"OPENLINEAGE__TRANSPORT__TYPE": "file", "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(lineage),
           "OPENLINEAGE__TRANSPORT__APPEND": "true", "OPENLINEAGE_NAMESPACE": "shears-test",
           "SHEARS_SIGNING_KEY": str(root / "prod.key")}
    cli = {}
    for rid, raw in (("sig-a", fast_raw(3)), ("sig-c", fast_raw(1, champion_max_accuracy_drop_pp=0.0))):
        cfg = root / f"{rid}.yaml"
        cfg.write_text(yaml.safe_dump({**raw, "card": {"intended_use": "Test digits; not for production."}}))
        cli[rid] = run_cli(seaweed, transcript, "run", "--config", str(cfg), "--data", f"s3://{BUCKET}/{DATA_KEY}",
                           "--store", URI, "--run-id", rid, env=env)
    assert cli["sig-a"].returncode == 0, cli["sig-a"].stderr[-3000:]
    assert cli["sig-c"].returncode == 4, cli["sig-c"].stderr[-3000:]
    return Signed(root, SigningKey.from_file(root / "prod.key"), lineage, cli)


def _problems(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("problem:")]


def _copy_run(seaweed: SeaweedServer, dst: str, run_id: str = "sig-a") -> str:
    """runs/<run_id>/ alone (no champion pointer) copied to s3://shears-test/<dst>; returns the store URI."""
    assert copy_prefix(seaweed.client(), PREFIX, dst, under=f"runs/{run_id}/") > 0
    return f"s3://{BUCKET}/{dst}"


def test_published_and_rejected_runs_are_signed_and_verify(signed: Signed, seaweed: SeaweedServer,
                                                           transcript: Transcript, tmp_path: Path) -> None:
    store = open_store(URI)
    manifest = ManifestRecord.from_bytes(store.get("runs/sig-a/manifest.json"))
    assert manifest.signature is not None and manifest.signature.key_id == signed.key.key_id
    assert store.exists("runs/sig-a/model.sig") and store.exists("rejected/sig-c/model.sig")
    assert f"signed: {URI}/runs/sig-a/model.sig (key id {signed.key.key_id})" in signed.cli["sig-a"].stdout
    proc = run_cli(seaweed, transcript, "audit", URI, "--trust", signed.pub)
    assert proc.returncode == 0, proc.stderr
    assert "signatures: 2 verified; checked against trusted keys" in proc.stderr
    assert "champion: sig-a" in proc.stdout and f"verified ({signed.key.key_id[:16]}…)" in proc.stdout
    unchecked = run_cli(seaweed, transcript, "audit", URI)
    assert unchecked.returncode == 0 and "signatures: 2 signed; not checked (no --trust key)" in unchecked.stderr
    # the bundle is model-signing's own: its CLI verifies a downloaded run folder without Shears
    folder = tmp_path / "sig-a"
    for key in store.list("runs/sig-a/"):
        (folder / key[len("runs/sig-a/"):]).parent.mkdir(parents=True, exist_ok=True)
        (folder / key[len("runs/sig-a/"):]).write_bytes(store.get(key))
    upstream = subprocess.run([str(Path(sys.executable).parent / "model_signing"), "verify", "key", str(folder),
                               "--signature", str(folder / "model.sig"), "--public_key", signed.pub],
                              capture_output=True, text=True, timeout=300)
    assert upstream.returncode == 0 and "Verification succeeded" in upstream.stdout, upstream.stderr[-2000:]


def test_a_replaced_model_with_a_regenerated_manifest_fails_the_signature(signed: Signed, seaweed: SeaweedServer,
                                                                           transcript: Transcript) -> None:
    uri = _copy_run(seaweed, "tamper-model")
    store = open_store(uri)
    model = "models/model_dynamic_range.tflite"
    evil = store.get(f"runs/sig-a/{model}") + b"\x00backdoor"
    manifest = ManifestRecord.from_bytes(store.get("runs/sig-a/manifest.json"))
    files = {**manifest.files, model: file_entry(evil)}
    store.put(f"runs/sig-a/{model}", evil)
    store.put("runs/sig-a/manifest.json", manifest.model_copy(update={"files": files}).to_bytes())
    blind = run_cli(seaweed, transcript, "audit", uri)
    assert blind.returncode == 0, blind.stderr  # the sha256 audit alone cannot see it: the gap signing closes
    proc = run_cli(seaweed, transcript, "audit", uri, "--trust", signed.pub)
    assert proc.returncode == 1
    assert _problems(proc) == [
        f"problem: runs/sig-a: signature: changed since signing: manifest.json, {model}"]


def test_a_signature_by_an_untrusted_key_fails(signed: Signed, seaweed: SeaweedServer, transcript: Transcript) -> None:
    uri = _copy_run(seaweed, "tamper-key")
    store = open_store(uri)
    attacker = SigningKey.from_file(signed.keys / "attacker.key")
    manifest = ManifestRecord.from_bytes(store.get("runs/sig-a/manifest.json"))
    assert manifest.signature is not None
    forged = manifest.model_copy(update={"signature": manifest.signature.model_copy(
        update={"key_id": attacker.key_id})}).to_bytes()
    files = {k[len("runs/sig-a/"):]: store.get(k) for k in store.list("runs/sig-a/")
             if not k.endswith(("model.sig", "manifest.json"))}
    store.put("runs/sig-a/model.sig", sign_files("sig-a", {**files, L.MANIFEST: forged}, attacker))
    store.put("runs/sig-a/manifest.json", forged)
    proc = run_cli(seaweed, transcript, "audit", uri, "--trust", signed.pub)
    assert proc.returncode == 1
    assert _problems(proc) == [
        f"problem: runs/sig-a: signature: signed by an untrusted key (key id {attacker.key_id[:16]}…)"]
    both = run_cli(seaweed, transcript, "audit", uri, "--trust", signed.pub, "--trust",
                   str(signed.keys / "attacker.pub"))
    assert both.returncode == 0, both.stderr  # trusting the other key (a rotation) accepts it


def test_a_missing_signature_fails_where_signing_is_required(signed: Signed, seaweed: SeaweedServer,
                                                             transcript: Transcript, tmp_path: Path) -> None:
    uri = _copy_run(seaweed, "tamper-unsigned")
    store = open_store(uri)
    manifest = ManifestRecord.from_bytes(store.get("runs/sig-a/manifest.json"))
    store.delete_prefix("runs/sig-a/model.sig")
    store.put("runs/sig-a/manifest.json", manifest.model_copy(update={"signature": None}).to_bytes())
    today = run_cli(seaweed, transcript, "audit", uri)
    assert today.returncode == 0 and "signatures: 1 unsigned; not checked (no --trust key)" in today.stderr
    warned = run_cli(seaweed, transcript, "audit", uri, "--trust", signed.pub)
    assert warned.returncode == 0 and "warning: runs/sig-a: unsigned (no model.sig)" in warned.stderr
    proc = run_cli(seaweed, transcript, "audit", uri, "--trust", signed.pub, "--require-signatures")
    assert proc.returncode == 1
    assert _problems(proc) == ["problem: runs/sig-a: signature: missing (model.sig), but signatures are required"]
    cfg = tmp_path / "policy.yaml"
    cfg.write_text(yaml.safe_dump({"signing": {"required": True, "trusted_keys": [signed.pub]}}))
    by_config = run_cli(seaweed, transcript, "audit", uri, "--config", str(cfg))
    assert by_config.returncode == 1 and _problems(by_config) == _problems(proc)


def test_a_tampered_champion_fails_its_pointer_and_its_signature(signed: Signed, seaweed: SeaweedServer,
                                                                 transcript: Transcript) -> None:
    assert copy_prefix(seaweed.client(), PREFIX, "tamper-champion") > 0
    uri = f"s3://{BUCKET}/tamper-champion"
    store = open_store(uri)
    store.put("runs/sig-a/gates.json", store.get("runs/sig-a/gates.json").replace(b'"passed": true', b'"passed": 1'))
    proc = run_cli(seaweed, transcript, "audit", uri, "--trust", signed.pub)
    assert proc.returncode == 1
    problems = _problems(proc)
    assert "problem: runs/sig-a: signature: changed since signing: gates.json" in problems
    assert "problem: champion.json: champion run sig-a fails verification (2 problem(s) above)" in problems


def test_every_run_has_a_model_card_listed_in_its_manifest(signed: Signed, seaweed: SeaweedServer,
                                                           transcript: Transcript) -> None:
    store = open_store(URI)
    for prefix, status in (("runs/sig-a", "passed"), ("rejected/sig-c", "rejected")):
        manifest = ManifestRecord.from_bytes(store.get(f"{prefix}/manifest.json"))
        assert {L.MODEL_CARD_JSON, L.MODEL_CARD_MD} <= set(manifest.files)
        card = ModelCardRecord.from_bytes(store.get(f"{prefix}/{L.MODEL_CARD_JSON}"))
        assert card.status == status and card.signature.key_id == signed.key.key_id
        assert card.data.uri == f"s3://{BUCKET}/{DATA_KEY}" and card.intended_use == "Test digits; not for production."
        assert card.machines and card.machines == manifest.machines
        assert b'href="model_card.md"' in store.get(f"{prefix}/report.html")
    rejected = ModelCardRecord.from_bytes(store.get(f"rejected/sig-c/{L.MODEL_CARD_JSON}"))
    assert rejected.champion.run_id == "sig-a" and rejected.gates is not None and not rejected.gates.passed
    shown = run_cli(seaweed, transcript, "show", URI, "sig-a")
    assert shown.returncode == 0 and shown.stdout == store.get("runs/sig-a/model_card.md").decode()
    assert "# Model card: `sig-a`" in shown.stdout and "## Machine" in shown.stdout
    shown_c = run_cli(seaweed, transcript, "show", URI, "sig-c")
    assert shown_c.returncode == 0 and "**REJECTED" in shown_c.stdout
    assert "| champion_max_accuracy_drop_pp | 0 |" in shown_c.stdout and "| FAIL |" in shown_c.stdout


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_cli_emits_lineage_with_the_data_champion_and_outputs(signed: Signed) -> None:
    events = _events(signed.lineage)
    store = open_store(URI)
    validation = ValidationRecord.from_bytes(store.get("runs/sig-a/validation.json"))
    by_job: dict[str, list[str]] = {}
    for e in events:
        by_job.setdefault(e["job"]["name"], []).append(e["eventType"])
    assert by_job["shears_pipeline.validate"] == ["START", "COMPLETE"] * 2  # two runs
    assert by_job["shears_pipeline.gate"] == ["START", "COMPLETE", "START", "FAIL"]
    assert by_job["shears_pipeline"] == ["START", "COMPLETE", "START", "FAIL"]
    assert all(e["job"]["namespace"] == "shears-test" for e in events)
    done = [e for e in events if e["eventType"] in ("COMPLETE", "FAIL") and "." in e["job"]["name"]]
    for e in done:
        data = e["inputs"][0]
        assert (data["namespace"], data["name"]) == (f"s3://{BUCKET}", DATA_KEY)
        assert data["facets"]["shears_data"]["sha256"] == validation.dataset_sha256
        assert data["facets"]["version"]["datasetVersion"] == validation.dataset_sha256
        assert e["run"]["facets"]["parent"]["job"]["name"] == "shears_pipeline"

    publish = next(e for e in done if e["job"]["name"] == "shears_pipeline.publish")
    outputs = {o["name"]: o for o in publish["outputs"]}
    run_out = outputs[f"{PREFIX}/runs/sig-a"]
    manifest_raw = store.get("runs/sig-a/manifest.json")
    manifest = ManifestRecord.from_bytes(manifest_raw)
    assert run_out["namespace"] == f"s3://{BUCKET}"
    assert run_out["facets"]["shears_run"]["manifestSha256"] == sha256_hex(manifest_raw)
    assert run_out["facets"]["shears_run"]["signatureKeyId"] == signed.key.key_id
    model = outputs[f"{PREFIX}/runs/sig-a/models/model_dynamic_range.tflite"]["facets"]
    assert manifest.deployable is not None
    assert model["shears_model"]["gzipBytes"] == manifest.deployable.gzip_bytes
    assert model["shears_model"]["accuracy"] == manifest.deployable.accuracy
    assert model["shears_gates"]["passed"] is True
    assert {g["name"] for g in model["shears_gates"]["gates"]} >= {"min_accuracy", "min_compression_ratio"}

    gate_c = next(e for e in done if e["job"]["name"] == "shears_pipeline.gate" and e["eventType"] == "FAIL")
    champion = gate_c["inputs"][1]
    assert champion["name"] == f"{PREFIX}/runs/sig-a/models/model_dynamic_range.tflite"
    assert champion["facets"]["shears_model"]["runId"] == "sig-a"
    rejected = gate_c["outputs"][0]
    assert rejected["name"] == f"{PREFIX}/rejected/sig-c"
    assert rejected["facets"]["shears_run"]["status"] == "rejected"
    assert rejected["facets"]["shears_gates"]["passed"] is False


def test_no_private_key_material_anywhere(signed: Signed, seaweed: SeaweedServer, transcript: Transcript) -> None:
    secret_lines = [ln for ln in (signed.keys / "prod.key").read_text().splitlines() if "-----" not in ln]
    blobs = all_objects(seaweed.client(), BUCKET)
    texts = [*transcript.lines, signed.lineage.read_text(), *(b.decode("latin-1") for b in blobs.values())]
    assert secret_lines and not [s for s in secret_lines for t in texts if s in t]
    assert TrustedKey.from_file(signed.pub).key_id == signed.key.key_id
