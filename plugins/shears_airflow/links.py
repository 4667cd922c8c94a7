"""Where the Shears view and its links point: the view's base URL and a run's page (shears_web.py serves them)."""

from __future__ import annotations

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


