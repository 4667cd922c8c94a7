"""Airflow-side wiring for Shears, shared by the DAGs (dags/) and the plugin (shears_plugin.py).

Nothing here trains, converts or judges anything: it only resolves where things live (store, data,
config), maps Shears errors to Airflow's failure semantics and records failures. Importing it must
stay cheap (DAG files import it at parse time): stdlib, airflow.sdk and the stdlib-only shears.store.datauri
at module level; the rest of shears.* and the Amazon provider are imported inside the functions that
need them.

Airflow puts the plugins folder on sys.path in every component (scheduler, DAG processor, workers,
API server), which is why this module lives here and not in dags/.

Environment (read at run time by tasks, at parse time only for the data asset's URI):
    SHEARS_STORE        artifact store: a directory or s3://bucket/prefix
                        (default: $AIRFLOW_HOME/shears-store). Staging lives in the same store.
    SHEARS_DATA_URI     the data asset: file:///abs/path.npz or s3://bucket/key
                        (default: file://$AIRFLOW_HOME/shears-incoming/data.npz; shears.store.datauri, shared
                        with `shears data push`)
    SHEARS_CONFIG       pipeline YAML used when a run has no `config` param (default: embedded defaults)
    SHEARS_AWS_CONN_ID  Airflow connection for s3:// stores and data (default: aws_default)
    SHEARS_SIGNING_CONN_ID  Airflow connection holding the private signing key (default: shears_signing;
                        the PEM in its password, an optional passphrase in extra.passphrase; from the
                        metadata DB, AIRFLOW_CONN_* or any secrets backend). Missing: runs are unsigned.
    SHEARS_TF_QUEUE     (parse time, optional) worker queue for the TensorFlow tasks
    SHEARS_TF_POOL      (parse time, optional) pool for the TensorFlow tasks, e.g. to cap concurrent trainings
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, ExceptionRetryPolicy, RetryAction, RetryRule
from airflow.sdk.exceptions import AirflowFailException

# The data asset's URI and file:// handling, shared with `shears data push` (re-exported for the DAGs).
from shears.store.datauri import airflow_home, location
from shears.store.datauri import default_data_uri as data_uri

if TYPE_CHECKING:
    from airflow.sdk import Context
    from shears.release.signing import SigningKey
    from shears.run.context import RunContext
    from shears.store import Store
    from shears.store.layout import RunLayout

log = logging.getLogger("shears.airflow")

PIPELINE_DAG_ID = "shears_pipeline"
SEARCH_ROUNDS = 3  # the DAG's fixed number of trial fan-outs (shears.run.steps.SEARCH_ROUNDS; a test checks)
PRODUCER_DAG_ID = "shears_data_push"

ENV_STORE = "SHEARS_STORE"
ENV_CONFIG = "SHEARS_CONFIG"
ENV_AWS_CONN = "SHEARS_AWS_CONN_ID"
ENV_TF_QUEUE = "SHEARS_TF_QUEUE"
ENV_TF_POOL = "SHEARS_TF_POOL"
ENV_SIGNING_CONN = "SHEARS_SIGNING_CONN_ID"

# Parameter patterns (JSON-schema regexes, checked by Airflow when a run is triggered: a bad value creates no run).
# Airflow shows the raw pattern when one fails, so they stay short; each Param's description says the rule in
# words with an example. Finer checks (bucket names, that the file exists) are validate's, with one-line errors.
CONFIG_PATTERN = r"^/\S*\.ya?ml$"
DATA_URI_PATTERN = r"^(/|file:///|s3://)\S+\.(npz|csv|parquet|pq)$"
MODEL_URI_PATTERN = r"^(/|file:///|s3://)\S+\.(keras|h5)$"

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
            exception=["shears.errors.StoreError", "builtins.OSError", "botocore.exceptions.BotoCoreError"],
            action=RetryAction.RETRY,
            reason="transient I/O error: retrying with exponential backoff",
        ),
    ],
    default=RetryAction.FAIL,
)


# --------------------------------------------------------------------------- where things live


def store_uri() -> str:
    """The artifact store every task (and the links) use: $SHEARS_STORE or $AIRFLOW_HOME/shears-store."""
    return os.environ.get(ENV_STORE) or str(airflow_home() / "shears-store")


def data_asset() -> Asset:
    """The data asset. Its name is its URI: Airflow keeps one active asset per name, so a fixed name
    would turn the asset inactive (and fail the producer) after SHEARS_DATA_URI changes."""
    return Asset(uri=data_uri(), group="shears")


def tf_task_args() -> dict[str, Any]:
    """Routing for the tasks that import TensorFlow: $SHEARS_TF_QUEUE / $SHEARS_TF_POOL when set
    (workers with TF and enough memory; a pool capping concurrent trainings), else Airflow's defaults."""
    out: dict[str, Any] = {}
    if queue := os.environ.get(ENV_TF_QUEUE):
        out["queue"] = queue
    if pool := os.environ.get(ENV_TF_POOL):
        out["pool"] = pool
    return out


