"""Signing a run folder, and checking a signature, with the OpenSSF model-signing library (model-signing 1.1.1).

What is signed: every file of the run folder (models, records, report, model card) *and* manifest.json,
i.e. exactly what a reviewer downloads, minus the signature itself (`model.sig`). The bundle is the one
`model_signing sign key` writes (a Sigstore bundle with a DSSE in-toto statement listing every file's
sha256), so a downloaded run folder can be checked without Shears:

    model_signing verify key runs/<id> --signature runs/<id>/model.sig --public_key signing.pub

Why the files are materialized: model-signing's stable public API (`model_signing.signing.Config`,
`verifying.Config`, `hashing.Config`; "stable and backwards compatible" per its docs) signs and verifies a
*directory*; the in-memory pieces (`model_signing._signing`) are private and may change in any release.
A run folder is a few MB, so the bytes (which live in a Store, local or S3) are written to a private
temporary directory named after the run id, and the public API runs on that. It costs milliseconds.

Keys: loaded at the edge (a file for the CLI, an Airflow connection in the DAG) and passed in as objects;
their reprs never show key material. model-signing's signer reads its key from a *path*: it gets an
anonymous in-memory file (Linux memfd, /proc/self/fd/N), so the private key never touches a file system;
where memfd is missing, a 0600 file in a 0700 temporary directory, removed at once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from shears.errors import ConfigError, first_line
from shears.store import layout as L

CURVES = ("secp256r1", "secp384r1", "secp521r1")  # what model-signing accepts (Sigstore's key specs)


# --------------------------------------------------------------------------------------------- keys


def key_id_of(public_key: Any) -> str:
    """sha256 of the public key's PEM (SubjectPublicKeyInfo): model-signing's public-key hint in a bundle."""
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def short_id(key_id: str | None) -> str:
    return (key_id[:16] + "…") if key_id else "none"


def _check_curve(public_key: Any, where: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name not in CURVES:
        kind = getattr(getattr(public_key, "curve", None), "name", type(public_key).__name__)
        raise ConfigError(f"{where}: not an elliptic-curve key on {', '.join(CURVES)} (got {kind})")


@dataclass(frozen=True)
class SigningKey:
    """An elliptic-curve private key, loaded and checked. The repr names only the key id."""

    key_id: str
    _key: Any = field(repr=False, compare=False)

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None, where: str = "signing key") -> SigningKey:
        """Load a PEM private key; any problem is a ConfigError naming `where`, never quoting the key."""
        from cryptography.hazmat.primitives import serialization

        try:
            key = serialization.load_pem_private_key(pem, password)
        except TypeError as exc:  # encrypted without a password, or a password for a plain key
            raise ConfigError(f"{where}: {first_line(exc)}") from None
        except ValueError:
            raise ConfigError(f"{where}: not a PEM private key (or wrong passphrase)") from None
        _check_curve(key.public_key(), where)
        return cls(key_id_of(key.public_key()), key)

    @classmethod
    def from_file(cls, path: str | Path, password: bytes | None = None) -> SigningKey:
        p = Path(path)
        try:
            pem = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"signing key {p}: cannot read it ({exc.strerror or type(exc).__name__})") from None
        return cls.from_pem(pem, password, f"signing key {p}")

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(self._key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))

    def _unencrypted_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))


@dataclass(frozen=True)
class TrustedKey:
    """A public key the audit trusts, and where it came from (for messages)."""

    key_id: str
    source: str
    pem: bytes = field(repr=False)

    @classmethod
    def from_pem(cls, pem: bytes, source: str) -> TrustedKey:
        from cryptography.hazmat.primitives import serialization

        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            raise ConfigError(f"trusted key {source}: not a PEM public key") from None
        _check_curve(key, f"trusted key {source}")
        return cls(key_id_of(key), source, pem)

    @classmethod
    def from_file(cls, path: str | Path) -> TrustedKey:
        p = Path(path)
        try:
            pem = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"trusted key {p}: cannot read it ({exc.strerror or type(exc).__name__})") from None
        return cls.from_pem(pem, str(p))


@dataclass(frozen=True)
class Trust:
    """What the audit checks signatures against: the trusted public keys (several during a key rotation),
    and whether an unsigned run is a problem (`required`) or a warning."""

    keys: tuple[TrustedKey, ...] = ()
    required: bool = False

    @property
    def active(self) -> bool:
        return bool(self.keys) or self.required


def generate_key_pair(curve: str = "secp256r1") -> tuple[bytes, bytes, str]:
    """A new key pair: (private PEM, public PEM, key id). The private PEM is unencrypted PKCS#8."""
    from cryptography.hazmat.primitives.asymmetric import ec

    if curve not in CURVES:
        raise ConfigError(f"unsupported curve {curve!r}; use one of {', '.join(CURVES)}")
    key = SigningKey.from_pem(_pem_of(ec.generate_private_key(getattr(ec, curve.upper())())))
    return key._unencrypted_pem(), key.public_pem(), key.key_id


