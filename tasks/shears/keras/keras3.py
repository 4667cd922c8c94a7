"""The Keras 3 -> tf_keras bridge: take the models people have, give the pruned model back in their format.

Keras 3 is TensorFlow's default Keras since 2.16, and tfmot works only on tf_keras; a Keras 3 file does not
load in tf_keras (`Could not deserialize class 'Functional'`). Both live in this process: `tf.keras` is
tf_keras (TF_USE_LEGACY_KERAS=1, set by tfcompat) while `import keras` still gives the Keras 3 package.

A user's file is checked by shears.keras.intake and loaded only in the scrubbed child of
shears.keras.sandbox: there the bridge loads it with Keras 3 in safe mode, translates its config layer by
layer into tf_keras's (Sequential, Functional, nested models, shared layers, multi-input layers such as
Add/Concatenate), builds it in tf_keras, and returns the architecture and weights as plain data, which this
process rebuilds. What it cannot translate (a custom layer, a subclassed model, an option tf_keras lacks)
is a one-line ConfigError naming the layer and class, raised before the model is even loaded. Callers
prove the rebuild equivalent on the run's data (the Keras 3 model's own outputs, computed in the child)
and record the figure.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shears.errors import ConfigError, first_line
from shears.keras.tfcompat import keras

if TYPE_CHECKING:
    from shears.keras.sandbox import SandboxLimits

MODEL_CLASSES = ("Sequential", "Functional", "Model")
# Built-in layers with a tf_keras translation (same class name in both).
LAYERS = frozenset({
    "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
    "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "BatchNormalization", "LayerNormalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "Rescaling", "Normalization",
    "Reshape", "Flatten", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "Activation", "ReLU", "LeakyReLU", "Softmax", "Add", "Subtract", "Multiply", "Average", "Maximum",
    "Minimum", "Concatenate", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D",
    "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D", "Embedding",
    "LSTM", "GRU", "SimpleRNN", "Permute", "RepeatVector",
})
# Keras 3 option names that tf_keras spells differently.
RENAMES: dict[str, dict[str, str]] = {"InputLayer": {"batch_shape": "batch_input_shape"},
                                      "LeakyReLU": {"negative_slope": "alpha"}}
# Keras 3 options with no tf_keras counterpart that change nothing at these values.
INERT: dict[str, tuple[Any, ...]] = {"use_cudnn": ("auto", False), "optional": (False,), "synchronized": (False,),
                                     "rms_scaling": (False,)}
_BASE_KWARGS = frozenset({"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape", "batch_input_shape",
                          "batch_size", "weights", "activity_regularizer", "autocast", "implementation"})
EQUIVALENCE_ROWS = 512


@dataclass
class Pretrained:
    """A user's model as tf_keras holds it, where it came from, and (Keras 3) what the proof and the way back need."""

    model: keras.Model
    origin: str  # "Keras 3 .keras", "Keras 2 .h5", ...
    keras3_architecture: dict[str, Any] | None = None  # the user's Keras 3 architecture, checked at intake
    keras3_reference: np.ndarray | None = None  # the Keras 3 model's own outputs on the probe rows
    keras3_reference_error: str | None = None  # why it could not run on them
    load_seconds: float = 0.0  # the loading child, start to exit
    load_peak_rss_bytes: int = 0


def _keras3() -> Any:
    import keras as k3  # the Keras 3 package (tf.keras is tf_keras in this process)

    return k3


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


# --------------------------------------------------------------------------------------------- checking


def check_convertible(config: dict[str, Any] | None, name: str) -> None:
    """Every layer of a Keras 3 config (already allow-listed by shears.keras.intake) has a tf_keras translation.

    Runs on the file's own config before any Keras loads it, so an untranslatable built-in layer is a
    one-line ConfigError naming it, not an error from deep inside the rebuild.
    """
    from shears.keras.intake import check_config

    check_config(config, name)  # custom objects, Lambda layers, subclassed models: refused there
    assert isinstance(config, dict)
    stack = [config.get("config", {})]
    while stack:
        cfg = stack.pop()
        for entry in cfg.get("layers", []) or []:
            cls = str(entry.get("class_name"))
            if cls in MODEL_CLASSES:
                stack.append(entry.get("config", {}))
            elif cls not in LAYERS:
                lname = entry.get("name") or entry.get("config", {}).get("name")
                raise ConfigError(
                    f"cannot prune {name}: layer '{lname}' has class {cls} (no tf_keras translation in Shears); "
                    "replace it with built-in layers Shears translates, or build and save the model with tf_keras")


