"""Is one published folder intact? Every sha256 and size in its manifest against the stored objects."""

from __future__ import annotations

from dataclasses import dataclass, field

from shears.errors import RecordError
from shears.records import DeployableRef, ManifestRecord
from shears.store import Store, sha256_hex
from shears.store import layout as L


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

    @property
    def prefix(self) -> str:
        return f"{self.area}/{self.run_id}"


def _short(digest: str) -> str:
    return digest[:12] + "…"


def verify_run(store: Store, area: L.Area, run_id: str, names: list[str] | None = None) -> RunAudit:
    """Recompute every sha256/size in the run's manifest against the stored objects.

    Problems: a manifest that is not a valid manifest record, a listed file missing or changed, a file
    the manifest does not list (added after publication, or left by an earlier attempt), a model file
    under rejected/, a status or run id that does not match the folder.
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
        digest = sha256_hex(data)
        if digest != entry.sha256:
            problems.append(f"{key}: sha256 mismatch (manifest {_short(entry.sha256)}, "
                            f"stored {_short(digest)}) — changed after publication")
        elif len(data) != entry.bytes:
            problems.append(f"{key}: size {len(data)} B, manifest says {entry.bytes} B")
    for name in sorted(present - set(manifest.files) - {L.MANIFEST}):
        problems.append(f"{prefix}/{name}: not listed in the manifest (added after publication)")
    problems += model_files
    return RunAudit(
        run_id, area, "complete", len(present), status=manifest.status, manifest_sha256=sha256_hex(raw),
        created_at=manifest.created_at, deployable=manifest.deployable, problems=problems,
    )
