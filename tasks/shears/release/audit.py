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

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shears.errors import RecordError
from shears.records import ChampionRecord, ClaimRecord
from shears.release.champion import History, read_champion, read_champion_history
from shears.release.verify import RunAudit, verify_run
from shears.store import Store
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.release.signing import Trust


def _short(digest: str) -> str:
    return digest[:12] + "…"


@dataclass(frozen=True)
class AuditReport:
    store: str
    runs: list[RunAudit]
    rejected: list[RunAudit]
    champion: ChampionRecord | None
    champion_versions: int
    history: list[ChampionRecord]
    problems: list[str]
    warnings: list[str]
    signatures_checked: bool = False  # trusted keys (or a signing requirement) were given

    @property
    def ok(self) -> bool:
        return not self.problems

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.problems or (strict and self.warnings) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "runs": [_run_dict(r) for r in self.runs],
            "rejected": [_run_dict(r) for r in self.rejected],
            "champion": self.champion.to_json() if self.champion else None,
            "champion_versions": self.champion_versions,
            "history": [e.to_json() for e in self.history],
            "problems": self.problems,
            "warnings": self.warnings,
            "signatures_checked": self.signatures_checked,
            "ok": self.ok,
        }

    def signature_summary(self) -> str:
        """One line: how many complete folders are verified / signed (unchecked) / unsigned / invalid."""
        complete = [r for r in [*self.runs, *self.rejected] if r.state == "complete"]
        states = ("verified", "signed", "unsigned", "invalid")
        counts = {k: sum(1 for r in complete if r.signature == k) for k in states}
        parts = [f"{n} {k}" for k, n in counts.items() if n]
        how = "checked against trusted keys" if self.signatures_checked else "not checked (no --trust key)"
        return f"signatures: {', '.join(parts) or 'no published runs'}; {how}"


def _run_dict(r: RunAudit) -> dict[str, Any]:
    d = asdict(r)
    d["deployable"] = r.deployable.model_dump(mode="json") if r.deployable else None
    return d


