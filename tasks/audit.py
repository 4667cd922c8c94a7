"""`shears audit`: is what the store says was published really there, unchanged and consistent?

Works on any Store. For every run it recomputes each sha256 and size listed in the run's manifest
against the stored objects, checks the manifest schema, flags objects the manifest does not list,
and checks that champion.json points to a complete, passing, intact run whose manifest hashes to the
pointer's manifest_sha256, and that the champions/ history is gap-free and agrees with the pointer.

Problems vs warnings:
  * a problem is an inconsistency in what was published (a changed or missing artifact, a broken
    champion pointer or history): `shears audit` exits 1 and prints one line per problem;
  * a warning is harmless debris: a folder under runs/ (or rejected/) without manifest.json is what an
    interrupted upload leaves. The manifest is written last and champion.json can only point at a run
    with a manifest, so nothing references it: it is reported as INCOMPLETE and does not fail the audit
    (unless `--strict`). Rerunning the same run id completes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tasks import layout as L
from tasks.errors import StoreError
from tasks.manifest import schema_problems
from tasks.publish import read_champion_history
from tasks.storage import Store, sha256_hex

MODEL_SUFFIXES = (".h5", ".keras", ".tflite", ".pb", ".onnx")


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
    deployable: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.area}/{self.run_id}"


@dataclass(frozen=True)
class AuditReport:
    store: str
    runs: list[RunAudit]
    rejected: list[RunAudit]
    champion: dict[str, Any] | None
    champion_versions: int
    history: list[dict[str, Any]]
    problems: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.problems or (strict and self.warnings) else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def _is_model_file(name: str) -> bool:
    return name.startswith("models/") or name.endswith(MODEL_SUFFIXES)


def _short(digest: str) -> str:
    return digest[:12] + "…"


def _group(keys: list[str], area: str) -> dict[str, list[str]]:
    """{run_id: [names inside the run folder]} from keys like 'runs/<id>/<name>'."""
    out: dict[str, list[str]] = {}
    for key in keys:
        parts = key.split("/", 2)
        if len(parts) == 3 and parts[0] == area:
            out.setdefault(parts[1], []).append(parts[2])
        elif len(parts) == 2 and parts[0] == area:
            out.setdefault(parts[1], [])
    return out


def verify_run(store: Store, area: str, run_id: str, names: list[str] | None = None) -> RunAudit:
    """Recompute every sha256/size in the run's manifest against the stored objects."""
    prefix = f"{area}/{run_id}"
    if names is None:
        names = [k[len(prefix) + 1 :] for k in store.list(prefix + "/")]
    present = set(names)
    model_files = [f"{prefix}/{n}: model file under rejected/" for n in sorted(present) if _is_model_file(n)]
    if area != "rejected":
        model_files = []
    if L.MANIFEST not in present:
        state = "failed" if area == "rejected" and L.FAILURE in present else "incomplete"
        return RunAudit(run_id, area, state, len(present), problems=model_files)
    problems: list[str] = []
    mkey = f"{prefix}/{L.MANIFEST}"
    raw = store.get(mkey)
    try:
        manifest = json.loads(raw)
    except ValueError:
        return RunAudit(run_id, area, "complete", len(present), manifest_sha256=sha256_hex(raw),
                        problems=[f"{mkey}: not valid JSON"])
    problems += [f"{mkey}: schema: {p}" for p in schema_problems(manifest)]
    if not isinstance(manifest, dict):
        return RunAudit(run_id, area, "complete", len(present), manifest_sha256=sha256_hex(raw),
                        problems=problems + model_files)
    if manifest.get("run_id") != run_id:
        problems.append(f"{mkey}: run_id {manifest.get('run_id')!r} does not match its folder {run_id!r}")
    expected_status = "passed" if area == "runs" else "rejected"
    status = manifest.get("status")
    if isinstance(status, str) and status in ("passed", "rejected") and status != expected_status:
        problems.append(f"{mkey}: status '{status}' under {area}/ (expected '{expected_status}')")
    listed = manifest.get("files")
    files: dict[str, Any] = listed if isinstance(listed, dict) else {}
    for name in sorted(files):
        entry = files[name]
        key = f"{prefix}/{name}"
        if name not in present:
            problems.append(f"{key}: missing (listed in manifest)")
            continue
        if not isinstance(entry, dict):
            continue  # already reported by schema_problems
        data = store.get(key)
        digest = sha256_hex(data)
        if digest != entry.get("sha256"):
            problems.append(f"{key}: sha256 mismatch (manifest {_short(str(entry.get('sha256')))}, "
                            f"stored {_short(digest)}) — changed after publication")
        elif len(data) != entry.get("bytes"):
            problems.append(f"{key}: size {len(data)} B, manifest says {entry.get('bytes')} B")
    for name in sorted(present - set(files) - {L.MANIFEST}):
        problems.append(f"{prefix}/{name}: not listed in the manifest (added after publication)")
    problems += model_files
    dep = manifest.get("deployable")
    return RunAudit(
        run_id, area, "complete", len(present), status=status if isinstance(status, str) else None,
        manifest_sha256=sha256_hex(raw), created_at=manifest.get("created_at"),
        deployable=dep if isinstance(dep, dict) else None, problems=problems,
    )


