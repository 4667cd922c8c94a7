"""The pruning schedule, derived from the data before anything is trained (TF-free).

The notebooks' default frequency of 100 steps never fires on small data; steps are therefore derived
from epochs x steps-per-epoch and aligned so that a mask update lands exactly on end_step, where the
final sparsity is applied. A schedule that could never reach its target is a config error, raised by
the validate step so that nothing is trained first.
"""

from __future__ import annotations

import math

from shears.config import PruneConfig
from shears.errors import ConfigError
from shears.records import Schedule  # one type: the stage derives it, prune.json records it


def derive_schedule(cfg: PruneConfig, n_train: int) -> Schedule:
    """Fill in begin/end/frequency from the data so the final sparsity is reached before training ends."""
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    begin = cfg.begin_step if cfg.begin_step is not None else 0
    derived = cfg.end_step is None or cfg.frequency is None
    if begin >= total:
        raise ConfigError(f"prune.begin_step {begin} is beyond the {total} fine-tune steps")
    freq = cfg.frequency if cfg.frequency is not None else max(1, min(100, steps_per_epoch // 4))
    if cfg.end_step is not None:
        end = cfg.end_step
    else:
        # reach the final sparsity ~90% of the way in (the TF tutorial's end_step lands its last mask update
        # at 800 of 844 steps) so the last tenth recovers, and land end_step on a mask-update step
        target = max(begin + 1, int(begin + (total - 1 - begin) * 0.9))
        span = max(freq, ((target - begin) // freq) * freq)
        end = begin + span
    if end > total - 1:
        raise ConfigError(
            f"prune.end_step {end} is never reached: the fine-tune has {total} steps "
            f"({cfg.epochs} epochs x {steps_per_epoch} steps); lower end_step or add epochs"
        )
    if cfg.schedule == "polynomial_decay" and (end - begin) % freq != 0:
        raise ConfigError(
            f"prune.end_step - begin_step ({end - begin}) is not a multiple of frequency {freq}: "
            "the final sparsity would never be applied"
        )
    return Schedule(
        kind=cfg.schedule, initial_sparsity=cfg.initial_sparsity, final_sparsity=cfg.final_sparsity,
        begin_step=begin, end_step=end, frequency=freq, power=cfg.power, total_steps=total,
        steps_per_epoch=steps_per_epoch, derived=derived,
    )


__all__ = ["Schedule", "derive_schedule"]
