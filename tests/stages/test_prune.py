from __future__ import annotations

import numpy as np
import pytest
from shears.config import ModelConfig, PruneConfig
from shears.errors import ConfigError
from shears.stages.baseline import train_baseline
from shears.stages.data import load_digits_default, split
from shears.stages.prune import prune_finetune
from shears.stages.strip import strip_and_verify

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def splits():  # type: ignore[no-untyped-def]
    return split(load_digits_default(), 0.2, 0, 10)


@pytest.fixture(scope="module")
def baseline(splits):  # type: ignore[no-untyped-def]
    return train_baseline(splits, ModelConfig(epochs=3)).model


def test_prune_reaches_target_and_leaves_baseline_untouched(splits, baseline) -> None:  # type: ignore[no-untyped-def]
    before = [w.copy() for w in baseline.get_weights()]
    result = prune_finetune(baseline, splits, PruneConfig(epochs=2))
    for a, b in zip(before, baseline.get_weights(), strict=True):
        assert np.array_equal(a, b), "pruning mutated the caller's baseline"
    assert result.pruned_layers == ["conv", "dense", "logits"]
    stripped = strip_and_verify(result.model, result.targets, 0.01)
    assert stripped.passed
    assert all(abs(r.sparsity - 0.8) <= 0.01 for r in stripped.record.layers if r.target is not None)
    assert not any("prune_low_magnitude" in layer.name for layer in stripped.model.layers)


def test_named_layers_only_and_constant_schedule(splits, baseline) -> None:  # type: ignore[no-untyped-def]
    cfg = PruneConfig(epochs=1, layers=("dense",), schedule="constant_sparsity", final_sparsity=0.5)
    result = prune_finetune(baseline, splits, cfg)
    assert result.targets == {"dense": 0.5}
    rows = {r.layer: r for r in strip_and_verify(result.model, result.targets, 0.01).record.layers}
    assert rows["dense"].target == 0.5 and rows["dense"].sparsity == pytest.approx(0.5, abs=0.01)
    assert rows["conv"].target is None and rows["conv"].sparsity < 0.1


def test_unknown_layer_is_config_error(splits, baseline) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="not prunable layers"):
        prune_finetune(baseline, splits, PruneConfig(layers=("nope",)))


def test_per_layer_targets_each_reach_their_own_sparsity(splits, baseline) -> None:  # type: ignore[no-untyped-def]
    result = prune_finetune(baseline, splits, PruneConfig(epochs=2), sparsity={"dense": 0.93, "logits": 0.6})
    rows = {r.layer: r for r in strip_and_verify(result.model, result.targets, 0.01).record.layers}
    assert rows["dense"].target == 0.93 and rows["dense"].sparsity == pytest.approx(0.93, abs=0.01)
    assert rows["logits"].target == 0.6 and rows["logits"].sparsity == pytest.approx(0.6, abs=0.01)
    assert rows["conv"].target is None and result.schedule.final_sparsity == 0.93