def _check_champion(
    store: Store, runs: dict[str, RunAudit], history: list[dict[str, Any]], raw_by_seq: dict[int, bytes],
) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    c = L.CHAMPION
    raw = store.get(c) if store.exists(c) else None
    pointer: dict[str, Any] | None = None
    if raw is not None:
        try:
            loaded = json.loads(raw)
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict):
            problems.append(f"{c}: not a JSON object")
        else:
            pointer = loaded
    if pointer is not None:
        missing = [k for k in ("run_id", "manifest_sha256", "seq") if k not in pointer]
        if missing:
            problems.append(f"{c}: missing key(s) {', '.join(missing)}")
        rid = str(pointer.get("run_id"))
        run = runs.get(rid)
        if run is None:
            problems.append(f"{c}: points to run {rid}, which does not exist under runs/")
        elif run.state != "complete":
            problems.append(f"{c}: points to run {rid}, which is incomplete (no manifest.json)")
        else:
            if run.status != "passed":
                problems.append(f"{c}: champion run {rid} has status {run.status!r}, not 'passed'")
            if run.problems:
                problems.append(f"{c}: champion run {rid} fails verification "
                                f"({len(run.problems)} problem(s) above)")
            pinned = pointer.get("manifest_sha256")
            if pinned is not None and pinned != run.manifest_sha256:
                problems.append(f"{c}: manifest_sha256 {_short(str(pinned))} does not match "
                                f"runs/{rid}/{L.MANIFEST} ({_short(str(run.manifest_sha256))})")
    # history: gap-free 1..N, each entry follows the one before, the pointer is the entry at its seq
    seqs = [int(e["seq"]) for e in history]
    top = max(seqs, default=0)
    for missing_seq in sorted(set(range(1, top + 1)) - set(seqs)):
        problems.append(f"{L.champion_history(missing_seq)}: missing (gap in champion history)")
    by_seq = {int(e["seq"]): e for e in history}
    for seq, entry in sorted(by_seq.items()):
        key = L.champion_history(seq)
        prev = by_seq.get(seq - 1)
        if prev is not None and entry.get("previous") != prev.get("run_id"):
            problems.append(f"{key}: previous is {entry.get('previous')!r} but seq {seq - 1} made "
                            f"{prev.get('run_id')!r} champion (lost history entry?)")
        if seq == 1 and entry.get("previous") is not None:
            problems.append(f"{key}: first entry names a previous champion")
        if entry.get("run_id") not in runs:
            warnings.append(f"{key}: run {entry.get('run_id')} is no longer under runs/")
    cur_seq = int(pointer["seq"]) if pointer is not None and isinstance(pointer.get("seq"), int) else 0
    if pointer is not None and cur_seq:
        if cur_seq not in raw_by_seq:
            problems.append(f"{L.champion_history(cur_seq)}: missing (champion.json has seq {cur_seq})")
        elif raw_by_seq[cur_seq] != raw:
            problems.append(f"{c}: differs from its history entry {L.champion_history(cur_seq)}")
    if raw is None and history and not (len(history) == 1 and history[0].get("previous") is None):
        problems.append(f"{c}: missing although the champion history has {len(history)} entries")
        return pointer, problems, warnings
    for seq in sorted(s for s in by_seq if s > cur_seq and (raw is None or pointer is not None)):
        entry = by_seq[seq]
        current_run = pointer.get("run_id") if pointer is not None else None
        if seq == cur_seq + 1 and entry.get("previous") == current_run:
            warnings.append(f"{L.champion_history(seq)}: interrupted promotion of {entry.get('run_id')} "
                            "(history ahead of champion.json); the next promote or rollback completes it")
        else:
            problems.append(f"{L.champion_history(seq)}: seq {seq} is ahead of champion.json (seq {cur_seq})")
    return pointer, problems, warnings


def audit_store(store: Store, run_id: str | None = None) -> AuditReport:
    """Audit the whole store (or one run plus the champion pointer and history when `run_id` is given)."""
    if run_id is not None and not L.RUN_ID_RE.match(run_id):
        raise StoreError(f"invalid run id {run_id!r}")
    run_names = _group(store.list("runs/"), "runs")
    rej_names = _group(store.list("rejected/"), "rejected")
    champion_raw = store.get(L.CHAMPION) if store.exists(L.CHAMPION) else None
    champion_rid: str | None = None
    if champion_raw is not None:
        try:
            champion_rid = str(json.loads(champion_raw).get("run_id"))
        except (ValueError, AttributeError):
            champion_rid = None
    wanted = None if run_id is None else {run_id} | ({champion_rid} if champion_rid else set())
    problems: list[str] = []
    warnings: list[str] = []
    if run_id is not None and run_id not in run_names and run_id not in rej_names:
        problems.append(f"run {run_id}: not found under runs/ or rejected/ in {store.uri}")

    runs = {rid: verify_run(store, "runs", rid, names) for rid, names in sorted(run_names.items())
            if wanted is None or rid in wanted}
    rejected = [verify_run(store, "rejected", rid, names) for rid, names in sorted(rej_names.items())
                if run_id is None or rid == run_id]
    for r in [*runs.values(), *rejected]:
        problems += r.problems
        if r.state == "incomplete":
            warnings.append(f"INCOMPLETE {r.prefix}/: {r.objects} object(s) but no {L.MANIFEST} "
                            "(interrupted upload; not published, cannot be champion)")
    history, raw_by_seq, hist_problems = read_champion_history(store)
    problems += hist_problems
    pointer, champ_problems, champ_warnings = _check_champion(store, runs, history, raw_by_seq)
    if run_id is not None:  # only the champion's own run was verified: drop noise about other runs
        champ_warnings = [w for w in champ_warnings if "no longer under runs/" not in w]
    problems += champ_problems
    warnings += champ_warnings
    if run_id is None:
        staged = sorted(_group(store.list("staging/"), "staging"))
        warnings += [f"staging/{rid}/: leftover staging files (a run in progress or interrupted)"
                     for rid in staged]
    versions = len(store.versions(L.CHAMPION)) if champion_raw is not None else 0
    return AuditReport(
        store=store.uri, runs=list(runs.values()), rejected=rejected, champion=pointer,
        champion_versions=versions, history=history, problems=problems, warnings=warnings,
    )
