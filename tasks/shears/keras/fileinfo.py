"""What a model file says about itself, read without TensorFlow: its Keras generation and its input shape.

Keras 3 (the default Keras since TensorFlow 2.16) writes files tf_keras cannot load; the file's own metadata
tells them apart: a `.keras` zip's `metadata.json` (`keras_version`), an `.h5` file's `keras_version`
attribute. The input shape lets the validate step give grayscale images the channel axis the model expects
before anything is staged, without importing TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from shears.errors import ConfigError
from shears.keras.intake import DEFAULT_LIMITS, Limits, parse_model_file
from shears.task import OutputLayer

Generation = Literal["keras2", "keras3"]


@dataclass(frozen=True)
class ModelFileInfo:
    fmt: Literal["keras", "h5"]
    generation: Generation
    keras_version: str
    config: dict[str, Any] | None  # the model's config as saved (None when the file has none)
    input_shape: tuple[int, ...] | None  # without the batch axis; None when not found (or several inputs)
    output: OutputLayer | None = None  # the output layer's units and final activation, when the config says
    # the model takes token ids: the input feeds an Embedding of this many ids (its input_dim); else None
    token_vocabulary: int | None = None

    @property
    def origin(self) -> str:
        """How the report and the CLI name where the model came from: 'Keras 3 .keras', 'Keras 2 .h5'."""
        return f"Keras {self.generation[-1]} .{self.fmt}"


def model_format(name: str) -> Literal["keras", "h5"]:
    lower = name.lower()
    if lower.endswith(".keras"):
        return "keras"
    if lower.endswith((".h5", ".hdf5")):
        return "h5"
    raise ConfigError(f"unsupported model file {name}: use .keras or .h5")


def _generation(version: str) -> Generation:
    return "keras3" if version.split(".")[0] == "3" else "keras2"


def _layers(config: dict[str, Any] | None) -> tuple[dict[str, Any], list[Any]] | None:
    """A Sequential or Functional config's inner config and its non-empty layer list, else None."""
    if not isinstance(config, dict):
        return None
    inner = config.get("config", {})
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list) or not layers:
        return None
    return inner, layers


def _input_shape(config: dict[str, Any] | None) -> tuple[int, ...] | None:
    """The one input's shape (batch axis dropped) from a Sequential or Functional config, either generation."""
    found = _layers(config)
    if config is None or found is None:
        return None
    inner, layers = found
    candidates = layers
    inputs = inner.get("input_layers")
    if config.get("class_name") != "Sequential" and inputs:
        flat = inputs[0] if isinstance(inputs[0], list) else inputs
        if isinstance(inputs[0], list) and len(inputs) != 1:
            return None  # several inputs: Shears prunes single-input classifiers
        candidates = [lay for lay in layers if isinstance(lay, dict) and lay.get("name",
                      lay.get("config", {}).get("name")) == flat[0]]
    for lay in candidates[:1]:
        cfg = lay.get("config", {}) if isinstance(lay, dict) else {}
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if isinstance(shape, list) and len(shape) >= 2 and all(isinstance(d, int) for d in shape[1:]):
            return tuple(int(d) for d in shape[1:])
    return None


def _activation(value: Any) -> str | None:
    """'sigmoid' from a Keras 2 string or a Keras 3 serialized function ({"config": "sigmoid", ...})."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return str(inner["name"])
    return None


def _output_layer(config: dict[str, Any] | None) -> OutputLayer | None:
    """Units and final activation of the one output, walking back over Activation/Softmax layers (Sequential)
    or from the Functional output layer; None when the config does not say (several outputs, unknown)."""
    found = _layers(config)
    if config is None or found is None:
        return None
    inner, layers = found
    by_name = {(lay.get("config") or {}).get("name", lay.get("name")): lay for lay in layers if isinstance(lay, dict)}
    if config.get("class_name") == "Sequential":
        chain = [lay for lay in layers if isinstance(lay, dict)][::-1]
    else:
        outputs = inner.get("output_layers")
        if not isinstance(outputs, list) or not outputs:
            return None
        if isinstance(outputs[0], list):
            if len(outputs) != 1:
                return None
            outputs = outputs[0]
        output = by_name.get(outputs[0])
        chain = [output] if isinstance(output, dict) else []
    activation: str | None = None
    for lay in chain:
        cls, cfg = lay.get("class_name"), lay.get("config") or {}
        if cls in ("Activation", "Softmax"):
            activation = activation or ("softmax" if cls == "Softmax" else _activation(cfg.get("activation")))
            continue
        if cls in ("Dropout", "ActivityRegularization"):
            continue
        units = cfg.get("units")
        if cls == "Dense" and isinstance(units, int):
            act = _activation(cfg.get("activation"))
            final = activation or (act if act != "linear" else None)
            return OutputLayer(units, final)
        return None
    return None


def _token_vocabulary(config: dict[str, Any] | None) -> int | None:
    """input_dim of the Embedding the model's one input feeds straight into (a text or sequence model), else None."""
    found = _layers(config)
    if config is None or found is None:
        return None
    inner, layers = found
    dicts = [lay for lay in layers if isinstance(lay, dict)]
    if config.get("class_name") == "Sequential":
        fed = [lay for lay in dicts if lay.get("class_name") != "InputLayer"][:1]
    else:
        inputs = inner.get("input_layers")
        flat = inputs[0] if isinstance(inputs, list) and inputs and isinstance(inputs[0], list) else inputs
        if not isinstance(flat, list) or not flat or not isinstance(flat[0], str):
            return None
        needle = json.dumps(flat[0])
        fed = [lay for lay in dicts if needle in json.dumps(lay.get("inbound_nodes", []))]
    for lay in fed:
        dim = (lay.get("config") or {}).get("input_dim")
        if lay.get("class_name") == "Embedding" and isinstance(dim, int) and dim > 0:
            return dim
    return None


def inspect_model_file(data: bytes, name: str, limits: Limits = DEFAULT_LIMITS) -> ModelFileInfo:
    """Format, Keras generation, config and input shape of .keras / .h5 bytes, read and checked without Keras
    (shears.keras.intake: sizes, allow-listed classes, plain HDF5); a one-line ConfigError otherwise."""
    fmt = model_format(name)
    parsed = parse_model_file(data, name, fmt, limits=limits)
    version, config = parsed.keras_version, parsed.config
    if not version and isinstance(config, dict) and "module" in config:
        version = "3"  # Keras 3 configs name each object's module; Keras 2 configs do not
    return ModelFileInfo(fmt, _generation(version) if version else "keras2", version or "unknown", config,
                         _input_shape(config), _output_layer(config), _token_vocabulary(config))
