"""Which weights of each layer tfmot prunes, asked of tfmot itself, and which layers Shears refuses.

tfmot's public API answers, not a copy of its tables: a layer is prunable when `prune_low_magnitude` wraps it
and the wrapped layer's `get_prunable_weights()` names weights — a Dense or convolution kernel, a separable
convolution's pointwise kernel, an Embedding's table, the kernel and recurrent kernel of an LSTM, GRU or
SimpleRNN cell. The question is put to a copy of the layer (tfmot patches the layer it wraps), built from its
config, so the caller's model is never touched.

What tfmot wraps but prunes nothing of (DepthwiseConv2D, BatchNormalization) and layers without a weight
matrix (Normalization, PReLU) are kept dense, with the reason recorded. A layer that holds a kernel tfmot
cannot prune (Bidirectional, TimeDistributed, ConvLSTM2D, Conv1DTranspose, EinsumDense) is refused in one
line before anything is trained: half-pruning a model silently is the failure Shears exists to prevent.
A nested model is kept dense, recorded: Shears prunes the top-level layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shears.errors import ConfigError, bounded
from shears.keras.tfcompat import keras, tfmot
from shears.records import LayerPlanRecord, ModelSupportRecord

SUPPORTED = ("Dense, Conv1D/2D/3D, Conv2DTranspose, SeparableConv1D/2D (pointwise kernel), Embedding, "
             "LSTM/GRU/SimpleRNN (kernel and recurrent kernel)")
# weights that are matrices a pruning could sparsify (as opposed to biases, scales, statistics and slopes)
_MATRIX_NAMES = ("kernel", "embeddings")
RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN", "RNN")


@dataclass(frozen=True)
class LayerWeights:
    """The weights tfmot prunes in one layer: their short names, positions in `layer.weights` and shapes."""

    layer: str
    class_name: str
    names: tuple[str, ...]  # "kernel", "recurrent_kernel", "embeddings", "pointwise_kernel"
    indices: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def size(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.shapes))

    def arrays(self, model: Any) -> list[np.ndarray]:
        """The current values of these weights in `model`'s layer of the same name."""
        weights = model.get_layer(self.layer).weights
        return [np.asarray(weights[i].numpy()) for i in self.indices]


@dataclass(frozen=True)
class LayerPlan:
    """What Shears does with one top-level layer that holds weights."""

    layer: str
    class_name: str
    prunable: LayerWeights | None  # None: kept dense
    kept: str | None  # why it is kept dense (None when prunable)


def short_name(variable: Any) -> str:
    """'kernel' for 'rnn/lstm_cell/kernel:0' (tf_keras names variables by scope)."""
    return str(variable.name).rsplit("/", 1)[-1].split(":")[0]


def _copy(layer: Any) -> Any:
    """A fresh, built copy of `layer` (its config and build shape; no weights copied)."""
    copy = layer.__class__.from_config(layer.get_config())
    build = layer.get_build_config() if hasattr(layer, "get_build_config") else None
    if build:
        copy.build_from_config(build)
    else:
        copy.build(layer.input_shape)
    return copy


def _tfmot_prunes(layer: Any) -> tuple[list[int], str | None]:
    """(positions in layer.weights of what tfmot prunes, None), or ([], why tfmot refuses the layer)."""
    sp = tfmot.sparsity.keras
    if isinstance(layer, sp.PrunableLayer):
        chosen = layer.get_prunable_weights()
        return [i for i, w in enumerate(layer.weights) if any(w is c for c in chosen)], None
    try:
        copy = _copy(layer)
        wrapper = sp.prune_low_magnitude(copy)
        chosen = wrapper.layer.get_prunable_weights()
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return [], f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return [i for i, w in enumerate(copy.weights) if any(w is c for c in chosen)], None


