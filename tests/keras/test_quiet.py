"""TensorFlow's C++ start-up noise is filtered from fd 2; real errors, tracebacks and fatal aborts are not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from shears.keras.quiet import is_noise

TASKS = Path(__file__).resolve().parents[2] / "tasks"

# Seen on this machine (TF 2.21, ai-edge-litert 2.3, no GPU) at start-up, training and conversion.
NOISE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796044775.586843    6872 port.cc:153] oneDNN custom operations are on. You may see slightly",
    "I0000 00:00:1796044775.592358    6872 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1796044781.020933    6872 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1733.1234   77 node_def_util.cc:680] NodeDef mentions attribute use_unbounded_threadpool "
    "which is not in the op definition",
    "W0000 00:00:1733.1234   77 tf_tfl_flatbuffer_helpers.cc:365] Ignored output_format.",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8",
]
REAL_LINES = [
    "E0000 00:00:1733.1234   77 op_kernel.cc:1857] OP_REQUIRES failed at conv_ops.cc:12 : INVALID_ARGUMENT: x",
    "E0000 00:00:1733.1234   77 node_def_util.cc:680] NodeDef mentions attribute foo which is not in the op",
    "F0000 00:00:1733.1234   77 tensor.cc:12] Check failed: dtype() == expected_dtype",
    "Traceback (most recent call last):",
    "error: data unreadable: /x.npz",
    "step baseline: done",
]


@pytest.mark.parametrize("line", NOISE_LINES)
def test_known_start_up_lines_are_noise(line: str) -> None:
    assert is_noise(line) and is_noise(line + "\n")


@pytest.mark.parametrize("line", REAL_LINES)
def test_real_errors_are_not_noise(line: str) -> None:
    assert not is_noise(line)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SHEARS_VERBOSE"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60,
                          env={**environ, "PYTHONPATH": str(TASKS), **env}, check=False)


WRITE_FD2 = f"""
    import os
    from shears.keras import quiet
    quiet.install()
    for line in {NOISE_LINES + REAL_LINES!r}:
        os.write(2, (line + "\\n").encode())  # as C++ writes: straight to the file descriptor
"""


def test_fd2_is_filtered_and_real_lines_pass_in_order() -> None:
    proc = _run(WRITE_FD2 + "    raise SystemExit('bye')\n")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [*REAL_LINES, "bye"]  # the exit message after everything, nothing lost


def test_verbose_env_keeps_everything() -> None:
    proc = _run(WRITE_FD2, SHEARS_VERBOSE="1")
    assert proc.stderr.splitlines() == NOISE_LINES + REAL_LINES


def test_a_hard_crash_still_shows_its_last_words() -> None:
    """The filter is a separate process: an abort right after a fatal line cannot swallow it."""
    proc = _run(WRITE_FD2 + "    os.write(2, b'F0000 last words\\n'); os.abort()\n")
    assert proc.returncode != 0
    assert "F0000 last words" in proc.stderr and "cuInit" not in proc.stderr


@pytest.mark.tf
def test_tensorflow_start_up_is_quiet_unless_verbose() -> None:
    code = """
        import numpy as np
        from shears.keras import quiet
        quiet.install()
        from shears.keras.tfcompat import keras
        m = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(2)])
        m.compile("adam", "mse")
        m.fit(np.zeros((8, 4)), np.zeros((8, 2)), verbose=0)
        print("trained")
    """
    quiet = _run(code)
    assert quiet.returncode == 0 and "trained" in quiet.stdout, quiet.stderr
    assert quiet.stderr.strip() == ""
    loud = _run(code, SHEARS_VERBOSE="1")
    assert "cuda" in loud.stderr.lower() or "absl" in loud.stderr, "TF printed nothing: the test proves nothing"
