"""What a run publishes about itself besides its results: where it ran, its model card, whether it is signed.

Called by the lifecycle's publish path (lifecycle._release) before the manifest is built, so the model card
is listed in the manifest and covered by the signature, and the manifest records the machines and declares
the signature. The TensorFlow steps stage one MachineRecord each (steps._timed); they are merged here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shears.errors import ConfigError, RecordError
from shears.records import BaselineRecord, MachineInfo, MachineRecord, ModelCardRecord, SignatureRef
from shears.report.card import build_model_card, render_card_markdown, signature_of
from shears.report.readers import RunRecords
from shears.run.context import RunContext
from shears.store import layout as L

KEY_SOURCES = ("`shears run --signing-key FILE`, $SHEARS_SIGNING_KEY, or in Airflow the connection "
               "$SHEARS_SIGNING_CONN_ID")


def check_signing(ctx: RunContext) -> None:
    """signing.required without a key is a config error (exit 2), raised at validate before anything trains."""
    if ctx.cfg.signing.required and ctx.signer() is None:
        raise ConfigError(f"signing.required is set but no signing key was given ({KEY_SOURCES})")


def staged_machines(ctx: RunContext, steps: Iterable[str]) -> list[MachineInfo]:
    """The machines this attempt's TensorFlow `steps` ran on, one entry per distinct machine, naming its steps
    in the order they ran (read by step name, never from a listing: like the published files)."""
    found = []
    for step in steps:
        name = L.machine(step)
        if not ctx.has(name):
            continue  # not a TensorFlow step
        try:
            found.append(ctx.get_record(MachineRecord, name))
        except RecordError:
            continue
    found.sort(key=lambda rec: rec.at)  # the order the steps ran in (they may have run on different workers)
    merged: list[MachineInfo] = []
    for rec in found:
        same = next((m for m in merged if m.same_machine(rec.machine)), None)
        if same is None:
            merged.append(rec.machine.model_copy(update={"steps": [rec.step]}))
        else:
            merged[merged.index(same)] = same.model_copy(update={"steps": [*same.steps, rec.step]})
    return merged


@dataclass(frozen=True)
class Provenance:
    machines: list[MachineInfo]
    signature: SignatureRef | None
    card: ModelCardRecord


def add_provenance(ctx: RunContext, files: dict[str, bytes], records: RunRecords, steps: Iterable[str]) -> Provenance:
    """Write model_card.json/.md into `files` (and staging), and say what the manifest must record.

    `steps`: the steps this attempt recorded (their TensorFlow steps' machine records are merged).
    """
    key = ctx.signer()
    machines = staged_machines(ctx, steps)
    baseline = None
    if L.BASELINE_REC in files:
        try:
            baseline = BaselineRecord.from_bytes(files[L.BASELINE_REC], L.BASELINE_REC)
        except RecordError:
            baseline = None
    card = build_model_card(
        records, baseline=baseline, machines=machines,
        signature=signature_of(key.key_id if key else None, L.SIGNATURE),
        intended_use=ctx.cfg.card.intended_use, data_uri=ctx.cfg.data.uri,
    )
    files[L.MODEL_CARD_JSON] = card.to_bytes()
    files[L.MODEL_CARD_MD] = render_card_markdown(card).encode()
    ctx.put(L.MODEL_CARD_JSON, files[L.MODEL_CARD_JSON])
    ctx.put(L.MODEL_CARD_MD, files[L.MODEL_CARD_MD])
    signature = SignatureRef(file=L.SIGNATURE, key_id=key.key_id) if key else None
    return Provenance(machines, signature, card)
