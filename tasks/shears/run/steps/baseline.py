"""The baseline step: train the baseline, or load and prove a user's pre-trained model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shears.records import BaselineRecord, dumps
from shears.run.steps.common import read_model_uri, splits, timed
from shears.store import layout as L

if TYPE_CHECKING:
    from shears.run.context import RunContext


def step_baseline(ctx: RunContext) -> dict[str, Any]:
    """Train the baseline (or load and check the user's pre-trained model) and save it without optimizer.

    Its accuracy is measured on the validation split (what the search compares against); the test split is
    read once, by evaluate. A user's file is loaded in a scrubbed child process (shears.keras.sandbox).
    """
    from shears.errors import ConfigError
    from shears.keras.keras3 import load_pretrained
    from shears.keras.modelio import model_to_h5
    from shears.keras.prunable import model_support
    from shears.stages.baseline import (
        check_conversion,
        check_model_fits,
        evaluate_pretrained,
        probe_rows,
        train_baseline,
    )
    from shears.stages.measure import gzip_size

    uri = ctx.cfg.model.pretrained
    origin, conv = "trained here", None
    with timed(ctx, "baseline", machine=True):
        data_splits = splits(ctx)
        if uri:
            # loaded in a scrubbed child process; a Keras 3 file comes back rebuilt in tf_keras
            pre = load_pretrained(read_model_uri(uri, ctx.s3_client), uri, probe_rows(data_splits))
            origin = pre.origin
            if pre.keras3_architecture is not None:  # proof of equivalence on the run's data, recorded
                check_model_fits(pre.model, data_splits)
                if pre.keras3_reference is None:
                    raise ConfigError(f"the Keras 3 model {uri} cannot run on the data: {pre.keras3_reference_error}")
                conv = check_conversion(pre.keras3_reference, pre.model, probe_rows(data_splits),
                                        ctx.cfg.model.conversion_tolerance)
                ctx.put(L.KERAS3_ARCHITECTURE, dumps(pre.keras3_architecture))  # for the way back, at select
            result = evaluate_pretrained(pre.model, data_splits)
        else:
            result = train_baseline(data_splits, ctx.cfg.model)
        data = model_to_h5(result.model, include_optimizer=False)
        ctx.put(L.BASELINE_MODEL, data)
        ctx.put(L.BASELINE_OUTPUTS, _outputs_npz(result.model, data_splits))
        cfg = ctx.cfg
        support = model_support(result.model, probe_qat=cfg.recipe.qat or (cfg.search.enabled and
                                                                           True in cfg.search.space.qat))
        prunable = {p.layer: sum(p.weights.values()) for p in support.layers if p.weights}
        record = BaselineRecord(
            score=result.score, metric=data_splits.task.primary, builder=result.builder, pretrained=uri,
            history=result.history,
            params=int(result.model.count_params()), split="validation", gzip_bytes=gzip_size(data),
            prunable_layers=prunable, origin=origin,
            conversion_max_abs_diff=conv.max_abs_diff if conv else None,
            conversion_samples=conv.samples if conv else None, conversion_tolerance=conv.tolerance if conv else None,
            support=support)
        ctx.put_record(record)
    return {"model": ctx.layout.staging(L.BASELINE_MODEL), record.metric: result.score, "split": "validation",
            "origin": origin, "conversion_max_abs_diff": record.conversion_max_abs_diff,
            "conversion_samples": record.conversion_samples, "conversion_tolerance": record.conversion_tolerance,
            "kept": [f"layer '{p.layer}' ({p.class_name}) kept dense: {p.kept}" for p in support.layers if p.kept],
            "limits": [f"{what}: {why}" for what, why in (("batch of one", support.fixed_batch),
                                                         ("no int8", support.int8), ("no QAT", support.qat)) if why]}


def _outputs_npz(model: Any, data: Any) -> bytes:
    """The baseline's outputs on the validation split and the selection slice, as an NPZ: every trial's bounds
    are paired with them row by row (the same rows, so only disagreements count)."""
    import io

    import numpy as np

    from shears.keras.training import model_outputs

    arrays = {"val": model_outputs(model, data.x_val)}
    if data.x_sel is not None:
        arrays["sel"] = model_outputs(model, data.x_sel)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()
