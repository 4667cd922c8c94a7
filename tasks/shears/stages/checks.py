"""Data validation with Great Expectations 1.x (ephemeral context, no network).

Array data can have thousands of feature columns, so expectations run on two small derived tables:
a per-row table (split, label, feature count, feature shape, non-finite count, row min/max) and a
per-class table (count, ratio to the smallest class). Both kinds of data (images, tabular) share it;
tabular data also gets its column set checked. Every failed expectation is reported with its
observed value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shears.config import ValidationConfig
from shears.records import CheckRecord, ValidationRecord
from shears.stages.data import RawDataset, num_classes_of
from shears.task import Task, task_record


def _row_table(raw: RawDataset) -> pd.DataFrame:
    frames = []
    for split_name, x, y in (("train", raw.x, raw.y), ("test", raw.x_test, raw.y_test)):
        if x is None or y is None:
            continue
        flat = x.reshape(x.shape[0], -1).astype(np.float64, copy=False)
        finite = np.isfinite(flat)
        with np.errstate(all="ignore"):
            masked_min = np.where(finite, flat, np.inf).min(axis=1) if flat.shape[1] else np.zeros(len(flat))
            masked_max = np.where(finite, flat, -np.inf).max(axis=1) if flat.shape[1] else np.zeros(len(flat))
        frames.append(
            pd.DataFrame(
                {
                    "split": split_name,
                    "label": y.astype(np.float64),
                    "label_nonfinite": (~np.isfinite(y.astype(np.float64))).astype(np.int64),
                    "n_features": flat.shape[1],
                    "feature_shape": "x".join(str(d) for d in x.shape[1:]),
                    "nonfinite": (~finite).sum(axis=1),
                    "row_min": masked_min,
                    "row_max": masked_max,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _split_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per split the source brought (train, and test when it has its own): how many classes it holds."""
    per_split = rows.dropna(subset=["label"]).groupby("split")["label"].nunique()
    return pd.DataFrame({"split": per_split.index, "classes": per_split.to_numpy()})


def _class_table(rows: pd.DataFrame) -> pd.DataFrame:
    counts = rows.loc[rows["split"] == "train", "label"].dropna().value_counts().sort_index()
    smallest = max(int(counts.min()), 1) if len(counts) else 1
    return pd.DataFrame({"label": counts.index, "count": counts.to_numpy(), "ratio": counts.to_numpy() / smallest})


def _expectations(raw: RawDataset, cfg: ValidationConfig, num_classes: int,
                  task: Task) -> dict[str, list[tuple[str, Any]]]:
    import great_expectations as gx

    ge = gx.expectations
    rows: list[tuple[str, Any]] = [
        ("minimum rows", ge.ExpectTableRowCountToBeBetween(min_value=cfg.min_rows)),
        ("no NaN/inf values", ge.ExpectColumnValuesToBeBetween(column="nonfinite", min_value=0, max_value=0)),
        ("label present", ge.ExpectColumnValuesToNotBeNull(column="label")),
    ]
    if not task.classification:
        return _regression_expectations(rows, raw, cfg)
    rows.append((
        "label domain",
        ge.ExpectColumnValuesToBeInSet(column="label", value_set=[float(c) for c in range(num_classes)]),
    ))
    rows += _feature_expectations(raw, cfg)
    classes: list[tuple[str, Any]] = [
        (
            "minimum rows per class",
            ge.ExpectColumnValuesToBeBetween(column="count", min_value=cfg.min_rows_per_class),
        ),
        ("class balance", ge.ExpectColumnValuesToBeBetween(column="ratio", max_value=cfg.max_class_imbalance)),
        ("every class present", ge.ExpectTableRowCountToBeBetween(min_value=num_classes)),
    ]
    splits: list[tuple[str, Any]] = [
        # one class = nothing to learn: such a model scores 100 % and would become champion
        ("at least two classes per split", ge.ExpectColumnValuesToBeBetween(column="classes", min_value=2)),
    ]
    if task.kind == "binary":  # the share of label 1 within the configured prevalence bounds
        rows.append(("positive rate", ge.ExpectColumnMeanToBeBetween(
            column="label", min_value=cfg.min_prevalence, max_value=cfg.max_prevalence)))
    return {"rows": rows, "classes": classes, "splits": splits}


def _regression_expectations(rows: list[tuple[str, Any]], raw: RawDataset,
                             cfg: ValidationConfig) -> dict[str, list[tuple[str, Any]]]:
    """A continuous target: finite, within the configured range, not constant (a constant target has nothing
    to learn and a constant model would match it)."""
    import great_expectations as gx

    ge = gx.expectations
    rows.append(("target finite", ge.ExpectColumnValuesToBeBetween(column="label_nonfinite", min_value=0,
                                                                   max_value=0)))
    if cfg.target_min is not None or cfg.target_max is not None:
        rows.append(("target range", ge.ExpectColumnValuesToBeBetween(column="label", min_value=cfg.target_min,
                                                                      max_value=cfg.target_max)))
    rows.append(("target varies", ge.ExpectColumnStdevToBeBetween(column="label", min_value=0, strict_min=True)))
    return {"rows": rows + _feature_expectations(raw, cfg)}


