from __future__ import annotations

import pytest
from shears.config import PruneConfig
from shears.errors import ConfigError
from shears.stages.prune import derive_schedule


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
