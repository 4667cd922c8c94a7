"""Reports people can open without Airflow: one self-contained HTML page per run, and a trend page.

Self-contained means no network at all: CSS is inline, plots are base64 PNG data URIs, and a
Content-Security-Policy forbids anything else, so a report copied out of S3 or attached to a ticket
renders the same everywhere. Builders are pure (records in, HTML out) and never raise on missing or
malformed records: a rejected run keeps only a few records, so absent sections say "not available".
Plots use matplotlib's Agg canvas directly (no pyplot global state); HTML comes from jinja2
templates in shears/report/templates/ with autoescaping on.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jinja2

from shears.report.plots import plot_trend
from shears.report.readers import RunRecords, TrendEntry
from shears.report.sections import build_sections


def _fmt_num(value: Any) -> str:
    """Numbers for tables: ints with thousands separators, floats to 6 significant digits."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.6g}"
    return str(value)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shears.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt_num
    return env


def build_run_report(records: RunRecords) -> str:
    """The run's report.html: every section present, missing records marked 'not available'."""
    sections = build_sections(records)
    return _env().get_template("run_report.html.j2").render(r=records, sections=sections)


def build_trend_report(entries: Sequence[TrendEntry], *, source: str = "", link_reports: bool = False) -> str:
    """The trend page over `entries` (oldest first); `link_reports` links run reports from reports/."""
    plot = plot_trend(entries) if any(e.accuracy is not None for e in entries) else None
    counts = {s: sum(1 for e in entries if e.status == s) for s in ("passed", "rejected", "failed")}
    champion = next((e.run_id for e in entries if e.current_champion), None)
    return (
        _env()
        .get_template("trend_report.html.j2")
        .render(
            entries=list(reversed(entries)),
            plot=plot,
            counts=counts,
            source=source,
            champion=champion,
            link_reports=link_reports,
        )
    )
