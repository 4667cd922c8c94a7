"""`shears report`: the trend page over a store's last runs, or one run's report rebuilt from its records.

The trend page goes into the store (reports/trend.html) so everyone with store access sees the same
page; --out writes a local file instead. A rebuilt run report goes to reports/runs/<id>.html, never
into the run's own folder (published folders are immutable). Nothing here imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shears.errors import ConfigError, ShearsError
from shears.store import Store


def _write(html: str, store: Store, key: str, out: Path | None) -> str:
    """Write to --out when given, else into the store under `key`; return where it went."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
        return str(out.resolve())
    store.put(key, html.encode("utf-8"))
    return f"{store.uri.rstrip('/')}/{key}"


def report(
    store_uri: Annotated[str, typer.Argument(help="artifact store: directory or s3://bucket/prefix")],
    last: Annotated[int, typer.Option("--last", min=1, help="how many of the newest runs to show")] = 30,
    out: Annotated[
        Path | None, typer.Option("--out", help="write to this local file instead of into the store")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="rebuild one run's report.html instead of the trend")] = None,
) -> None:
    """Trend of deployable accuracy and gzipped size over the last runs (champions and rejections marked)."""
    from shears.cli.common import fail
    from shears.report import (
        TREND_REPORT,
        build_run_report,
        build_trend_report,
        load_run_records,
        load_trend_entries,
        run_report_key,
    )
    from shears.store import layout as L
    from shears.store import open_store

    try:
        store = open_store(store_uri)
        if run is not None:
            layout = L.RunLayout(run)
            prefix = next((p for p in (layout.run_prefix, layout.rejected_prefix) if store.list(p + "/")), None)
            if prefix is None:
                raise ConfigError(f"run {run} not found under runs/ or rejected/ in {store.uri}")
            # Published run folders are immutable (their manifest lists every file): never write into them.
            where = _write(build_run_report(load_run_records(store, prefix)), store, run_report_key(run), out)
            typer.echo(f"run report for {run}: {where}")
            return
        entries = load_trend_entries(store, last)
        html = build_trend_report(entries, source=store.uri, link_reports=out is None)
        where = _write(html, store, TREND_REPORT, out)
    except ShearsError as exc:
        raise fail(exc) from None
    champions = sum(1 for e in entries if e.champion_seqs)
    rejected = sum(1 for e in entries if e.status != "passed")
    typer.echo(f"trend over {len(entries)} runs ({rejected} rejected, {champions} champions): {where}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command(name="report")(report)
