"""Intake reads a model file itself, without Keras, and refuses what could run code or read host files.

Every file here is hostile and made by hand (tests/keras/evil.py); none of these tests imports TensorFlow,
so a refusal provably happens before any Keras deserializer runs. Real files from both Keras generations
pass the same checks in tests/keras/test_keras3.py and tests/cli.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from shears.errors import ConfigError
from shears.keras.fileinfo import inspect_model_file
from shears.keras.intake import Limits, check_config, parse_model_file

from tests.keras import evil


def _refused(data: bytes, name: str, needle: str, limits: Limits | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        inspect_model_file(data, name, limits or Limits())
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg and len(msg) <= 300, msg
    return msg


def test_a_plain_keras2_file_made_by_hand_passes() -> None:
    info = inspect_model_file(evil.keras_zip(evil.k2_sequential(evil.dense())), "ok.keras")
    assert info.generation == "keras2" and info.input_shape == (4,)


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_the_pipepager_lambda_is_refused_and_runs_nothing(tmp_path: Path, fmt: str) -> None:
    marker = tmp_path / "pwned.txt"
    config = evil.k2_sequential(evil.pipepager_lambda(f"id > {marker}"), evil.dense())
    data = evil.keras_zip(config) if fmt == "keras" else evil.legacy_h5(config)
    msg = _refused(data, f"evil.{fmt}", "layer 'lam' has class Lambda")
    assert msg.startswith(f"cannot load model evil.{fmt}:")
    time.sleep(0.2)
    assert not marker.exists()


def test_a_lambda_nested_inside_a_model_inside_a_wrapper_is_found() -> None:
    inner = evil.k2_sequential(evil.k2_layer("TimeDistributed", "td", layer=evil.pipepager_lambda("true")))
    inner["config"]["name"] = "inner"
    outer = evil.k2_sequential({**inner, "name": "inner"}, evil.dense())
    _refused(evil.keras_zip(outer), "nested.keras", "layer 'lam' has class Lambda")


@pytest.mark.parametrize(("entry", "needle"), [
    ({"module": "os", "class_name": "system", "config": {"name": "x"}, "registered_name": None},
     "has class system (custom, from module os)"),
    ({"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2},
      "registered_name": "mine>Dense"}, "registered as mine>Dense"),
    ({"module": "keras.layers", "class_name": "TFSMLayer", "config": {"name": "saved", "filepath": "/etc"},
      "registered_name": None}, "TFSMLayer, which is not a built-in Keras class"),
    ({"module": "keras.layers", "class_name": "TFOpLambda", "config": {"name": "op", "function": "io.write_file"},
      "registered_name": None}, "names a function to call"),
    ({"class_name": "StringLookup", "config": {"name": "voc", "vocabulary": "/etc/passwd"}},
     "StringLookup, which is not a built-in Keras class"),
])
def test_custom_and_code_naming_objects_are_refused(entry: dict[str, Any], needle: str) -> None:
    _refused(evil.keras_zip(evil.k2_sequential(entry)), "m.keras", needle)


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("activation", "tf.io.write_file", "activation 'tf.io.write_file'"),
    ("kernel_initializer", "deserialize", "kernel_initializer 'deserialize'"),
    ("kernel_initializer", {"module": "numpy", "class_name": "load", "config": {}}, "from module numpy"),
    ("activation", {"module": "builtins", "class_name": "function", "config": "eval"}, "function 'eval'"),
])
def test_objects_given_by_name_or_module_must_be_built_in(key: str, value: Any, needle: str) -> None:
    layer = evil.dense()
    layer["config"][key] = value
    _refused(evil.keras_zip(evil.k2_sequential(layer)), "m.keras", needle)


def test_a_keras3_subclassed_model_is_refused_with_how_to_fix_it() -> None:
    config = {"module": "mypkg.models", "class_name": "Net", "config": {}, "registered_name": "mypkg>Net"}
    _refused(evil.keras_zip(config, evil.K3_META), "k3.keras", "subclassed model (class Net, module mypkg.models)")


def test_compile_config_is_never_deserialized_so_it_is_not_held_against_the_model() -> None:
    config = evil.k2_sequential(evil.dense())
    config["compile_config"] = {"loss": {"module": "mylosses", "class_name": "Custom", "config": {}}}
    assert inspect_model_file(evil.keras_zip(config), "m.keras").generation == "keras2"


# ------------------------------------------------------------------------------------------------ HDF5


@pytest.mark.parametrize("where", ["h5", "keras2", "keras3"])
def test_external_storage_is_refused_in_every_container(tmp_path: Path, where: str) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"AWS_SECRET_ACCESS_KEY=hunter2\n")
    build = evil.external(str(secret))
    config = evil.k2_sequential(evil.dense())
    if where == "h5":
        data, name = evil.legacy_h5(config, build), "m.h5"
    else:
        data, name = evil.keras_zip(config, evil.K3_META if where == "keras3" else evil.K2_META,
                                    evil.weights_h5(build)), "m.keras"
    _refused(data, name, f"keeps its data in external file(s) ['{secret}']")


@pytest.mark.parametrize(("build", "needle"), [
    (lambda f: f.__setitem__("x", h5py.ExternalLink("/etc/other.h5", "/w")), "external link to '/etc/other.h5'"),
    (lambda f: f.__setitem__("x", h5py.SoftLink("/nowhere")), "soft link to '/nowhere', which is not in the file"),
    (lambda f: f.create_virtual_dataset("v", h5py.VirtualLayout(shape=(4,), dtype="f4")), "virtual dataset"),
    (lambda f: f.create_dataset("s", data=np.array([b"x"], dtype=object), dtype=h5py.string_dtype()),
     "not a plain numeric type"),
    (lambda f: f.create_dataset("c", data=np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])), "not a plain numeric"),
])
def test_links_and_datasets_that_are_not_plain_arrays_are_refused(build: Any, needle: str) -> None:
    _refused(evil.legacy_h5(evil.k2_sequential(evil.dense()), build), "m.h5", needle)
    _refused(evil.keras_zip(evil.k2_sequential(evil.dense()), weights=evil.weights_h5(build)), "m.keras", needle)


def test_a_soft_link_inside_the_file_is_fine() -> None:
    data = evil.legacy_h5(evil.k2_sequential(evil.dense()), lambda f: f.__setitem__("alias", h5py.SoftLink(
        "/model_weights")))
    assert inspect_model_file(data, "m.h5").generation == "keras2"


def test_the_weights_total_is_capped() -> None:
    big = evil.legacy_h5(evil.k2_sequential(evil.dense()), lambda f: f.create_dataset(
        "big", shape=(1000, 1000), dtype="f8", compression="gzip"))  # 8 MB in memory, a few KB on disk
    assert len(big) < 100_000
    _refused(big, "m.h5", "its datasets hold more than 1,000,000 bytes", Limits(weight_bytes=1_000_000))


# ------------------------------------------------------------------------------------------------ the zip


def test_a_zip_bomb_is_refused_from_its_directory_before_inflating() -> None:
    bomb = evil.zip_bomb(200 << 20)  # 200 MB of config.json in well under 1 MB
    assert len(bomb) < 1 << 20
    t0 = time.perf_counter()
    _refused(bomb, "bomb.keras", "member config.json inflates to 209,715,200 bytes; the limit is 33,554,432")
    assert time.perf_counter() - t0 < 1.0  # read from the directory: nothing was inflated


@pytest.mark.parametrize(("extra", "needle"), [
    ({"../../etc/cron.d/x": b"x"}, "is not a plain relative path"),
    ({"model.weights.npz": b"x"}, "unexpected member 'model.weights.npz'"),
])
def test_zip_members_must_be_what_a_keras_file_holds(extra: dict[str, bytes], needle: str) -> None:
    _refused(evil.keras_zip(evil.k2_sequential(evil.dense()), extra=extra), "m.keras", needle)


def test_deeply_nested_and_oversized_configs_are_one_line() -> None:
    deep = '{"class_name": "Sequential", "config": {"layers": [' + "[" * 50_000 + "]" * 50_000 + "]}}"
    _refused(evil.keras_zip(deep), "deep.keras", "nested too deeply")
    _refused(evil.keras_zip(evil.k2_sequential(evil.dense())), "m.keras", "the limit is 100",
             Limits(config_bytes=100))
    _refused(evil.keras_zip("{not json"), "bad.keras", "is not valid JSON")
    _refused(b"PK\x03\x04garbage", "bad.keras", "not a readable .keras file")
    _refused(b"\x89HDF\r\n\x1a\ngarbage", "bad.h5", "not a readable HDF5 file")


def test_shears_own_pruning_wrapper_is_allowed_only_for_its_own_staged_files() -> None:
    wrapped = evil.k2_layer("PruneLowMagnitude", "prune_low_magnitude_dense", layer=evil.dense(),
                            pruning_schedule={"class_name": "PolynomialDecay", "config": {"final_sparsity": 0.8}})
    config = evil.k2_sequential(wrapped)
    check_config(config, "staged.h5", pruned=True)
    with pytest.raises(ConfigError, match="PruneLowMagnitude, which is not a built-in Keras class"):
        check_config(config, "user.h5")
    data = evil.legacy_h5(config)
    assert parse_model_file(data, "staged.h5", "h5", pruned=True).config == json.loads(json.dumps(config))
