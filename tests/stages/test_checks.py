from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from shears.config import ValidationConfig
from shears.stages.checks import validate_data
from shears.stages.data import load_digits_default, parse_dataset


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_digits_default()


def _failed(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.name: str(c.observed) for c in report.failed}


def test_clean_digits_pass_every_check(digits) -> None:  # type: ignore[no-untyped-def]
    report = validate_data(digits, ValidationConfig(value_min=0, value_max=1, num_classes=10, feature_count=64))
    assert report.success, report.summary()
    names = {c.name for c in report.checks}
    assert {"minimum rows", "no NaN/inf values", "label domain", "feature count",
            "value range (min)", "value range (max)", "minimum rows per class", "class balance"} <= names


def test_nan_and_inf_are_reported_with_counts(digits) -> None:  # type: ignore[no-untyped-def]
    x = digits.x.copy()
    x[0, 0, 0] = np.nan
    x[5, 1, 1] = np.inf
    report = validate_data(replace(digits, x=x), ValidationConfig())
    assert not report.success
    assert "2 of 1797 rows" in _failed(report)["no NaN/inf values"]


def test_labels_out_of_range(digits) -> None:  # type: ignore[no-untyped-def]
    y = digits.y.copy()
    y[:3] = [10, -1, 10]
    report = validate_data(replace(digits, y=y), ValidationConfig(num_classes=10))
    failed = _failed(report)
    assert "label domain" in failed and "3 of 1797" in failed["label domain"]
    assert "label domain" in report.summary()


def test_too_few_rows_per_class_and_imbalance(digits) -> None:  # type: ignore[no-untyped-def]
    keep = np.concatenate([np.where(digits.y != 3)[0], np.where(digits.y == 3)[0][:4]])
    report = validate_data(replace(digits, x=digits.x[keep], y=digits.y[keep]),
                           ValidationConfig(min_rows_per_class=10, max_class_imbalance=10))
    failed = _failed(report)
    assert "minimum rows per class" in failed and "[4]" in failed["minimum rows per class"]
    assert "class balance" in failed


def test_value_range_min_rows_and_shape(digits) -> None:  # type: ignore[no-untyped-def]
    report = validate_data(replace(digits, x=digits.x * 16), ValidationConfig(value_max=1.0, min_rows=5000))
    failed = _failed(report)
    assert failed["value range (max)"] == "16.0"
    assert failed["minimum rows"] == "1797"
    odd = replace(digits, x_test=np.zeros((20, 4, 4), np.float32), y_test=np.zeros(20))
    assert "feature shape consistent" in _failed(validate_data(odd, ValidationConfig()))


def test_tabular_feature_count() -> None:
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=["a", "b", "c"])
    df["label"] = np.arange(200) % 2
    raw = parse_dataset(df.to_csv(index=False).encode(), "t.csv")
    assert validate_data(raw, ValidationConfig(feature_count=3)).success
    assert "feature count" in _failed(validate_data(raw, ValidationConfig(feature_count=4)))


def test_only_checks_that_can_fail_are_counted(digits) -> None:  # type: ignore[no-untyped-def]
    """Without a test split of its own and without feature_count, shape and count are computed from the array
    they would be compared with: they are not run (nor counted)."""
    names = {c.name for c in validate_data(digits, ValidationConfig()).checks}
    assert "feature shape consistent" not in names and "feature count" not in names
    with_test = replace(digits, x_test=digits.x[:50], y_test=digits.y[:50])
    assert "feature shape consistent" in {c.name for c in validate_data(with_test, ValidationConfig()).checks}


def test_every_remaining_check_fails_on_a_crafted_input(digits) -> None:  # type: ignore[no-untyped-def]
    y = digits.y.astype(np.float64)
    y[:2] = np.nan
    assert "label present" in _failed(validate_data(replace(digits, y=y), ValidationConfig()))
    assert "every class present" in _failed(validate_data(digits, ValidationConfig(num_classes=11)))
    one = replace(digits, x_test=digits.x[:40], y_test=np.zeros(40, dtype=digits.y.dtype))
    assert "at least two classes per split" in _failed(validate_data(one, ValidationConfig()))
