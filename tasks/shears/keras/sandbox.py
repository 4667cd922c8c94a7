"""Load a user's model file in a scrubbed child process; the parent gets an architecture and arrays back.

Defence in depth behind shears.keras.intake: even a file that passes every check is deserialized by Keras'
loaders, h5py and HDF5, which are large C and Python code bases. That happens in a child process that:

* has a scrubbed environment: an allow-list of variables (no AWS_*, no SHEARS_SIGNING_KEY, no AIRFLOW_*,
  no connections), HOME and TMPDIR in a private temporary folder, and Python in isolated mode (-I);
* sets its own resource limits before it imports anything: address space, CPU seconds, open files,
  file size, no core dumps; the parent adds a wall-clock timeout and kills the child's process group;
* returns a plain format only: the model's architecture as JSON (tf_keras' config, and the user's own
  Keras 3 config to give the model back in), its weights as an .npz of numeric arrays (read with
  allow_pickle=False), and, for a Keras 3 file, its outputs on rows the parent chose (the equivalence proof).

The parent checks the returned architecture with the same allow-list as the file (the child is not
trusted either) and builds the model from it; nothing from the file is deserialized in the process that
holds credentials. No TensorFlow is imported here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shears.bounded import loads_json
from shears.errors import ConfigError, bounded, first_line
from shears.keras.intake import Limits, check_config

# What the child may see of the parent's environment (names, or prefixes ending in '_').
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS",
             "SHEARS_TF_THREADS", "OMP_NUM_THREADS", "SHEARS_VERBOSE")
RESULT_ARCH = "architecture.json"
RESULT_WEIGHTS = "weights.npz"
RESULT_REFERENCE = "reference.npy"
RESULT_ERROR = "error.json"


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of the loading child. TensorFlow maps several GB of address space at import."""

    address_space_bytes: int = 8 << 30
    cpu_seconds: int = 300
    wall_seconds: float = 600.0
    open_files: int = 1024
    file_bytes: int = 2 << 30  # the largest file the child may write (its results)
    intake: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class LoadedModel:
    """A user's model as plain data: what the parent rebuilds, and what loading it cost."""

    generation: str  # "keras2" or "keras3"
    origin: str  # "Keras 3 .keras", ...
    tf_keras_json: str  # tf_keras' model.to_json(), checked against the allow-list
    weights: list[np.ndarray]  # in tf_keras' get_weights() order
    keras3_config: dict[str, Any] | None  # the user's Keras 3 architecture (serialize_keras_object), checked
    reference: np.ndarray | None  # the Keras 3 model's outputs on the probe rows
    reference_error: str | None  # why the Keras 3 model could not run on them (shape mismatch...)
    seconds: float
    peak_rss_bytes: int


def child_env(workdir: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment of the loading child (see the module docstring)."""
    src = os.environ if environ is None else environ
    env = {k: v for k, v in src.items() if k in ENV_ALLOW}
    env.update({"HOME": str(workdir), "TMPDIR": str(workdir), "KERAS_HOME": str(workdir / ".keras"),
                "TF_USE_LEGACY_KERAS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def _package_root() -> str:
    """The folder holding the `shears` package (tasks/ in a checkout), for the isolated child's sys.path."""
    return str(Path(__file__).resolve().parents[2])


def load_in_child(data: bytes, name: str, probe: np.ndarray | None = None,
                  limits: SandboxLimits | None = None) -> LoadedModel:
    """Load `data` (a .keras/.h5 file named `name`) in a child process; ConfigError (exit 2) when refused."""
    from shears.keras.fileinfo import model_format

    limits = limits or SandboxLimits()
    fmt = model_format(name)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shears-load-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o700)
        (work / f"model.{fmt}").write_bytes(data)
        if probe is not None:
            np.save(work / "probe.npy", np.ascontiguousarray(probe), allow_pickle=False)
        request = {"name": name, "fmt": fmt, "probe": probe is not None, "limits": {
            "address_space_bytes": limits.address_space_bytes, "cpu_seconds": limits.cpu_seconds,
            "open_files": limits.open_files, "file_bytes": limits.file_bytes,
            "intake": {"file_bytes": limits.intake.file_bytes, "config_bytes": limits.intake.config_bytes,
                       "weight_bytes": limits.intake.weight_bytes}}}
        (work / "request.json").write_text(json.dumps(request))
        boot = (f"import sys; sys.path.insert(0, {_package_root()!r}); "
                "from shears.keras.sandbox_child import main; main()")
        with open(work / "child.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", boot, str(work)], cwd=work, env=child_env(work),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True, start_new_session=True)
            status, rss = _wait(proc, limits.wall_seconds, name)
        seconds = time.perf_counter() - t0
        if (work / RESULT_ERROR).is_file():
            err = loads_json((work / RESULT_ERROR).read_bytes(), "the model loader's error", ConfigError,
                             max_bytes=64 << 10)
            raise ConfigError(str(err.get("message", "cannot load model")) if isinstance(err, dict)
                              else f"cannot load model {name}")
        if status != 0:
            raise ConfigError(_died(name, status, work / "child.log", limits))
        return _read_results(work, name, limits, seconds, rss)


