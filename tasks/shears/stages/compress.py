"""Apply one recipe to a baseline: per-layer pruning, then optional sparsity-preserving clustering, then optional
quantization-aware training that preserves both (tfmot's collaborative optimization).

    prune (fine-tune)  ->  strip  ->  cluster (fine-tune, preserve_sparsity)  ->  strip  ->  QAT (fine-tune)

Every model here is a new object: the caller's baseline is never touched. Accuracies are on the validation split.
Traps handled: the cluster-preserving QAT scheme lives only at `tfmot.experimental.combine` in tfmot 0.8.1;
`number_of_clusters` counts the zero cluster when `preserve_sparsity=True`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shears.config import PruneConfig
from shears.keras.tfcompat import keras, set_seed, tfmot
from shears.keras.training import Distill, compile_for_task, fit_targets, history_dict, keras_score, model_outputs
from shears.records import Recipe, SparsityRecord
from shears.stages.data import Splits
from shears.stages.prune import PruneResult, clone_with_weights, prune_finetune
from shears.stages.strip import strip_and_verify, verify_sparsity


@dataclass
class CompressResult:
    pruned: keras.Model  # with pruning wrappers, as fit leaves it (what users save and wonder why it is big)
    prune: PruneResult
    stripped: keras.Model  # no wrappers: pruned (and clustered) weights in a plain Keras model
    final: keras.Model  # what is converted: `stripped`, or the QAT model
    sparsity: SparsityRecord  # of `stripped`, incl. distinct values of clustered layers
    score: float  # the primary metric of `final`, on the validation split
    history: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def cluster_finetune(model: keras.Model, data: Splits, clusters: dict[str, int], *, epochs: int,
                     learning_rate: float, batch_size: int, seed: int, frozen: tuple[str, ...] = (),
                     distill: Distill | None = None) -> tuple[keras.Model, dict[str, list[float]]]:
    """Sparsity-preserving k-means++ weight clustering of the named layers, fine-tuned, then stripped.

    `frozen` layers (pruned but not clustered) do not train here: their pruning masks are gone after strip,
    so a fine-tune would fill their zeros back in.
    """
    cl = tfmot.clustering.keras
    set_seed(seed)
    base = clone_with_weights(model)

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in frozen:
            layer.trainable = False
        if layer.name not in clusters:
            return layer
        return cl.cluster_weights(layer, number_of_clusters=clusters[layer.name],
                                  cluster_centroids_init=cl.CentroidInitialization.KMEANS_PLUS_PLUS,
                                  preserve_sparsity=True)

    clustered = keras.models.clone_model(base, clone_function=wrap)
    compile_for_task(clustered, learning_rate, data.task, distill)
    hist = clustered.fit(data.x_train, fit_targets(data.y_train, distill), epochs=epochs,
                         batch_size=batch_size, shuffle=True, verbose=0)
    return cl.strip_clustering(clustered), history_dict(hist)


def qat_scheme(recipe: Recipe) -> Any:
    """tfmot's scheme preserving what the recipe made: PQAT (sparsity), CQAT (clusters), PCQAT (both)."""
    combine = tfmot.experimental.combine
    scheme = recipe.qat_scheme
    if scheme == "pcqat":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    if scheme == "cqat":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
    if scheme == "pqat":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    return None


def qat_finetune(model: keras.Model, data: Splits, recipe: Recipe, *, batch_size: int, seed: int,
                 distill: Distill | None = None) -> tuple[keras.Model, dict[str, list[float]]]:
    """Quantization-aware fine-tune with the collaborative scheme that keeps the zeros and the clusters.

    The schemes preserve sparsity and clusters of the layers they treat; a pruned layer the scheme leaves
    plain (a small convolution that was not clustered, under PCQAT) is frozen so its zeros stay zeros.
    """
    q = tfmot.quantization.keras
    set_seed(seed)
    annotated = q.quantize_annotate_model(clone_with_weights(model))
    scheme = qat_scheme(recipe)
    with q.quantize_scope():
        qat = q.quantize_apply(annotated, scheme) if scheme is not None else q.quantize_apply(annotated)
    if recipe.clusters:
        for layer in qat.layers:
            inner = getattr(layer, "layer", None)
            if inner is not None and inner.name in recipe.sparsity and inner.name not in recipe.clusters:
                layer.trainable = False
    compile_for_task(qat, recipe.qat_learning_rate, data.task, distill)
    hist = qat.fit(data.x_train, fit_targets(data.y_train, distill), epochs=recipe.qat_epochs,
                   batch_size=batch_size, shuffle=True, verbose=0)
    if recipe.qat_scheme == "pcqat":
        pin_zero_centroids(qat, set(recipe.sparsity) & set(recipe.clusters))
    return qat, history_dict(hist)


