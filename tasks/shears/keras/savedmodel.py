"""A SavedModel of the stripped model for TF Serving: one `serving_default` signature, named input and output.

The signature is the contract a server's clients code against, so its names are fixed here and documented in
the README: input `input` (the model's input dtype, float32 or int32 token ids; shape [batch, *features]) and
output `output` (float32 [batch, units]: logits, probabilities or values, as the model emits them). Only the
serving function and the model's variables are saved (a tf.Module), not tf_keras' own traces of every layer:
4.5x smaller for an LSTM (154 KB against 696 KB of graph).

The same model exports to the same bytes, so a rerun publishes the same sizes and checksums: fingerprint.pb's
random `uuid` (telemetry) is replaced by one derived from the fingerprint's own hashes, and the export runs in a
fresh process (`export_in_child`), because saved_model.pb names functions with process-wide counters.
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
        files = {path.relative_to(tmp).as_posix(): path.read_bytes()
                 for path in sorted(Path(tmp).rglob("*")) if path.is_file()}
    if FINGERPRINT in files:
        files[FINGERPRINT] = _stable_fingerprint(files[FINGERPRINT])
    return files


FINGERPRINT = "fingerprint.pb"


def _stable_fingerprint(data: bytes) -> bytes:
    """fingerprint.pb with its random uuid replaced by a number derived from its hashes (same model, same file)."""
    import hashlib

    from tensorflow.core.protobuf import fingerprint_pb2

    fp = fingerprint_pb2.FingerprintDef()
    fp.ParseFromString(data)
    basis = (f"{fp.saved_model_checksum}:{fp.graph_def_program_hash}:{fp.signature_def_hash}:"
             f"{fp.saved_object_graph_hash}:{fp.checkpoint_hash}")
    fp.uuid = str(int.from_bytes(hashlib.sha256(basis.encode()).digest()[:16], "big"))
    return bytes(fp.SerializeToString(deterministic=True))


def export_in_child(h5: bytes, timeout: float = 600.0) -> dict[str, bytes]:
    """`export_saved_model` of a Shears .h5 (its own staged stripped model) in a fresh Python process.

    TensorFlow names a SavedModel's functions and captured inputs with process-wide counters, so a second export
    in one process writes other names (a few bytes more or less, measured): a fresh process makes the files
    depend on the model alone, whatever this process traced before (a test or a benchmark running several runs).
    """
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "model.h5", Path(tmp) / "saved_model"
        src.write_bytes(h5)
        proc = subprocess.run([sys.executable, "-m", "shears.keras.savedmodel", str(src), str(out)],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])[-400:]
            raise RuntimeError(f"SavedModel export failed (exit {proc.returncode}): {tail}")
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


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



def main(argv: list[str]) -> int:
    """`python -m shears.keras.savedmodel MODEL.h5 OUT_DIR`: the export, in the process export_in_child starts."""
    from shears.keras.modelio import model_from_bytes

    src, out = Path(argv[0]), Path(argv[1])
    for name, data in export_saved_model(model_from_bytes(src.read_bytes(), src.name)).items():
        path = out.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
