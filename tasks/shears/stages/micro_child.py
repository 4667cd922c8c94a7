"""The child process of shears.stages.micro: one TFLite Micro interpreter, then exit.

Run as `python -m shears.stages.micro_child probe MODEL ARENA` (allocate with an arena of ARENA bytes and invoke
once on zeros), `... bisect MODEL LO HI` (LO fails, HI allocates: halve the bracket in this process, printing
`try N` before each probe and `ok N` / `fail N` after it) or `... run MODEL ARENA ROWS OUT` (every row of the
ROWS .npy, state reset before each, outputs to OUT .npy). A too-small arena can crash the interpreter (SIGSEGV in
an LSTM kernel, measured): then the process dies after a `try N` with no answer, which the parent reads as a
failure and goes on from in a new process. Imports numpy and tflite_micro only (no TensorFlow: ~0.2 s to start).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

OK = "shears-micro: ok"


def _interpreter(model: str, arena: int) -> Any:
    from tflite_micro.python.tflite_micro import runtime

    with open(model, "rb") as f:
        data = f.read()
    return runtime.Interpreter.from_bytes(data, arena_size=arena)


def _quantized(rows: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    q = detail.get("quantization_parameters") or {}
    scales, zeros = np.asarray(q.get("scales", [])), np.asarray(q.get("zero_points", []))
    if dtype.kind == "i" and dtype.itemsize == 1 and scales.size:
        info = np.iinfo(dtype)
        return np.clip(np.round(rows / scales[0] + zeros[0]), info.min, info.max).astype(dtype)
    return rows.astype(dtype)


def _dequantized(out: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    q = detail.get("quantization_parameters") or {}
    scales, zeros = np.asarray(q.get("scales", [])), np.asarray(q.get("zero_points", []))
    if out.dtype.kind == "i" and scales.size:
        return (out.astype(np.float32) - np.float32(zeros[0])) * np.float32(scales[0])
    return out.astype(np.float32)


def _fits(model: str, arena: int) -> bool:
    try:
        interp = _interpreter(model, arena)
        detail = interp.get_input_details(0)
        interp.set_input(np.zeros([int(d) for d in detail["shape"]], dtype=np.dtype(detail["dtype"])), 0)
        interp.invoke()
    except RuntimeError:  # "TFLM failed to allocate tensors", or a kernel that cannot prepare in this arena
        return False
    return True


def bisect(model: str, lo: int, hi: int) -> None:
    while hi - lo > 1:
        mid = (lo + hi) // 2
        print(f"try {mid}", flush=True)
        if _fits(model, mid):
            hi = mid
            print(f"ok {mid}", flush=True)
        else:
            lo = mid
            print(f"fail {mid}", flush=True)


def main(argv: list[str]) -> int:
    mode, model, arena = argv[0], argv[1], int(argv[2])
    if mode == "bisect":
        bisect(model, arena, int(argv[3]))
        print(OK, flush=True)
        return 0
    interp = _interpreter(model, arena)
    detail = interp.get_input_details(0)
    shape = [int(d) for d in detail["shape"]]
    if mode == "probe":
        interp.set_input(np.zeros(shape, dtype=np.dtype(detail["dtype"])), 0)
        interp.invoke()
    else:
        rows = np.load(argv[3], allow_pickle=False)
        out_detail = interp.get_output_details(0)
        outs = []
        for row in rows:
            interp.reset()  # an LSTM keeps its state between invokes: each row is its own sequence
            interp.set_input(_quantized(row.reshape(shape), detail), 0)
            interp.invoke()
            outs.append(_dequantized(np.asarray(interp.get_output(0)), out_detail).reshape(-1))
        np.save(argv[4], np.stack(outs) if outs else np.zeros((0, 1), np.float32), allow_pickle=False)
    print(OK, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
