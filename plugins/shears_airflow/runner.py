"""The step runner: one Airflow task runs one step of shears.run.steps.STEPS, and Shears' errors get Airflow's
failure semantics (bad config or data and failed gates fail at once; store and network I/O is retried).

Each task's queue, pool, retries and trigger rule come from its step's entry (`task_args`), so they are
declared once, in the library. Nothing here trains, converts or judges anything: the rest of shears.* is
imported inside the functions that need it, so DAG files can import this module at parse time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule
from airflow.sdk.exceptions import AirflowFailException
from shears.run.steps import step as library_step
from shears.store.datauri import location

from shears_airflow.callbacks import holder, log_gate_table
from shears_airflow.hooks import data_exists, open_run_store, s3_client, signing_key
from shears_airflow.lineage import emit_lineage
from shears_airflow.settings import (
    ENV_CONFIG,
    data_uri,
    deployment_policy,
    run_layout,
    search_jobs,
    tf_routing,
)

if TYPE_CHECKING:
    from airflow.sdk import Context
    from shears.run.context import RunContext

log = logging.getLogger("shears.airflow")

# Retry only what is plausibly transient: store / network I/O. Everything else (bad config or data,
# failed gates, a bug, a TensorFlow error) fails at once instead of burning three retries. A lost
# champion race (PreconditionFailed, a StoreError) is not transient: the gate must be re-evaluated.
# Exceptions are named by dotted path (RetryRule checks that they import; all three modules are light).
TRANSIENT_IO_ONLY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception="shears.store.PreconditionFailed",
            action=RetryAction.FAIL,
            reason="the champion changed during this run: not retried (the error says how to proceed)",
        ),
        RetryRule(
            exception=["shears.errors.RecordError", "shears.errors.ConflictError", "shears.errors.InternalError"],
            action=RetryAction.FAIL,
            reason="a broken record or conflicting content reads the same on every retry: not retried",
        ),
        RetryRule(
            exception=["shears.errors.StoreError", "builtins.OSError", "botocore.exceptions.BotoCoreError"],
            action=RetryAction.RETRY,
            reason="transient I/O error: retrying with exponential backoff",
        ),
    ],
    default=RetryAction.FAIL,
)




def task_args(name: str) -> dict[str, Any]:
    """The @task arguments of step `name`, from its entry in shears.run.steps.STEPS: TensorFlow steps on the TF
    queue/pool ($SHEARS_TF_QUEUE, $SHEARS_TF_POOL), no retries where I/O is not what fails (validate, gate),
    and `none_failed` for a step that runs after a fan-out over nothing. One XCom per task
    (multiple_outputs=False): the step's small dict or list."""
    s = library_step(name)
    args: dict[str, Any] = {"task_id": name, "multiple_outputs": False}
    if s.tensorflow:
        args.update(tf_routing())
    if not s.retry_io:
        args["retries"] = 0
    if s.light_when_empty:
        args["trigger_rule"] = "none_failed"
    return args


@contextlib.contextmanager
def fail_fast_on_shears_errors() -> Iterator[None]:
    """Map Shears' non-retryable errors (bad config, bad data, failed gates) to AirflowFailException.

    The original error stays attached as __cause__ (the failure callback reads its exit code).
    Store and network errors pass through unchanged so TRANSIENT_IO_ONLY can retry them.
    """
    from shears.errors import ConfigError, ConflictError, DataError, GateFailure, PromotionRefused, RecordError

    try:
        yield
    except (ConfigError, DataError, GateFailure, RecordError, ConflictError, PromotionRefused) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _current(context: Context | None) -> Context:
    if context is not None:
        return context
    from airflow.sdk import get_current_context

    return get_current_context()


