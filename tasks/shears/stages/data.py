"""Turn bytes (NPZ, CSV, Parquet) or the bundled digits into arrays, and split them.

Parsing is strict about what it cannot represent (corrupt files, mismatched lengths, wrong
dimensionality, missing label column); everything that *can* be represented but is wrong (NaN, labels
out of range, too few rows) is left to the validation stage so that it is reported with the rest.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shears.errors import ConfigError, DataError, first_line

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

    @property
    def kind(self) -> DataKind:
        return "tabular" if self.x.ndim == 2 else "image"


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    kind: DataKind

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])


def load_digits_default() -> RawDataset:
    """The embedded default: sklearn's bundled 8x8 digits (no download), scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    return RawDataset(DEFAULT_DATA_NAME, x, y, None, None, None, digest)


def _check_dims(name: str, arr: np.ndarray) -> None:
    if arr.ndim not in (2, 3, 4):
        raise DataError(
            f"{name} has {arr.ndim} dimension(s) {tuple(arr.shape)}; expected 2 (tabular rows x features) "
            "or 3-4 (images)"
        )


def _check_labels(name: str, arr: np.ndarray, rows: int, xname: str) -> np.ndarray:
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{name} must be one label per row, got shape {tuple(arr.shape)}")
    if arr.shape[0] != rows:
        raise DataError(f"{xname} has {rows} rows but {name} has {arr.shape[0]}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    return arr


def _parse_npz(data: bytes, name: str, digest: str) -> RawDataset:
    try:
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
    return RawDataset(name, x, y, x_test, y_test, None, digest)


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
    if not pd.api.types.is_numeric_dtype(labels):
        raise DataError(f"label column '{label_column}' in {name} must hold integer class ids")
    x = df[features].to_numpy(dtype=np.float32)
    y = labels.to_numpy(dtype=np.float64)
    return RawDataset(name, x, y, None, None, tuple(str(c) for c in features), digest)


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


def num_classes_of(raw: RawDataset, configured: int | None) -> int:
    """Configured class count, else the number of distinct labels (labels must then be 0..K-1)."""
    if configured is not None:
        return configured
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
    out = RawDataset(raw.name, x, raw.y, scaled(raw.x_test), raw.y_test, raw.feature_names, raw.sha256)
    return out, Scaling(str(raw.x.dtype), divisor)


def split(raw: RawDataset, test_fraction: float, seed: int, num_classes: int) -> Splits:
    """Use the source's own test split, else a seeded stratified split. Run only after validation."""
    from sklearn.model_selection import train_test_split

    x = raw.x.astype(np.float32)
    y = raw.y.astype(np.int64)
    if raw.x_test is not None and raw.y_test is not None:
        x_tr, y_tr = x, y
        x_te, y_te = raw.x_test.astype(np.float32), raw.y_test.astype(np.int64)
    else:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    for name, labels in (("training", y_tr), ("test", y_te)):
        present = len(np.unique(labels))
        if present < 2:
            raise DataError(f"the {name} split holds {present} class(es); a classifier needs at least two in "
                            "both the training and the test split")
    return Splits(x_tr, y_tr, x_te, y_te, num_classes, raw.kind)


def splits_to_npz(s: Splits) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(
        buf, x_train=s.x_train, y_train=s.y_train, x_test=s.x_test, y_test=s.y_test,
        num_classes=np.array(s.num_classes), kind=np.array(s.kind),
    )
    return buf.getvalue()


def splits_from_npz(data: bytes) -> Splits:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        kind: DataKind = "image" if str(z["kind"]) == "image" else "tabular"
        return Splits(z["x_train"], z["y_train"], z["x_test"], z["y_test"], int(z["num_classes"]), kind)