def _pem_of(private_key: Any, password: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return bytes(private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))


def write_key_pair(private_path: Path, public_path: Path, *, password: bytes | None = None,
                   curve: str = "secp256r1") -> str:
    """Write a new key pair: the private key 0600 (created exclusively: never overwrites), the public key 0644.

    Returns the key id. With `password`, the private key is encrypted (PKCS#8, best available encryption).
    """
    from cryptography.hazmat.primitives import serialization

    for p in (private_path, public_path):
        if p.exists():
            raise ConfigError(f"{p} already exists; refusing to overwrite a key")
    private_pem, public_pem, key_id = generate_key_pair(curve)
    if password:
        key = serialization.load_pem_private_key(private_pem, None)
        private_pem = _pem_of(key, password)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    os.chmod(private_path, 0o600)  # whatever the umask
    fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(public_pem)
    os.chmod(public_path, 0o644)
    return key_id


# --------------------------------------------------------------------------------------------- files on disk


@contextlib.contextmanager
def _secret_path(data: bytes) -> Iterator[Path]:
    """A path whose content is `data`, gone when the block ends: an anonymous in-memory file (memfd, never on a
    file system) where the platform has one, else a 0600 file in a 0700 temporary directory."""
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fd = os.memfd_create("shears-signing-key", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="shears-key-") as tmp:  # 0700
        path = Path(tmp) / "key.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path


def _safe_name(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"unsafe file name in a run folder: {name!r}")
    return rel


