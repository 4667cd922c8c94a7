"""Signing a run folder with model-signing, real keys and real signatures, on a local store.

The same checks on a real S3 bucket with real pipeline runs are in tests/s3/test_provenance_flow.py.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from shears.errors import ConfigError
from shears.records import DatasetRef, DeployableRef, SignatureRef
from shears.release.audit import audit_store
from shears.release.manifest import build_manifest
from shears.release.publish import publish_files
from shears.release.signing import (
    SigningKey,
    Trust,
    TrustedKey,
    bundle_key_id,
    generate_key_pair,
    sign_files,
    signed_digests,
    verify_files,
    write_key_pair,
)
from shears.store import LocalStore
from shears.store import layout as L

FILES = {"gates.json": b'{"passed": true}', "models/model_dynamic_range.tflite": b"TFL3" + bytes(range(200)),
         "model_card.md": b"# card\n"}


def _keys(tmp_path: Path, name: str) -> tuple[SigningKey, TrustedKey]:
    write_key_pair(tmp_path / f"{name}.key", tmp_path / f"{name}.pub")
    return SigningKey.from_file(tmp_path / f"{name}.key"), TrustedKey.from_file(tmp_path / f"{name}.pub")


def _publish(store: LocalStore, run_id: str, key: SigningKey | None, files: dict[str, bytes] | None = None) -> None:
    files = dict(files or FILES)
    m = build_manifest(run_id=run_id, status="passed", files=files, config={},
                       dataset=DatasetRef(name="d", sha256="0" * 64, rows=1), timings={}, gates_passed=True,
                       deployable=DeployableRef(name="tflite_dynamic_range", file="models/model_dynamic_range.tflite",
                                                accuracy=0.9, gzip_bytes=10, raw_bytes=20),
                       champion_compared=None, commit=None,
                       signature=SignatureRef(file=L.SIGNATURE, key_id=key.key_id) if key else None)
    publish_files(store, L.RunLayout(run_id), "runs", files, m, key=key)


class _Recording(LocalStore):
    """A real local store that remembers the order of writes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.order: list[str] = []

    def put(self, key: str, data: bytes) -> None:
        self.order.append(key)
        super().put(key, data)


def test_keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites(tmp_path: Path) -> None:
    key_id = write_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k.pub").stat().st_mode) == 0o644
    assert SigningKey.from_file(tmp_path / "k.key").key_id == TrustedKey.from_file(tmp_path / "k.pub").key_id == key_id
    with pytest.raises(ConfigError, match="already exists"):
        write_key_pair(tmp_path / "k.key", tmp_path / "other.pub")
    assert not (tmp_path / "other.pub").exists()


def test_a_signing_key_never_shows_its_material(tmp_path: Path) -> None:
    private, _, key_id = generate_key_pair()
    key = SigningKey.from_pem(private)
    body = private.decode().splitlines()[1]
    assert body not in repr(key) and body not in str(key) and key_id in repr(key)


