"""Provenance sub-commands of `shears`: keygen (a signing key pair) and show (a run's model card).

`shears show` is read-only: it prints runs/<id>/model_card.md (or rejected/<id>/), after checking it
against the run's manifest; for runs published before model cards existed it builds the card from the
run's records and says so. Exit codes: 0 ok, 1 not found / changed after publication, 2 usage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markdown import Markdown

from shears.cli.common import err, fail, line, out
from shears.errors import ConfigError, RecordError, ShearsError, StoreError


def keygen(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the two key files")] = Path("."),
    name: Annotated[str, typer.Option("--name", help="file name stem: NAME.key and NAME.pub")] = "shears-signing",
    curve: Annotated[str, typer.Option("--curve", help="secp256r1, secp384r1 or secp521r1")] = "secp256r1",
    passphrase_env: Annotated[str | None, typer.Option(
        "--passphrase-env", help="encrypt the private key with the passphrase in this environment variable")] = None,
) -> None:
    """Write an elliptic-curve key pair for signing runs: NAME.key (private, mode 0600) and NAME.pub (0644).

    Never overwrites a file. The private key goes to `shears run --signing-key` or an Airflow connection;
    the public key to whoever audits (`shears audit --trust NAME.pub`).
    """
    from shears.release.signing import write_key_pair

    try:
        password = None
        if passphrase_env:
            value = os.environ.get(passphrase_env)
            if not value:
                raise ConfigError(f"--passphrase-env {passphrase_env}: the variable is not set or empty")
            password = value.encode()
        private, public = out_dir / f"{name}.key", out_dir / f"{name}.pub"
        key_id = write_key_pair(private, public, password=password, curve=curve)
    except ShearsError as exc:
        raise fail(exc) from None
    except OSError as exc:
        raise fail(ConfigError(f"cannot write keys to {out_dir}: {exc.strerror or type(exc).__name__}")) from None
    line(out, f"private key: {private} (mode 0600{', encrypted' if password else ''}; keep it secret)")
    line(out, f"public key:  {public} (give it to auditors: shears audit STORE --trust {public})")
    line(out, f"key id:      {key_id}")


def show(
    store_uri: Annotated[str, typer.Argument(help="artifact store: a directory or s3://bucket/prefix")],
    run_id: Annotated[str, typer.Argument(help="a run under runs/ or rejected/")],
    as_json: Annotated[bool, typer.Option("--json", help="print model_card.json instead of the Markdown")] = False,
    trust: Annotated[list[Path] | None, typer.Option(
        "--trust", help="public key (PEM): show the card only if the run's signature verifies with it")] = None,
) -> None:
    """Print a run's model card (read-only): data, recipe, sizes, accuracy, gates, signature, machine."""
    from shears.cli.store import load_trust
    from shears.store import open_store

    try:
        store = open_store(store_uri)
        if trust:
            _verify(store, run_id, load_trust(trust, True, None))
        text, note = _card_text(store, run_id, as_json)
    except ShearsError as exc:
        raise fail(exc) from None
    if note:
        line(err, note)
    if out.is_terminal and not as_json:
        out.print(Markdown(text))
    else:
        typer.echo(text, nl=not text.endswith("\n"))


MAX_CARD_BYTES = 1_000_000  # a card is a page; a bigger one is not printed


def _verify(store: object, run_id: str, trust: object) -> None:
    """The run's files against its manifest and its signature against the trusted keys, before the card is shown."""
    from shears.release.verify import verify_run
    from shears.store import Store
    from shears.store import layout as L

    assert isinstance(store, Store)
    layout = L.RunLayout(run_id)
    area = "runs" if store.exists(layout.run(L.MANIFEST)) else "rejected"
    audit = verify_run(store, area, run_id, trust=trust)  # type: ignore[arg-type]
    if audit.problems:
        raise RecordError(f"run {run_id} does not verify: {'; '.join(audit.problems)}")


def _card_text(store: object, run_id: str, as_json: bool) -> tuple[str, str | None]:
    """(the card's text, a note for stderr): the stored card checked against the manifest, else one built now."""
    from shears.records import BaselineRecord, ManifestRecord
    from shears.report import build_model_card, load_run_records, render_card_markdown, signature_of
    from shears.store import Store, sha256_hex
    from shears.store import layout as L

    assert isinstance(store, Store)
    layout = L.RunLayout(run_id)
    prefix = next((p for p in (layout.run_prefix, layout.rejected_prefix) if store.exists(f"{p}/{L.MANIFEST}")), None)
    if prefix is None:
        raise StoreError(f"run {run_id}: no published or rejected run with a manifest in {store.uri}")
    mkey = f"{prefix}/{L.MANIFEST}"
    manifest = ManifestRecord.from_bytes(store.get(mkey), mkey)
    name = L.MODEL_CARD_JSON if as_json else L.MODEL_CARD_MD
    entry = manifest.files.get(name)
    if entry is not None:
        if entry.bytes > MAX_CARD_BYTES:
            raise RecordError(f"{prefix}/{name} is {entry.bytes:,} bytes, over the {MAX_CARD_BYTES:,} a card may be")
        data = store.get(f"{prefix}/{name}")
        if sha256_hex(data) != entry.sha256:
            raise RecordError(f"{prefix}/{name} does not match its manifest (changed after publication); "
                              f"run `shears audit {store.uri}`")
        return data.decode(), None
    records = load_run_records(store, prefix)
    baseline = None
    if store.exists(f"{prefix}/{L.BASELINE_REC}"):
        baseline = BaselineRecord.from_bytes(store.get(f"{prefix}/{L.BASELINE_REC}"))
    card = build_model_card(
        records, baseline=baseline, machines=manifest.machines,
        signature=signature_of(manifest.signature.key_id if manifest.signature else None, L.SIGNATURE),
        intended_use=records.config.card.intended_use if records.config else None,
        data_uri=records.config.data.uri if records.config else None,
    )
    note = f"note: {prefix} was published without a model card; this one is built now from its records"
    return (card.to_bytes().decode() if as_json else render_card_markdown(card)), note


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("keygen")(keygen)
    app.command("show")(show)
