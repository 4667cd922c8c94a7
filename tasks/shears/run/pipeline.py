"""The whole chain in one process (what `shears run`, the Python API and the benchmarks call).

It runs `shears.run.steps.STEPS` in order through the same lifecycle as the Airflow DAG: begin, every
step, and on failure the same failure record naming the same step.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shears.config import PipelineConfig
from shears.errors import GateFailure, RecordError, ShearsError, StoreError
from shears.policy import Policy, apply_policy
from shears.records import GatesRecord, LatencyRecord, MetricsRecord, SearchRecord, SparsityRecord
from shears.run import lifecycle
from shears.run.claim import Claim, this_process
from shears.run.context import RunContext
from shears.run.runner import execute
from shears.run.steps import STEPS, Step
from shears.store import LocalStore, Store
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.release.signing import SigningKey

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    run_id: str
    store: str
    passed: bool
    results: dict[str, Any] = field(default_factory=dict)
    metrics: MetricsRecord | None = None
    gates: GatesRecord | None = None
    sparsity: SparsityRecord | None = None
    latency: LatencyRecord | None = None
    search: SearchRecord | None = None
    error: ShearsError | None = None


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def make_context(
    store: Store, run_id: str, cfg: PipelineConfig, work: Store | None = None,
    s3_client: Callable[[], Any] | None = None, signing_key: Callable[[], SigningKey | None] | None = None,
    policy: Policy | None = None, jobs: int = 1,
) -> RunContext:
    """The context of one run; the config is first held to the deployment's policy (ConfigError if it loosens it).
    `jobs`: trials that run at once (the search budgets its rounds by it)."""
    policy = policy or Policy()
    return RunContext(work=work or store, store=store, layout=L.RunLayout(run_id), cfg=apply_policy(cfg, policy),
                      s3_client=s3_client, signing_key=signing_key, policy=policy, jobs=jobs)


def _collect(ctx: RunContext, outcome: RunOutcome, after: str) -> None:
    """Keep the records the CLI prints, read from staging before publish or reject clears it."""
    if after == "select":
        outcome.search = ctx.get_record(SearchRecord)
    elif after == "evaluate":
        outcome.metrics = ctx.get_record(MetricsRecord)
        outcome.sparsity = ctx.get_record(SparsityRecord)
        outcome.latency = ctx.get_record(LatencyRecord)
    elif after == "gate":
        outcome.gates = ctx.get_record(GatesRecord)


def run_pipeline(
    store: Store,
    cfg: PipelineConfig,
    run_id: str,
    on_step: Callable[[str, str], None] | None = None,
    *,
    force_claim: bool = False,
    jobs: int = 1,
    signing_key: SigningKey | None = None,
    policy: Policy | None = None,
) -> RunOutcome:
    """Run every step; returns the outcome (passed, or a recorded gate failure); raises other ShearsErrors.

    The run id is claimed first (one writer per run id; `force_claim` takes over a stale claim) and the
    claim is released at the end, whatever happened. Every failure but a store failure is recorded under
    rejected/<run_id>/ naming the step it happened in, as in Airflow. With `signing_key`, the published (or
    rejected) folder is signed. `policy` holds the config to the deployment's gate floors (shears.policy).
    When an OpenLineage transport is configured, every step emits START and
    COMPLETE/FAIL events (shears.release.lineage).
    """
    layout = L.RunLayout(run_id)
    policy = policy or Policy()
    cfg = apply_policy(cfg, policy)  # a config that loosens the deployment's floors: refused before the claim
    with tempfile.TemporaryDirectory(prefix="shears-work-") as tmp:
        work: Store = store if isinstance(store, LocalStore) else LocalStore(Path(tmp))
        claim = lifecycle.begin(store, layout, cfg, this_process(), work=work, force_claim=force_claim)
        claim.start_heartbeat()
        try:
            outcome = _run_steps(store, cfg, layout, work, claim, on_step, jobs, signing_key, policy)
        except (StoreError, RecordError) as exc:
            claim.stop_heartbeat()
            if isinstance(exc, RecordError):
                claim.release()
            else:  # the store is failing: releasing would only add another round of bounded retries
                log.warning("run %s: the claim on its id stays; rerun with --force-claim", run_id)
            raise
        except BaseException:
            claim.release()
            raise
        claim.release()
        return outcome


def _run_steps(store: Store, cfg: PipelineConfig, layout: L.RunLayout, work: Store, claim: Claim,
               on_step: Callable[[str, str], None] | None, jobs: int = 1,
               signing_key: SigningKey | None = None, policy: Policy | None = None) -> RunOutcome:
    ctx = make_context(store, layout.run_id, cfg, work, signing_key=lambda: signing_key, policy=policy, jobs=jobs)
    ctx.written.append(L.CLAIM_REC)
    outcome = RunOutcome(layout.run_id, store.uri, False)
    notify = _with_lineage(ctx, on_step or (lambda name, state: None))
    current = STEPS[0].name
    try:
        for step in STEPS:
            current = step.name
            claim.check()  # another run took this run id over: stop before writing anything more
            if step.expands is not None:
                items = outcome.results.get(step.expands) or []
                if not items:
                    outcome.results[current] = []
                    continue  # Airflow skips a mapped task with nothing to map over
                notify(current, "start")
                outcome.results[current] = _run_items(ctx, step, items, jobs)
            else:
                notify(current, "start")
                outcome.results[current] = execute(ctx, step)
                if current == "validate":  # every later step runs on the config validate resolved and staged
                    ctx = replace(ctx, cfg=PipelineConfig.model_validate_json(ctx.get(L.CONFIG)))
            notify(current, "done")
            if current in ("select", "evaluate", "gate"):
                _collect(ctx, outcome, current)
        outcome.passed = True
        return outcome
    except GateFailure as exc:
        notify(current, "failed")
        outcome.error = exc
        if current == "gate":
            outcome.gates = _rejected_gates(store, layout)
        _record(store, layout, current, exc, work)
        return outcome
    except ShearsError as exc:
        notify(current, "failed")
        # When the store itself just failed (after its bounded retries), a second round of retries to
        # write failure.json would double the wait and most likely fail the same way: staging is kept,
        # and a rerun of the same run id starts clean (lifecycle.begin). Broken records are recorded.
        if not isinstance(exc, StoreError):
            _record(store, layout, current, exc, work)
        raise


def _run_items(ctx: RunContext, step: Step, items: list[Any], jobs: int) -> list[Any]:
    """A fanned-out step: its items in sequence, or in `jobs` processes (each with its share of the cores)."""
    if jobs <= 1 or len(items) <= 1 or not isinstance(ctx.work, LocalStore):
        return [step.run(ctx, item) for item in items]
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // jobs)
    spec = (str(ctx.work.root), ctx.run_id, ctx.cfg.to_json(), step.name, ctx.jobs)
    with ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        return list(pool.map(_run_item, [spec] * len(items), items))


def _init_worker(threads: int) -> None:
    """Before TensorFlow loads in a worker process: its thread pools sized so workers do not share cores."""
    import os

    os.environ["SHEARS_TF_THREADS"] = str(threads)


def _run_item(spec: tuple[str, str, dict[str, Any], str, int], item: Any) -> Any:
    from shears.config import build_config
    from shears.run.steps import step as find_step

    root, run_id, raw_cfg, name, jobs = spec
    work = LocalStore(root)
    ctx = make_context(work, run_id, build_config(raw_cfg), work, jobs=jobs)
    return find_step(name).run(ctx, item)


def _with_lineage(ctx: RunContext, notify: Callable[[str, str], None]) -> Callable[[str, str], None]:
    """`notify`, plus OpenLineage events per step when a transport is configured (pipeline run events too)."""
    from shears.release.lineage import transport_configured

    if not transport_configured():
        return notify
    from openlineage.client.event_v2 import RunState

    from shears.release.lineage import CliLineage

    lineage = CliLineage(ctx.store, ctx.layout, ctx.cfg.data.uri, ctx.work)
    lineage.pipeline(RunState.START)
    states = {"start": RunState.START, "done": RunState.COMPLETE, "failed": RunState.FAIL}

    def both(name: str, state: str) -> None:
        notify(name, state)
        lineage.step(name, states[state])
        if state == "failed" or (state == "done" and name == STEPS[-1].name):
            lineage.pipeline(RunState.FAIL if state == "failed" else RunState.COMPLETE)
            lineage.close()

    return both


def _rejected_gates(store: Store, layout: L.RunLayout) -> GatesRecord | None:
    try:
        return GatesRecord.from_bytes(store.get(layout.rejected(L.GATES)))
    except ShearsError:
        return None


def _record(store: Store, layout: L.RunLayout, stage: str, exc: ShearsError, work: Store) -> None:
    try:
        lifecycle.record_failure(store, layout, stage, exc, work)
    except ShearsError as record_exc:  # keep the original error (and its exit code)
        log.warning("could not record the failure of run %s: %s", layout.run_id, record_exc)
