"""Store sub-commands of `shears`: audit, promote, rollback (a local directory or s3://bucket/prefix).

S3 credentials and endpoint come from the standard AWS environment/profile (AWS_ENDPOINT_URL for
S3-compatible servers). Exit codes: 0 ok, 1 store error or audit problems, 2 usage.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shears.cli.common import err, fail, line, out
from shears.errors import ConfigError, ShearsError

STORE_ARG = typer.Argument(help="artifact store: a directory or s3://bucket/prefix")


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _runs_table(report: Any) -> Table:
    champion = report.champion.run_id if report.champion else None
    t = Table(title=f"Runs in {report.store}")
    for col in ("run", "area", "state", "status", "test score", "gzip bytes", "created", "objects", "signature",
                "champion"):
        t.add_column(col)
    for r in [*report.runs, *report.rejected]:
        dep = r.deployable
        t.add_row(
            r.run_id, r.area, r.state if not r.problems else f"{r.state} ({len(r.problems)} problem(s))",
            r.status or "-", dep.score_text() if dep else "-",
            f"{dep.gzip_bytes:,}" if dep else "-", r.created_at or "-",
            str(r.objects), _signature_cell(r) if r.state == "complete" else "-",
            "yes" if r.area == "runs" and r.run_id == champion else "",
        )
    return t


def _signature_cell(r: Any) -> str:
    from shears.release.signing import short_id

    if r.signature == "unsigned":
        return "unsigned"
    return f"{r.signature} ({short_id(r.signed_by)})" if r.signed_by else r.signature


def load_trust(trust: list[Path] | None, require: bool, config: Path | None) -> Any:
    """Trusted keys from --trust flags and the config's signing.trusted_keys; required if either says so."""
    from shears.config import load_config
    from shears.release.signing import Trust, TrustedKey

    paths: list[str | Path] = list(trust or [])
    if config is not None:
        cfg = load_config(config)
        paths += [p if Path(p).is_absolute() else config.parent / p for p in cfg.signing.trusted_keys]
        require = require or cfg.signing.required
    keys = tuple(TrustedKey.from_file(p) for p in paths)
    if require and not keys:
        raise ConfigError("signatures are required but no trusted key was given (--trust or signing.trusted_keys)")
    return Trust(keys=keys, required=require)


def audit(
    store_uri: Annotated[str, STORE_ARG],
    run: Annotated[str | None, typer.Option("--run", help="audit only this run (and the champion)")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="warnings (INCOMPLETE runs...) fail too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    trust: Annotated[list[Path] | None, typer.Option(
        "--trust", help="public key (PEM) whose signatures are trusted; repeat for key rotation")] = None,
    require_signatures: Annotated[bool, typer.Option(
        "--require-signatures", help="an unsigned run is a problem, not a warning")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="pipeline YAML whose signing.trusted_keys / signing.required apply too")] = None,
) -> None:
    """Verify every run's sha256s and manifest, its signature, the champion pointer and its history.

    Exits 0 when consistent, 1 with one line per problem otherwise. Runs without manifest.json (an
    interrupted upload) are reported as INCOMPLETE warnings: nothing can reference them, so they do not
    fail the audit unless --strict. With --trust (or signing.trusted_keys), every published run's
    signature is verified: changed files, an untrusted key or a forged bundle are problems; an unsigned
    run is a warning, or a problem with --require-signatures (signing.required).
    """
    from shears.release.audit import audit_store
    from shears.store import open_store

    try:
        report = audit_store(open_store(store_uri), run, load_trust(trust, require_signatures, config))
    except ShearsError as exc:
        raise fail(exc) from None
    if as_json:
        line(out, json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        if report.runs or report.rejected:
            out.print(_runs_table(report))
        else:
            line(out, f"no runs in {report.store}")
        if report.champion:
            c = report.champion
            line(out, f"champion: {c.run_id} (seq {c.seq}, {c.action} by {c.by} at {c.at}; previous "
                      f"{c.previous or 'none'}); champion.json versions: {report.champion_versions}")
        else:
            line(out, "champion: none")
        for e in report.history:
            line(out, f"  history {e.seq:>6}: {e.action} {e.run_id} by {e.by} at {e.at} "
                      f"(previous {e.previous or 'none'})")
    line(err, report.signature_summary())
    for w in report.warnings:
        line(err, f"warning: {w}")
    for p in report.problems:
        line(err, f"problem: {p}")
    verdict = "consistent" if report.ok else f"{len(report.problems)} problem(s)"
    failing = " (--strict: warnings fail)" if strict and report.warnings else ""
    line(err, f"audit of {report.store}: {verdict}, {len(report.warnings)} warning(s){failing}")
    raise typer.Exit(report.exit_code(strict))


TRUST_OPT = typer.Option("--trust", help="public key (PEM) whose signatures are trusted; repeat for key rotation")
CONFIG_OPT = typer.Option("--config", help="pipeline YAML whose signing.trusted_keys / signing.required apply too")


def _promotion_trust(trust: list[Path] | None, config: Path | None) -> Any:
    """The keys a promotion checks the run's signature with; the deployment's policy may require signatures."""
    import os

    from shears.policy import ENV_POLICY, load_policy

    required = load_policy(os.environ.get(ENV_POLICY)).signing.required
    return load_trust(trust, required, config)


def promote(
    store_uri: Annotated[str, STORE_ARG],
    run_id: Annotated[str, typer.Argument(help="published run to make champion")],
    trust: Annotated[list[Path] | None, TRUST_OPT] = None,
    config: Annotated[Path | None, CONFIG_OPT] = None,
) -> None:
    """Make a published, passing, intact run the champion (conditional write; recorded in champions/).

    The run must pass what `shears audit --run` checks of it and, with --trust (or signing.trusted_keys),
    its signature must verify; signing.required (config or the deployment's policy) refuses unsigned runs.
    A refused promotion changes nothing and exits 1.
    """
    from shears.release.champion import promote as do_promote
    from shears.store import open_store

    try:
        pointer = do_promote(open_store(store_uri), run_id, by=_who(), trust=_promotion_trust(trust, config))
    except ShearsError as exc:
        raise fail(exc) from None
    line(out, f"champion: {pointer.run_id} (seq {pointer.seq}, previous {pointer.previous or 'none'})")


def rollback(
    store_uri: Annotated[str, STORE_ARG],
    trust: Annotated[list[Path] | None, TRUST_OPT] = None,
    config: Annotated[Path | None, CONFIG_OPT] = None,
) -> None:
    """Point the champion back at the previous one (champion.json's `previous`; recorded in champions/).

    The previous run is checked as `shears promote` checks a run (audit, and signatures with --trust).
    """
    from shears.release.champion import rollback as do_rollback
    from shears.store import open_store

    try:
        pointer = do_rollback(open_store(store_uri), by=_who(), trust=_promotion_trust(trust, config))
    except ShearsError as exc:
        raise fail(exc) from None
    line(out, f"champion: {pointer.run_id} (seq {pointer.seq}, rolled back from {pointer.previous})"
          if pointer.action == "rollback" else f"champion: {pointer.run_id} (unchanged)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("audit")(audit)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