# --------------------------------------------------------------------------------------------- translating


def _accepted(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p for p in inspect.signature(init).parameters if p not in ("self", "args", "kwargs")}
    return names


def _object(key: str, value: Any, where: str) -> Any:
    """An initializer/regularizer/constraint as tf_keras spells it ({'class_name', 'config'})."""
    if not isinstance(value, dict):
        return value
    kinds = {"_initializer": keras.initializers, "_regularizer": keras.regularizers, "_constraint": keras.constraints}
    module = next((m for suffix, m in kinds.items() if key.endswith(suffix) or key == suffix[1:]), None)
    cls_name = str(value.get("class_name"))
    cls = getattr(module, cls_name, None) if module is not None else None
    if cls is None:
        raise ConfigError(f"{where}: {key} {cls_name} has no tf_keras translation; use a built-in one")
    return {"class_name": cls_name, "config": _options(cls, value.get("config") or {}, f"{where} {key}", {})}


def _options(cls: type, cfg: dict[str, Any], where: str, renames: dict[str, str]) -> dict[str, Any]:
    accepted = _accepted(cls) | (_BASE_KWARGS if issubclass(cls, keras.layers.Layer) else set())
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        key = renames.get(key, key)
        if key == "dtype" and isinstance(value, dict):  # Keras 3 DTypePolicy -> its name
            value = value.get("config", {}).get("name", "float32")
        elif key == "activation" and not isinstance(value, str):
            raise ConfigError(f"{where}: activation {_short(value)} is not a built-in activation name")
        elif isinstance(value, dict) and "class_name" in value:
            value = _object(key, value, where)
        if key in accepted:
            out[key] = value
        elif value is None or value in INERT.get(key, ()) or (value is False and key not in INERT):
            continue  # a Keras 3 option that is off: nothing to translate
        else:
            raise ConfigError(f"{where}: option {key}={_short(value)} has no tf_keras equivalent; "
                              "save the model without it")
    return out


def _node(node: Any, where: str) -> Any:
    """A Keras 3 call node ({'args', 'kwargs'}) as tf_keras node data: [[layer, node, tensor, kwargs], ...]."""
    if isinstance(node, list):
        return node  # already the Keras 2 form
    history: list[list[Any]] = []

    def collect(obj: Any) -> None:
        if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
            history.append(list(obj["config"]["keras_history"]))
        elif isinstance(obj, list | tuple):
            for item in obj:
                collect(item)
        elif isinstance(obj, dict):
            raise ConfigError(f"{where}: a call argument {_short(obj)} cannot be rebuilt in tf_keras")

    collect(node.get("args", []))
    # `training` is dropped: Keras 3 records the call signature's default (`training=False` for an RNN or a
    # Dropout) in the graph, and replaces it with the outer call's flag when it runs (Functional passes `fit`'s
    # training=True down). Kept, tf_keras would call those layers in inference mode during fit: no dropout, and
    # no pruning step for a pruned LSTM (its masks never updated: measured, 0 % sparsity after a fine-tune).
    kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None and k != "training"}
    if any(isinstance(v, dict | list) for v in kwargs.values()):
        raise ConfigError(f"{where}: call arguments {sorted(kwargs)} cannot be rebuilt in tf_keras")
    return [[*h, kwargs] for h in history]


def _io(value: Any) -> Any:
    return [value] if value and isinstance(value[0], str) else value


