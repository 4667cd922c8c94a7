from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from shears.errors import ConfigError, DataError
from shears.stages.data import (
    holdout_to_npz,
    load_digits_default,
    parse_dataset,
    search_splits_to_npz,
    split,
    splits_from_npz,
)

from tests.conftest import digits_arrays, npz_bytes


def test_digits_default_is_scaled_images() -> None:
    raw = load_digits_default()
    assert raw.x.shape == (1797, 8, 8) and raw.kind == "image"
    assert raw.x.min() >= 0.0 and raw.x.max() <= 1.0
    assert raw.sha256 == load_digits_default().sha256


def test_npz_roundtrip_and_stratified_split() -> None:
    x, y = digits_arrays()
    raw = parse_dataset(npz_bytes(x=x, y=y), "d.npz")
    s = split(raw, 0.2, seed=0, num_classes=10)
    x_test, y_test = s.test()
    assert len(x_test) == 360 and len(s.x_val) == 144 and len(s.x_train) == 1293
    # stratified: every class keeps its share in the test and the validation split
    assert np.bincount(y_test).min() >= 35 and np.bincount(s.y_val).min() >= 14
    again = split(raw, 0.2, seed=0, num_classes=10)
    assert np.array_equal(y_test, again.test()[1]) and np.array_equal(s.y_val, again.y_val)
    search_only = splits_from_npz(search_splits_to_npz(s))
    assert np.array_equal(search_only.x_train, s.x_train) and search_only.kind == "image"
    assert search_only.num_classes == 10 and search_only.x_test is None
    with pytest.raises(ValueError, match="without the test split"):
        search_only.test()
    both = splits_from_npz(search_splits_to_npz(s), holdout_to_npz(s))
    assert np.array_equal(both.test()[0], x_test)


def test_npz_with_own_test_split_is_used() -> None:
    x, y = digits_arrays()
    raw = parse_dataset(npz_bytes(x=x[:1000], y=y[:1000], x_test=x[1000:], y_test=y[1000:]), "d.npz")
    s = split(raw, 0.2, seed=0, num_classes=10)
    assert len(s.x_train) == 900 and len(s.x_val) == 100 and len(s.test()[0]) == 797


def test_csv_and_parquet_tabular() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.1, 0.2, 0.3], "target": [0, 1, 0]})
    raw = parse_dataset(df.to_csv(index=False).encode(), "t.csv", "target")
    assert raw.kind == "tabular" and raw.x.shape == (3, 2) and raw.feature_names == ("a", "b")
    buf = io.BytesIO()
    df.to_parquet(buf)
    raw_pq = parse_dataset(buf.getvalue(), "t.parquet", "target")
    assert np.array_equal(raw_pq.x, raw.x)


@pytest.mark.parametrize(
    ("data", "name", "needle"),
    [
        (b"", "e.npz", "is empty"),
        (npz_bytes(x=np.zeros((10, 4)), y=np.zeros(10))[:40], "t.npz", "corrupt or truncated"),
        (b"not a zip at all", "t.npz", "corrupt or truncated"),
        (npz_bytes(x=np.zeros((10, 4)), y=np.zeros(9)), "m.npz", "x has 10 rows but y has 9"),
        (npz_bytes(x=np.zeros(10), y=np.zeros(10)), "d.npz", "1 dimension(s)"),
        (npz_bytes(x=np.zeros((2, 2, 2, 2, 2, 2)), y=np.zeros(2)), "d.npz", "6 dimension(s)"),
        (npz_bytes(features=np.zeros((10, 4))), "k.npz", "lacks array(s) ['x', 'y']"),
        (npz_bytes(x=np.zeros((10, 4)), y=np.zeros((10, 2))), "t.npz", "a multi-output regressor, are not supported"),
        (b"a,b\n1,2\n", "c.csv", "label column 'label' not found"),
        (b"", "c.csv", "is empty"),
    ],
)
def test_unreadable_data_is_a_data_error(data: bytes, name: str, needle: str) -> None:
    with pytest.raises(DataError) as exc:
        parse_dataset(data, name)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_format_is_usage_error() -> None:
    with pytest.raises(ConfigError, match="unsupported data format"):
        parse_dataset(b"x", "data.txt")


