"""A model file is data, never code: parse and check it before any Keras deserializer sees it (no TensorFlow).

Keras' own safe mode is not a sandbox. tf_keras refuses only *serialized* Python lambdas: it imports any
module a config names, accepts a `Lambda` whose function is a named module function (`pydoc.pipepager`
runs a shell command), and reads HDF5 datasets with external storage (a weight that is really
`/proc/self/environ`). So Shears reads the file itself first, for both Keras generations and both formats:

* a `.keras` zip is measured from its directory before anything is inflated, and inflated with a cap;
* `config.json` (or an `.h5` file's `model_config`) is parsed with a size and depth bound, and every object
  in it, nested models included, must be a built-in class from the explicit lists below: a `Lambda` in any
  form, a module outside Keras' own packages, a registered (custom) name, anything else is refused in one
  line naming the layer (ConfigError, exit 2);
* every HDF5 file (a standalone `.h5`, or the weights inside a `.keras`) is opened with h5py: external
  storage, virtual datasets, external links, dangling soft links, non-numeric datasets and filters HDF5
  would load a plugin for are refused, and the weights' total size is capped.

What passes is then loaded in a scrubbed child process (shears.keras.sandbox), never in the one that holds
the store credentials and the signing key.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from shears.bounded import check_zip_directory, loads_json, read_zip_member
from shears.errors import ConfigError

MAX_MODEL_FILE_BYTES = 1 << 30  # the file as handed in
MAX_CONFIG_BYTES = 32 << 20  # config.json / model_config / metadata.json
MAX_WEIGHT_BYTES = 1 << 30  # every dataset of every HDF5 file, as it would be in memory
MAX_ZIP_MEMBERS = 256
MAX_NODES = 1_000_000  # dicts, lists and strings in one config (every layer's options included)

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
_POOLS = [f"{kind}{d}D" for kind in ("MaxPooling", "AveragePooling", "MaxPool", "AvgPool", "GlobalMaxPooling",
                                      "GlobalAveragePooling", "GlobalMaxPool", "GlobalAvgPool") for d in (1, 2, 3)]
_SHAPES = [f"{kind}{d}D" for kind in ("Cropping", "ZeroPadding", "UpSampling", "SpatialDropout") for d in (1, 2, 3)]
# Built-in layers that compute a numeric function of their inputs and weights. Not here, on purpose: Lambda,
# TFOpLambda and SlicingOpLambda (they name functions to call), TFSMLayer (loads a SavedModel from a path),
# StringLookup/IntegerLookup/TextVectorization/Hashing (vocabulary files are paths), Torch/Jax/Flax wrappers.
LAYER_CLASSES = frozenset({
    "InputLayer", "Dense", "EinsumDense", "Embedding",
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "Convolution1D", "Convolution2D", "Convolution3D", "Convolution1DTranspose", "Convolution2DTranspose",
    "Convolution3DTranspose", "SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D",
    "SeparableConvolution2D", "DepthwiseConv1D", "DepthwiseConv2D",
    "LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell", "SimpleRNNCell", "StackedRNNCells", "RNN", "Bidirectional",
    "TimeDistributed", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
    "Attention", "AdditiveAttention", "MultiHeadAttention",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization", "Normalization",
    "Rescaling", "Resizing", "CenterCrop", "Discretization", "CategoryEncoding",
    "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "ActivityRegularization", "Masking",
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomCrop",
    "RandomBrightness",
    "Reshape", "Flatten", "Permute", "RepeatVector", *_POOLS, *_SHAPES, "Cropping1D",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU", "Identity",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
})
# What tfmot wraps a layer in while it prunes (only in Shears' own staged files, never in a user's).
PRUNING_CLASSES = frozenset({"PruneLowMagnitude", "PolynomialDecay", "ConstantSparsity"})
_INITIALIZERS = ("Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "LecunNormal",
                 "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
                 "VarianceScaling", "Zeros", "IdentityInitializer", "OrthogonalInitializer")
_REGULARIZERS = ("L1", "L2", "L1L2", "OrthogonalRegularizer")
_CONSTRAINTS = ("MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint")
# Objects a layer's config may hold: initializers, regularizers, constraints, dtype policies, and the
# wrappers Keras 3 uses for tuples, arrays and the tensors of a functional graph.
OBJECT_CLASSES = frozenset({*_INITIALIZERS, *_REGULARIZERS, *_CONSTRAINTS, "DTypePolicy", "FloatDTypePolicy",
                            "Policy", "__tuple__", "__numpy__", "__tensor__", "__keras_tensor__", "__ellipsis__"})
ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign", "swish", "silu",
    "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "exponential", "leaky_relu", "mish", "log_softmax", "celu",
    "glu", "log_sigmoid", "hard_tanh", "sparse_plus", "squareplus", "tanh_shrink", "soft_shrink", "hard_shrink",
    "sparsemax",
})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# Objects given by name instead of a {"class_name": ...} dict.
NAMED = {
    "initializer": frozenset({*_INITIALIZERS, *map(_snake, _INITIALIZERS), "glorot_uniform", "glorot_normal",
                              "he_normal", "he_uniform", "lecun_normal", "lecun_uniform"}),
    "regularizer": frozenset({*_REGULARIZERS, "l1", "l2", "l1_l2", "orthogonal_regularizer"}),
    "constraint": frozenset({*_CONSTRAINTS, *map(_snake, _CONSTRAINTS)}),
}
_KERAS_MODULES = ("keras", "tf_keras")
_TFMOT_MODULES = ("tensorflow_model_optimization",)
_LAYER_KEYS = frozenset({"layers", "layer", "cell", "cells", "forward_layer", "backward_layer"})
SKIPPED_KEYS = frozenset({"compile_config", "training_config"})  # never deserialized: loads use compile=False


@dataclass(frozen=True)
class Limits:
    """How big a model file and its parts may be; the defaults suit models that fit on a device."""

    file_bytes: int = MAX_MODEL_FILE_BYTES
    config_bytes: int = MAX_CONFIG_BYTES
    weight_bytes: int = MAX_WEIGHT_BYTES


DEFAULT_LIMITS = Limits()


def _module_ok(module: str, pruned: bool) -> bool:
    roots = _KERAS_MODULES + (_TFMOT_MODULES if pruned else ())
    return any(module == root or module.startswith(root + ".") for root in roots)


def _refuse(name: str, layer: str | None, what: str) -> ConfigError:
    """'cannot load model m.keras: layer 'x' has class Foo (custom, from module bar): refused; ...'."""
    subject = f"layer '{layer}' " if layer is not None else ""
    return ConfigError(f"cannot load model {name}: {subject}{what}: refused; Shears loads only built-in Keras layers "
                       "(no custom objects, no layers that name code to run)")


def check_config(config: Any, name: str, *, pruned: bool = False) -> None:
    """Every object of a saved model config is built in (see the module docstring); else one ConfigError line.

    Walks the whole config without recursion (nested models, wrappers, cells, initializers...). `pruned`
    admits tfmot's pruning wrapper, which only Shears' own staged files hold.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"cannot load model {name}: the file holds no model config (weights only?)")
    top = config.get("class_name")
    if top not in MODEL_CLASSES:
        module = config.get("module")
        raise ConfigError(
            f"cannot load model {name}: it is a subclassed model (class {str(top)[:60]}"
            + (f", module {str(module)[:60]}" if module else "") + "); Shears rebuilds Sequential and Functional "
            "models only: build it as keras.Model(inputs, outputs) or keras.Sequential and save it again")
    allowed = LAYER_CLASSES | MODEL_CLASSES | OBJECT_CLASSES | (PRUNING_CLASSES if pruned else frozenset())
    # (node, the key it sits under, the name of the layer it belongs to)
    stack: list[tuple[Any, str, str | None]] = [(config, "", None)]
    seen = 0
    while stack:
        node, key, layer = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ConfigError(f"cannot load model {name}: its config has more than {MAX_NODES:,} values")
        if isinstance(node, list):
            stack.extend((item, key, layer) for item in node)
        elif isinstance(node, str):
            _check_name(node, key, name, layer)
        elif isinstance(node, dict):
            if "class_name" in node:
                cls = node["class_name"]
                if key in _LAYER_KEYS or cls in LAYER_CLASSES | MODEL_CLASSES or cls == "PruneLowMagnitude":
                    inner = node.get("config")
                    here = node.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
                    layer = str(here)[:60] if here is not None else "?"
                _check_object(node, allowed, name, layer, pruned)
            elif isinstance(node.get("module"), str) and not _module_ok(node["module"], pruned):
                raise _refuse(name, layer, f"names module {node['module'][:60]!r}, which is not part of Keras")
            stack.extend((v, k, layer) for k, v in node.items()
                         if k not in SKIPPED_KEYS and k not in ("class_name", "module", "registered_name"))


