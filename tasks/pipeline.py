"""The whole chain in one process (what `shears run` and the benchmarks call).

Failures are recorded where audits look (rejected/<run_id>/) and re-raised as typed errors; the
caller maps them to exit codes.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks import layout as L
from tasks import steps
from tasks.config import PipelineConfig
from tasks.errors import ConfigError, DataError, GateFailure, ShearsError
from tasks.storage import LocalStore, Store

log = logging.getLogger(__name__)

STEP_NAMES = ("validate", "baseline", "prune", "strip", "convert", "evaluate", "gate", "publish")


@dataclass
class RunOutcome:
    run_id: str
    store: str
    passed: bool
    results: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    gates: dict[str, Any] | None = None
    sparsity: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None
    error: ShearsError | None = None


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def make_context(
    store: Store, run_id: str, cfg: PipelineConfig, work: Store | None = None,
    s3_client: Callable[[], Any] | None = None,
) -> steps.RunContext:
    try:
        layout = L.RunLayout(run_id)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return steps.RunContext(work=work or store, store=store, layout=layout, cfg=cfg, s3_client=s3_client)


def run_pipeline(
    store: Store,
    cfg: PipelineConfig,
    run_id: str,
    model_uri: str | None = None,
    on_step: Callable[[str, str], None] | None = None,
) -> RunOutcome:
    """Run every step; returns the outcome (passed or a recorded gate failure), raises Config/Data errors."""
    try:
        layout = L.RunLayout(run_id)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if store.exists(layout.run(L.MANIFEST)):
        raise ConfigError(f"run id {run_id} is already published in {store.uri}; choose another --run-id")
    with tempfile.TemporaryDirectory(prefix="shears-work-") as tmp:
        work: Store = store if isinstance(store, LocalStore) else LocalStore(Path(tmp))
        ctx = make_context(store, run_id, cfg, work)
        outcome = RunOutcome(run_id, store.uri, False)
        notify = on_step or (lambda name, state: None)
        plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("validate", lambda: steps.step_validate(ctx)),
            ("baseline", lambda: steps.step_baseline(ctx, model_uri)),
            ("prune", lambda: steps.step_prune(ctx)),
            ("strip", lambda: steps.step_strip(ctx)),
            ("convert", lambda: steps.step_convert(ctx)),
            ("evaluate", lambda: steps.step_evaluate(ctx)),
            ("gate", lambda: steps.step_gate(ctx)),
            ("publish", lambda: steps.step_publish(ctx)),
        ]
        current = "validate"
        try:
            for current, fn in plan:
                notify(current, "start")
                if current == "publish":
                    _collect(ctx, outcome)
                outcome.results[current] = fn()
                notify(current, "done")
            outcome.passed = True
            return outcome
        except GateFailure as exc:
            notify(current, "failed")
            outcome.error = exc
            return outcome
        except (ConfigError, DataError) as exc:
            notify(current, "failed")
            extra = {}
            if ctx.work.exists(ctx.layout.staging(L.VALIDATION)):
                extra[L.VALIDATION] = ctx.get(L.VALIDATION)
            try:
                steps.record_failure(store, ctx.layout, current, str(exc), exc.exit_code, extra)
                ctx.work.delete_prefix(ctx.layout.staging_prefix)
            except ShearsError as record_exc:  # keep the original error (and its exit code) for the caller
                log.warning("could not record the failure of run %s: %s", run_id, record_exc)
            raise


def _collect(ctx: steps.RunContext, outcome: RunOutcome) -> None:
    outcome.metrics = ctx.get_json(L.METRICS)
    outcome.gates = ctx.get_json(L.GATES)
    outcome.sparsity = ctx.get_json(L.SPARSITY)
    outcome.latency = ctx.get_json(L.LATENCY)