def _layer(entry: dict[str, Any], name: str) -> dict[str, Any]:
    cls = str(entry["class_name"])
    cfg = entry.get("config") or {}
    lname = entry.get("name") or cfg.get("name")
    where = f"cannot prune {name}: layer '{lname}' ({cls})"
    if cls in MODEL_CLASSES:
        out: dict[str, Any] = {"class_name": "Sequential" if cls == "Sequential" else "Functional",
                               "config": _model_config(cls, cfg, name)}
    else:
        tf_cls = getattr(keras.layers, cls, None)
        if tf_cls is None or cls not in LAYERS:
            raise ConfigError(f"{where}: no tf_keras translation in Shears; use built-in layers")
        out = {"class_name": cls, "config": _options(tf_cls, cfg, where, RENAMES.get(cls, {}))}
    if "inbound_nodes" in entry:
        out["name"] = lname
        out["inbound_nodes"] = [_node(n, where) for n in entry["inbound_nodes"]]
    return out


def _model_config(cls: str, cfg: dict[str, Any], name: str) -> dict[str, Any]:
    layers = [_layer(e, name) for e in cfg.get("layers", [])]
    if cls == "Sequential":
        return {"name": cfg.get("name", "sequential"), "layers": layers}
    # A nested model built on its own Input has a creation node 0 in tf_keras (not in Keras 3): its calls
    # in this graph are nodes 1, 2, ... there.
    shifted = {lay["name"] for lay in layers if lay["class_name"] == "Functional" or (
        lay["class_name"] == "Sequential" and lay["config"]["layers"][:1]
        and lay["config"]["layers"][0]["class_name"] == "InputLayer")}

    def shift(ref: list[Any]) -> list[Any]:
        return [ref[0], ref[1] + 1, *ref[2:]] if ref[0] in shifted else ref

    for lay in layers:
        lay["inbound_nodes"] = [[shift(ref) for ref in node] for node in lay.get("inbound_nodes", [])]
    out = {"input_layers": [shift(r) for r in _io(cfg["input_layers"])],
           "output_layers": [shift(r) for r in _io(cfg["output_layers"])]}
    # tf_keras loops forever on a reference to a call that never happens: refuse such a graph here instead
    calls = {lay["name"]: max(len(lay["inbound_nodes"]), 1) + (lay["name"] in shifted) for lay in layers}
    refs = [r for lay in layers for node in lay["inbound_nodes"] for r in node]
    for ref in [*refs, *out["input_layers"], *out["output_layers"]]:
        if ref[0] not in calls or ref[1] >= calls[ref[0]]:
            raise ConfigError(f"cannot rebuild {name} in tf_keras: call {ref[1]} of layer '{ref[0]}' is not in the "
                              "graph")
    return {"name": cfg.get("name", "model"), "trainable": cfg.get("trainable", True), "layers": layers, **out}


def to_tf_keras(k3_model: Any, name: str) -> keras.Model:
    """The same graph built in tf_keras, with the Keras 3 model's weights."""
    cls = "Sequential" if type(k3_model).__name__ == "Sequential" else "Functional"
    cfg = _model_config(cls, k3_model.get_config(), name)
    try:
        model = keras.layers.deserialize({"class_name": cls, "config": cfg})
    except ConfigError:
        raise
    except Exception as exc:  # tf_keras raises many types for a config it cannot build
        raise ConfigError(f"cannot rebuild {name} in tf_keras: {type(exc).__name__}: {first_line(exc)[:160]}") from None
    copy_weights(k3_model, model, name)
    return model


def copy_weights(src: Any, dst: Any, name: str) -> None:
    """Layer by layer, by name (nested models recursively), either direction; shapes must match exactly."""
    for layer in dst.layers:
        try:
            other = src.get_layer(layer.name)
        except ValueError:
            raise ConfigError(f"cannot rebuild {name}: layer '{layer.name}' has no counterpart") from None
        if hasattr(layer, "get_layer"):
            copy_weights(other, layer, name)
            continue
        have = [np.asarray(w) for w in other.get_weights()]
        want = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(w.shape) for w in have] != want:
            raise ConfigError(f"cannot rebuild {name}: layer '{layer.name}' ({type(layer).__name__}) has weights "
                              f"{[tuple(w.shape) for w in have]}, its rebuild expects {want}")
        if have:
            layer.set_weights(have)
            finalize_state(layer)


def finalize_state(layer: Any) -> None:
    """Preprocessing layers (Normalization...) compute what they use in call from their weights once, when they
    are adapted or loaded; after set_weights they must be told, or they keep computing with the old values."""
    if callable(getattr(layer, "finalize_state", None)):
        layer.finalize_state()