def test_encrypted_keys_need_their_passphrase_and_bad_keys_are_config_errors(tmp_path: Path) -> None:
    write_key_pair(tmp_path / "e.key", tmp_path / "e.pub", password=b"s3cret")
    assert b"ENCRYPTED" in (tmp_path / "e.key").read_bytes()
    assert SigningKey.from_file(tmp_path / "e.key", b"s3cret").key_id == TrustedKey.from_file(tmp_path / "e.pub").key_id
    with pytest.raises(ConfigError, match=r"e\.key"):
        SigningKey.from_file(tmp_path / "e.key")
    with pytest.raises(ConfigError, match="wrong passphrase"):
        SigningKey.from_file(tmp_path / "e.key", b"nope")
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not a PEM private key"):
        SigningKey.from_file(tmp_path / "junk.pem")
    with pytest.raises(ConfigError, match="cannot read"):
        SigningKey.from_file(tmp_path / "missing.key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ConfigError, match="not an elliptic-curve key"):
        SigningKey.from_pem(rsa_pem)


def test_a_signature_covers_every_file_and_names_what_changed(tmp_path: Path) -> None:
    key, trusted = _keys(tmp_path, "a")
    files = {**FILES, "manifest.json": b"{}"}
    sig = sign_files("run-1", files, key)
    assert bundle_key_id(sig) == key.key_id
    assert set(signed_digests(sig)) == set(files)
    assert verify_files("run-1", files, sig, [trusted]).ok
    changed = {**files, "models/model_dynamic_range.tflite": b"evil", "manifest.json": b"{ }"}
    check = verify_files("run-1", changed, sig, [trusted])
    assert not check.ok
    assert check.reason == "changed since signing: manifest.json, models/model_dynamic_range.tflite"
    added = {**files, "extra.bin": b"x"}
    assert verify_files("run-1", added, sig, [trusted]).reason == "not signed (added after signing): extra.bin"


def test_untrusted_forged_and_garbage_signatures_fail(tmp_path: Path) -> None:
    key, trusted = _keys(tmp_path, "a")
    other, other_trusted = _keys(tmp_path, "b")
    files = {**FILES, "manifest.json": b"{}"}
    sig = sign_files("run-1", files, other)
    check = verify_files("run-1", files, sig, [trusted])
    assert not check.ok and check.reason == f"signed by an untrusted key (key id {other.key_id[:16]}…)"
    forged = json.loads(sig)  # claims to be key a, but signed by key b
    forged["verificationMaterial"]["publicKey"]["hint"] = key.key_id
    check = verify_files("run-1", files, json.dumps(forged).encode(), [trusted])
    assert not check.ok and "does not verify" in check.reason
    assert verify_files("run-1", files, b"not json", [trusted]).reason == "model.sig is not a model-signing bundle"
    # key rotation: trusting both keys accepts either signature
    assert verify_files("run-1", files, sig, [trusted, other_trusted]).ok


def test_publish_writes_the_signature_after_every_file_and_before_the_manifest(tmp_path: Path) -> None:
    key, trusted = _keys(tmp_path, "a")
    store = _Recording(tmp_path / "store")
    _publish(store, "r1", key)
    names = [k.split("/", 2)[2] for k in store.order]
    assert names[-2:] == [L.SIGNATURE, L.MANIFEST] and set(names[:-2]) == set(FILES)
    report = audit_store(store, trust=Trust(keys=(trusted,)))
    assert report.problems == [] and report.runs[0].signature == "verified"
    assert report.runs[0].signed_by == key.key_id
    assert audit_store(store).runs[0].signature == "signed"  # no trusted key: reported, not checked


def test_audit_names_the_run_and_the_reason_for_each_tampering(tmp_path: Path) -> None:
    key, trusted = _keys(tmp_path, "a")
    attacker, _ = _keys(tmp_path, "evil")
    store = LocalStore(tmp_path / "store")
    trust = Trust(keys=(trusted,))
    # 1. a replaced model with a regenerated manifest: the sha256 audit is green, the signature is not
    _publish(store, "swapped", key)
    sig = store.get("runs/swapped/model.sig")
    _publish(store, "tmp", key, {**FILES, "models/model_dynamic_range.tflite": b"TFL3 evil"})
    store.put("runs/swapped/models/model_dynamic_range.tflite", store.get("runs/tmp/models/model_dynamic_range.tflite"))
    manifest = json.loads(store.get("runs/tmp/manifest.json"))
    manifest["run_id"] = "swapped"
    store.put("runs/swapped/manifest.json", json.dumps(manifest).encode())
    store.put("runs/swapped/model.sig", sig)
    store.delete_prefix("runs/tmp")
    assert audit_store(store).problems == []
    problems = audit_store(store, trust=trust).problems
    assert problems == ["runs/swapped: signature: changed since signing: manifest.json, "
                        "models/model_dynamic_range.tflite"]
    store.delete_prefix("runs/swapped")
    # 2. re-signed by a key the audit does not trust
    _publish(store, "resigned", attacker)
    assert audit_store(store, trust=trust).problems == [
        f"runs/resigned: signature: signed by an untrusted key (key id {attacker.key_id[:16]}…)"]
    store.delete_prefix("runs/resigned")
    # 3. unsigned: a warning, or a problem where signatures are required
    _publish(store, "plain", None)
    report = audit_store(store, trust=trust)
    assert report.problems == [] and report.warnings == ["runs/plain: unsigned (no model.sig)"]
    assert audit_store(store, trust=Trust(keys=(trusted,), required=True)).problems == [
        "runs/plain: signature: missing (model.sig), but signatures are required"]
    store.delete_prefix("runs/plain")
    # 4. a declared signature that was deleted; a signature the manifest does not declare
    _publish(store, "stripped", key)
    store.delete_prefix("runs/stripped/model.sig")
    assert audit_store(store).problems == [
        "runs/stripped: signature: model.sig is declared in the manifest but missing"]
    store.delete_prefix("runs/stripped")
    _publish(store, "plain2", None)
    store.put("runs/plain2/model.sig", b"{}")
    assert audit_store(store).problems == [
        "runs/plain2/model.sig: not listed in the manifest (added after publication)"]
