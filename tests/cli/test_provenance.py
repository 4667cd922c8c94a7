"""`shears keygen` and `shears audit --trust / --require-signatures / --config` on a local store."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml
from shears.cli.main import app
from shears.release.signing import SigningKey
from shears.store import LocalStore
from typer.testing import CliRunner

from tests.release.test_signing import _publish


def test_keygen_writes_a_key_pair_and_prints_no_key_material(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["keygen", "--out", str(tmp_path / "keys"), "--name", "prod"])
    assert res.exit_code == 0, res.output
    private, public = tmp_path / "keys" / "prod.key", tmp_path / "keys" / "prod.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and stat.S_IMODE(public.stat().st_mode) == 0o644
    key = SigningKey.from_file(private)
    assert f"key id:      {key.key_id}" in res.stdout
    assert all(line not in res.output for line in private.read_text().splitlines()[1:-1])
    again = runner.invoke(app, ["keygen", "--out", str(tmp_path / "keys"), "--name", "prod"])
    assert again.exit_code == 2 and "already exists; refusing to overwrite a key" in again.stderr
    assert runner.invoke(app, ["keygen", "--out", str(tmp_path), "--curve", "ed25519"]).exit_code == 2
    res = runner.invoke(app, ["keygen", "--out", str(tmp_path / "enc"), "--passphrase-env", "SHEARS_TEST_PASS"],
                        env={"SHEARS_TEST_PASS": "correct horse"})
    assert res.exit_code == 0 and "encrypted" in res.stdout
    assert SigningKey.from_file(tmp_path / "enc" / "shears-signing.key", b"correct horse").key_id
    missing = runner.invoke(app, ["keygen", "--out", str(tmp_path / "x"), "--passphrase-env", "SHEARS_UNSET_VAR"],
                            env={"SHEARS_UNSET_VAR": ""})
    assert missing.exit_code == 2 and "SHEARS_UNSET_VAR" in missing.stderr


def test_audit_trust_flags_config_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("old", "new"):
        assert runner.invoke(app, ["keygen", "--out", str(tmp_path), "--name", name]).exit_code == 0
    store = LocalStore(tmp_path / "store")
    _publish(store, "signed-old", SigningKey.from_file(tmp_path / "old.key"))
    _publish(store, "signed-new", SigningKey.from_file(tmp_path / "new.key"))
    uri = str(tmp_path / "store")

    plain = runner.invoke(app, ["audit", uri])
    assert plain.exit_code == 0 and "signatures: 2 signed; not checked (no --trust key)" in plain.stderr
    both = ["--trust", str(tmp_path / "old.pub"), "--trust", str(tmp_path / "new.pub")]
    rotated = runner.invoke(app, ["audit", uri, *both])
    assert rotated.exit_code == 0, rotated.stderr
    assert "signatures: 2 verified; checked against trusted keys" in rotated.stderr
    only_new = runner.invoke(app, ["audit", uri, "--trust", str(tmp_path / "new.pub")])
    assert only_new.exit_code == 1
    problems = [ln for ln in only_new.stderr.splitlines() if ln.startswith("problem:")]
    assert len(problems) == 1
    assert problems[0].startswith("problem: runs/signed-old: signature: signed by an untrusted key")

    _publish(store, "unsigned", None)
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(yaml.safe_dump({"signing": {"required": True, "trusted_keys": ["old.pub", "new.pub"]}}))
    required = runner.invoke(app, ["audit", uri, "--config", str(cfg)])
    assert required.exit_code == 1
    assert [ln for ln in required.stderr.splitlines() if ln.startswith("problem:")] == [
        "problem: runs/unsigned: signature: missing (model.sig), but signatures are required"]
    warned = runner.invoke(app, ["audit", uri, *both])
    assert warned.exit_code == 0 and "warning: runs/unsigned: unsigned (no model.sig)" in warned.stderr
    no_key = runner.invoke(app, ["audit", uri, "--require-signatures"])
    assert no_key.exit_code == 2 and "no trusted key was given" in no_key.stderr
    bad_key = runner.invoke(app, ["audit", uri, "--trust", str(tmp_path / "old.key")])
    assert bad_key.exit_code == 2 and "not a PEM public key" in bad_key.stderr


def test_a_run_that_must_be_signed_stops_at_validate_without_a_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"signing": {"required": True}}))
    res = CliRunner().invoke(app, ["run", "--config", str(cfg), "--out", str(tmp_path / "store"), "--run-id", "r1"],
                             env={"SHEARS_SIGNING_KEY": ""})
    assert res.exit_code == 2
    assert "error: signing.required is set but no signing key was given" in res.stderr
    store = LocalStore(tmp_path / "store")
    assert store.list("runs/") == [] and store.exists("rejected/r1/failure.json")
    bad = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "store"), "--signing-key",
                                   str(tmp_path / "none.key")])
    assert bad.exit_code == 2 and "cannot read it" in bad.stderr


def test_show_with_a_trusted_key_refuses_a_run_whose_signature_does_not_verify(tmp_path: Path) -> None:
    import hashlib
    import json

    runner = CliRunner()
    assert runner.invoke(app, ["keygen", "--out", str(tmp_path), "--name", "k"]).exit_code == 0
    store = LocalStore(tmp_path / "store")
    _publish(store, "signed", SigningKey.from_file(tmp_path / "k.key"))
    uri, pub = str(tmp_path / "store"), str(tmp_path / "k.pub")
    ok = runner.invoke(app, ["show", uri, "signed", "--trust", pub])
    assert ok.exit_code == 0, ok.stderr
    # forge: a card written after signing, with the manifest's sha256 regenerated to match
    run = tmp_path / "store" / "runs" / "signed"
    manifest = json.loads((run / "manifest.json").read_text())
    forged = b"# Model card: all gates passed, ship it\n"
    (run / "model_card.md").write_bytes(forged)
    manifest["files"]["model_card.md"] = {"sha256": hashlib.sha256(forged).hexdigest(), "bytes": len(forged)}
    (run / "manifest.json").write_text(json.dumps(manifest))
    shown = runner.invoke(app, ["show", uri, "signed"])
    assert shown.exit_code == 0 and "ship it" in shown.stdout  # without a key: what the store holds
    refused = runner.invoke(app, ["show", uri, "signed", "--trust", pub])
    assert refused.exit_code == 1 and "does not verify" in refused.stderr and "ship it" not in refused.stdout
