"""The loading child of shears.keras.sandbox: set limits, load the user's file with Keras, write plain results.

Runs as `python -I -c "...; main()" WORKDIR` with a scrubbed environment. It sets its resource limits
first, before anything reads the file, then checks the file again (shears.keras.intake), loads it with the
loader of its Keras generation in safe mode, and writes the architecture (JSON), the weights (.npz) and,
for a Keras 3 file, its outputs on the parent's probe rows. Every refusal is written as error.json.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np

from shears.errors import ShearsError, first_line
from shears.keras.intake import Limits
from shears.keras.sandbox import RESULT_ARCH, RESULT_ERROR, RESULT_REFERENCE, RESULT_WEIGHTS


def set_limits(limits: dict[str, int]) -> None:
    """The child's own limits (never above the hard limits it inherited)."""
    for res, value in ((resource.RLIMIT_AS, limits["address_space_bytes"]),
                       (resource.RLIMIT_CPU, limits["cpu_seconds"]),
                       (resource.RLIMIT_NOFILE, limits["open_files"]),
                       (resource.RLIMIT_FSIZE, limits["file_bytes"]), (resource.RLIMIT_CORE, 0)):
        _, hard = resource.getrlimit(res)
        cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(res, (cap, cap))


def load_to_plain(data: bytes, name: str, probe: np.ndarray | None,
                  limits: Limits) -> tuple[dict[str, Any], list[np.ndarray], np.ndarray | None, str | None]:
    """(architecture, weights, Keras 3 outputs on `probe`, why those could not be computed) of one file."""
    from shears.keras.fileinfo import inspect_model_file

    info = inspect_model_file(data, name, limits)
    from shears.keras import keras3
    from shears.keras.modelio import model_from_bytes

    keras3_config = reference = reference_error = None
    if info.generation == "keras2":
        model = model_from_bytes(data, name)
    else:
        keras3.check_convertible(info.config, name)
        k3_model = keras3.load_keras3(data, name, info.fmt)
        model = keras3.to_tf_keras(k3_model, name)
        keras3_config = keras3.architecture_of(k3_model)
        if probe is not None:
            try:
                reference = keras3.predict(k3_model, probe)
            except Exception as exc:  # the parent's shape check names the problem; this is the detail
                reference_error = f"{type(exc).__name__}: {first_line(exc)[:160]}"
    arch = {"generation": info.generation, "origin": info.origin, "tf_keras": model.to_json(), "keras3": keras3_config}
    return arch, [np.asarray(w) for w in model.get_weights()], reference, reference_error


def run(work: Path) -> None:
    request = json.loads((work / "request.json").read_text())
    set_limits(request["limits"])
    name, fmt = str(request["name"]), str(request["fmt"])
    try:
        probe = np.load(work / "probe.npy", allow_pickle=False) if request.get("probe") else None
        arch, weights, reference, reference_error = load_to_plain(
            (work / f"model.{fmt}").read_bytes(), name, probe, Limits(**request["limits"]["intake"]))
    except ShearsError as exc:
        (work / RESULT_ERROR).write_text(json.dumps({"message": str(exc), "exit_code": exc.exit_code}))
        return
    except MemoryError:
        (work / RESULT_ERROR).write_text(json.dumps(
            {"message": f"cannot load model {name}: the loader ran out of memory: refused", "exit_code": 2}))
        return
    except Exception as exc:  # a user's file can make Keras raise anything; it is always "this file is bad"
        (work / RESULT_ERROR).write_text(json.dumps(
            {"message": f"cannot load model {name}: {type(exc).__name__}: {first_line(exc)[:200]}", "exit_code": 2}))
        return
    arch["reference_error"] = reference_error
    (work / RESULT_ARCH).write_text(json.dumps(arch))
    np.savez(work / RESULT_WEIGHTS, **{f"w{i:06d}": w for i, w in enumerate(weights)})  # type: ignore[arg-type]
    if reference is not None:
        np.save(work / RESULT_REFERENCE, reference, allow_pickle=False)


def main() -> None:
    run(Path(sys.argv[1]))
    sys.exit(0)
