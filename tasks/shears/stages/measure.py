"""Measure every artifact — raw and gzipped bytes, test accuracy, TFLite batch-1 latency.

This table answers "why is my pruned model bigger": the unstripped .h5 carries wrappers, masks and
the optimizer; only after strip + gzip (or TFLite) does the sparsity turn into bytes saved.
"""

from __future__ import annotations

import gzip
import io
import statistics
import tarfile
import time
from typing import Any

import numpy as np

from shears.records import ArtifactRecord
from shears.task import Task


def gzip_size(data: bytes) -> int:
    """Deterministic gzip (fixed mtime, level 9) so sizes are comparable run to run."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """A directory's files as one deterministic tar (sorted names, no times, owners or modes that vary): how a
    SavedModel directory is measured (raw = the tar, gzipped = the tar gzipped) and shipped."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(files[name]), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def _interpreter(model: bytes) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model, num_threads=1)


def _quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def tflite_outputs(model: bytes, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Raw output tensors of a TFLite flatbuffer for `x` (ai_edge_litert; int8 inputs quantized).

    A model converted with a fixed batch of one (its input shape says so) is invoked one row at a time. Every
    call starts from reset state: a fused LSTM keeps its hidden and cell state in variable tensors between
    invokes, so without the reset each row would continue the previous row's sequence (measured: outputs off
    by up to 8.5 on a sentiment LSTM; identical to Keras with it).
    """
    interp = _interpreter(model)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    scale, zero = out.get("quantization", (0.0, 0))
    dequantize = out["dtype"] in (np.int8, np.uint8) and scale
    fixed = int(inp["shape_signature"][0]) == 1 if len(inp.get("shape_signature", [])) else False
    step = 1 if fixed else batch
    outs = []
    current = None
    for start in range(0, len(x), step):
        chunk = _quantize(x[start : start + step], inp)
        if current != len(chunk):
            interp.resize_tensor_input(inp["index"], [len(chunk), *x.shape[1:]])
            interp.allocate_tensors()
            current = len(chunk)
        interp.reset_all_variables()
        interp.set_tensor(inp["index"], chunk)
        interp.invoke()
        outs.append(np.array(interp.get_tensor(out["index"])))
    raw = np.concatenate(outs)
    if dequantize:  # int8 outputs in real units: probabilities and regression values need them, argmax does not
        return np.asarray((raw.astype(np.float32) - np.float32(zero)) * np.float32(scale))
    return raw


def tflite_output_levels(model: bytes, x: np.ndarray) -> tuple[int, float]:
    """How an int8 output resolves on `x`: distinct output values, and the share of rows at the quantized
    range's ends (saturated). A float output: (distinct values, 0.0)."""
    interp = _interpreter(model)
    out = interp.get_output_details()[0]
    values = tflite_outputs(model, x)
    distinct = len(np.unique(values))
    if out["dtype"] not in (np.int8, np.uint8):
        return distinct, 0.0
    scale, zero = out["quantization"]
    info = np.iinfo(out["dtype"])
    q = np.round(values / scale + zero) if scale else values
    return distinct, float(np.mean((q <= info.min) | (q >= info.max)))


def tflite_metrics(model: bytes, x: np.ndarray, y: np.ndarray, task: Task) -> dict[str, float]:
    return task.metrics(tflite_outputs(model, x), y)


def tflite_predict(model: bytes, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class predictions from a TFLite flatbuffer."""
    return np.asarray(np.argmax(tflite_outputs(model, x, batch), axis=-1))


def tflite_accuracy(model: bytes, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(tflite_predict(model, x) == y))


def tflite_score(model: bytes, x: np.ndarray, y: np.ndarray, task: Task) -> float:
    return float(tflite_metrics(model, x, y, task)[task.primary])


def tflite_latency_ms(model: bytes, sample: np.ndarray, runs: int) -> float:
    """Median batch-1 invoke time in milliseconds (a timing, not a metric: kept out of metrics.json)."""
    interp = _interpreter(model)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [1, *sample.shape])
    interp.allocate_tensors()
    one = _quantize(sample[None, ...], inp)
    for _ in range(min(10, runs)):
        interp.reset_all_variables()
        interp.set_tensor(inp["index"], one)
        interp.invoke()
    times = []
    for _ in range(runs):
        interp.reset_all_variables()
        interp.set_tensor(inp["index"], one)
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def measure(name: str, file: str, kind: str, data: bytes, metrics: dict[str, float], primary: str = "accuracy",
            note: str = "", *, runtime: str | None = None) -> ArtifactRecord:
    rounded = {k: round(v, 6) for k, v in metrics.items()}
    return ArtifactRecord(name=name, file=file, kind=kind, raw_bytes=len(data), gzip_bytes=gzip_size(data),
                          accuracy=rounded.get("accuracy"), metrics=rounded, primary=primary, note=note,
                          runtime=runtime)


def majority_rate(labels: np.ndarray) -> float | None:
    """The accuracy of always answering the most frequent class: the no-skill reference (None without rows)."""
    counts = np.bincount(np.asarray(labels).astype(np.int64))
    return float(counts.max() / counts.sum()) if counts.size else None
