from __future__ import annotations

import numpy as np
import pytest

from tasks.baseline import train_baseline
from tasks.config import ModelConfig, PruneConfig
from tasks.data import load_digits_default, split
from tasks.errors import ConfigError
from tasks.prune import derive_schedule, prune_finetune
from tasks.strip import strip_and_verify


@pytest.fixture(scope="module")
def splits():  # type: ignore[no-untyped-def]
    return split(load_digits_default(), 0.2, 0, 10)


@pytest.fixture(scope="module")
def baseline(splits):  # type: ignore[no-untyped-def]
    return train_baseline(splits, ModelConfig(epochs=3)).model


def test_derived_schedule_lands_final_sparsity_inside_training() -> None:
    s = derive_schedule(PruneConfig(epochs=2, batch_size=32), n_train=1437)
    assert s.steps_per_epoch == 45 and s.total_steps == 90
    assert s.end_step < s.total_steps and (s.end_step - s.begin_step) % s.frequency == 0
    assert s.sparsity_at(s.end_step) == pytest.approx(0.8)
    assert s.mask_updates()[-1] == s.end_step


def test_tutorial_frequency_never_reaches_target_and_is_refused() -> None:
    # The notebooks' frequency=100 with end_step = steps*epochs: on digits no mask update lands on end_step.
    with pytest.raises(ConfigError, match="never"):
        derive_schedule(PruneConfig(epochs=2, end_step=90, frequency=100), n_train=1437)


def test_prune_reaches_target_and_leaves_baseline_untouched(splits, baseline) -> None:  # type: ignore[no-untyped-def]
    before = [w.copy() for w in baseline.get_weights()]
    result = prune_finetune(baseline, splits, PruneConfig(epochs=2))
    for a, b in zip(before, baseline.get_weights(), strict=True):
        assert np.array_equal(a, b), "pruning mutated the caller's baseline"
    assert result.pruned_layers == ["conv", "dense", "logits"]
    stripped = strip_and_verify(result.model, result.pruned_layers, 0.8, 0.01)
    assert stripped.passed
    assert all(abs(r.sparsity - 0.8) <= 0.01 for r in stripped.layers if r.target is not None)
    assert not any("prune_low_magnitude" in layer.name for layer in stripped.model.layers)


def test_named_layers_only_and_constant_schedule(splits, baseline) -> None:  # type: ignore[no-untyped-def]
    cfg = PruneConfig(epochs=1, layers=("dense",), schedule="constant_sparsity", final_sparsity=0.5)
    result = prune_finetune(baseline, splits, cfg)
    rows = {r.layer: r for r in strip_and_verify(result.model, result.pruned_layers, 0.5, 0.01).layers}
    assert rows["dense"].target == 0.5 and rows["dense"].sparsity == pytest.approx(0.5, abs=0.01)
    assert rows["conv"].target is None and rows["conv"].sparsity < 0.1


def test_unknown_layer_is_config_error(splits, baseline) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="not prunable layers"):
        prune_finetune(baseline, splits, PruneConfig(layers=("nope",)))


def test_verification_fails_an_unpruned_model(baseline) -> None:  # type: ignore[no-untyped-def]
    # A dense model claimed as pruned (the silent 0% case) must fail verification, not pass.
    result = strip_and_verify(baseline, ["conv", "dense"], 0.8, 0.01)
    assert not result.passed
    assert {r.layer for r in result.layers if not r.passed} == {"conv", "dense"}
