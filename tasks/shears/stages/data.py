"""Turn bytes (NPZ, CSV, Parquet) or the bundled digits into arrays, and split them.

Parsing is strict about what it cannot represent (corrupt files, mismatched lengths, wrong
dimensionality, missing label column); everything that *can* be represented but is wrong (NaN, labels
out of range, too few rows) is left to the validation stage so that it is reported with the rest.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from shears.errors import ConfigError, DataError, first_line
from shears.task import Task

DataKind = Literal["image", "tabular"]
DEFAULT_DATA_NAME = "sklearn-digits"


@dataclass(frozen=True)
class RawDataset:
    """Arrays as read; `x_test`/`y_test` only when the source brought its own test split."""

    name: str
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    feature_names: tuple[str, ...] | None
    sha256: str
    # labels given as class names: id i is class_names[i] (sorted); None: the labels were integer ids
    class_names: tuple[str, ...] | None = None

    @property
    def kind(self) -> DataKind:
        return "tabular" if self.x.ndim == 2 else "image"


@dataclass(frozen=True)
class Splits:
    """Train (fits), validation (every choice: the search, the baseline's reference accuracy) and test.

    The test split is read once, for the final figures; the search's steps load the splits without it
    (`x_test is None`), so they cannot use it by mistake.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    kind: DataKind
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    task_: Task | None = None  # None: a multi-class classifier over num_classes logits (before tasks had kinds)
    # the search's selection slice: training rows no trial sees, for the second look at its passes
    x_sel: np.ndarray | None = None
    y_sel: np.ndarray | None = None

    @property
    def task(self) -> Task:
        if self.task_ is not None:
            return self.task_
        return Task("multiclass", self.num_classes, self.num_classes, "logits")

    @property
    def output_units(self) -> int:
        """How many output units a model for these splits has (a model trained here gets this many)."""
        return self.task.units

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def test(self) -> tuple[np.ndarray, np.ndarray]:
        if self.x_test is None or self.y_test is None:
            raise ValueError("these splits were loaded without the test split (it is read once, at evaluate)")
        return self.x_test, self.y_test


def load_digits_default() -> RawDataset:
    """The embedded default: sklearn's bundled 8x8 digits (no download), scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    return RawDataset(DEFAULT_DATA_NAME, x, y, None, None, None, digest)


def _check_dims(name: str, arr: np.ndarray) -> None:
    if arr.ndim not in (2, 3, 4, 5):
        raise DataError(
            f"{name} has {arr.ndim} dimension(s) {tuple(arr.shape)}; expected 2 (tabular rows x features, or "
            "token ids), 3-4 (images) or 5 (volumes)"
        )


def _check_labels(name: str, arr: np.ndarray, rows: int, xname: str) -> np.ndarray:
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{name} must be one label per row, got shape {tuple(arr.shape)} (several targets per row, "
                        "a multi-output regressor, are not supported: one target per run)")
    if arr.shape[0] != rows:
        raise DataError(f"{xname} has {rows} rows but {name} has {arr.shape[0]}")
    if arr.dtype.kind == "U":  # class names: mapped to ids by _name_labels
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{name} must hold integer class ids or numeric targets, got dtype {arr.dtype}")
    return arr


MAX_DATA_BYTES = 4 << 30  # the arrays of one NPZ, inflated


def _parse_npz(data: bytes, name: str, digest: str) -> RawDataset:
    from shears.bounded import check_zip_directory

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:  # measured from its directory before anything inflates
            check_zip_directory(z, f"NPZ {name}", DataError, max_members=16, max_member_bytes=lambda _: MAX_DATA_BYTES,
                                max_total_bytes=MAX_DATA_BYTES)
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise DataError(f"cannot read NPZ {name}: corrupt or truncated ({type(exc).__name__})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(f"NPZ {name} lacks array(s) {missing}; expected 'x', 'y' (and optional 'x_test', 'y_test')")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"NPZ {name} must hold both 'x_test' and 'y_test' or neither")
    x = arrays["x"]
    _check_dims("x", x)
    y = _check_labels("y", arrays["y"], x.shape[0], "x")
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = arrays["x_test"]
        _check_dims("x_test", x_test)
        y_test = _check_labels("y_test", arrays["y_test"], x_test.shape[0], "x_test")
    for arr_name, arr in (("x", x), ("x_test", x_test)):
        if arr is not None and not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{arr_name} must be numeric, got dtype {arr.dtype}")
    if y_test is not None and (y.dtype.kind == "U") != (y_test.dtype.kind == "U"):
        raise DataError("y and y_test must both hold class names or both integer class ids")
    names = None
    if y.dtype.kind == "U":
        names, (mapped, y_test) = _name_labels(name, [y, y_test])
        assert mapped is not None
        y = mapped
    return RawDataset(name, x, y, x_test, y_test, None, digest, names)


def _name_labels(where: str, arrays: list[np.ndarray | None]) -> tuple[tuple[str, ...], list[np.ndarray | None]]:
    """Class names -> ids by sorted name (the same names always get the same ids); a missing name is NaN.

    Most tabular data names its classes ('setosa', 'spam'); the map is recorded and published as labels.txt.
    """
    import pandas as pd

    def present(a: np.ndarray) -> np.ndarray:
        return np.asarray(pd.notna(a) & (pd.Series(a).astype(str).str.strip() != "").to_numpy(), dtype=bool)

    given = [a for a in arrays if a is not None]
    names = sorted({str(v).strip() for a in given for v, ok in zip(a, present(a), strict=True) if ok})
    if len(names) > 10_000:
        raise DataError(f"labels in {where} hold {len(names):,} distinct names: not class names")
    ids = {n: float(i) for i, n in enumerate(names)}
    out: list[np.ndarray | None] = []
    for a in arrays:
        if a is None:
            out.append(None)
            continue
        mask = present(a)
        out.append(np.array([ids[str(v).strip()] if ok else np.nan for v, ok in zip(a, mask, strict=True)],
                            dtype=np.float64))
    return tuple(names), out


def _parse_table(data: bytes, name: str, fmt: str, label_column: str, digest: str) -> RawDataset:
    import pandas as pd

    try:
        df = pd.read_csv(io.BytesIO(data)) if fmt == "csv" else pd.read_parquet(io.BytesIO(data))
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {name} has no columns") from None
    except Exception as exc:  # pandas/pyarrow raise many types for corrupt input
        raise DataError(f"cannot read {fmt.upper()} {name}: {type(exc).__name__}: {first_line(exc)}") from None
    if label_column not in df.columns:
        raise DataError(f"label column '{label_column}' not found in {name}; columns are {list(df.columns)[:10]}")
    features = [c for c in df.columns if c != label_column]
    if not features:
        raise DataError(f"{name} has no feature columns besides '{label_column}'")
    non_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise DataError(f"feature column(s) {non_numeric[:5]} in {name} are not numeric")
    labels = df[label_column]
    x = df[features].to_numpy(dtype=np.float32)
    names = None
    if pd.api.types.is_numeric_dtype(labels):
        y = labels.to_numpy(dtype=np.float64)
    elif pd.api.types.is_bool_dtype(labels):
        raise DataError(f"label column '{label_column}' in {name} holds booleans: use class ids or class names")
    else:  # class names ('setosa', 'spam'): ids by sorted name
        names, (mapped,) = _name_labels(name, [labels.to_numpy(dtype=object)])
        assert mapped is not None
        y = mapped
    return RawDataset(name, x, y, None, None, tuple(str(c) for c in features), digest, names)


def parse_dataset(data: bytes, name: str, label_column: str = "label") -> RawDataset:
    """Parse NPZ / CSV / Parquet bytes; `name` (file name or URI) picks the format by extension."""
    lower = name.lower()
    if lower.endswith(".npz"):
        fmt = "npz"
    elif lower.endswith(".csv"):
        fmt = "csv"
    elif lower.endswith((".parquet", ".pq")):
        fmt = "parquet"
    else:
        raise ConfigError(f"unsupported data format for {name}: use .npz, .csv or .parquet")
    if not data:
        raise DataError(f"data file {name} is empty")
    digest = hashlib.sha256(data).hexdigest()
    if fmt == "npz":
        return _parse_npz(data, name, digest)
    return _parse_table(data, name, fmt, label_column, digest)


def check_token_ids(raw: RawDataset, vocabulary: int) -> None:
    """Features that are token ids for an Embedding of `vocabulary` ids: whole numbers in [0, vocabulary), in
    every split. An id outside fails TensorFlow's lookup mid-training and reads past the table in a .tflite."""
    for name, arr in (("x", raw.x), ("x_test", raw.x_test)):
        if arr is None or not arr.size:
            continue
        values = np.asarray(arr, dtype=np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values >= vocabulary)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DataError(f"{name} holds {int(bad.sum()):,} value(s) that are not token ids of the model's Embedding "
                            f"[0, {vocabulary}) (first: {values[bad][0]:g} in row {row}); map them into the "
                            "vocabulary (an out-of-vocabulary id, say)")


def num_classes_of(raw: RawDataset, configured: int | None) -> int:
    """Configured class count, else the number of distinct labels (labels must then be 0..K-1)."""
    if configured is not None:
        return configured
    if raw.class_names is not None:
        return len(raw.class_names)
    labels = raw.y if raw.y_test is None else np.concatenate([raw.y, raw.y_test])
    finite = labels[np.isfinite(labels)] if np.issubdtype(labels.dtype, np.floating) else labels
    return len(np.unique(finite))


@dataclass(frozen=True)
class Scaling:
    """How integer images were brought to [0, 1]: divided by `divisor` (the top of their 8- or 16-bit range)."""

    dtype: str
    divisor: float

    @property
    def scale(self) -> float:
        return 1.0 / self.divisor


def scale_integer_images(raw: RawDataset) -> tuple[RawDataset, Scaling | None]:
    """Integer-typed images as float32 in [0, 1] (a new dataset), and how; other data is returned as is.

    uint8/uint16 are divided by their dtype's maximum; wider integer types holding 8- or 16-bit values
    (e.g. int64 arrays built from Python lists of 0..255) by 255 or 65535. Negative values, or values
    beyond 16 bits, cannot be pixel intensities: a DataError names them. Training on 0..255 inputs is
    what costs accuracy silently (0.567 vs 0.725 on the same data in [0, 1]).
    """
    if raw.kind != "image" or not np.issubdtype(raw.x.dtype, np.integer):
        return raw, None
    arrays = [a for a in (raw.x, raw.x_test) if a is not None]
    lo = min(int(a.min()) for a in arrays if a.size)
    hi = max(int(a.max()) for a in arrays if a.size)
    if lo < 0:
        raise DataError(f"integer images hold negative values (min {lo}); pixel intensities are >= 0 "
                        "(set data.scale_integer_images: false to use them as they are)")
    if raw.x.dtype == np.uint8 or hi <= 255:
        divisor = 255.0
    elif raw.x.dtype == np.uint16 or hi <= 65535:
        divisor = 65535.0
    else:
        raise DataError(f"integer images hold values up to {hi}, beyond 16 bits; scale them to [0, 1] first "
                        "(or set data.scale_integer_images: false)")

    def scaled(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else (a.astype(np.float32) / np.float32(divisor))

    x = scaled(raw.x)
    assert x is not None
    out = replace(raw, x=x, x_test=scaled(raw.x_test))
    return out, Scaling(str(raw.x.dtype), divisor)


ChannelFit = Literal["added", "dropped"]


def fit_channels(x: np.ndarray, want: tuple[int, ...]) -> tuple[np.ndarray, ChannelFit | None] | None:
    """`x` (rows first) in the per-row shape `want` when it differs at most by a trailing channel axis of 1:
    the array and "added"/"dropped" (None: already that shape); None when no such axis makes it fit."""
    have = tuple(int(d) for d in x.shape[1:])
    if have == want:
        return x, None
    if (*have, 1) == want:
        return x[..., None], "added"
    if (*want, 1) == have:
        return x[..., 0], "dropped"
    return None


def fit_channel_axis(raw: RawDataset, model_shape: tuple[int, ...] | None) -> tuple[RawDataset, ChannelFit | None]:
    """Images without a channel axis for a model that wants (H, W, 1) get one (or lose it in the reverse case).

    Returns the (possibly new) dataset and "added"/"dropped"/None. Any other mismatch is left as it is:
    the baseline's shape check names it in one line.
    """
    if model_shape is None or raw.kind != "image":
        return raw, None
    fitted = fit_channels(raw.x, tuple(model_shape))
    if fitted is None or fitted[1] is None:
        return raw, None
    x, how = fitted
    x_test = raw.x_test
    if x_test is not None:
        x_test = x_test[..., None] if how == "added" else x_test[..., 0]
    return replace(raw, x=x, x_test=x_test), how


def split(raw: RawDataset, test_fraction: float, seed: int, num_classes: int,
          validation_fraction: float = 0.1, *, task: Task | None = None, selection_fraction: float = 0.0,
          min_selection_rows: int = 1) -> Splits:
    """The source's own test split, else a seeded stratified one; then a seeded stratified validation split
    carved from what remains for training, and (`selection_fraction` > 0) the search's selection slice carved
    from the rest the same way, when it would hold at least `min_selection_rows` rows. Run only after
    validation.

    Stratified by the task: by class, or by quantile bins of a regression target (a continuous target is
    never cast to integers)."""
    from sklearn.model_selection import train_test_split

    task = task or Task("multiclass", num_classes, num_classes, "logits")
    x = raw.x.astype(np.float32)
    y = task.labels(raw.y)
    if raw.x_test is not None and raw.y_test is not None:
        x_tr, y_tr = x, y
        x_te, y_te = raw.x_test.astype(np.float32), task.labels(raw.y_test)
    else:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                                  stratify=task.stratify(y))
    x_tr, x_va, y_tr, y_va = train_test_split(x_tr, y_tr, test_size=validation_fraction, random_state=seed + 1,
                                              stratify=task.stratify(y_tr))
    x_se = y_se = None
    if selection_fraction > 0 and round(len(x_tr) * selection_fraction) >= min_selection_rows:
        x_tr, x_se, y_tr, y_se = train_test_split(x_tr, y_tr, test_size=selection_fraction, random_state=seed + 2,
                                                  stratify=task.stratify(y_tr))
    if not task.classification:
        return Splits(x_tr, y_tr, x_va, y_va, 0, raw.kind, x_te, y_te, task, x_se, y_se)
    for name, labels in (("training", y_tr), ("validation", y_va), ("test", y_te), ("selection", y_se)):
        if labels is None:
            continue
        present = len(np.unique(labels))
        if present < 2:
            raise DataError(f"the {name} split holds {present} class(es); a classifier needs at least two in "
                            "the training, validation and test split (and the search's selection slice)")
    return Splits(x_tr, y_tr, x_va, y_va, num_classes, raw.kind, x_te, y_te, task, x_se, y_se)


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def search_splits_to_npz(s: Splits) -> bytes:
    """Train, validation and the selection slice: what everything before evaluate may read."""
    sel = {"x_sel": s.x_sel, "y_sel": s.y_sel} if s.x_sel is not None and s.y_sel is not None else {}
    return _npz(x_train=s.x_train, y_train=s.y_train, x_val=s.x_val, y_val=s.y_val,
                num_classes=np.array(s.num_classes), kind=np.array(s.kind), **sel)


def holdout_to_npz(s: Splits) -> bytes:
    x, y = s.test()
    return _npz(x_test=x, y_test=y)


def splits_from_npz(search: bytes, test: bytes | None = None, task: Task | None = None) -> Splits:
    """Splits from the staged files; without `test` the test arrays are absent (None). `task`: the one
    validation.json records (the arrays do not say it)."""
    with np.load(io.BytesIO(search), allow_pickle=False) as z:
        kind: DataKind = "image" if str(z["kind"]) == "image" else "tabular"
        sel = (z["x_sel"], z["y_sel"]) if "x_sel" in z.files else (None, None)
        out = Splits(z["x_train"], z["y_train"], z["x_val"], z["y_val"], int(z["num_classes"]), kind, task_=task,
                     x_sel=sel[0], y_sel=sel[1])
    if test is None:
        return out
    with np.load(io.BytesIO(test), allow_pickle=False) as t:
        return replace(out, x_test=t["x_test"], y_test=t["y_test"])