def _wait(proc: subprocess.Popen[bytes], wall: float, name: str) -> tuple[int, int]:
    """(exit status, peak RSS in bytes) of the child, killed with its process group after `wall` seconds."""
    deadline = time.monotonic() + wall
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, int(usage.ru_maxrss) * 1024
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise ConfigError(f"cannot load model {name}: loading took longer than {wall:.0f} s: refused")
        time.sleep(0.05)


def _died(name: str, status: int, log: Path, limits: SandboxLimits) -> str:
    tail = ""
    if log.is_file():
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 4096))
            lines = [ln for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
        tail = lines[-1].strip() if lines else ""
    if status == -signal.SIGXCPU or (status == -signal.SIGKILL and "cpu" in tail.lower()):
        return f"cannot load model {name}: the loader used more than {limits.cpu_seconds} s of CPU: refused"
    if "MemoryError" in tail or "bad_alloc" in tail or "Cannot allocate memory" in tail:
        return (f"cannot load model {name}: the loader ran out of its {limits.address_space_bytes >> 20:,} MB address "
                "space: refused")
    return bounded(f"cannot load model {name}: the loader stopped with status {status}" + (f": {tail}" if tail else ""))


def _read_results(work: Path, name: str, limits: SandboxLimits, seconds: float, rss: int) -> LoadedModel:
    arch_file = work / RESULT_ARCH
    if not arch_file.is_file():
        raise ConfigError(f"cannot load model {name}: the loader returned no architecture")
    arch = loads_json(arch_file.read_bytes(), f"the architecture of {name}", ConfigError,
                      max_bytes=limits.intake.config_bytes * 2)
    if not isinstance(arch, dict) or not isinstance(arch.get("tf_keras"), str):
        raise ConfigError(f"cannot load model {name}: the loader returned a malformed architecture")
    tf_json = arch["tf_keras"]
    # the child is not trusted either: what the parent will build is checked like the file was
    check_config(loads_json(tf_json, f"the tf_keras architecture of {name}", ConfigError,
                            max_bytes=limits.intake.config_bytes), name)
    keras3 = arch.get("keras3")
    if keras3 is not None:
        check_config(keras3, name)
    weights = _read_weights(work / RESULT_WEIGHTS, name, limits)
    reference = None
    if (work / RESULT_REFERENCE).is_file():
        reference = np.load(work / RESULT_REFERENCE, allow_pickle=False)
        if reference.dtype.kind != "f":
            raise ConfigError(f"cannot load model {name}: the loader returned non-numeric outputs")
    generation = str(arch.get("generation"))
    if generation not in ("keras2", "keras3"):
        raise ConfigError(f"cannot load model {name}: the loader returned generation {generation[:20]!r}")
    return LoadedModel(generation, str(arch.get("origin", ""))[:40], tf_json, weights, keras3, reference,
                       str(arch["reference_error"])[:200] if arch.get("reference_error") else None, seconds, rss)


def _read_weights(path: Path, name: str, limits: SandboxLimits) -> list[np.ndarray]:
    import zipfile

    from shears.bounded import check_zip_directory

    if not path.is_file():
        raise ConfigError(f"cannot load model {name}: the loader returned no weights")
    try:
        with zipfile.ZipFile(path) as z:
            check_zip_directory(z, f"the weights of {name}", ConfigError, max_members=100_000,
                                max_member_bytes=lambda _: limits.intake.weight_bytes,
                                max_total_bytes=limits.intake.weight_bytes)
        with np.load(path, allow_pickle=False) as npz:
            keys = sorted(npz.files)
            arrays = [npz[k] for k in keys]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"cannot load model {name}: the loader's weights are unreadable: {first_line(exc)}") from None
    if any(a.dtype.kind not in "biuf" for a in arrays):
        raise ConfigError(f"cannot load model {name}: the loader returned non-numeric weights")
    return arrays