def aws_conn_id() -> str:
    return os.environ.get(ENV_AWS_CONN) or "aws_default"


def s3_client() -> Any:
    """A boto3 S3 client built from the Airflow connection (credentials, region, endpoint_url)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    try:  # bounded botocore retries and timeouts, as the CLI's own client uses
        from shears.store.s3 import client_config

        config = client_config()
    except ImportError:
        config = None
    return S3Hook(aws_conn_id=aws_conn_id(), config=config).get_conn()


def signing_conn_id() -> str:
    return os.environ.get(ENV_SIGNING_CONN) or "shears_signing"


def signing_key() -> SigningKey | None:
    """The private signing key from the Airflow connection $SHEARS_SIGNING_CONN_ID, or None if there is none.

    The PEM is the connection's password (Airflow masks it in task logs), an optional passphrase is
    extra.passphrase. The key object goes straight to the library; nothing here logs or stores it.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from shears.errors import ConfigError
    from shears.release.signing import SigningKey

    conn_id = signing_conn_id()
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    if not conn.password:
        raise ConfigError(f"Airflow connection {conn_id} has no private key (PEM) in its password field")
    passphrase = conn.extra_dejson.get("passphrase")
    return SigningKey.from_pem(conn.password.encode(), passphrase.encode() if passphrase else None,
                               where=f"signing key in Airflow connection {conn_id}")


def open_run_store(uri: str | None = None) -> Store:
    """The store for this deployment; s3:// stores get their client from the Airflow connection."""
    from shears.store import open_store, parse_s3_uri

    text = uri or store_uri()
    if text.startswith("s3://"):
        from shears.store.s3 import S3Store

        bucket, prefix = parse_s3_uri(text)
        return S3Store(bucket, prefix, client=s3_client())
    return open_store(text)


VIEW_PREFIX = "/shears"  # where the API server mounts the Shears view (shears_web.py)


def view_base() -> str:
    """The Shears view's base URL: `[api] base_url` + /shears when configured, else the path alone."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return base + VIEW_PREFIX


def view_run_url(run_id: str) -> str:
    """The Shears view's page of one run (its outcome, report, model card)."""
    from urllib.parse import quote

    return f"{view_base()}/run/{quote(run_id)}"


def run_layout(airflow_run_id: str) -> RunLayout:
    """Artifact keys of an Airflow run: the run id is sanitized deterministically, so retries reuse them."""
    from shears.store.layout import RunLayout, sanitize_run_id

    return RunLayout(sanitize_run_id(airflow_run_id))


def data_exists(uri: str) -> bool:
    loc = location(uri)
    if loc.startswith("s3://"):
        from shears.store import parse_s3_uri

        bucket, key = parse_s3_uri(loc)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True
    return Path(loc).is_file()


def describe_data(uri: str) -> dict[str, Any]:
    """Facts about the data object for the asset event's `extra` (sha256 for local files, etag on S3)."""
    loc = location(uri)
    if loc.startswith("s3://"):
        from shears.store import parse_s3_uri

        bucket, key = parse_s3_uri(loc)
        head = s3_client().head_object(Bucket=bucket, Key=key)
        return {"uri": uri, "bytes": int(head["ContentLength"]), "etag": str(head.get("ETag", "")).strip('"')}
    path = Path(loc)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"uri": uri, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


# --------------------------------------------------------------------------- failure semantics


class shears_errors:  # lower-case: used like a function, `with shears_errors(): ...`
    """Map Shears' non-retryable errors (bad config, bad data, failed gates) to AirflowFailException.

    The original error stays attached as __cause__ (the failure callback reads its exit code).
    Store and network errors pass through unchanged so TRANSIENT_IO_ONLY can retry them.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        from shears.errors import ConfigError, DataError, GateFailure

        if isinstance(exc, (ConfigError, DataError, GateFailure)):
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _current(context: Context | None) -> Context:
    if context is not None:
        return context
    from airflow.sdk import get_current_context

    return get_current_context()


# --------------------------------------------------------------------------- building a step's context


def start_run(context: Context | None = None) -> tuple[RunContext, dict[str, Any]]:
    """Resolve config and data for a new (or cleared) run and begin it (shears.run.lifecycle.begin).

    Config: the `config` param, else $SHEARS_CONFIG, else the embedded defaults. Data: the library's rule
    (lifecycle.choose_data): the `data_uri` param, else the config's data.uri, else the data asset if it
    exists, else the embedded default. A run id that is already published is refused (ConfigError).
    """
    from shears.config import load_config
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
    # claimed for this DAG run (every task of it, on any worker); run_step keeps it fresh while a task runs
    lifecycle.begin(store, layout, cfg, holder(ctx), force_claim=bool(params.get("force_claim")))
    log.info("shears run %s: store=%s config=%s data=%s (%s)", layout.run_id, store.uri,
             config_path or "embedded defaults", cfg.data.uri or "embedded digits", source)
    info = {"run_id": layout.run_id, "store": store.uri, "config": config_path, "data_source": source}
    return make_context(store, layout.run_id, cfg, s3_client=s3_client, signing_key=signing_key), info


def run_context(context: Context | None = None) -> RunContext:
    """Context for every step after validate: the config is the one validate resolved and staged."""
    from shears.config import PipelineConfig
    from shears.run.pipeline import make_context
    from shears.store import layout as L

    ctx = _current(context)
    layout = run_layout(ctx["run_id"])
    store = open_run_store()
    cfg = PipelineConfig.model_validate_json(store.get(layout.staging(L.CONFIG)))
    return make_context(store, layout.run_id, cfg, s3_client=s3_client, signing_key=signing_key)


def holder(context: Context) -> Any:
    """Who holds the run's claim: this Airflow DAG run (every task of it, on any worker)."""
    from shears.run.claim import this_process

    return this_process("airflow", f"{PIPELINE_DAG_ID}/{context['run_id']}")


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
    from shears.run.steps import step

    quiet.install()  # before anything imports TensorFlow or Great Expectations: their start-up noise off
    ctx = _current(context)
    run: RunContext | None = None
    t0 = time.perf_counter()
    try:
        with shears_errors():
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
                this = step(name)
                result = this.run(run, item) if this.expands is not None else this.run(run)
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


