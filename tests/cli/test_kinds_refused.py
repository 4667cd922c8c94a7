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
