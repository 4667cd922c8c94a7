"""Reports people can open without Airflow: one self-contained HTML page per run, and a trend page.

    records   what a report is built from (typed records; never raises on a missing or bad one)
    plots     matplotlib figures as PNG data URIs
    sections  the run report's sections
    render    jinja2 templates -> HTML (templates/)
    card      the model card (model_card.json + model_card.md) from the same records
"""

from __future__ import annotations

from shears.report.card import build_model_card, render_card_markdown, signature_of
from shears.report.readers import RunRecords, TrendEntry, load_run_records, load_trend_entries, records_from_files
from shears.report.render import build_run_report, build_trend_report
from shears.store.layout import REPORTS_DIR, TREND_REPORT, run_report_key

__all__ = [
    "REPORTS_DIR",
    "TREND_REPORT",
    "RunRecords",
    "TrendEntry",
    "build_model_card",
    "build_run_report",
    "build_trend_report",
    "load_run_records",
    "load_trend_entries",
    "records_from_files",
    "render_card_markdown",
    "run_report_key",
    "signature_of",
]