def test_parser_errors_without_a_message_still_give_one_line() -> None:
    from shears.errors import first_line

    assert first_line(ValueError()) == "" and first_line("\n  two\nlines") == "two"


def test_csv_class_names_map_to_ids_by_sorted_name() -> None:
    """Most tabular data names its classes: ids follow the sorted names, a blank name is a missing label."""
    from shears.stages.data import num_classes_of

    rows = ["f1,f2,label", "0.1,1,versicolor", "0.2,2,setosa", "0.3,3,virginica", "0.4,4,setosa", "0.5,5,"]
    raw = parse_dataset("\n".join(rows).encode(), "iris.csv")
    assert raw.class_names == ("setosa", "versicolor", "virginica")
    assert raw.y[:4].tolist() == [1.0, 0.0, 2.0, 0.0] and np.isnan(raw.y[4])
    assert num_classes_of(raw, None) == 3
    numeric = parse_dataset(b"f1,label\n0.1,1\n0.2,0\n", "n.csv")
    assert numeric.class_names is None and numeric.y.tolist() == [1.0, 0.0]


def test_npz_unicode_labels_share_one_map_across_splits() -> None:
    x = np.zeros((4, 3), np.float32)
    raw = parse_dataset(npz_bytes(x=x, y=np.array(["spam", "ham", "ham", "spam"]), x_test=x[:2],
                                  y_test=np.array(["ham", "eggs"])), "d.npz")
    assert raw.class_names == ("eggs", "ham", "spam")
    assert raw.y.tolist() == [2.0, 1.0, 1.0, 2.0]
    assert raw.y_test is not None and raw.y_test.tolist() == [1.0, 0.0]
    with pytest.raises(DataError, match="both hold class names"):
        parse_dataset(npz_bytes(x=x, y=np.array(["a", "b", "a", "b"]), x_test=x[:2], y_test=np.array([0, 1])), "m.npz")


def test_channel_axis_is_added_or_dropped_only_for_a_trailing_one() -> None:
    from shears.stages.data import fit_channel_axis

    x, y = digits_arrays()
    raw = parse_dataset(npz_bytes(x=x, y=y, x_test=x[:10], y_test=y[:10]), "d.npz")
    added, how = fit_channel_axis(raw, (8, 8, 1))
    assert how == "added" and added.x.shape == (1797, 8, 8, 1)
    assert added.x_test is not None and added.x_test.shape == (10, 8, 8, 1)
    dropped, how = fit_channel_axis(added, (8, 8))
    assert how == "dropped" and dropped.x.shape == (1797, 8, 8)
    for shape in ((8, 8), (8, 8, 3), (64,), None):  # equal, or a mismatch the baseline's check names
        same, how = fit_channel_axis(raw, shape)
        assert how is None and same.x.shape == (1797, 8, 8)


def test_the_selection_slice_is_carved_from_training_only_when_it_is_big_enough() -> None:
    from shears.stages.data import load_digits_default, split

    raw = load_digits_default()
    plain = split(raw, 0.2, 0, 10)
    sel = split(raw, 0.2, 0, 10, selection_fraction=0.1, min_selection_rows=100)
    assert plain.x_sel is None and sel.x_sel is not None and sel.y_sel is not None
    assert len(sel.x_sel) + len(sel.x_train) == len(plain.x_train)  # from training, nothing else
    assert np.array_equal(sel.x_val, plain.x_val) and np.array_equal(sel.x_test, plain.x_test)
    assert len(np.unique(sel.y_sel)) == 10  # stratified
    assert split(raw, 0.2, 0, 10, selection_fraction=0.1, min_selection_rows=1000).x_sel is None  # 129 rows: none
