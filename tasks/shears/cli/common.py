"""What every `shears` sub-command shares: the two consoles and the one-line error exit."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from shears.errors import ShearsError, first_line

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def line(console: Console, text: str) -> None:
    """One physical line, never wrapped or re-coloured (problem and error lines must stay greppable)."""
    console.print(escape(text), soft_wrap=True, highlight=False)


def fail(exc: ShearsError) -> typer.Exit:
    """Print `error: <first line>` to stderr and return the Exit carrying the error's exit code."""
    text = first_line(exc) or type(exc).__name__
    line(err, f"error: {text}")
    return typer.Exit(exc.exit_code)