def _feature_expectations(raw: RawDataset, cfg: ValidationConfig) -> list[tuple[str, Any]]:
    """The features' shape, count and value range, whatever the task.

    Only checks that can fail: with no test split of its own, the shape and count columns are computed from
    the very array they would be compared with (a check that always passes, once counted on the card)."""
    import great_expectations as gx

    ge = gx.expectations
    rows: list[tuple[str, Any]] = []
    if raw.x_test is not None:
        feature_shape = "x".join(str(d) for d in raw.x.shape[1:])
        rows.append(("feature shape consistent",
                     ge.ExpectColumnValuesToBeInSet(column="feature_shape", value_set=[feature_shape])))
    if cfg.feature_count is not None:
        rows.append(("feature count", ge.ExpectColumnValuesToBeBetween(
            column="n_features", min_value=cfg.feature_count, max_value=cfg.feature_count)))
    if cfg.value_min is not None:
        rows.append(("value range (min)", ge.ExpectColumnMinToBeBetween(column="row_min", min_value=cfg.value_min)))
    if cfg.value_max is not None:
        rows.append(("value range (max)", ge.ExpectColumnMaxToBeBetween(column="row_max", max_value=cfg.value_max)))
    return rows


def _observed(result: dict[str, Any], column: str | None) -> Any:
    if "observed_value" in result:
        value = result["observed_value"]
        return value.item() if isinstance(value, np.generic) else value
    count = result.get("unexpected_count")
    sample = result.get("partial_unexpected_list", [])[:5]
    sample = [v.item() if isinstance(v, np.generic) else v for v in sample]
    sample = ["NaN" if isinstance(v, float) and v != v else v for v in sample]
    if column == "count" and sample:
        return f"{count} class(es) with counts {sample}"
    if column == "classes" and sample:
        return f"{count} split(s) with {sample} class(es)"
    return f"{count} of {result.get('element_count')} rows violate; e.g. {sample}"


def _describe(kwargs: dict[str, Any]) -> str:
    keys = [k for k in ("min_value", "max_value", "value_set") if kwargs.get(k) is not None]
    if not keys:
        return "not null"
    parts = []
    for k in keys:
        v = kwargs[k]
        if k == "value_set" and isinstance(v, list) and len(v) > 6:
            v = f"[{v[0]}..{v[-1]}] ({len(v)} values)"
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def validate_data(raw: RawDataset, cfg: ValidationConfig, task: Task | None = None) -> ValidationRecord:
    """Run every expectation built from `cfg`, the data kind and the task; never raises on bad data.

    `task` (None: a multi-class classifier, as before tasks had kinds) is recorded in validation.json."""
    from shears.keras.quiet import quiet_python_loggers

    quiet_python_loggers()  # before GX is imported: its import alone logs ~200 INFO lines
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    task = task or Task("multiclass", num_classes_of(raw, cfg.num_classes), num_classes_of(raw, cfg.num_classes),
                        "logits")
    num_classes = num_classes_of(raw, cfg.num_classes) if task.classification else 0
    rows = _row_table(raw)
    tables = {"rows": rows, "classes": _class_table(rows), "splits": _split_table(rows)}
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = ctx.data_sources.add_pandas("shears")
    checks: list[CheckRecord] = []
    for table_name, specs in _expectations(raw, cfg, num_classes, task).items():
        batch = source.add_dataframe_asset(table_name).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"shears-{table_name}", expectations=[e for _, e in specs]))
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"v-{table_name}", data=batch, suite=suite))
        result = vd.run(batch_parameters={"dataframe": tables[table_name]})
        by_id = {r.expectation_config.id: r for r in result.results if r.expectation_config is not None}
        for (name, _), exp in zip(specs, suite.expectations, strict=True):
            r = by_id[exp.id]
            conf = r.expectation_config
            assert conf is not None
            kwargs = dict(conf.kwargs)
            checks.append(
                CheckRecord(
                    name=name,
                    expectation=conf.type,
                    success=bool(r.success),
                    observed=_observed(dict(r.result), kwargs.get("column")),
                    expected=_describe(kwargs),
                )
            )
    return ValidationRecord(
        dataset=raw.name,
        dataset_sha256=raw.sha256,
        kind=raw.kind,
        rows=int(raw.x.shape[0]),
        test_rows=int(raw.x_test.shape[0]) if raw.x_test is not None else 0,
        num_classes=num_classes,
        feature_shape=[int(d) for d in raw.x.shape[1:]],
        checks=checks,
        success=all(c.success for c in checks),
        class_names=list(raw.class_names) if raw.class_names is not None else None,
        task=task_record(task),
    )
