"""What tfmot prunes of each layer (asked of tfmot's public API), what is kept dense and why, what is refused."""

from __future__ import annotations

import numpy as np
import pytest
from shears.errors import ConfigError
from shears.keras.prunable import model_support, plan_model, prunable_weights
from shears.keras.tfcompat import keras

from tests.keras import kinds

pytestmark = pytest.mark.tf


@pytest.mark.parametrize("family", kinds.FAMILIES)
def test_every_kind_prunes_the_weights_tfmot_names(family: str) -> None:
    model = kinds.build(keras, family)
    before = [w.copy() for w in model.get_weights()]
    found = prunable_weights(model)
    want = {layer: weights for layer, (fam, _, weights) in kinds.KINDS.items() if fam == family}
    assert {k: v.names for k, v in found.items() if k != "logits"} == want
    for layer, lw in found.items():  # positions and shapes are those of the model's own weights
        weights = model.get_layer(layer).weights
        assert [tuple(weights[i].shape) for i in lw.indices] == list(lw.shapes)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert not any(hasattr(layer, "get_prunable_weights") for layer in model.layers)  # asked of copies


def test_layers_without_a_prunable_matrix_are_kept_with_a_reason() -> None:
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Normalization(name="norm")(inp)
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.PReLU(name="prelu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="logits")(x))
    plans = {p.layer: p for p in plan_model(model)}
    assert plans["logits"].prunable is not None and plans["logits"].kept is None
    assert "tfmot prunes none of a DepthwiseConv2D" in str(plans["depthwise"].kept)
    assert "tfmot prunes none of a BatchNormalization" in str(plans["bn"].kept)
    assert "no weight matrix" in str(plans["norm"].kept) and "no weight matrix" in str(plans["prelu"].kept)


def test_a_nested_model_is_kept_dense_and_said_so() -> None:
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="inner")], name="block")
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2, name="logits")(inner(inp)))
    plans = {p.layer: p for p in plan_model(model)}
    assert plans["block"].prunable is None and "nested model" in str(plans["block"].kept)


@pytest.mark.parametrize(("make", "cls"), [
    (lambda: keras.layers.Bidirectional(keras.layers.LSTM(4), name="odd"), "Bidirectional"),
    (lambda: keras.layers.TimeDistributed(keras.layers.Dense(4), name="odd"), "TimeDistributed"),
    (lambda: keras.layers.Conv1DTranspose(4, 3, name="odd"), "Conv1DTranspose"),
])
def test_a_kernel_tfmot_cannot_prune_is_refused_naming_layer_and_class(make: object, cls: str) -> None:
    inp = keras.Input((6, 3))
    x = make()(inp)  # type: ignore[operator]
    model = keras.Model(inp, keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x)))
    with pytest.raises(ConfigError, match=rf"cannot prune layer 'odd' \(class {cls}\): tfmot 0.8.1 cannot prune"):
        plan_model(model)


def test_model_support_records_clustering_qat_and_conversion_limits() -> None:
    seq = model_support(kinds.build(keras, "sequence"), probe_qat=True)
    layers = {p.layer: p for p in seq.layers}
    assert layers["lstm"].weights == {"kernel": 8 * 32, "recurrent_kernel": 8 * 32}
    assert layers["embedding"].cluster is None  # tfmot clusters an Embedding
    assert seq.qat is not None and "QAT cannot take this model" in seq.qat  # no 8-bit QAT of Embedding/RNNs
    assert seq.fixed_batch is not None and seq.int8 is not None and "GRU layer 'gru'" in seq.int8
    img = model_support(kinds.build(keras, "image"), probe_qat=False)
    assert img.fixed_batch is None and img.int8 is None and img.qat is None and not img.qat_probed
