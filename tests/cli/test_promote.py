"""`shears promote` and `shears rollback` check what `shears audit` checks, and signatures with --trust/--config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shears.cli.main import app
from shears.store import LocalStore
from typer.testing import CliRunner

from tests.release.test_signing import FILES, _keys, _publish


@pytest.fixture
def tampered(tmp_path: Path) -> tuple[LocalStore, Path]:
    """A signed run whose deployable was swapped and whose manifest's sha256s were regenerated to match."""
    key, _ = _keys(tmp_path, "a")
    store = LocalStore(tmp_path / "store")
    _publish(store, "good", key)
    _publish(store, "swapped", key)
    sig = store.get("runs/swapped/model.sig")
    _publish(store, "tmp", key, {**FILES, "models/model_dynamic_range.tflite": b"TFL3 evil"})
    store.put("runs/swapped/models/model_dynamic_range.tflite",
              store.get("runs/tmp/models/model_dynamic_range.tflite"))
    manifest = json.loads(store.get("runs/tmp/manifest.json"))
    manifest["run_id"] = "swapped"
    store.put("runs/swapped/manifest.json", json.dumps(manifest).encode())
    store.put("runs/swapped/model.sig", sig)
    store.delete_prefix("runs/tmp")
    return store, tmp_path / "a.pub"


def _champion_files(store: LocalStore) -> dict[str, bytes]:
    return {k: store.get(k) for k in ["champion.json", *store.list("champions/")] if store.exists(k)}


def test_promote_with_trust_refuses_a_rehashed_tampered_run_and_changes_nothing(
        tampered: tuple[LocalStore, Path]) -> None:
    store, pub = tampered
    runner = CliRunner()
    ok = runner.invoke(app, ["promote", store.uri, "good", "--trust", str(pub)])
    assert ok.exit_code == 0, ok.output
    before = _champion_files(store)
    refused = runner.invoke(app, ["promote", store.uri, "swapped", "--trust", str(pub)])
    assert refused.exit_code == 1
    errors = [ln for ln in refused.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: run swapped fails verification and cannot be champion: runs/swapped: signature: "
                      "changed since signing: manifest.json, models/model_dynamic_range.tflite"], refused.stderr
    assert _champion_files(store) == before


def test_signing_required_by_the_config_refuses_an_unsigned_run(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    _keys(tmp_path, "a")
    _publish(store, "plain", None)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("signing:\n  required: true\n  trusted_keys: [a.pub]\n")
    runner = CliRunner()
    result = runner.invoke(app, ["promote", store.uri, "plain", "--config", str(cfg)])
    assert result.exit_code == 1 and "signature: missing (model.sig), but signatures are required" in result.stderr
    assert not store.exists("champion.json")
    no_key = tmp_path / "nokey.yaml"
    no_key.write_text("signing:\n  required: true\n")
    result = runner.invoke(app, ["promote", store.uri, "plain", "--config", str(no_key)])
    assert result.exit_code == 2 and "signatures are required but no trusted key was given" in result.stderr


def test_the_deployment_policy_requires_signatures_for_promotion_too(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "store")
    _publish(store, "plain", None)
    policy = tmp_path / "policy.yaml"
    policy.write_text("signing:\n  required: true\n")
    monkeypatch.setenv("SHEARS_POLICY", str(policy))
    result = CliRunner().invoke(app, ["promote", store.uri, "plain"])
    assert result.exit_code == 2 and "signatures are required but no trusted key was given" in result.stderr
    assert not store.exists("champion.json")


def test_rollback_checks_the_run_it_goes_back_to(tampered: tuple[LocalStore, Path]) -> None:
    store, pub = tampered
    runner = CliRunner()
    assert runner.invoke(app, ["promote", store.uri, "swapped"]).exit_code == 0  # unchecked: no --trust given
    assert runner.invoke(app, ["promote", store.uri, "good", "--trust", str(pub)]).exit_code == 0
    before = _champion_files(store)
    result = runner.invoke(app, ["rollback", store.uri, "--trust", str(pub)])
    assert result.exit_code == 1 and "run swapped fails verification" in result.stderr
    assert _champion_files(store) == before


def test_show_and_audit_read_a_deeply_nested_record_in_one_line(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    _publish(store, "deep", None)
    store.put("runs/deep/manifest.json", b'{"files": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    runner = CliRunner()
    for args in (["show", store.uri, "deep"], ["audit", store.uri]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "nested too deeply (more than 100 levels)" in result.stderr and "Traceback" not in result.output
        assert all(len(ln) <= 320 for ln in result.stderr.splitlines())
