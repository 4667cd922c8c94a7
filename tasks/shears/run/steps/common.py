"""What the phase modules share: timing a step (and recording what it wrote), the staged splits, the trials."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shears.records import MachineRecord, TimingRecord, TrialRecord
from shears.store import layout as L
from shears.store import read_uri

if TYPE_CHECKING:
    from shears.run.context import RunContext
    from shears.stages.data import Splits
    from shears.task import Task


@contextmanager
def timed(ctx: RunContext, step: str, machine: bool = False) -> Iterator[None]:
    """Time a step and record the files it wrote: publish takes exactly those (never a directory listing).

    A TensorFlow step (`machine`) also records the machine it ran on (manifest, model card).
    """
    started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    t0 = time.perf_counter()
    first = len(ctx.written)
    yield
    outputs = sorted(set(ctx.written[first:]))
    ctx.put_record(TimingRecord(step=step, seconds=round(time.perf_counter() - t0, 3), outputs=outputs,
                                started_at=started), L.timing(step))

    if machine:
        from shears.keras.machine import collect_machine

        at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        ctx.put_record(MachineRecord(step=step, at=at, machine=collect_machine()), L.machine(step))


def splits(ctx: RunContext, *, test: bool = False) -> Splits:
    """Train and validation; the test split only for evaluate (everything before it never loads it)."""
    from shears.stages.data import splits_from_npz

    return splits_from_npz(ctx.get(L.SEARCH_SPLITS), ctx.get(L.TEST_SPLIT) if test else None, run_task(ctx))


def run_task(ctx: RunContext) -> Task:
    """The task validate chose and recorded in validation.json (never derived again)."""
    from shears.records import ValidationRecord
    from shears.task import task_of

    return task_of(ctx.get_record(ValidationRecord))


def judged_rows(ctx: RunContext) -> int | None:
    """The test split's row count, which the search's bounds predict for (search.predict_test), else None. Read
    from validation.json: the test rows themselves stay unread until evaluate."""
    from shears.records import ValidationRecord

    if not ctx.cfg.search.predict_test:
        return None
    rows = ctx.get_record(ValidationRecord).split_rows or {}
    return rows.get("test") or None


def read_model_uri(uri: str, s3_client: Callable[[], Any] | None) -> bytes:
    """A user's model file, refused (exit 2) before it is read when it is larger than intake allows."""
    from shears.keras.intake import MAX_MODEL_FILE_BYTES

    return read_uri(uri, s3_client, max_bytes=MAX_MODEL_FILE_BYTES)


def trials(ctx: RunContext) -> list[TrialRecord]:
    """Every trial so far: its result, or its plan marked failed when no result was written."""
    prefix = ctx.layout.staging(L.SEARCH_DIR + "/trials") + "/"
    plans: dict[int, TrialRecord] = {}
    results: dict[int, TrialRecord] = {}
    for key in ctx.work.list(prefix):
        if key.endswith("/plan.json") or key.endswith("/result.json"):
            rec = TrialRecord.from_bytes(ctx.get(key[len(ctx.layout.staging_prefix) + 1:]), key)
            (results if key.endswith("/result.json") else plans)[rec.number] = rec
    out = []
    for number in sorted(plans):
        out.append(results.get(number) or plans[number].model_copy(
            update={"state": "failed", "error": "the trial did not finish (its task failed or was killed)"}))
    return out


def baseline_outputs(ctx: RunContext, split: str) -> Any:
    """The baseline's outputs on the validation split ("val") or the selection slice ("sel"), as the baseline
    step saved them; None for a run staged before they were (its bounds are then not paired)."""
    import io

    import numpy as np

    if not ctx.has(L.BASELINE_OUTPUTS):
        return None
    with np.load(io.BytesIO(ctx.get(L.BASELINE_OUTPUTS)), allow_pickle=False) as z:
        return z[split] if split in z.files else None
