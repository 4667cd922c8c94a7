"""Error types, one per CLI exit code, so the edge (CLI, DAG) maps failures without parsing text.

Every message a user sees is one line of at most MAX_MESSAGE characters: `bounded()` keeps the start and
the end of a long message (where the field name and the verdict usually are) and elides the middle.
"""

from __future__ import annotations

MAX_MESSAGE = 300


def first_line(text: object) -> str:
    """The first non-empty line of a message ('' for an empty one): errors are reported on one line."""
    stripped = str(text).strip()
    return stripped.splitlines()[0].strip() if stripped else ""


def bounded(text: object, limit: int = MAX_MESSAGE) -> str:
    """One line of at most `limit` characters: the middle of a longer one is replaced by '…'."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    head = (limit - 1) * 2 // 3
    tail = limit - 1 - head
    return flat[:head] + "…" + flat[len(flat) - tail :]


def elide(value: object, limit: int = 60) -> str:
    """repr() of a user-supplied value, elided in the middle: errors quote inputs, never whole inputs."""
    text = repr(value) if not isinstance(value, str) or len(value) <= 4 * limit else repr(value[: 4 * limit])
    return bounded(text, limit)


class ShearsError(Exception):
    """Base class; `exit_code` is what `shears` exits with. The message is bounded to one short line."""

    exit_code = 1

    def __init__(self, message: object = "") -> None:
        super().__init__(bounded(first_line(message)))


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


class RecordError(ShearsError):
    """A record in the store is not what its typed model says (exit 1, never retried): a store someone edited
    or broke reads the same way on every retry."""

    exit_code = 1


class ConflictError(ShearsError):
    """The store already holds other content under a name this run must write (exit 1, never retried)."""

    exit_code = 1


class InternalError(ShearsError):
    """A bug in Shears (an exception no library raised), surfaced with its traceback recorded (exit 1)."""

    exit_code = 1


class PromotionRefused(ShearsError):
    """A run that may not become champion (fails its audit or signature check): exit 1, never retried."""

    exit_code = 1


def not_prunable(unknown: list[str], available: list[str], what: str = "prune.layers") -> ConfigError:
    """The one message for layer names a recipe or config asks to prune that the model cannot prune."""
    return ConfigError(f"{what} {unknown} are not prunable layers of the model; prunable: {available}")
