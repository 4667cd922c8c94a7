from __future__ import annotations

import numpy as np
import pytest
from shears.config import ModelConfig
from shears.stages.baseline import train_baseline
from shears.stages.data import load_digits_default, split
from shears.stages.sensitivity import layer_sensitivity, magnitude_prune

pytestmark = pytest.mark.tf


def test_magnitude_prune_zeros_the_smallest_weights() -> None:
    w = np.array([[0.5, -0.1], [0.02, -0.9]], dtype=np.float32)
    assert np.array_equal(magnitude_prune(w, 0.5), np.array([[0.5, 0.0], [0.0, -0.9]], dtype=np.float32))
    assert np.array_equal(magnitude_prune(w, 0.0), w) and w[0, 1] == -0.1  # a copy: the input is untouched


def test_sensitivity_on_digits_ranks_layers_without_touching_the_model() -> None:
    s = split(load_digits_default(), 0.2, 0, 10)
    model = train_baseline(s, ModelConfig(epochs=3)).model
    before = [w.copy() for w in model.get_weights()]
    ladder = [0.5, 0.9, 0.98]
    rows = {name: layer_sensitivity(model, s, name, ladder) for name in ("conv", "dense")}
    for a, b in zip(before, model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    for row in rows.values():
        assert [p.sparsity for p in row.points] == ladder
        assert row.points[-1].drop >= row.points[0].drop - 1.0  # more zeros cost (about) more
    assert rows["conv"].weights == 288 and rows["dense"].weights == 147_456
    # the 288-weight convolution is far more sensitive than the 147k-weight dense layer at 98 %
    assert rows["conv"].points[-1].drop > rows["dense"].points[-1].drop
