"""Is one published folder intact? Every sha256 and size in its manifest against the stored objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shears.errors import RecordError
from shears.records import DeployableRef, ManifestRecord
from shears.store import Store, sha256_hex
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.release.signing import Trust


@dataclass(frozen=True)
class RunAudit:
    """One folder under runs/ or rejected/."""

    run_id: str
    area: str  # "runs" or "rejected"
    # "complete" (has manifest), "incomplete" (no manifest), "failed" (rejected/ with failure.json only)
    state: str
    objects: int
    status: str | None = None  # the manifest's status
    manifest_sha256: str | None = None
    created_at: str | None = None
    deployable: DeployableRef | None = None
    problems: list[str] = field(default_factory=list)
    # "unsigned", "signed" (not checked: no trusted key given), "verified" or "invalid"
    signature: str = "unsigned"
    signed_by: str | None = None  # the key id the signature names (verified when signature == "verified")
    warnings: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.area}/{self.run_id}"


def _short(digest: str) -> str:
    return digest[:12] + "…"


def verify_run(store: Store, area: L.Area, run_id: str, names: list[str] | None = None,
               trust: Trust | None = None) -> RunAudit:
    """Recompute every sha256/size in the run's manifest against the stored objects; check its signature.

    Problems: a manifest that is not a valid manifest record, a listed file missing or changed, a file
    the manifest does not list (added after publication, or left by an earlier attempt), a model file
    under rejected/, a status or run id that does not match the folder, a declared signature that is
    missing. With `trust` (keys): a signature that does not verify with a trusted key (changed files, an
    untrusted key, a forged bundle); with `trust.required`: an unsigned folder.
    """
    layout = L.RunLayout(run_id)
    prefix = layout.prefix(area)
    if names is None:
        names = [k[len(prefix) + 1 :] for k in store.list(prefix + "/")]
    present = set(names)
    model_files = []
    if area == "rejected":
        model_files = [f"{prefix}/{n}: model file under rejected/" for n in sorted(present) if L.is_model_file(n)]
    if L.MANIFEST not in present:
        state = "failed" if area == "rejected" and L.FAILURE in present else "incomplete"
        return RunAudit(run_id, area, state, len(present), problems=model_files)
    mkey = f"{prefix}/{L.MANIFEST}"
    raw = store.get(mkey)
    try:
        manifest = ManifestRecord.from_bytes(raw, mkey)
    except RecordError as exc:
        return RunAudit(run_id, area, "complete", len(present), manifest_sha256=sha256_hex(raw),
                        problems=[str(exc), *model_files])
    problems: list[str] = []
    checking = trust is not None and trust.active
    fetched: dict[str, bytes] = {L.MANIFEST: raw} if checking else {}
    if manifest.run_id != run_id:
        problems.append(f"{mkey}: run_id {manifest.run_id!r} does not match its folder {run_id!r}")
    expected_status = "passed" if area == "runs" else "rejected"
    if manifest.status != expected_status:
        problems.append(f"{mkey}: status '{manifest.status}' under {area}/ (expected '{expected_status}')")
    for name, entry in sorted(manifest.files.items()):
        key = f"{prefix}/{name}"
        if name not in present:
            problems.append(f"{key}: missing (listed in manifest)")
            continue
        data = store.get(key)
        if checking:
            fetched[name] = data
        digest = sha256_hex(data)
        if digest != entry.sha256:
            problems.append(f"{key}: sha256 mismatch (manifest {_short(entry.sha256)}, "
                            f"stored {_short(digest)}) — changed after publication")
        elif len(data) != entry.bytes:
            problems.append(f"{key}: size {len(data)} B, manifest says {entry.bytes} B")
    declared = manifest.signature
    expected_extra = {L.MANIFEST} | ({declared.file} if declared else set())
    for name in sorted(present - set(manifest.files) - expected_extra):
        problems.append(f"{prefix}/{name}: not listed in the manifest (added after publication)")
    problems += model_files
    sig_state, signed_by, warnings = "unsigned", None, []
    if declared is not None and declared.file not in present:
        problems.append(f"{prefix}: signature: {declared.file} is declared in the manifest but missing")
        sig_state = "invalid"
    elif declared is not None:
        sig_state, signed_by = "signed", declared.key_id
        if checking and trust is not None:
            from shears.release.signing import short_id, verify_files

            for name in sorted(present - set(fetched) - {declared.file}):
                fetched[name] = store.get(f"{prefix}/{name}")
            check = verify_files(run_id, fetched, store.get(f"{prefix}/{declared.file}"), trust.keys)
            if check.ok and check.key_id != declared.key_id:
                sig_state, signed_by = "invalid", check.key_id
                problems.append(f"{prefix}: signature: signed by key {short_id(check.key_id)} but the manifest "
                                f"declares {short_id(declared.key_id)}")
            elif check.ok:
                sig_state, signed_by = "verified", check.key_id
            else:
                sig_state, signed_by = "invalid", check.key_id
                problems.append(f"{prefix}: signature: {check.reason}")
    elif checking and trust is not None:
        if trust.required:
            problems.append(f"{prefix}: signature: missing ({L.SIGNATURE}), but signatures are required")
            sig_state = "invalid"
        else:
            warnings.append(f"{prefix}: unsigned (no {L.SIGNATURE})")
    return RunAudit(
        run_id, area, "complete", len(present), status=manifest.status, manifest_sha256=sha256_hex(raw),
        created_at=manifest.created_at, deployable=manifest.deployable, problems=problems,
        signature=sig_state, signed_by=signed_by, warnings=warnings,
    )