@contextlib.contextmanager
def _materialized(run_id: str, files: Mapping[str, bytes]) -> Iterator[Path]:
    """The run's files under <tmp>/<run_id>/ (the folder name is the signed statement's subject name)."""
    with tempfile.TemporaryDirectory(prefix="shears-sign-") as tmp:
        root = Path(tmp) / L.check_run_id(run_id)
        root.mkdir()
        for name, data in files.items():
            path = root.joinpath(*_safe_name(name).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        yield root


def _hashing_config() -> Any:
    """sha256 per file; nothing ignored but the signature itself (not even .git* files, model-signing's default)."""
    from model_signing import hashing

    return hashing.Config().use_file_serialization(hashing_algorithm="sha256").set_ignored_paths(
        paths=[L.SIGNATURE], ignore_git_paths=False
    )


# --------------------------------------------------------------------------------------------- sign / verify


def sign_files(run_id: str, files: Mapping[str, bytes], key: SigningKey) -> bytes:
    """The model-signing bundle over `files` (names relative to the run folder; manifest.json included)."""
    from model_signing import signing

    if L.SIGNATURE in files:
        raise ValueError(f"{L.SIGNATURE} cannot sign itself")
    with _materialized(run_id, files) as root, _secret_path(key._unencrypted_pem()) as key_path:
        out = root.parent / "bundle.sig"
        signing.Config().use_elliptic_key_signer(private_key=key_path).set_hashing_config(
            _hashing_config()
        ).sign(root, out)
        return out.read_bytes()


def bundle_key_id(signature: bytes) -> str | None:
    """The public-key hint (key id) a bundle names, or None if it names none or is not a bundle."""
    try:
        bundle = json.loads(signature)
        hint = bundle["verificationMaterial"]["publicKey"]["hint"]
    except (ValueError, KeyError, TypeError, RecursionError):  # a forged bundle: bounded, one answer
        return None
    return hint if isinstance(hint, str) and hint else None


@dataclass(frozen=True)
class SignatureCheck:
    """The verdict on one run folder's signature: ok, the key that signed it, and why not (one line)."""

    ok: bool
    key_id: str | None
    reason: str = ""


def signed_digests(signature: bytes) -> dict[str, str]:
    """{file name: sha256} as listed in the bundle's in-toto statement (not verified here)."""
    try:
        payload = json.loads(base64.b64decode(json.loads(signature)["dsseEnvelope"]["payload"]))
        return {r["name"]: r["digest"] for r in payload["predicate"]["resources"]}
    except (ValueError, KeyError, TypeError, RecursionError):  # a forged bundle: bounded, one answer
        return {}


def _mismatch_reason(files: Mapping[str, bytes], signature: bytes) -> str:
    """Which files differ from what was signed, one line (only called once the signature itself verified)."""
    signed = signed_digests(signature)
    actual = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    parts = []
    if changed := sorted(n for n in set(signed) & set(actual) if signed[n] != actual[n]):
        parts.append("changed since signing: " + ", ".join(changed))
    if extra := sorted(set(actual) - set(signed)):
        parts.append("not signed (added after signing): " + ", ".join(extra))
    if missing := sorted(set(signed) - set(actual)):
        parts.append("signed but missing: " + ", ".join(missing))
    return "; ".join(parts) or "the files do not match the signature"


def verify_files(run_id: str, files: Mapping[str, bytes], signature: bytes,
                 trusted: Sequence[TrustedKey]) -> SignatureCheck:
    """Check `signature` over `files` (every file of the folder but the signature) against trusted keys.

    The key is picked by the bundle's key hint; a bundle naming no trusted key fails as untrusted (its
    cryptography is not even looked at). Reasons are one line and name changed files.
    """
    from model_signing import verifying

    signer = bundle_key_id(signature)
    if not signed_digests(signature):
        return SignatureCheck(False, signer, f"{L.SIGNATURE} is not a model-signing bundle")
    candidates = [k for k in trusted if k.key_id == signer] if signer else list(trusted)
    if not candidates:
        return SignatureCheck(False, signer, f"signed by an untrusted key (key id {short_id(signer)})")
    last = ""
    with _materialized(run_id, files) as root:
        sig_path = root.parent / "bundle.sig"
        sig_path.write_bytes(signature)
        for key in candidates:
            with _secret_path(key.pem) as pub:
                try:
                    verifying.Config().use_elliptic_key_verifier(public_key=pub).set_hashing_config(
                        _hashing_config()
                    ).verify(root, sig_path)
                    return SignatureCheck(True, key.key_id)
                except ValueError as exc:
                    text = first_line(exc)
                    if text.startswith("Signature mismatch"):
                        return SignatureCheck(False, key.key_id, _mismatch_reason(files, signature))
                    last = "key mismatch" if text.startswith("Key mismatch") else text
                except Exception as exc:  # cryptography's InvalidSignature, a malformed bundle, ...
                    last = f"{type(exc).__name__}: {first_line(exc)}".rstrip(": ")
    if "InvalidSignature" in last:
        return SignatureCheck(False, signer, "the signature does not verify with the trusted key (forged or corrupted)")
    return SignatureCheck(False, signer, f"signature does not verify: {last or 'unknown error'}")
