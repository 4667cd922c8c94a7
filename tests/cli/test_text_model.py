"""The text case end to end: a Keras 3 Embedding -> LSTM -> Dense sentiment-style classifier through
`shears run --model … --data …` with the search on. It passes its gates, its embedding table and the LSTM's
kernel and recurrent kernel are pruned to their targets in the .tflite itself, and the deployable runs on TFLite
Micro with the same accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli import layer_kinds
from tests.keras import kinds

pytestmark = pytest.mark.tf


def test_embedding_lstm_text_model_with_the_search_on(tmp_path: Path) -> None:
    r = layer_kinds.run_text(tmp_path)
    assert r["exit"] == 0, r["output"]
    assert "model: batch of one: LSTM layer 'lstm'" in r["stdout"]
    run = r["run"]
    search = json.loads((run / "search.json").read_text())
    winner = search["trials"][search["winner"]]
    recipe = winner["recipe"]
    assert {"embedding", "lstm"} <= set(recipe["sparsity"]) and recipe["fixed_batch"]
    checks = {(c["layer"], c["weight"]): c for c in winner["checks"]}
    for key in (("embedding", None), ("lstm", "kernel"), ("lstm", "recurrent_kernel")):
        c = checks[key]  # found in the .tflite: the GATHER table, the fused LSTM's gate matrices
        assert c["tensor"] != "(not found)" and c["passed"], c
        assert c["zero_fraction"] >= recipe["sparsity"][key[0]] - 0.01, c

    metrics = json.loads((run / "metrics.json").read_text())
    micro = metrics["micro"]
    assert micro["runs"] and micro["agrees"] and "UNIDIRECTIONAL_SEQUENCE_LSTM" in micro["ops"]
    manifest = json.loads((run / "manifest.json").read_text())
    runtimes = {r["runtime"]: r for r in manifest["deployable"]["runtimes"]}
    assert set(runtimes) == {"LiteRT", "TFLite Micro", "TF Serving", "Keras 3", "Keras (tf_keras)"}
    assert runtimes["TFLite Micro"]["arena_bytes"] == micro["arena_bytes"]
    assert runtimes["Keras 3"]["file"] == "models/stripped.keras"
    # the .tflite, run outside Shears one sequence at a time (its LSTM state reset before each), gives the
    # recorded accuracy on the test rows
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(run / runtimes["LiteRT"]["file"]))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.int32 and list(inp["shape"]) == [1, kinds.TEXT_LEN]
    predictions = []
    for row in r["x_test"]:
        it.reset_all_variables()
        it.set_tensor(inp["index"], row[None])
        it.invoke()
        predictions.append(int(np.argmax(it.get_tensor(out["index"]))))
    accuracy = float(np.mean(np.array(predictions) == r["y_test"]))
    assert accuracy == pytest.approx(runtimes["LiteRT"]["metrics"]["accuracy"], abs=1e-6)
    assert micro["rows"] == 300 and micro["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1 / 300)