def _check_object(node: dict[str, Any], allowed: frozenset[str], name: str, layer: str | None, pruned: bool) -> None:
    cls = node["class_name"]
    if not isinstance(cls, str):
        raise _refuse(name, layer, "has a class_name that is not a string")
    cls = cls[:60]
    module = node.get("module")
    registered = node.get("registered_name")
    inner = node.get("config")
    if cls == "Lambda" or (isinstance(inner, dict) and "function" in inner):
        raise _refuse(name, layer, f"has class {cls}, which names a function to call while the file loads")
    if cls == "function":  # a function given by module and name: only Keras' own activations
        if isinstance(module, str) and _module_ok(module, False) and inner in ACTIVATIONS:
            return
        raise _refuse(name, layer, f"names the function {str(inner)[:40]!r} from module {str(module)[:60]!r}")
    if module is not None and (not isinstance(module, str) or not _module_ok(module, pruned)):
        raise _refuse(name, layer, f"has class {cls} (custom, from module {str(module)[:60]})")
    if registered is not None and registered != cls:
        raise _refuse(name, layer, f"has class {cls} (custom, registered as {str(registered)[:60]})")
    if cls not in allowed:
        raise _refuse(name, layer, f"has class {cls}, which is not a built-in Keras class Shears accepts")


def _check_name(value: str, key: str, name: str, layer: str | None) -> None:
    """Strings Keras looks up by name: activations, and initializers/regularizers/constraints given by name."""
    if key in ("activation", "recurrent_activation") and value not in ACTIVATIONS:
        raise _refuse(name, layer, f"has activation {value[:40]!r}, which is not a built-in activation")
    for suffix, names in NAMED.items():
        if key.endswith("_" + suffix) and value not in names:
            raise _refuse(name, layer, f"has {key} {value[:40]!r}, which is not a built-in {suffix}")


