"""The Shears view inside the Airflow UI: a FastAPI app the API server mounts at /shears (same origin).

Why here and not a static file server: the Airflow UI renders only http(s)/same-origin links, a local store
has only file:// paths, and an S3 store needs credentials. The API server reads the store the deployment
configured ($SHEARS_STORE: a directory, or s3:// through the Airflow connection) and serves:

    /shears/                              runs published and rejected, the champion and its history
    /shears/trend                         the trend page (built from the store on request)
    /shears/run/<run id>                  one run: its outcome and links to its report, model card, records
    /shears/files/<runs|rejected>/<id>/<file>   one file of a run folder (nothing else in the store)

Plugin endpoints are not protected by Airflow automatically: every route requires a user the UI's own
token (the `_token` cookie, or `Authorization: Bearer`) authenticates and who may read shears_pipeline's
runs (401 without a login, 403 otherwise). File names are checked by shears.store.layout.check_run_file
(no `..`, no hidden or absolute names); reports are served with the same Content-Security-Policy they
carry in their <meta> tag, and every page here with one as strict.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, cast

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from shears.store import layout as L
from shears_airflow import PIPELINE_DAG_ID, open_run_store

if TYPE_CHECKING:
    from shears.store import Store

log = logging.getLogger("shears.airflow.web")

# The report's own policy (shears/report/templates/_base.html.j2) plus frame-ancestors: shown in the UI's iframe.
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'self'")
PAGE_CSP = REPORT_CSP
Outcome = Literal["runs", "rejected"]
TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".md": "text/plain; charset=utf-8",
         ".txt": "text/plain; charset=utf-8", ".csv": "text/plain; charset=utf-8"}


async def require_reader(request: Request) -> None:
    """Airflow's own checks, imported on the first request (the plugin module is imported by every Airflow
    component; the security module costs ~1 s): the UI's token authenticates the user (401 without one,
    403 for an invalid one), the auth manager decides whether they may read shears_pipeline's runs (403)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user, requires_access_dag
    from starlette.concurrency import run_in_threadpool

    user = await get_user(request, None, await bearer_scheme(request))
    await run_in_threadpool(requires_access_dag("GET", DagAccessEntity.RUN, PIPELINE_DAG_ID), request, user)


def outcome_of(store: Store, run_id: str) -> Outcome | None:
    """Where a run's folder is: runs/ once published (manifest last), rejected/ when refused, else None."""
    layout = L.RunLayout(run_id)
    if store.exists(layout.run(L.MANIFEST)):
        return "runs"
    if store.exists(layout.rejected(L.MANIFEST)) or store.exists(layout.rejected(L.FAILURE)):
        return "rejected"
    return None


def file_key(area: str, run_id: str, name: str) -> str:
    """The store key of one file of a run folder; ConfigError for anything else (other areas, `..`, ...)."""
    from shears.errors import ConfigError

    if area not in ("runs", "rejected"):
        raise ConfigError(f"not a run folder: {area}")
    return L.RunLayout(L.check_run_id(run_id)).key(cast(Outcome, area), L.check_run_file(name))


def file_path(area: Outcome, run_id: str, name: str) -> str:
    return f"/files/{area}/{run_id}/{name}"


# --------------------------------------------------------------------------- pages


def _page(title: str, body: str) -> HTMLResponse:
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
           '<style>body{font:14px system-ui,sans-serif;margin:16px;color:#222}table{border-collapse:collapse}'
           'td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.passed{color:#17803d}'
           '.rejected,.failed{color:#b42318}.muted{color:#666}a{color:#0b5cad}</style></head>'
           f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(doc, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})


def _link(root: str, path: str, text: str) -> str:
    return f'<a href="{html.escape(root + path)}">{html.escape(text)}</a>'


def index_page(store: Store, root: str) -> HTMLResponse:
    from shears.release.champion import read_champion, read_champion_history
    from shears.report import load_trend_entries

    entries = load_trend_entries(store, last=100)
    champion = read_champion(store)
    history = read_champion_history(store)
    rows = []
    for e in reversed(entries):
        acc = html.escape(f"{e.score} ({e.task})" if e.task != "multiclass" and e.score else
                          (f"{e.accuracy:.4f}" if e.accuracy is not None else "-"))
        size = f"{e.gzip_bytes:,}" if e.gzip_bytes is not None else "-"
        star = " ★ champion" if e.current_champion else ""
        rows.append(f'<tr data-run="{html.escape(e.run_id)}" data-status="{e.status}"><td>'
                    f'{_link(root, "/run/" + e.run_id, e.run_id)}{star}</td><td class="{e.status}">{e.status}</td>'
                    f"<td>{html.escape(e.created_at)}</td><td>{acc}</td><td>{size}</td>"
                    f"<td>{html.escape(e.reason or '')}</td></tr>")
    table = ("<table id=runs><tr><th>run</th><th>outcome</th><th>created</th><th>deployable test score</th>"
             f"<th>gzip bytes</th><th>reason</th></tr>{''.join(rows)}</table>" if rows
             else "<p id=runs class=muted>No runs yet.</p>")
    champ = (f"<p id=champion>Champion: {_link(root, '/run/' + champion.run_id, champion.run_id)} "
             f"(#{champion.seq}, {html.escape(champion.pointer.action)} by {html.escape(champion.pointer.by)} "
             f"at {html.escape(champion.pointer.at)})</p>" if champion else "<p id=champion>No champion yet.</p>")
    hist = "".join(f"<li>#{h.seq} {html.escape(h.action)} {html.escape(h.run_id)} at {html.escape(h.at)}</li>"
                   for h in reversed(history.entries[-20:]))
    body = (f'<p class=muted>Store: {html.escape(store.uri)} · {_link(root, "/trend", "trend page")}</p>{champ}'
            f"<h2>Runs</h2>{table}<h2>Champion history</h2><ol id=history>{hist}</ol>")
    return _page("Shears runs", body)


