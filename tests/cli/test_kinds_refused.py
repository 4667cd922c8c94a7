"""A layer Shears cannot prune (tf_keras) or rebuild (Keras 3) is refused before anything is trained: exit 2, one
line naming the layer and its class, nothing published, no trial run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shears.cli.main import app
from typer.testing import CliRunner

from tests.conftest import npz_bytes
from tests.keras import kinds
from tests.keras.k3models import k3

runner = CliRunner()
pytestmark = pytest.mark.tf


def _bidirectional(k: Any) -> Any:
    inp = k.Input((kinds.SEQ_LEN,), dtype="int32", name="tokens")
    x = k.layers.Embedding(kinds.VOCAB, 8, name="embedding")(inp)
    x = k.layers.Bidirectional(k.layers.LSTM(8), name="bi")(x)
    return k.Model(inp, k.layers.Dense(2, name="logits")(x))


@pytest.mark.parametrize(("generation", "needle"), [
    ("tf_keras", "cannot prune layer 'bi' (class Bidirectional): tfmot 0.8.1 cannot prune its kernel"),
    ("keras3", "layer 'bi' has class Bidirectional (no tf_keras translation in Shears)"),
])
def test_a_layer_shears_cannot_prune_or_rebuild_is_refused_before_training(tmp_path: Path, generation: str,
                                                                           needle: str) -> None:
    import tf_keras

    model = _bidirectional(tf_keras if generation == "tf_keras" else k3())
    path = tmp_path / ("m.h5" if generation == "tf_keras" else "m.keras")
    model.save(path)
    x, y = kinds.sequences(300)
    data = tmp_path / "seq.npz"
    data.write_bytes(npz_bytes(x=x, y=y))
    store = tmp_path / "store"
    result = runner.invoke(app, ["run", "--model", str(path), "--data", str(data), "--out", str(store),
                                 "--run-id", "bi"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and needle in errors[0], result.stderr
    assert not list(store.rglob("manifest.json")) and not list(store.rglob("*.tflite"))
    assert not list(store.rglob("baseline.json")) and not list(store.rglob("result.json"))  # nothing trained


@pytest.mark.parametrize("generation", ["tf_keras", "keras3"])
def test_token_ids_outside_the_embedding_vocabulary_are_a_data_error(tmp_path: Path, generation: str) -> None:
    """Found at validate from the file's own config (the Embedding's input_dim), in every split, before training."""
    import tf_keras

    k = tf_keras if generation == "tf_keras" else k3()
    inp = k.Input((kinds.SEQ_LEN,), dtype="int32", name="tokens")
    x = k.layers.LSTM(4, name="lstm")(k.layers.Embedding(kinds.VOCAB, 4, name="embedding")(inp))
    path = tmp_path / ("m.h5" if generation == "tf_keras" else "m.keras")
    k.Model(inp, k.layers.Dense(2, name="logits")(x)).save(path)
    x_ids, y = kinds.sequences(300)
    x_test = x_ids[:50].copy()
    x_test[7, 2] = kinds.VOCAB + 3  # one id past the table, in the test split
    data = tmp_path / "seq.npz"
    data.write_bytes(npz_bytes(x=x_ids, y=y, x_test=x_test, y_test=y[:50]))
    result = runner.invoke(app, ["run", "--model", str(path), "--data", str(data), "--out", str(tmp_path / "s"),
                                 "--run-id", "oov"])
    assert result.exit_code == 3, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and f"x_test holds 1 value(s) that are not token ids of the model's Embedding [0, " \
                                 f"{kinds.VOCAB}) (first: {kinds.VOCAB + 3} in row 7)" in errors[0], result.stderr
