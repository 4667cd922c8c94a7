"""A SavedModel of the stripped model for TF Serving: one `serving_default` signature, named input and output.

The signature is the contract a server's clients code against, so its names are fixed here and documented in
the README: input `input` (the model's input dtype, float32 or int32 token ids; shape [batch, *features]) and
output `output` (float32 [batch, units]: logits, probabilities or values, as the model emits them). Only the
serving function and the model's variables are saved (a tf.Module), not tf_keras' own traces of every layer:
4.5x smaller for an LSTM (154 KB against 696 KB of graph).

`saved_model.pb` is not byte-identical from one export to the next (TensorFlow numbers its functions per
process); the variables are.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from shears.keras.tfcompat import tf
from shears.keras.tflite import input_dtype

SIGNATURE = "serving_default"
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_saved_model(model: Any) -> dict[str, bytes]:
    """The SavedModel directory's files (relative POSIX path -> bytes) of `model`, with `serving_default`."""
    spec = tf.TensorSpec([None, *(int(d) for d in model.input_shape[1:])], input_dtype(model), name=INPUT_NAME)
    serve = tf.function(lambda x: {OUTPUT_NAME: model(x, training=False)}, input_signature=[spec])
    module = tf.Module()
    module.variables_ = list(model.variables)  # tracked, so they are saved; the model object itself is not
    module.serve = serve
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={SIGNATURE: serve.get_concrete_function()})
        return {path.relative_to(tmp).as_posix(): path.read_bytes()
                for path in sorted(Path(tmp).rglob("*")) if path.is_file()}


def load_saved_model(files: dict[str, bytes]) -> Any:
    """`tf.saved_model.load` of a directory given as its files (written to a private temporary folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            path = Path(tmp, *name.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return tf.saved_model.load(tmp)


def serve(loaded: Any, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """`serving_default`'s outputs for `x`, as a server would compute them (batches of `batch` rows)."""
    fn = loaded.signatures[SIGNATURE]
    dtype = fn.structured_input_signature[1][INPUT_NAME].dtype
    outs = [fn(**{INPUT_NAME: tf.constant(x[i:i + batch], dtype=dtype)})[OUTPUT_NAME].numpy()
            for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def saved_model_variables(loaded: Any) -> dict[str, np.ndarray]:
    """Every variable of a loaded SavedModel by its name (for checking that pruned kernels kept their zeros)."""
    return {v.name: np.asarray(v.numpy()) for v in loaded.variables_}