def plan_layer(layer: Any) -> LayerPlan | None:
    """What happens to `layer`: pruned (which weights), kept dense (why), or None for a layer without weights.

    Raises ConfigError for a layer holding a kernel tfmot cannot prune.
    """
    cls = type(layer).__name__
    if not layer.weights:
        return None
    if isinstance(layer, keras.Model):
        return LayerPlan(layer.name, cls, None, "a nested model: Shears prunes the top-level layers, its weights "
                                                "stay dense")
    indices, refused = _tfmot_prunes(layer)
    if indices:
        chosen = [layer.weights[i] for i in indices]
        return LayerPlan(layer.name, cls, LayerWeights(
            layer.name, cls, tuple(short_name(w) for w in chosen), tuple(indices),
            tuple(tuple(int(d) for d in w.shape) for w in chosen)), None)
    if refused is None:
        return LayerPlan(layer.name, cls, None, f"tfmot prunes none of a {cls}'s weights")
    matrices = [short_name(w) for w in layer.trainable_weights if short_name(w).endswith(_MATRIX_NAMES)]
    if matrices:
        shown = ", ".join(sorted(set(matrices))[:3])
        raise ConfigError(bounded(
            f"cannot prune layer '{layer.name}' (class {cls}): tfmot 0.8.1 cannot prune its {shown}; Shears prunes "
            f"{SUPPORTED}: replace the layer, or save the model without it"))
    return LayerPlan(layer.name, cls, None, "no weight matrix to prune (scales, offsets or statistics)")


def plan_model(model: Any) -> list[LayerPlan]:
    """Every top-level layer with weights, in model order (ConfigError for a layer Shears cannot prune)."""
    return [p for p in (plan_layer(layer) for layer in model.layers) if p is not None]


def prunable_weights(model: Any) -> dict[str, LayerWeights]:
    """Per prunable top-level layer, the weights tfmot prunes (model order)."""
    return {p.layer: p.prunable for p in plan_model(model) if p.prunable is not None}


def is_recurrent(layer: Any) -> bool:
    return type(layer).__name__ in RNN_CLASSES


def loops_in_tflite(layer: Any) -> bool:
    """An RNN whose TFLite form is a WHILE loop (GRU, SimpleRNN; an LSTM fuses into one op)."""
    return is_recurrent(layer) and not isinstance(getattr(layer, "cell", None), keras.layers.LSTMCell)


def _cluster_refusal(layer: Any) -> str | None:
    """Why tfmot cannot cluster `layer` (None: `cluster_weights` takes it), asked of a copy."""
    cl = tfmot.clustering.keras
    try:
        cl.cluster_weights(_copy(layer), number_of_clusters=8,
                           cluster_centroids_init=cl.CentroidInitialization.KMEANS_PLUS_PLUS, preserve_sparsity=True)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"tfmot cannot cluster a {type(layer).__name__}: {_first(exc)}"
    return None


def _qat_refusal(model: Any) -> str | None:
    """Why tfmot's 8-bit quantization-aware training cannot take `model` (None: it can), tried on a clone."""
    q = tfmot.quantization.keras
    try:
        with q.quantize_scope():
            q.quantize_apply(q.quantize_annotate_model(keras.models.clone_model(model)))
    except Exception as exc:  # tfmot raises many types for a layer its scheme lacks (RuntimeError, ValueError...)
        return f"tfmot's 8-bit QAT cannot take this model: {_first(exc)}"
    return None


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def model_support(model: Any, *, probe_qat: bool) -> ModelSupportRecord:
    """Per layer what is pruned (or why not) and whether it clusters; whether QAT (probed only when the run may
    use it: it costs a model rebuild), int8 and a dynamic batch are possible. ConfigError for a layer Shears
    cannot prune."""
    plans = plan_model(model)
    layers = []
    for p in plans:
        w = p.prunable
        layers.append(LayerPlanRecord(
            layer=p.layer, class_name=p.class_name,
            weights={n: int(np.prod(s)) for n, s in zip(w.names, w.shapes, strict=True)} if w else {},
            kept=p.kept, cluster=_cluster_refusal(model.get_layer(p.layer)) if w else None))
    rnn = [layer for layer in model.layers if is_recurrent(layer)]
    loops = [layer for layer in rnn if loops_in_tflite(layer)]
    fixed = (f"{type(rnn[0]).__name__} layer '{rnn[0].name}': TFLite lowers a recurrent layer only with a static "
             "batch (its TensorList needs a static element shape), so the .tflite takes one row per call"
             if rnn else None)
    int8 = (f"{type(loops[0]).__name__} layer '{loops[0].name}' becomes a WHILE loop in TFLite, and TF 2.21's "
            "converter crashes (SIGSEGV) calibrating one for full-integer int8 (measured); an LSTM fuses and "
            "converts" if loops else None)
    return ModelSupportRecord(layers=layers, qat=_qat_refusal(model) if probe_qat else None, qat_probed=probe_qat,
                              int8=int8, fixed_batch=fixed)