# --------------------------------------------------------------------------------------------- loading, proving


def load_keras3(data: bytes, name: str, suffix: str) -> Any:
    """A Keras 3 file loaded by Keras 3 (safe mode); only the loading child calls this for a user's file."""
    k3 = _keras3()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model.{suffix}"
        path.write_bytes(data)
        try:
            return k3.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # a user's file can make Keras raise anything
            raise ConfigError(f"cannot load model {name} with Keras 3: {type(exc).__name__}: "
                              f"{first_line(exc)[:200]}") from None


def architecture_of(k3_model: Any) -> dict[str, Any]:
    """The Keras 3 model's architecture as Keras serializes it (module, class_name, config), without compile."""
    config = dict(_keras3().saving.serialize_keras_object(k3_model))
    config.pop("compile_config", None)
    return json.loads(json.dumps(config))  # plain JSON values only


def from_architecture(config: dict[str, Any], name: str) -> Any:
    """A Keras 3 model built from an architecture the allow-list checked (no file is read)."""
    from shears.keras.intake import check_config

    check_config(config, name)
    try:
        return _keras3().saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a config it cannot build
        raise ConfigError(f"cannot rebuild {name} in Keras 3: {type(exc).__name__}: {first_line(exc)[:160]}") from None


def load_pretrained(data: bytes, name: str, probe: np.ndarray | None = None,
                    limits: SandboxLimits | None = None) -> Pretrained:
    """A user's .keras/.h5 as a tf_keras model, loaded in the scrubbed child (shears.keras.sandbox).

    Keras 2 files come back as they are, Keras 3 files rebuilt in tf_keras; with `probe` rows, the Keras 3
    model's own outputs on them come back too, for the equivalence proof.
    """
    from shears.keras.fileinfo import inspect_model_file
    from shears.keras.modelio import model_from_plain
    from shears.keras.sandbox import SandboxLimits, load_in_child

    limits = limits or SandboxLimits()
    info = inspect_model_file(data, name, limits.intake)  # refused here, before a child is even started
    if info.generation == "keras3":
        check_convertible(info.config, name)
    loaded = load_in_child(data, name, probe, limits)
    keras.backend.clear_session()  # stable tf_keras names for anything the config leaves unnamed
    model = model_from_plain(loaded.tf_keras_json, loaded.weights, name)
    return Pretrained(model, loaded.origin or info.origin, loaded.keras3_config, loaded.reference,
                      loaded.reference_error, loaded.seconds, loaded.peak_rss_bytes)


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """Outputs of a tf_keras or Keras 3 model (inference mode), as float64."""
    return np.asarray(model.predict(x, batch_size=256, verbose=0), dtype=np.float64)


def max_abs_difference(a: Any, b: Any, x: np.ndarray) -> tuple[float, int]:
    """The largest |output difference| of two models on the first EQUIVALENCE_ROWS rows of `x`, and the rows."""
    rows = x[:EQUIVALENCE_ROWS]
    return output_difference(predict(a, rows), predict(b, rows)), len(rows)


def output_difference(pa: np.ndarray, pb: np.ndarray) -> float:
    """max |pa - pb| (inf when the shapes differ)."""
    if pa.shape != pb.shape:
        return float("inf")
    return float(np.max(np.abs(pa - pb))) if pa.size else 0.0


def to_keras3(model: keras.Model, architecture: dict[str, Any], name: str) -> Any:
    """The tf_keras model's weights in the user's own Keras 3 architecture (as checked at intake)."""
    k3_model = from_architecture(architecture, name)
    copy_weights(model, k3_model, name)
    return k3_model


def keras3_to_bytes(k3_model: Any) -> bytes:
    """A Keras 3 `.keras` file (no optimizer: the model is not compiled)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        k3_model.save(path)
        return path.read_bytes()


def keras3_from_bytes(data: bytes, name: str = "model.keras") -> Any:
    """Shears' own Keras 3 output read back (checked like any model file first)."""
    from shears.keras.fileinfo import inspect_model_file

    info = inspect_model_file(data, name)
    return load_keras3(data, name, info.fmt)
