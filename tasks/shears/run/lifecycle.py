"""The life of one run id, the same in the CLI and in Airflow: begin, publish once, reject, record a failure.

    begin          refuse an already-published run id; clear this id's staging and rejected records
    reject         a failed gate: records only (never model files) under rejected/<id>/, then GateFailure
    publish_once   a passing run to runs/<id>/ (manifest last) and promote it; a retry after a completed
                   publish reports it instead of redoing it
    record_failure why a run stopped (failure.json + the small records staged so far) under rejected/<id>/

The CLI (shears.run.pipeline) and the DAG (plugins/shears_airflow.py) call these and nothing else, so
a run's folders look the same whichever ran it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NoReturn

from shears.config import PipelineConfig
from shears.errors import ConfigError, DataError, GateFailure, RecordError, ShearsError, StoreError
from shears.records import (
    DatasetRef,
    DeployableRef,
    FailureRecord,
    GatesRecord,
    HolderRecord,
    ManifestRecord,
    MetricsRecord,
    TimingRecord,
    ValidationRecord,
)
from shears.run import provenance
from shears.run.claim import Claim, acquire
from shears.run.context import RunContext
from shears.store import PreconditionFailed, Store
from shears.store import layout as L

log = logging.getLogger(__name__)


DataSource = str  # "param" | "config" | "asset" | "embedded"


def choose_data(param: str | None, configured: str | None, asset: str | None = None,
                asset_exists: Callable[[], bool] | None = None) -> tuple[str | None, DataSource]:
    """Which data a run trains on: an explicit URI (flag or DAG param), else the config's data.uri, else
    the data asset when it exists (Airflow), else the embedded digits (None)."""
    if param:
        return param, "param"
    if configured:
        return configured, "config"
    if asset and asset_exists is not None and asset_exists():
        return asset, "asset"
    return None, "embedded"


def begin(store: Store, layout: L.RunLayout, cfg: PipelineConfig, holder: HolderRecord, *,
          work: Store | None = None, force_claim: bool = False) -> Claim:
    """Start (or restart) a run id: refuse one already published, claim it (one writer per run id), then
    clear its staging and rejected records and stage the claim (published with the run as claim.json).

    A new attempt of a run id always starts clean, so nothing a killed or failed attempt staged can end
    up in what this attempt publishes. The caller releases the claim when the run ends.
    """
    if store.exists(layout.run(L.MANIFEST)):
        raise ConfigError(f"run id {layout.run_id} is already published in {store.uri}; choose another run id")
    claim = acquire(store, layout.run_id, holder, stale_after_s=cfg.claim.stale_after_s,
                    heartbeat_s=cfg.claim.heartbeat_s, force=force_claim)
    try:
        work = work or store
        work.delete_prefix(layout.staging_prefix)
        store.delete_prefix(layout.rejected_prefix)
        work.put(layout.staging(L.CLAIM_REC), claim.record.to_bytes())
    except BaseException:
        claim.release()
        raise
    return claim


def resume(store: Store, layout: L.RunLayout, cfg: PipelineConfig, holder: HolderRecord) -> Claim:
    """A later step of a run begun elsewhere (Airflow: another task, maybe another worker): the run must
    still hold its claim; it is refreshed (and kept fresh by the caller's heartbeat) while the step runs."""
    from shears.run.claim import resume as resume_claim

    return resume_claim(store, layout.run_id, holder, heartbeat_s=cfg.claim.heartbeat_s)


def end(store: Store, layout: L.RunLayout, holder: HolderRecord) -> None:
    """The run is over (published, rejected or failed for good): drop its claim if this holder still has it."""
    from shears.run.claim import drop_if_ours

    drop_if_ours(store, layout.run_id, holder)


def failure_record(run_id: str, stage: str, reason: str, exit_code: int) -> FailureRecord:
    return FailureRecord(run_id=run_id, stage=stage, exit_code=exit_code, reason=reason,
                         at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def record_failure(store: Store, layout: L.RunLayout, stage: str, error: BaseException | str | None,
                   work: Store | None = None) -> str:
    """Write rejected/<id>/failure.json (with the small records staged so far) so audits see why a run stopped.

    A rejection already recorded completely by the gate step is kept intact; partial records of an earlier
    attempt are replaced. Staging is dropped after a config or data error (nothing to resume) and kept
    after other failures, so a failed I/O step can be retried or resumed. Returns the key written.
    """
    work = work or store
    if store.exists(layout.rejected(L.MANIFEST)):
        return layout.rejected(L.MANIFEST)
    exit_code = error.exit_code if isinstance(error, ShearsError) else 1
    if error is None:
        reason = "stopped without an exception (killed, timed out or its worker was lost)"
    elif isinstance(error, ShearsError):
        reason = str(error) or type(error).__name__
    elif isinstance(error, BaseException):
        reason = f"{type(error).__name__}: {error}"
    else:
        reason = str(error)
    kept = {}
    for name in L.FAILURE_KEEPS:
        try:
            if work.exists(layout.staging(name)):
                kept[name] = work.get(layout.staging(name))
        except StoreError:
            continue
    store.delete_prefix(layout.rejected_prefix)
    for name, data in kept.items():
        store.put(layout.rejected(name), data)
    key = layout.rejected(L.FAILURE)
    store.put(key, failure_record(layout.run_id, stage, reason, exit_code).to_bytes())
    if isinstance(error, ConfigError | DataError):
        work.delete_prefix(layout.staging_prefix)
    return key


def _step_records(ctx: RunContext) -> list[TimingRecord]:
    prefix = ctx.layout.staging(L.TIMINGS_DIR) + "/"
    return [TimingRecord.from_bytes(ctx.work.get(key), key) for key in ctx.work.list(prefix)]


def _staged_files(ctx: RunContext, steps: list[TimingRecord]) -> dict[str, bytes]:
    """The files this attempt's steps recorded writing (never a directory listing), plus the staged claim.

    A file some other attempt left in staging is not listed by any step record of this attempt, so it is
    never published; a listed file that is missing is an error, not a silent omission.
    """
    names = {L.CLAIM_REC, *(name for rec in steps for name in rec.outputs)}
    files = {}
    for name in sorted(names):
        if any(name == only or name.startswith(only + "/") for only in L.STAGING_ONLY):
            continue
        if not ctx.has(name):
            if name == L.CLAIM_REC:
                continue
            raise StoreError(f"run {ctx.run_id}: {ctx.layout.staging(name)} is listed by a step record but missing")
        files[name] = ctx.get(name)
    return files


def _release(ctx: RunContext, status: str, t0: float) -> tuple[dict[str, bytes], ManifestRecord]:
    """The files to publish (the report included) and their manifest, from the staged records."""
    from shears.release.manifest import build_manifest, git_commit, versions
    from shears.report import build_run_report, records_from_files

    gates = ctx.get_record(GatesRecord)
    metrics = ctx.get_record(MetricsRecord)
    validation = ctx.get_record(ValidationRecord)
    dep = metrics.deployable_artifact
    steps = _step_records(ctx)
    files = _staged_files(ctx, steps)
    timings = {rec.step: rec.seconds for rec in steps}
    dataset = DatasetRef(name=validation.dataset, sha256=validation.dataset_sha256, rows=validation.rows)
    champion_compared = gates.champion.run_id if gates.champion else None
    commit = git_commit()

    records = records_from_files(
        files, run_id=ctx.run_id, status=status, dataset=dataset, versions=versions(), git_commit=commit,
        timings=timings, champion_compared=champion_compared,
    )
    prov = provenance.add_provenance(ctx, files, records, timings)  # model card into files; machines; signature
    files[L.REPORT] = build_run_report(replace(records, model_card=L.MODEL_CARD_MD)).encode()
    ctx.put(L.REPORT, files[L.REPORT])
    if status == "rejected":
        files[L.FAILURE] = failure_record(ctx.run_id, "gate", gates.summary, GateFailure.exit_code).to_bytes()
        files = {k: v for k, v in files.items() if k in L.REJECTED_FILES}
    timings["publish"] = round(time.perf_counter() - t0, 3)
    manifest = build_manifest(
        run_id=ctx.run_id, status="passed" if status == "passed" else "rejected", files=files,
        config=ctx.cfg.to_json(), dataset=dataset, timings=timings, gates_passed=gates.passed,
        deployable=DeployableRef(name=dep.name, file=dep.file, accuracy=dep.accuracy, gzip_bytes=dep.gzip_bytes,
                                 metrics=dict(dep.metrics), primary=dep.primary, task=metrics.task,
                                 raw_bytes=dep.raw_bytes, runtimes=metrics.runtimes()),
        champion_compared=champion_compared, commit=commit, machines=prov.machines, signature=prov.signature,
    )
    return files, manifest


def reject(ctx: RunContext, gates: GatesRecord) -> NoReturn:
    """Record a failed gate under rejected/<id>/ (records and report, never model files) and raise GateFailure."""
    from shears.release.publish import publish_files

    files, manifest = _release(ctx, "rejected", time.perf_counter())
    publish_files(ctx.store, ctx.layout, "rejected", files, manifest, key=ctx.signer())
    ctx.work.delete_prefix(ctx.layout.staging_prefix)
    raise GateFailure(gates.summary)


def publish(ctx: RunContext, *, promote: bool = True) -> dict[str, Any]:
    """Publish a passing run to runs/<id>/ (manifest last), then promote it with a conditional write."""
    from shears.release.champion import read_champion, set_champion
    from shears.release.publish import publish_files

    t0 = time.perf_counter()
    gates = ctx.get_record(GatesRecord)
    if not gates.passed:  # the gate step rejects failing runs; never publish one by accident
        raise GateFailure(gates.summary)
    files, manifest = _release(ctx, "passed", t0)
    publish_files(ctx.store, ctx.layout, "runs", files, manifest, key=ctx.signer())
    champion = None
    if promote:
        expected = gates.champion.etag if gates.champion else None
        current = read_champion(ctx.store)
        if current is not None and current.run_id == ctx.run_id:
            champion = current.run_id  # a retried publish of the champion itself: nothing to do
        else:
            try:
                champion = set_champion(ctx.store, ctx.run_id, action="promote", by=ctx.run_id,
                                        expected_etag=expected).run_id
            except PreconditionFailed as exc:
                # published and complete: nothing of this run is left to redo, so its staging goes
                ctx.work.delete_prefix(ctx.layout.staging_prefix)
                raise PreconditionFailed(
                    f"run {ctx.run_id} is published ({ctx.layout.run_prefix}) but not champion: {exc}; compare "
                    f"them (`shears audit {ctx.store.uri}`) and promote it with "
                    f"`shears promote {ctx.store.uri} {ctx.run_id}`"
                ) from None
    ctx.work.delete_prefix(ctx.layout.staging_prefix)
    return {
        "run": ctx.layout.run_prefix,
        "manifest": ctx.layout.run(L.MANIFEST),
        "report": ctx.layout.run(L.REPORT),
        "champion": champion,
        "store": ctx.store.uri,
    }


def publish_once(ctx: RunContext) -> dict[str, Any]:
    """`publish`, safe to retry: a run whose publish already completed is reported, not redone.

    `publish` deletes staging as its very last action, so "nothing staged but a manifest" means an
    earlier attempt finished (the worker died before Airflow heard of it). With staging still present,
    `publish` simply runs again: files are rewritten identically, and a champion that already is this
    run is left alone.
    """
    from shears.release.champion import read_champion

    layout, store = ctx.layout, ctx.store
    if not ctx.has(L.GATES):
        if store.exists(layout.run(L.MANIFEST)):
            try:
                status = ManifestRecord.from_bytes(store.get(layout.run(L.MANIFEST))).status
            except RecordError:
                status = None
            champion = read_champion(store)
            log.info("run %s was already published by an earlier attempt; nothing to do", layout.run_id)
            return {
                "run": layout.run_prefix,
                "manifest": layout.run(L.MANIFEST),
                "champion": champion.run_id if champion else None,
                "store": store.uri,
                "status": status,
                "already_published": True,
            }
        raise StoreError(f"run {layout.run_id}: nothing staged and nothing published in {store.uri}")
    return publish(ctx)