def log_gate_table(run: RunContext) -> None:
    """The gate table as the last thing a gate failure logs (read back from rejected/<id>/gates.json)."""
    from shears.records import GatesRecord
    from shears.store import layout as L

    try:
        gates = GatesRecord.model_validate_json(run.store.get(run.layout.rejected(L.GATES)))
    except Exception:  # the rejection itself is what matters; the table is a convenience
        log.warning("shears: could not read the gate table back", exc_info=True)
        return
    rows = [("gate", "threshold", "observed", "verdict", "reason")]
    rows += [(g.name, str(g.threshold), str(g.observed), "pass" if g.passed else "FAIL", g.reason)
             for g in gates.gates]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    log.info("shears gate: REJECTED, recorded at %s/%s\n%s", run.store.uri, run.layout.rejected_prefix,
             "\n".join(lines))


def emit_lineage(run: RunContext, name: str) -> None:
    """Attribute the step's datasets (shears.release.lineage) to the running task through the OpenLineage
    provider's public API (`emit_dataset_lineage`: a RUNNING event with the task's run id, sent to the
    provider's transport). Does nothing when OpenLineage is not configured; never raises."""
    try:
        from airflow.providers.openlineage.api import emit_dataset_lineage, is_openlineage_active
    except ImportError:  # the provider is not installed
        return
    try:
        if not is_openlineage_active():
            return
        from shears.release.lineage import step_lineage

        lineage = step_lineage(run.store, run.layout, run.cfg.data.uri, name, run.work)
        emit_dataset_lineage(inputs=list(lineage.inputs), outputs=list(lineage.outputs))
    except Exception:
        log.warning("shears: could not report the lineage of %s", name, exc_info=True)


# --------------------------------------------------------------------------- failure callback


def on_task_failure(context: Context) -> None:
    """on_failure_callback: record why the run stopped under rejected/<run_id>/, next to its artifacts.

    Runs once per task instance that fails for good (not on retries) and calls the library's
    lifecycle.record_failure, exactly as `shears run` does: failure.json names the step (= task id),
    the reason and the Shears exit code; a gate rejection recorded by the gate step is kept intact.
    Skips runs that are already published (a cleared, refused re-run is not a rejection). Never raises:
    it must not mask the task's own error.
    """
    try:
        _record_failure(context)
    except Exception:
        log.exception("shears: could not record why the task failed")


def _record_failure(context: Context) -> None:
    from shears.errors import ShearsError
    from shears.run import lifecycle
    from shears.store import layout as L

    ti = context["ti"]
    exc = context.get("exception")
    layout = run_layout(context["run_id"])
    store = open_run_store()
    if store.exists(layout.run(L.MANIFEST)):
        log.info("run %s is published; not recording a failure of %s", layout.run_id, ti.task_id)
        return
    from shears.run.claim import read_claim, same_holder

    found = read_claim(store, layout.run_id)
    if found is not None and not same_holder(found[0].holder, holder(context)):
        log.info("run id %s is claimed by %s: not recording this run's failure over it", layout.run_id,
                 found[0].holder.describe())
        return
    cause: BaseException | str | None = exc if isinstance(exc, BaseException) or exc is None else str(exc)
    if isinstance(exc, BaseException) and isinstance(exc.__cause__, ShearsError):
        cause = exc.__cause__
    key = lifecycle.record_failure(store, layout, ti.task_id, cause)
    log.info("failure of %s recorded at %s/%s; Shears view: %s", ti.task_id, store.uri, key,
             view_run_url(layout.run_id))
    lifecycle.end(store, layout, holder(context))
