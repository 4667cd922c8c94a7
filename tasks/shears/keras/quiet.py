"""Keep TensorFlow's and LiteRT's C++ start-up noise out of the output, without hiding real errors.

On a CPU machine TensorFlow prints lines such as `E0000 ... failed call to cuInit: ... (303)`,
`cudart_stub.cc ... Could not find cuda drivers` and `node_def_util.cc ... use_unbounded_threadpool`
from C++ straight to file descriptor 2, before absl logging is even initialised: TF_CPP_MIN_LOG_LEVEL
does not reach them (measured: level 3 still prints them). Airflow shows every stderr line of a task
as a red ERROR, so a successful run looked broken.

`install()` points fd 2 at a pipe read by a tiny filter *process* that drops only lines matching
`NOISE` and copies everything else to the real stderr. A process, not a thread: if TensorFlow aborts,
the filter still gets EOF and forwards the fatal message. Python tracebacks, warnings and any C++ line
not listed pass through unchanged.

`SHEARS_VERBOSE=1` (or `shears run --verbose`) turns all of it off. Stdlib only: importing this module
never imports TensorFlow, so the CLI and the Airflow glue can call `install()` before anything else.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import subprocess
import sys
import warnings

ENV_VERBOSE = "SHEARS_VERBOSE"

# Lines TensorFlow / LiteRT print on every CPU start-up or conversion, none of which needs action.
NOISE = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"[IW]\d{4} [\d:.]+\s+\d+ \S+\] .*",  # absl INFO/WARNING lines (oneDNN notice, converter chatter, ...)
    r"E\d{4} [\d:.]+\s+\d+ cuda_(platform|executor|diagnostics)\.cc:\d+\] .*",  # no GPU on this machine
    r"E\d{4} [\d:.]+\s+\d+ node_def_util\.cc:\d+\] .*use_unbounded_threadpool.*",  # TF 2.21's own tf.data op
    r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.",
    r"fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+",  # int8
    r"This TensorFlow binary is optimized to use available CPU instructions.*",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.",
)
NOISE_RE = re.compile("|".join(f"(?:{p})" for p in NOISE))

# The filter process: stdin is the pipe, stdout is the real stderr. Kept tiny: `-I -S` starts in ~20 ms.
_FILTER = (
    "import re,sys\n"
    "noise=re.compile(sys.argv[1])\n"
    "out=sys.stdout.buffer\n"
    "for raw in sys.stdin.buffer:\n"
    "    if not noise.fullmatch(raw.rstrip(b'\\r\\n').decode('utf-8','replace')):\n"
    "        out.write(raw); out.flush()\n"
)

_state: dict[str, object] = {}


def verbose() -> bool:
    return os.environ.get(ENV_VERBOSE, "").strip().lower() in ("1", "true", "yes", "on")


def is_noise(line: str) -> bool:
    """True for a line `install()` drops (tests and the filter process use the same expression)."""
    return NOISE_RE.fullmatch(line.rstrip("\r\n")) is not None


def quiet_python_loggers() -> None:
    """Python-side noise: Great Expectations' import-time INFO flood, TF's and absl's warnings (e.g. the
    legacy-HDF5 notice; Shears writes .h5 on purpose). Must run before those packages are imported."""
    if verbose():
        return
    for name in ("great_expectations", "tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Every full-integer conversion warns this although the representative dataset calibrates the inputs.
    warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected", category=UserWarning)


def install() -> bool:
    """Filter fd 2 of this process (and its children) through NOISE; idempotent. False when verbose or
    when fd 2 cannot be redirected (then nothing changes)."""
    quiet_python_loggers()
    if verbose() or "proc" in _state:
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_end, write_end = os.pipe()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _FILTER, NOISE_RE.pattern],
            stdin=read_end, stdout=saved, stderr=saved, close_fds=True, start_new_session=False,
        )
    except OSError:
        return False
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    _state.update(proc=proc, saved=saved)
    atexit.register(uninstall)
    return True


def uninstall() -> None:
    """Give fd 2 back and let the filter drain (bounded wait), so nothing printed last is lost."""
    proc = _state.pop("proc", None)
    saved = _state.pop("saved", None)
    if not isinstance(proc, subprocess.Popen) or not isinstance(saved, int):
        return
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os.dup2(saved, 2)  # the pipe's last write end in this process closes: the filter sees EOF
    os.close(saved)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a child still holds the pipe: it keeps forwarding
        proc.wait(timeout=5)