# --------------------------------------------------------------------------------------------- HDF5

# HDF5's built-in filters (deflate, shuffle, fletcher32, szip, nbit, scaleoffset) and h5py's lzf: any other
# filter id makes HDF5 look for a plugin library to load.
_BUILTIN_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})


def check_h5(data: bytes, what: str, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Refuse anything in an HDF5 file that reads outside it or is not a plain numeric array; its attributes.

    Returns the root group's attributes as Python values (keras_version, model_config...).
    """
    import h5py
    import numpy as np

    problems: list[str] = []
    total = 0
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            def on_link(path: str, link: Any) -> None:
                if isinstance(link, h5py.ExternalLink):
                    problems.append(f"{path} is an external link to {link.filename[:60]!r}")
                elif isinstance(link, h5py.SoftLink) and f.get(path) is None:
                    problems.append(f"{path} is a soft link to {link.path[:60]!r}, which is not in the file")

            f.visititems_links(on_link)
            if problems:  # before visiting objects: nothing may be opened through a link that leaves the file
                raise ConfigError(f"cannot load model {what}: {problems[0]}: refused")
            datasets: list[tuple[str, Any]] = []
            f.visititems(lambda path, obj: datasets.append((path, obj)) if isinstance(obj, h5py.Dataset) else None)
            for path, ds in datasets:
                if problems:
                    break
                if ds.external:
                    problems.append(f"dataset {path} keeps its data in external file(s) "
                                    f"{[e[0] for e in ds.external][:2]!r}")
                elif ds.is_virtual:
                    problems.append(f"dataset {path} is a virtual dataset (its data lives in other files)")
                elif ds.dtype.kind not in "biuf" or ds.dtype.fields is not None or ds.dtype.subdtype is not None:
                    problems.append(f"dataset {path} has dtype {ds.dtype}, not a plain numeric type")
                else:
                    plist = ds.id.get_create_plist()
                    filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
                    if filters - _BUILTIN_FILTERS:
                        problems.append(f"dataset {path} uses HDF5 filter(s) {sorted(filters - _BUILTIN_FILTERS)} "
                                        "that would load a plugin")
                    total += int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize if ds.shape else \
                        ds.dtype.itemsize
                if total > limits.weight_bytes:
                    problems.append(f"its datasets hold more than {limits.weight_bytes:,} bytes")
            attrs = {k: f.attrs[k] for k in f.attrs if k in ("keras_version", "backend", "model_config")}
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"cannot load model {what}: not a readable HDF5 file ({type(exc).__name__})") from None
    if problems:
        raise ConfigError(f"cannot load model {what}: {problems[0]}: refused")
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}


# --------------------------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class ParsedModelFile:
    """What Shears read from a model file itself: its format, Keras version and config (already checked)."""

    fmt: str  # "keras" or "h5"
    keras_version: str
    config: dict[str, Any] | None


_KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")


def parse_model_file(data: bytes, name: str, fmt: str, *, pruned: bool = False,
                     limits: Limits = DEFAULT_LIMITS) -> ParsedModelFile:
    """Read and check a `.keras` or `.h5` file without Keras (see the module docstring)."""
    if len(data) > limits.file_bytes:
        raise ConfigError(f"cannot load model {name}: it is {len(data):,} bytes; the limit is {limits.file_bytes:,}")
    if fmt == "h5":
        attrs = check_h5(data, name, limits)
        version = str(attrs.get("keras_version", ""))
        raw = attrs.get("model_config")
        config = loads_json(raw, f"the model_config of {name}", ConfigError, max_bytes=limits.config_bytes) \
            if raw else None
    else:
        try:
            z = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ConfigError(f"cannot load model {name}: not a readable .keras file ({type(exc).__name__})") from None
        with z:
            def member_limit(member: str) -> int:
                return limits.config_bytes if member.endswith(".json") else limits.file_bytes

            infos = {i.filename: i for i in check_zip_directory(
                z, f"cannot load model {name}", ConfigError, max_members=MAX_ZIP_MEMBERS, max_member_bytes=member_limit,
                max_total_bytes=limits.weight_bytes + 2 * limits.config_bytes)}
            unknown = [n for n in infos if n not in _KERAS_MEMBERS and not n.startswith("assets/")]
            if unknown:
                raise ConfigError(f"cannot load model {name}: unexpected member {unknown[0][:60]!r} (a .keras file "
                                  f"holds {', '.join(_KERAS_MEMBERS)} and assets/)")

            def member(n: str, cap: int) -> bytes | None:
                if n not in infos:
                    return None
                return read_zip_member(z, infos[n], f"cannot load model {name}", ConfigError, cap)

            meta_raw = member("metadata.json", limits.config_bytes)
            meta = loads_json(meta_raw, f"metadata.json of {name}", ConfigError,
                              max_bytes=limits.config_bytes) if meta_raw else {}
            cfg_raw = member("config.json", limits.config_bytes)
            config = loads_json(cfg_raw, f"config.json of {name}", ConfigError,
                                max_bytes=limits.config_bytes) if cfg_raw else None
            weights = member("model.weights.h5", limits.file_bytes)
            if weights is not None:
                check_h5(weights, f"{name} (model.weights.h5)", limits)
        version = str(meta.get("keras_version", "")) if isinstance(meta, dict) else ""
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"cannot load model {name}: its config is not a JSON object")
    check_config(config, name, pruned=pruned)
    return ParsedModelFile(fmt, version, config)
