"""The `shears` command line: one module per group of sub-commands; `main` is the console script."""

from __future__ import annotations


def main() -> None:
    from shears.cli.main import main as _main

    _main()
