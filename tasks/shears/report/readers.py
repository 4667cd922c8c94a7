"""What a report is built from: one run's typed records, or the runs of a store for the trend page.

Loading never raises on a missing or malformed record: a rejected run keeps only a few records, and a
report must still explain it. A record that does not parse is left out and named in `problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from shears.config import PipelineConfig
from shears.errors import RecordError, ShearsError
from shears.records import (
    BaselineRecord,
    DatasetRef,
    FailureRecord,
    GatesRecord,
    LatencyRecord,
    ManifestRecord,
    MetricsRecord,
    PruneRecord,
    Record,
    SearchRecord,
    SensitivityRecord,
    SparsityRecord,
    ValidationRecord,
)
from shears.store import Store
from shears.store import layout as L

R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class RunRecords:
    """The parsed records of one run; any record may be None (e.g. rejected runs keep only a few)."""

    run_id: str
    status: str  # "passed", "rejected", "failed" (stopped before the gates) or "unknown"
    metrics: MetricsRecord | None = None
    gates: GatesRecord | None = None
    sparsity: SparsityRecord | None = None
    prune: PruneRecord | None = None
    validation: ValidationRecord | None = None
    latency: LatencyRecord | None = None
    config: PipelineConfig | None = None
    failure: FailureRecord | None = None
    created_at: str | None = None
    dataset: DatasetRef | None = None
    versions: Mapping[str, str] | None = None
    git_commit: str | None = None
    timings: Mapping[str, float] | None = None
    champion_compared: str | None = None
    problems: tuple[str, ...] = ()  # records that were present but did not parse
    search: SearchRecord | None = None
    sensitivity: SensitivityRecord | None = None
    model_card: str | None = None  # link to the run's model_card.md, relative to where the report is written
    baseline: BaselineRecord | None = None


@dataclass(frozen=True)
class TrendEntry:
    """One run on the trend page (from its manifest, or its failure.json when it stopped early)."""

    run_id: str
    status: str  # "passed", "rejected" or "failed"
    created_at: str
    deployable: str | None = None
    accuracy: float | None = None
    gzip_bytes: int | None = None
    champion_seqs: tuple[int, ...] = ()  # positions in the champion history naming this run
    current_champion: bool = False
    reason: str | None = None
    report_key: str | None = None  # store key of the run's report.html, when it has one
    changed_data: bool = False  # its champion comparison ran on data the champion was not trained on
    task: str = "multiclass"
    score: str | None = None  # the deployable's primary test metric, named ("accuracy 0.9611", "mse 1.71")


@dataclass
class _Parser:
    files: Mapping[str, bytes]
    where: str
    problems: list[str] = field(default_factory=list)

    def get(self, model: type[R]) -> R | None:
        data = self.files.get(model.FILE)
        if data is None:
            return None
        try:
            return model.from_bytes(data, f"{self.where}/{model.FILE}")
        except RecordError as exc:
            self.problems.append(str(exc))
            return None

    def config(self) -> PipelineConfig | None:
        data = self.files.get(L.CONFIG)
        if data is None:
            return None
        try:
            return PipelineConfig.model_validate_json(data)
        except ValueError as exc:
            self.problems.append(f"{self.where}/{L.CONFIG}: {type(exc).__name__}")
            return None


def records_from_files(
    files: Mapping[str, bytes],
    *,
    run_id: str,
    status: str,
    dataset: DatasetRef | None = None,
    versions: Mapping[str, str] | None = None,
    git_commit: str | None = None,
    timings: Mapping[str, float] | None = None,
    champion_compared: str | None = None,
    created_at: str | None = None,
) -> RunRecords:
    """RunRecords from files (name -> bytes) plus lineage: what the publish step holds before the manifest."""
    p = _Parser(files, run_id)
    return RunRecords(
        run_id=run_id, status=status, metrics=p.get(MetricsRecord), gates=p.get(GatesRecord),
        sparsity=p.get(SparsityRecord), prune=p.get(PruneRecord), validation=p.get(ValidationRecord),
        latency=p.get(LatencyRecord), config=p.config(), failure=p.get(FailureRecord), created_at=created_at,
        dataset=dataset, versions=versions, git_commit=git_commit, timings=timings,
        champion_compared=champion_compared, problems=tuple(p.problems),
        search=p.get(SearchRecord), sensitivity=p.get(SensitivityRecord), baseline=p.get(BaselineRecord),
    )


def _infer_status(manifest: ManifestRecord | None, gates: GatesRecord | None, failure: FailureRecord | None) -> str:
    if manifest is not None:
        return manifest.status
    if failure is not None:
        return "failed"
    if gates is not None:
        return "passed" if gates.passed else "rejected"
    return "unknown"


_RUN_FILES = (L.BASELINE_REC, L.METRICS, L.GATES, L.SPARSITY, L.PRUNE_REC, L.VALIDATION, L.LATENCY, L.CONFIG,
              L.FAILURE, L.MANIFEST, L.SEARCH, L.SENSITIVITY)


def load_run_records(store: Store, prefix: str) -> RunRecords:
    """Read a run's records from runs/<id>/ or rejected/<id>/ (one listing, then only files that exist)."""
    prefix = prefix.strip("/")
    run_id = prefix.rsplit("/", 1)[-1]
    present = set(store.list(prefix + "/"))
    files = {n: store.get(f"{prefix}/{n}") for n in _RUN_FILES if f"{prefix}/{n}" in present}
    p = _Parser(files, prefix)
    manifest = p.get(ManifestRecord)
    gates = p.get(GatesRecord)
    failure = p.get(FailureRecord)
    validation = p.get(ValidationRecord)
    dataset = manifest.dataset if manifest else None
    if dataset is None and validation is not None:
        dataset = DatasetRef(name=validation.dataset, sha256=validation.dataset_sha256, rows=validation.rows)
    config = p.config()
    if config is None and manifest is not None:
        try:
            config = PipelineConfig.model_validate(manifest.config)
        except ValueError:
            config = None
    champion_compared = manifest.champion_compared if manifest else None
    if champion_compared is None and gates is not None and gates.champion is not None:
        champion_compared = gates.champion.run_id
    return RunRecords(
        run_id=manifest.run_id if manifest else run_id,
        status=_infer_status(manifest, gates, failure),
        metrics=p.get(MetricsRecord), gates=gates, sparsity=p.get(SparsityRecord), prune=p.get(PruneRecord),
        validation=validation, latency=p.get(LatencyRecord), config=config, failure=failure,
        created_at=(manifest.created_at if manifest else None) or (failure.at if failure else None),
        dataset=dataset, versions=manifest.versions if manifest else None,
        git_commit=manifest.git_commit if manifest else None, timings=manifest.timings if manifest else None,
        champion_compared=champion_compared, problems=tuple(p.problems),
        search=p.get(SearchRecord), sensitivity=p.get(SensitivityRecord), baseline=p.get(BaselineRecord),
    )


