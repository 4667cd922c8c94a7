"""Stage 4: pruning fine-tune with tfmot's prune_low_magnitude.

Two traps from the users' notebooks are handled here: `prune_low_magnitude` wraps the *same* layer
objects (so we clone first and never touch the caller's model), and the default schedule frequency of
100 steps never fires on small data (so steps are derived from epochs x steps-per-epoch and aligned so
that a pruning step lands exactly on end_step, where the final sparsity is applied).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tasks.baseline import compile_for_classification, keras_accuracy
from tasks.config import PruneConfig
from tasks.data import Splits
from tasks.errors import ConfigError
from tasks.tfcompat import keras, set_seed, tfmot


@dataclass(frozen=True)
class Schedule:
    kind: str
    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    power: float
    total_steps: int
    steps_per_epoch: int
    derived: bool

    def sparsity_at(self, step: int) -> float:
        """The target sparsity tfmot applies at `step` (0 before begin_step); for plots and checks."""
        if step < self.begin_step:
            return 0.0
        if self.kind == "constant_sparsity":
            return self.final_sparsity
        frac = min(1.0, (min(step, self.end_step) - self.begin_step) / max(1, self.end_step - self.begin_step))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1 - frac) ** self.power

    def mask_updates(self) -> list[int]:
        """Steps at which masks are recomputed during the fine-tune."""
        last = min(self.end_step, self.total_steps - 1)
        return list(range(self.begin_step, last + 1, self.frequency))


@dataclass
class PruneResult:
    model: keras.Model  # still wrapped; strip with tasks.strip
    schedule: Schedule
    pruned_layers: list[str]
    accuracy: float
    history: dict[str, list[float]] = field(default_factory=dict)


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
        cfg.schedule, cfg.initial_sparsity, cfg.final_sparsity, begin, end, freq, cfg.power, total,
        steps_per_epoch, derived,
    )


def _tfmot_schedule(s: Schedule) -> object:
    sp = tfmot.sparsity.keras
    if s.kind == "constant_sparsity":
        return sp.ConstantSparsity(
            s.final_sparsity, begin_step=s.begin_step, end_step=s.end_step, frequency=s.frequency
        )
    return sp.PolynomialDecay(
        initial_sparsity=s.initial_sparsity, final_sparsity=s.final_sparsity, begin_step=s.begin_step,
        end_step=s.end_step, power=s.power, frequency=s.frequency,
    )


def clone_with_weights(model: keras.Model) -> keras.Model:
    """An independent copy: pruning the copy must never sparsify the caller's baseline."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def prunable_layer_names(model: keras.Model) -> list[str]:
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    out = []
    for layer in model.layers:
        if isinstance(layer, tfmot.sparsity.keras.PrunableLayer) or (
            PruneRegistry.supports(layer) and PruneRegistry._weight_names(layer)
        ):
            out.append(layer.name)
    return out


def prune_finetune(model: keras.Model, data: Splits, cfg: PruneConfig, log_dir: str | None = None) -> PruneResult:
    """Wrap the chosen layers of a *clone* of `model` and fine-tune it under the schedule."""
    schedule = derive_schedule(cfg, len(data.x_train))
    set_seed(cfg.seed)
    base = clone_with_weights(model)
    available = prunable_layer_names(base)
    if cfg.layers is None:
        targets = available
    else:
        unknown = [n for n in cfg.layers if n not in available]
        if unknown:
            raise ConfigError(f"prune.layers {unknown} are not prunable layers of the model; prunable: {available}")
        targets = list(cfg.layers)
    if not targets:
        raise ConfigError("the model has no prunable layers")
    params = {
        "pruning_schedule": _tfmot_schedule(schedule),
        "block_size": tuple(cfg.block_size),
        "block_pooling_type": cfg.block_pooling_type,
    }

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in targets:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, **params)
        return layer

    # clone_function reuses `base`'s layer objects (our private clone), so trained weights carry over
    pruned = keras.models.clone_model(base, clone_function=wrap)
    compile_for_classification(pruned, cfg.learning_rate)
    callbacks: list[keras.callbacks.Callback] = [tfmot.sparsity.keras.UpdatePruningStep()]
    if log_dir is not None and _has_tensorboard():
        callbacks.append(tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir))
    hist = pruned.fit(
        data.x_train, data.y_train, epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True, verbose=0,
        callbacks=callbacks,
    )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return PruneResult(pruned, schedule, targets, keras_accuracy(pruned, data.x_test, data.y_test), history)


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