def pin_zero_centroids(qat: keras.Model, layers: set[str]) -> None:
    """Put the zero cluster of each pruned, clustered layer back at exactly 0.

    tfmot 0.8.1's PCQAT fine-tune lets the zero cluster's centroid drift (0 -> 0.0012 on digits), so the
    .tflite holds a tiny nonzero value where the zeros were and the sparsity is gone from the file. The drift
    is far below the int8 step; pinning it restores the zeros the recipe asked for (verified in the file).
    """
    for layer in qat.layers:
        inner = getattr(layer, "layer", None)
        if inner is None or inner.name not in layers:
            continue
        named = {v.name.rsplit("/", 1)[-1].split(":")[0]: v for v in layer.weights}
        centroids, indices = named.get("cluster_centroids_tf"), named.get("pulling_indices_tf")
        kernel = named.get("kernel")
        if centroids is None or indices is None or kernel is None:
            continue
        values = centroids.numpy()
        values[np.argmin(np.abs(values))] = 0.0
        centroids.assign(values)
        # the converter reads the kernel variable, which training last set from the centroids: set it again
        kernel.assign(values[indices.numpy()].astype(kernel.dtype.as_numpy_dtype))


def distill_of(recipe: Recipe, baseline: keras.Model, x_train: np.ndarray) -> Distill | None:
    """A distilled recipe's settings with the teacher's (the baseline's) outputs on the training rows."""
    if not recipe.distill:
        return None
    return Distill(recipe.distill_temperature, recipe.distill_alpha, model_outputs(baseline, x_train))


def prune_stage(baseline: keras.Model, data: Splits, recipe: Recipe, cfg: PruneConfig,
                log_dir: str | None = None, distill: Distill | None = None,
                ) -> tuple[PruneResult, keras.Model, SparsityRecord]:
    """The recipe's pruning: fine-tuned pruned model (wrapped), its stripped form and per-layer sparsity."""
    pruned = prune_finetune(baseline, data, cfg, log_dir, sparsity=recipe.sparsity, epochs=recipe.prune_epochs,
                            distill=distill)
    stripped = strip_and_verify(pruned.model, recipe.sparsity, cfg.sparsity_tolerance)
    return pruned, stripped.model, stripped.record


def compress(baseline: keras.Model, data: Splits, recipe: Recipe, cfg: PruneConfig, *,
             pruned: tuple[PruneResult, keras.Model] | None = None, log_dir: str | None = None) -> CompressResult:
    """The whole recipe; `pruned` reuses an identical earlier prune stage (same recipe pruning, same baseline).
    A distilled recipe computes the teacher's (the baseline's) outputs on the training rows once, for every
    fine-tune."""
    distill = distill_of(recipe, baseline, data.x_train)
    if pruned is None:
        prune, stripped, _ = prune_stage(baseline, data, recipe, cfg, log_dir, distill)
    else:
        prune, stripped = pruned
    history: dict[str, dict[str, list[float]]] = {"prune": prune.history}
    if recipe.clusters:
        stripped, history["cluster"] = cluster_finetune(
            stripped, data, recipe.clusters, epochs=recipe.cluster_epochs,
            learning_rate=recipe.cluster_learning_rate, batch_size=cfg.batch_size, seed=cfg.seed,
            frozen=tuple(n for n in recipe.sparsity if n not in recipe.clusters), distill=distill)
    sparsity = verify_sparsity(stripped, recipe.sparsity, cfg.sparsity_tolerance, recipe.clusters)
    final = stripped
    if recipe.qat:
        final, history["qat"] = qat_finetune(stripped, data, recipe, batch_size=cfg.batch_size, seed=cfg.seed,
                                             distill=distill)
    return CompressResult(prune.model, prune, stripped, final, sparsity,
                          keras_score(final, data.x_val, data.y_val, data.task), history)