def _champions(store: Store) -> tuple[str | None, dict[str, list[int]]]:
    """Current champion run id and, per run id, its positions in the champion history."""
    from shears.release.champion import read_champion, read_champion_history

    try:
        current = read_champion(store)
    except ShearsError:
        current = None
    seqs: dict[str, list[int]] = {}
    for entry in read_champion_history(store).entries:
        seqs.setdefault(entry.run_id, []).append(entry.seq)
    return (current.run_id if current else None), seqs


def _trend_entry(store: Store, area: L.Area, run_id: str, names: set[str]) -> TrendEntry:
    layout = L.RunLayout(run_id)
    default_status = "passed" if area == "runs" else "rejected"
    if L.MANIFEST in names:
        key = layout.key(area, L.MANIFEST)
        try:
            m = ManifestRecord.from_bytes(store.get(key), key)
        except RecordError as exc:
            return TrendEntry(run_id, default_status, "", reason=str(exc))
        reason = None
        changed = False
        if L.GATES in m.files or store.exists(layout.key(area, L.GATES)):
            try:
                gates = GatesRecord.from_bytes(store.get(layout.key(area, L.GATES)))
                reason = gates.summary if m.status == "rejected" else None
                changed = gates.comparison is not None and gates.comparison.same_data is False
            except RecordError as exc:
                reason = str(exc)
        dep = m.deployable
        return TrendEntry(
            run_id, m.status, m.created_at, deployable=dep.name if dep else None,
            accuracy=dep.accuracy if dep else None, gzip_bytes=dep.gzip_bytes if dep else None, reason=reason,
            report_key=layout.key(area, L.REPORT) if L.REPORT in m.files else None, changed_data=changed,
            task=dep.task if dep else "multiclass", score=dep.score_text() if dep else None,
        )
    try:
        key = layout.key(area, L.FAILURE)
        f = FailureRecord.from_bytes(store.get(key), key)
    except RecordError as exc:
        return TrendEntry(run_id, "failed", "", reason=str(exc))
    return TrendEntry(run_id, "failed", f.at, reason=f"stopped at {f.stage}: {f.reason}")


def load_trend_entries(store: Store, last: int | None = None) -> list[TrendEntry]:
    """The newest `last` runs, oldest first: runs/*/manifest.json, rejected/*/{manifest,failure}.json."""
    found: dict[tuple[L.Area, str], set[str]] = {}
    for area in ("runs", "rejected"):
        for run_id, names in L.group_run_keys(store.list(L.area_prefix(area)), area).items():
            wanted = {n for n in names if n in (L.MANIFEST, L.FAILURE)}
            if wanted:
                found[(area, run_id)] = wanted
    current, seqs = _champions(store)
    entries = [_trend_entry(store, folder, run_id, names) for (folder, run_id), names in found.items()]
    folder_of = {run_id: folder for folder, run_id in found}
    entries.sort(key=lambda e: (e.created_at, e.run_id))
    if last is not None:
        entries = entries[-last:] if last > 0 else []
    out = []
    for e in entries:
        published = folder_of.get(e.run_id) == "runs"
        out.append(TrendEntry(
            e.run_id, e.status, e.created_at, e.deployable, e.accuracy, e.gzip_bytes,
            champion_seqs=tuple(sorted(seqs.get(e.run_id, []))) if published else (),
            current_champion=published and e.run_id == current, reason=e.reason, report_key=e.report_key,
            changed_data=e.changed_data,
        ))
    return out