def _check_champion(
    store: Store, runs: dict[str, RunAudit], history: History,
) -> tuple[ChampionRecord | None, list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    c = L.CHAMPION
    raw: bytes | None = None
    pointer: ChampionRecord | None = None
    try:
        current = read_champion(store)
        if current is not None:
            raw, pointer = current.raw, current.pointer
    except RecordError as exc:
        raw = b""  # present but unreadable
        problems.append(str(exc))
    if pointer is not None:
        rid = pointer.run_id
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
            if pointer.manifest_sha256 != run.manifest_sha256:
                problems.append(f"{c}: manifest_sha256 {_short(pointer.manifest_sha256)} does not match "
                                f"{L.RunLayout(rid).run(L.MANIFEST)} ({_short(str(run.manifest_sha256))})")
    # history: gap-free 1..N, each entry follows the one before, the pointer is the entry at its seq
    by_seq = {e.seq: e for e in history.entries}
    top = max(by_seq, default=0)
    for missing_seq in sorted(set(range(1, top + 1)) - set(by_seq)):
        problems.append(f"{L.champion_history(missing_seq)}: missing (gap in champion history)")
    for seq, entry in sorted(by_seq.items()):
        key = L.champion_history(seq)
        prev = by_seq.get(seq - 1)
        if prev is not None and entry.previous != prev.run_id:
            problems.append(f"{key}: previous is {entry.previous!r} but seq {seq - 1} made "
                            f"{prev.run_id!r} champion (lost history entry?)")
        if seq == 1 and entry.previous is not None:
            problems.append(f"{key}: first entry names a previous champion")
        if entry.run_id not in runs:
            warnings.append(f"{key}: run {entry.run_id} is no longer under runs/")
    cur_seq = pointer.seq if pointer is not None else 0
    if pointer is not None:
        if cur_seq not in history.raw_by_seq:
            problems.append(f"{L.champion_history(cur_seq)}: missing (champion.json has seq {cur_seq})")
        elif history.raw_by_seq[cur_seq] != raw:
            problems.append(f"{c}: differs from its history entry {L.champion_history(cur_seq)}")
    entries = history.entries
    if raw is None and entries and not (len(entries) == 1 and entries[0].previous is None):
        problems.append(f"{c}: missing although the champion history has {len(entries)} entries")
        return pointer, problems, warnings
    for seq in sorted(s for s in by_seq if s > cur_seq and (raw is None or pointer is not None)):
        entry = by_seq[seq]
        current_run = pointer.run_id if pointer is not None else None
        if seq == cur_seq + 1 and entry.previous == current_run:
            warnings.append(f"{L.champion_history(seq)}: interrupted promotion of {entry.run_id} "
                            "(history ahead of champion.json); the next promote or rollback completes it")
        else:
            problems.append(f"{L.champion_history(seq)}: seq {seq} is ahead of champion.json (seq {cur_seq})")
    return pointer, problems, warnings


def _claim_warnings(store: Store) -> list[str]:
    """Claims without a fresh heartbeat: a run that died mid-way (its id needs --force-claim to be reused)."""
    out = []
    now = dt.datetime.now(dt.UTC)
    for key in store.list(L.CLAIMS_DIR + "/"):
        try:
            claim = ClaimRecord.from_bytes(store.get(key), key)
            age = (now - dt.datetime.fromisoformat(claim.heartbeat_at)).total_seconds()
        except (RecordError, ValueError) as exc:
            out.append(f"{key}: unreadable claim ({exc})")
            continue
        if age > claim.stale_after_s:
            out.append(f"{key}: held by {claim.holder.describe()} with no heartbeat for {age:.0f} s (stale after "
                       f"{claim.stale_after_s:.0f} s): a run that stopped; `shears run --force-claim` reuses the id")
    return out


def audit_store(store: Store, run_id: str | None = None, trust: Trust | None = None) -> AuditReport:
    """Audit the whole store (or one run plus the champion pointer and history when `run_id` is given).

    With `trust`, every complete folder's signature is checked against the trusted keys (the champion's
    run included); see shears.release.verify.verify_run for what counts as a problem.
    """
    if run_id is not None:
        L.check_run_id(run_id)
    run_names = L.group_run_keys(store.list(L.area_prefix("runs")), "runs")
    rej_names = L.group_run_keys(store.list(L.area_prefix("rejected")), "rejected")
    try:
        current = read_champion(store)
    except RecordError:
        current = None  # reported by _check_champion
    champion_rid = current.run_id if current else None
    wanted = None if run_id is None else {run_id} | ({champion_rid} if champion_rid else set())
    problems: list[str] = []
    warnings: list[str] = []
    if run_id is not None and run_id not in run_names and run_id not in rej_names:
        problems.append(f"run {run_id}: not found under runs/ or rejected/ in {store.uri}")

    runs = {rid: verify_run(store, "runs", rid, names, trust) for rid, names in sorted(run_names.items())
            if wanted is None or rid in wanted}
    rejected = [verify_run(store, "rejected", rid, names, trust) for rid, names in sorted(rej_names.items())
                if run_id is None or rid == run_id]
    for r in [*runs.values(), *rejected]:
        problems += r.problems
        warnings += r.warnings
        if r.state == "incomplete":
            warnings.append(f"INCOMPLETE {r.prefix}/: {r.objects} object(s) but no {L.MANIFEST} "
                            "(interrupted upload; not published, cannot be champion)")
    history = read_champion_history(store)
    problems += history.problems
    pointer, champ_problems, champ_warnings = _check_champion(store, runs, history)
    if run_id is not None:  # only the champion's own run was verified: drop noise about other runs
        champ_warnings = [w for w in champ_warnings if "no longer under runs/" not in w]
    problems += champ_problems
    warnings += champ_warnings
    if run_id is None:
        warnings += _claim_warnings(store)
        staged = sorted(L.group_run_keys(store.list(L.area_prefix("staging")), "staging"))
        warnings += [f"{L.RunLayout(rid).staging_prefix}/: leftover staging files (a run in progress or interrupted)"
                     for rid in staged]
    versions = len(store.versions(L.CHAMPION)) if store.exists(L.CHAMPION) else 0
    return AuditReport(
        store=store.uri, runs=list(runs.values()), rejected=rejected, champion=pointer,
        champion_versions=versions, history=history.entries, problems=problems, warnings=warnings,
        signatures_checked=trust is not None and trust.active,
    )
