"""Shared fixtures. TF must see TF_USE_LEGACY_KERAS=1 before its first import (tfmot needs Keras 2)."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shears.config import PipelineConfig, build_config

# Markers by folder (`make test-fast` deselects tf, s3, airflow, integration and browser); modules that
# train or convert with TensorFlow mark themselves `tf`.
_FOLDER_MARKS = {"s3": ("s3",), "dags": ("airflow",), "integration": ("integration", "airflow"), "deploy": ()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        try:
            rel = Path(item.path).relative_to(root)
        except ValueError:
            continue
        for mark in _FOLDER_MARKS.get(rel.parts[0], ()):
            item.add_marker(getattr(pytest.mark, mark))
        # Under `pytest -n 2 --dist loadgroup` (make test) a module's tests share one process, so module
        # fixtures (a migrated Airflow home, a trained run) are built once; tests/s3 shares one session server.
        group = "s3" if rel.parts[0] == "s3" else rel.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))

# The search is off here (one recipe, as before the search): tests of the search turn it on with a small budget.
FAST: dict[str, Any] = {
    "model": {"epochs": 4},
    "prune": {"epochs": 2},
    # no SavedModel (its export is a fresh process, ~6 s): the tests of it turn it on, as do the DAG tests
    "convert": {"variants": ["dynamic_range", "int8"], "latency_runs": 5, "saved_model": False},
    "gates": {"min_accuracy": 0.8, "min_compression_ratio": 3.0, "max_accuracy_drop_pp": 5.0},
    "search": {"enabled": False},
}


def fast_config(**sections: dict[str, Any]) -> PipelineConfig:
    """A quick config for tests: few epochs, two TFLite variants, loose-but-real gates."""
    raw = {k: dict(v) for k, v in FAST.items()}
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return build_config(raw)


@pytest.fixture
def fast_cfg() -> PipelineConfig:
    return fast_config()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from shears.stages.data import load_digits_default

    raw = load_digits_default()
    return raw.x.copy(), raw.y.copy()


@pytest.fixture
def digits_npz(tmp_path: Path) -> Path:
    x, y = digits_arrays()
    p = tmp_path / "digits.npz"
    p.write_bytes(npz_bytes(x=x, y=y))
    return p
