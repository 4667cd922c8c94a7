"""The deployable on TFLite Micro: does every op exist there, how small a tensor arena does it need, what does it
score — measured with the `tflite-micro` Python interpreter (the microcontroller runtime's own C++ kernels).

On a microcontroller the question is RAM as much as flash: the tensor arena (activations, scratch, the
interpreter's own structures) must fit. The smallest arena that allocates is found by bisection between
`min_arena` and `max_arena` at one-byte resolution, in a child process (shears.stages.micro_child) that survives
failed allocations and is restarted past one that crashes it (SIGSEGV inside an LSTM kernel, measured: it must
cost a probe, not the run); the answer is then proven both ways in fresh processes (it allocates and runs, one
byte less does not).

A model TFLite Micro cannot run (an op it lacks, hybrid dynamic-range ops, an arena beyond the maximum) is a
recorded "no" with the reason, not a failure; only the `max_arena_bytes` gate turns it into one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shears.stages.micro_child import OK

MIN_ARENA = 1024
PROBE_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 3600.0
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")
_HYBRID = re.compile(r"Input type: (FLOAT32) with filter type: INT8 not supported\.\s*Node ([A-Z0-9_]+)")


@dataclass
class MicroRun:
    runs: bool
    reason: str | None
    ops: list[str]
    missing_ops: list[str] = field(default_factory=list)
    arena_bytes: int | None = None
    probes: int = 0
    outputs: np.ndarray | None = None  # dequantized, one row per input row
    seconds: float = 0.0


def model_ops(model: bytes) -> list[str]:
    """The builtin op names a .tflite uses (every subgraph), sorted, from its flatbuffer."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model), 0))
    used = set()
    for sub in m.subgraphs or []:
        for op in sub.operators or []:
            code = m.operatorCodes[op.opcodeIndex]
            used.add(names.get(max(code.builtinCode, code.deprecatedBuiltinCode), f"OP_{code.builtinCode}"))
    return sorted(used)


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return "not installed"


def _child(args: list[str], timeout: float) -> tuple[bool, str, str]:
    """Run micro_child with `args`: (succeeded, its stdout, its stderr (the last 8,000 characters) or why it
    died)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG", "SYSTEMROOT")}
    try:
        proc = subprocess.run([sys.executable, "-m", "shears.stages.micro_child", *args], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return False, out, f"timed out after {timeout:g} s"
    if proc.returncode == 0 and OK in proc.stdout:
        return True, proc.stdout, ""
    err = proc.stderr[-8000:]
    if proc.returncode < 0:
        return False, proc.stdout, f"{err}\nthe interpreter crashed ({signal.Signals(-proc.returncode).name})"
    return False, proc.stdout, err or f"exit status {proc.returncode}"


def _bisect(path: str, lo: int, hi: int) -> tuple[int, int]:
    """The smallest arena in (lo, hi] that allocates (lo fails, hi allocates), and the child processes it took.

    One child halves the bracket in-process; when a probe crashes it (its `try N` unanswered), N failed and a new
    child goes on from the narrowed bracket. Bounded: each child settles at least one probe or the loop stops."""
    children = 0
    while hi - lo > 1 and children < 64:
        children += 1
        _, out, _ = _child(["bisect", path, str(lo), str(hi)], PROBE_TIMEOUT_S * 4)
        pending, settled = None, False
        for line in out.splitlines():
            word, _, value = line.partition(" ")
            if word in ("try", "ok", "fail") and value.isdigit():
                n = int(value)
                if word == "try":
                    pending = n
                    continue
                pending, settled = None, True
                hi, lo = (min(hi, n), lo) if word == "ok" else (hi, max(lo, n))
        if pending is not None:  # the child died on this probe: too small an arena
            lo, settled = max(lo, pending), True
        if not settled:
            break
    return hi, children


def _why(stderr: str, max_arena: int) -> tuple[str, list[str]]:
    """One line saying why TFLite Micro did not run the model (and the ops it lacks), from the child's stderr."""
    missing = sorted(set(_MISSING_OP.findall(stderr)))
    if missing:
        return f"TFLite Micro has no kernel for {', '.join(missing)}", missing
    hybrid = _HYBRID.search(stderr)
    if hybrid or "Hybrid models are not supported" in stderr:
        where = f" ({hybrid.group(2)}: {hybrid.group(1)} input, int8 weights)" if hybrid else ""
        return (f"hybrid ops{where}: a dynamic-range model computes in float with int8 weights, which TFLite Micro "
                "does not; it runs float32 and full-integer int8 models"), []
    if "Failed to allocate" in stderr or "failed to allocate" in stderr:
        return f"does not allocate within max_arena_bytes {max_arena:,} B", []
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith((" ", "Traceback"))]
    return (lines[-1][:300] if lines else "the interpreter failed"), []


def run_on_micro(model: bytes, x: np.ndarray, *, max_arena: int, min_arena: int = MIN_ARENA) -> MicroRun:
    """Probe, bisect and run `model` on TFLite Micro; outputs for every row of `x` when it runs."""
    t0 = time.perf_counter()
    ops = model_ops(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        probes = 0

        def fits(arena: int) -> tuple[bool, str]:
            """One probe in a fresh process: the verdicts the record rests on."""
            nonlocal probes
            probes += 1
            ok, _, err = _child(["probe", str(path), str(arena)], PROBE_TIMEOUT_S)
            return ok, err

        ok, err = fits(max_arena)
        if not ok:
            reason, missing = _why(err, max_arena)
            return MicroRun(False, reason, ops, missing, probes=probes, seconds=time.perf_counter() - t0)
        if fits(min_arena)[0]:
            arena = min_arena
        else:
            arena, children = _bisect(str(path), min_arena, max_arena)
            probes += children
            # proven in fresh processes, both ways; a verdict the in-process bisection got wrong is redone here
            while not fits(arena)[0] and arena < max_arena:
                arena, children = _bisect(str(path), arena, max_arena)
                probes += children
            while arena > min_arena and fits(arena - 1)[0]:
                arena, children = _bisect(str(path), min_arena, arena - 1)
                probes += children
        outputs, err = _run_rows(path, x, arena)
        if outputs is None:
            reason, missing = _why(err, max_arena)
            return MicroRun(False, f"allocates in {arena:,} B but fails on the test rows: {reason}", ops, missing,
                            arena, probes, seconds=time.perf_counter() - t0)
    return MicroRun(True, None, ops, [], arena, probes, outputs, time.perf_counter() - t0)


def _run_rows(path: Path, x: np.ndarray, arena: int) -> tuple[np.ndarray | None, str]:
    """The model at `path` on every row of `x` with `arena` bytes, in one child process (its files beside
    `path`): the outputs, or None and why not."""
    rows, out = path.parent / "rows.npy", path.parent / "out.npy"
    np.save(rows, np.ascontiguousarray(x), allow_pickle=False)
    ok, _, err = _child(["run", str(path), str(arena), str(rows), str(out)], RUN_TIMEOUT_S)
    return (np.load(out, allow_pickle=False) if ok else None), err


def arena_allocates(model: bytes, arena: int) -> bool:
    """Whether `model` allocates and runs once with exactly `arena` bytes of tensor arena (one child process)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        return _child(["probe", str(path), str(arena)], PROBE_TIMEOUT_S)[0]


def micro_outputs(model: bytes, x: np.ndarray, arena: int) -> np.ndarray | None:
    """TFLite Micro's outputs for every row of `x` with a given arena (no bisection); None when it cannot run."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        return _run_rows(path, x, arena)[0]
