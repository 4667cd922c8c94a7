"""The validate step: everything that can be checked before anything trains (config, champion, data, model file)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shears.run import provenance
from shears.run.steps.common import read_model_uri, timed
from shears.store import layout as L
from shears.store import read_uri

if TYPE_CHECKING:
    from shears.keras.fileinfo import ModelFileInfo
    from shears.records import ValidationRecord
    from shears.run.context import RunContext
    from shears.stages.data import RawDataset
    from shears.task import Task


def step_validate(ctx: RunContext) -> dict[str, Any]:
    """Check everything that can be checked before training: the config's builder, the champion, the data.

    A broken champion pointer (or its manifest) fails here, not after the whole training; a builder module
    outside the allow-list is refused before it is imported; a user's model file is parsed and checked
    without Keras; bad data raises DataError (nothing is trained). validation.json is written once, when its
    content is final (also when a later check fails: it is kept next to failure.json).
    """
    from shears.config import with_task_defaults
    from shears.errors import DataError
    from shears.keras.allowlist import check_builder
    from shears.release.champion import read_champion, read_champion_manifest
    from shears.stages.checks import validate_data
    from shears.stages.data import (
        check_token_ids,
        holdout_to_npz,
        load_digits_default,
        num_classes_of,
        parse_dataset,
        search_splits_to_npz,
        split,
    )
    from shears.stages.schedule import derive_schedule

    with timed(ctx, "validate"):
        provenance.check_signing(ctx)  # signing.required without a key: stop before anything trains
        ctx.put(L.CONFIG, ctx.cfg.to_bytes())
        if ctx.cfg.model.builder and not ctx.cfg.model.pretrained:
            check_builder(ctx.cfg.model.builder)
        champion = read_champion(ctx.store)  # RecordError (exit 1) for a broken pointer
        if champion is not None:
            read_champion_manifest(ctx.store, champion)
        uri = ctx.cfg.data.uri
        if uri is None:
            raw = load_digits_default()
        else:
            raw = parse_dataset(read_uri(uri, ctx.s3_client), uri, ctx.cfg.data.label_column)
        info = _model_info(ctx)
        task = _choose_task(ctx, raw, info)
        cfg, task_defaults = with_task_defaults(ctx.cfg, task.kind)
        if task_defaults:  # what every later step reads: the config with the task's defaults filled in
            ctx.put(L.CONFIG, cfg.to_bytes())
        report = validate_data(raw, ctx.cfg.validation, task)
        if not report.success:
            ctx.put_record(report)
            raise DataError(report.summary())
        if info is not None and info.token_vocabulary is not None:
            check_token_ids(raw, info.token_vocabulary)
        raw, report = _scaled(ctx, raw, report)
        try:
            raw, report = _with_channel_axis(raw, report, info)
            try:
                classes = num_classes_of(raw, ctx.cfg.validation.num_classes) if task.classification else 0
                selection = cfg.search.selection_fraction if cfg.search.enabled else 0.0
                splits = split(raw, ctx.cfg.data.test_fraction, ctx.cfg.data.split_seed, classes,
                               ctx.cfg.data.validation_fraction, task=task, selection_fraction=selection,
                               min_selection_rows=cfg.search.min_selection_rows)
            except ValueError as exc:
                raise DataError(f"cannot split data: {exc}") from None
            rows = {"train": len(splits.x_train), "validation": len(splits.x_val), "test": len(splits.test()[0])}
            if splits.x_sel is not None:
                rows["selection"] = len(splits.x_sel)
            report = report.model_copy(update={"split_rows": rows})
        finally:  # once, with what is final even when the model file is refused or the data cannot split
            key = ctx.put_record(report)
        if raw.class_names is not None:  # class id i is line i; published beside the models
            ctx.put(L.LABELS, "".join(f"{n}\n" for n in raw.class_names).encode())
        # a schedule that can never reach its target is a config error: raise it before anything trains
        epochs = set(cfg.search.space.epochs) if cfg.search.enabled else set()
        for e in sorted({cfg.prune.epochs, *epochs}):
            schedule = derive_schedule(cfg.prune.model_copy(update={"epochs": e}), len(splits.x_train))
        schedule = derive_schedule(cfg.prune, len(splits.x_train))
        ctx.put(L.SEARCH_SPLITS, search_splits_to_npz(splits))
        ctx.put(L.TEST_SPLIT, holdout_to_npz(splits))
    return {
        "validation": key,
        "dataset_sha256": raw.sha256,
        "rows": report.rows,
        "train_rows": len(splits.x_train),
        "validation_rows": len(splits.x_val),
        "test_rows": len(splits.test()[0]),
        "checks": len(report.checks),
        "prune_end_step": schedule.end_step,
        "input_scale": report.input_scale,
        "channel_axis": report.channel_axis,
        "classes": report.class_names,
        "task": task.describe(),
        "task_reason": task.reason,
        "task_defaults": task_defaults,
    }


def _model_info(ctx: RunContext) -> ModelFileInfo | None:
    """A user's model file, parsed and checked without Keras (sizes, allow-listed classes, plain HDF5):
    refused here (exit 2); None when the baseline is trained here."""
    from shears.keras.fileinfo import inspect_model_file

    if not ctx.cfg.model.pretrained:
        return None
    return inspect_model_file(read_model_uri(ctx.cfg.model.pretrained, ctx.s3_client), ctx.cfg.model.pretrained)


def _choose_task(ctx: RunContext, raw: RawDataset, info: ModelFileInfo | None) -> Task:
    """The run's task, once (recorded in validation.json; every later step reads it from there)."""
    import numpy as np

    from shears.errors import ConfigError
    from shears.task import TaskError, choose_task, with_metric

    labels = raw.y if raw.y_test is None else np.concatenate([raw.y, raw.y_test])
    try:
        task = choose_task(ctx.cfg.task, labels, num_classes=ctx.cfg.validation.num_classes,
                           output=info.output if info else None, class_names=raw.class_names is not None)
        return with_metric(task, ctx.cfg.gates.metric)
    except TaskError as exc:
        raise ConfigError(str(exc)) from None


def _scaled(ctx: RunContext, raw: RawDataset, report: ValidationRecord) -> tuple[RawDataset, ValidationRecord]:
    """Integer images scaled to [0, 1], recorded: the deployed model expects inputs scaled the same way."""
    from shears.stages.data import scale_integer_images

    if not ctx.cfg.data.scale_integer_images:
        return raw, report
    raw, scaling = scale_integer_images(raw)
    if scaling is None:
        return raw, report
    return raw, report.model_copy(update={"input_scale": scaling.scale, "input_dtype": scaling.dtype})


def _with_channel_axis(raw: RawDataset, report: ValidationRecord,
                       info: ModelFileInfo | None) -> tuple[RawDataset, ValidationRecord]:
    """Grayscale images given the channel axis a pre-trained model expects (or the reverse), recorded."""
    from shears.stages.data import fit_channel_axis

    if info is None:
        return raw, report
    raw, how = fit_channel_axis(raw, info.input_shape)
    shape = list(info.input_shape) if info.input_shape is not None else None
    return raw, report.model_copy(update={"channel_axis": how, "model_input_shape": shape})