def run_page(store: Store, root: str, raw_run_id: str) -> HTMLResponse:
    run_id = L.sanitize_run_id(raw_run_id)
    area = outcome_of(store, run_id)
    if area is None:
        body = (f"<p id=outcome>Run {html.escape(run_id)} has no published or rejected folder (yet): it may still "
                "be running, or it stopped before anything was recorded.</p>")
        return _page(f"Shears run {run_id}", body)
    layout = L.RunLayout(run_id)
    prefix = layout.run_prefix if area == "runs" else layout.rejected_prefix
    names = sorted(k[len(prefix) + 1:] for k in store.list(prefix + "/"))
    main = [(L.REPORT, "Report"), (L.MODEL_CARD_MD, "Model card"), (L.MANIFEST, "Manifest"),
            (L.GATES, "Gates"), (L.FAILURE, "Why it was rejected")]
    links = "".join(f"<li>{_link(root, file_path(area, run_id, n), label)}</li>" for n, label in main if n in names)
    others = "".join(f"<li>{_link(root, file_path(area, run_id, n), n)}</li>" for n in names
                     if n not in dict(main) and not n.startswith(L.TENSORBOARD + "/"))
    word = "published" if area == "runs" else "rejected"
    body = (f'<p id=outcome class="{"passed" if area == "runs" else "rejected"}">{word}: '
            f"{html.escape(store.uri)}/{html.escape(prefix)}/</p><ul id=links>{links}</ul>"
            f"<details><summary>All files</summary><ul>{others}</ul></details>"
            f'<p>{_link(root, "/", "All runs")}</p>')
    return _page(f"Shears run {run_id}", body)


def serve_file(store: Store, area: str, run_id: str, name: str) -> Response:
    """One regular file of a run folder, streamed in chunks (never read whole into memory).

    The local store refuses a file reached through a symbolic link (a StoreError, 502 here): the view
    serves what is in the store, never another file the API server could read.
    """
    key = file_key(area, run_id, name)
    if not store.exists(key):
        raise HTTPException(404, f"{key} not found in the store")
    chunks = store.iter_bytes(key)
    first = next(chunks, b"")  # opening errors (a symlink, a vanished object) surface here, before the headers
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    headers = {"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if suffix not in TYPES:
        headers["Content-Disposition"] = f'attachment; filename="{name.rsplit("/", 1)[-1]}"'

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    return StreamingResponse(body(), media_type=TYPES.get(suffix, "application/octet-stream"), headers=headers)


# --------------------------------------------------------------------------- the app


def create_app() -> FastAPI:
    from shears.errors import ConfigError, ShearsError

    app = FastAPI(title="Shears", description="Shears runs, reports and champion, from the configured store",
                  dependencies=[Depends(require_reader)], docs_url=None, redoc_url=None, openapi_url=None)

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def guarded(fn: Any, *args: Any) -> Any:
        try:
            return fn(open_run_store(), *args)
        except ConfigError as exc:  # a bad run id or file name: refused, never looked up
            raise HTTPException(400, str(exc)) from None
        except ShearsError as exc:
            log.warning("shears view: %s", exc)
            raise HTTPException(502, f"store: {exc}") from None

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        result: Response = guarded(index_page, root(request))
        return result

    @app.get("/trend", response_class=HTMLResponse)
    def trend(request: Request) -> Response:
        from shears.report import build_trend_report, load_trend_entries

        def build(store: Store) -> Response:
            page = build_trend_report(load_trend_entries(store, last=30), source=store.uri)
            return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store"})

        result: Response = guarded(build)
        return result

    @app.get("/run/{run_id}", response_class=HTMLResponse)
    def run(request: Request, run_id: str, dag_id: str | None = None) -> Response:
        if dag_id not in (None, PIPELINE_DAG_ID):  # the DAG-run tab shows on every DAG's runs
            return _page("Shears", f"<p id=outcome class=muted>{html.escape(dag_id)} is not a Shears pipeline: "
                                   f"Shears runs are the runs of {PIPELINE_DAG_ID}.</p>")
        result: Response = guarded(run_page, root(request), run_id)
        return result

    @app.get("/files/{area}/{run_id}/{name:path}")
    def files(area: str, run_id: str, name: str) -> Response:
        result: Response = guarded(serve_file, area, run_id, name)
        return result

    return app
