"""The publish step: runs/<run_id>/ with its manifest last, then the champion (shears.run.lifecycle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shears.run import lifecycle

if TYPE_CHECKING:
    from shears.run.context import RunContext


def step_publish(ctx: RunContext) -> dict[str, Any]:
    """Publish runs/<run_id>/ and promote (safe to retry: a completed publish is reported, not redone)."""
    return lifecycle.publish_once(ctx)