def start_run(context: Context | None = None) -> tuple[RunContext, dict[str, Any]]:
    """Resolve config and data for a new (or cleared) run and begin it (shears.run.lifecycle.begin).

    Config: the `config` param, else $SHEARS_CONFIG, else the embedded defaults. Data: the library's rule
    (lifecycle.choose_data): the `data_uri` param, else the config's data.uri, else the data asset if it
    exists, else the embedded default. A run id that is already published is refused (ConfigError).
    """
    from shears.config import load_config
    from shears.policy import apply_policy
    from shears.run import lifecycle
    from shears.run.pipeline import make_context

    ctx = _current(context)
    params = ctx["params"]
    layout = run_layout(ctx["run_id"])
    store = open_run_store()
    config_path = params.get("config") or os.environ.get(ENV_CONFIG) or None
    cfg = load_config(config_path)
    param_uri = location(params["data_uri"]) if params.get("data_uri") else None
    uri, source = lifecycle.choose_data(param_uri, cfg.data.uri, data_uri(), lambda: data_exists(data_uri()))
    overrides: dict[str, Any] = {}
    if source in ("param", "asset"):
        overrides["data.uri"] = location(uri) if uri else None
    if params.get("model_uri"):
        overrides["model.pretrained"] = location(params["model_uri"])
    if overrides:
        cfg = load_config(config_path, overrides)
    policy = deployment_policy()
    cfg = apply_policy(cfg, policy)  # a config (or params) loosening the deployment's floors: refused here
    # claimed for this DAG run (every task of it, on any worker); run_step keeps it fresh while a task runs
    lifecycle.begin(store, layout, cfg, holder(ctx), force_claim=bool(params.get("force_claim")))
    log.info("shears run %s: store=%s config=%s data=%s (%s)", layout.run_id, store.uri,
             config_path or "embedded defaults", cfg.data.uri or "embedded digits", source)
    info = {"run_id": layout.run_id, "store": store.uri, "config": config_path, "data_source": source}
    return make_context(store, layout.run_id, cfg, s3_client=s3_client, signing_key=signing_key,
                        policy=policy, jobs=search_jobs()), info


def run_context(context: Context | None = None) -> RunContext:
    """Context for every step after validate: the config is the one validate resolved and staged."""
    from shears.config import PipelineConfig
    from shears.run.pipeline import make_context
    from shears.store import layout as L

    ctx = _current(context)
    layout = run_layout(ctx["run_id"])
    store = open_run_store()
    cfg = PipelineConfig.model_validate_json(store.get(layout.staging(L.CONFIG)))
    return make_context(store, layout.run_id, cfg, s3_client=s3_client, signing_key=signing_key,
                        policy=deployment_policy(), jobs=search_jobs())


def run_step(name: str, context: Context | None = None, *, item: Any = None) -> Any:
    """Run one step of shears.run.steps.STEPS in this task (validate also begins the run; a mapped step
    runs for its `item`).

    The run's claim (one writer per run id) is taken by validate, refreshed by every later task while it
    runs (a heartbeat thread), and dropped when publish succeeds or the run fails for good
    (on_task_failure). Whether the step succeeds or fails, its lineage (the data, the champion, what it
    published) is then reported to the OpenLineage provider for this task run (emit_lineage).
    """
    from shears.errors import GateFailure
    from shears.keras import quiet
    from shears.run import lifecycle
    from shears.run.runner import execute

    quiet.install()  # before anything imports TensorFlow or Great Expectations: their start-up noise off
    ctx = _current(context)
    run: RunContext | None = None
    t0 = time.perf_counter()
    try:
        with fail_fast_on_shears_errors():
            if name == "validate":
                run, info = start_run(ctx)
            else:
                run, info = run_context(ctx), {}
                log.info("shears %s: run %s store=%s config=%s data=%s model=%s", name, run.run_id, run.store.uri,
                         "as validated (staged config.json)", run.cfg.data.uri or "embedded digits",
                         run.cfg.model.pretrained or "trained here")
            claim = lifecycle.resume(run.store, run.layout, run.cfg, holder(ctx))
            claim.start_heartbeat()
            try:
                result = execute(run, library_step(name), item)
                if info:
                    result = {**result, **info}
            except GateFailure:
                log_gate_table(run)
                raise
            finally:
                claim.stop_heartbeat()
            if name == "publish":
                lifecycle.end(run.store, run.layout, holder(ctx))
            log.info("shears %s: done in %.1f s: %s", name, time.perf_counter() - t0, one_line(result))
            return result
    finally:
        if run is not None:
            emit_lineage(run, name)


def one_line(result: Any, limit: int = 400) -> str:
    """A step's result as one bounded log line (keys and small numbers; long values elided)."""
    import json

    text = json.dumps(result, sort_keys=True, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 20] + f"... ({len(text)} chars)"

