"""Error types, one per CLI exit code, so the edge (CLI, DAG) maps failures without parsing text."""

from __future__ import annotations


def first_line(text: object) -> str:
    """The first non-empty line of a message ('' for an empty one): errors are reported on one line."""
    stripped = str(text).strip()
    return stripped.splitlines()[0] if stripped else ""


class ShearsError(Exception):
    """Base class; `exit_code` is what `shears` exits with."""

    exit_code = 1


class ConfigError(ShearsError):
    """Bad usage or configuration (exit 2): nothing is trained."""

    exit_code = 2


class DataError(ShearsError):
    """Unreadable, corrupt or invalid data (exit 3): nothing is trained."""

    exit_code = 3


class GateFailure(ShearsError):
    """A quality gate (or the sparsity check) failed (exit 4): nothing is promoted."""

    exit_code = 4


class StoreError(ShearsError):
    """The artifact store could not be read or written (exit 1)."""

    exit_code = 1
