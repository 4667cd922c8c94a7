"""`shears` command line. Exit codes: 0 ok, 1 other error, 2 usage/config, 3 data, 4 gate failed."""

from __future__ import annotations

import typer

from shears.cli import data, provenance, report, run, store

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Prune, quantize, gate and publish Keras models.")
data_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Register new data (emits an Airflow asset event)."
)
app.add_typer(data_app, name="data")

run.register(app)
store.register(app)
report.register(app)
provenance.register(app)
data.register(data_app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
