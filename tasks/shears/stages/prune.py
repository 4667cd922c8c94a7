"""Pruning fine-tune with tfmot's prune_low_magnitude.

Two traps from the users' notebooks are handled here: `prune_low_magnitude` wraps the *same* layer
objects (so we clone first and never touch the caller's model), and the default schedule frequency of
100 steps never fires on small data (so steps are derived from epochs x steps-per-epoch and aligned so
that a pruning step lands exactly on end_step, where the final sparsity is applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from shears.config import PruneConfig
from shears.errors import ConfigError, not_prunable
from shears.keras.prunable import prunable_weights
from shears.keras.tfcompat import keras, set_seed, tfmot
from shears.keras.training import Distill, compile_for_task, fit_targets, history_dict, keras_score, model_outputs
from shears.stages.data import Splits
from shears.stages.schedule import Schedule, derive_schedule


@dataclass
class PruneResult:
    model: keras.Model  # still wrapped; strip with shears.stages.strip
    schedule: Schedule  # the steps every layer follows; final_sparsity = the highest layer target
    pruned_layers: list[str]
    score: float  # the primary metric on the validation split
    history: dict[str, list[float]] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)  # layer -> final sparsity
    metric: str = "accuracy"  # what `score` is


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
    """Top-level layers tfmot prunes weights of (shears.keras.prunable asks tfmot), in model order."""
    return list(prunable_weights(model))


def default_targets(model: keras.Model, cfg: PruneConfig) -> dict[str, float]:
    """The config's single recipe: prune.final_sparsity on prune.layers (or every prunable layer)."""
    available = prunable_layer_names(model)
    if cfg.layers is None:
        names = available
    else:
        unknown = [n for n in cfg.layers if n not in available]
        if unknown:
            raise not_prunable(unknown, available)
        names = list(cfg.layers)
    if not names:
        raise ConfigError("the model has no prunable layers")
    return {n: cfg.final_sparsity for n in names}


def prune_finetune(
    model: keras.Model, data: Splits, cfg: PruneConfig, log_dir: str | None = None, *,
    sparsity: dict[str, float] | None = None, epochs: int | None = None,
    distill: Distill | None = None,
) -> PruneResult:
    """Wrap the chosen layers of a *clone* of `model`, each with its own target sparsity, and fine-tune it.

    `sparsity` maps layer -> final sparsity (default: the config's single recipe); every layer follows the
    same derived steps (begin/end/frequency), so a mask update lands on end_step for each of them.
    Accuracy is measured on the validation split. With `distill`, the fine-tune also learns its teacher's
    outputs (the baseline's on the training rows; computed from `model` when `distill` does not carry them).
    """
    epochs = epochs or cfg.epochs
    targets = sparsity if sparsity is not None else default_targets(model, cfg)
    if not targets:
        raise ConfigError("a recipe must prune at least one layer")
    top = max(targets.values())
    schedule = derive_schedule(cfg.model_copy(update={"epochs": epochs, "final_sparsity": top,
                                                      "initial_sparsity": min(cfg.initial_sparsity, top)}),
                               len(data.x_train))
    set_seed(cfg.seed)
    base = clone_with_weights(model)
    available = prunable_layer_names(base)
    unknown = [n for n in targets if n not in available]
    if unknown:
        raise not_prunable(unknown, available, "layers")

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name not in targets:
            return layer
        final = targets[layer.name]
        layer_schedule = schedule.model_copy(update={"initial_sparsity": min(schedule.initial_sparsity, final),
                                                     "final_sparsity": final})
        return tfmot.sparsity.keras.prune_low_magnitude(
            layer, pruning_schedule=_tfmot_schedule(layer_schedule), block_size=tuple(cfg.block_size),
            block_pooling_type=cfg.block_pooling_type,
        )

    # clone_function reuses `base`'s layer objects (our private clone), so trained weights carry over
    pruned = keras.models.clone_model(base, clone_function=wrap)
    if distill is not None and distill.teacher is None:
        distill = replace(distill, teacher=model_outputs(model, data.x_train))
    compile_for_task(pruned, cfg.learning_rate, data.task, distill)
    callbacks: list[keras.callbacks.Callback] = [tfmot.sparsity.keras.UpdatePruningStep()]
    if log_dir is not None and _has_tensorboard():
        callbacks.append(tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir))
    hist = pruned.fit(
        data.x_train, fit_targets(data.y_train, distill), epochs=epochs,
        batch_size=cfg.batch_size, shuffle=True, verbose=0, callbacks=callbacks,
    )
    return PruneResult(pruned, schedule, list(targets), keras_score(pruned, data.x_val, data.y_val, data.task),
                       history_dict(hist), dict(targets), data.task.primary)


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
