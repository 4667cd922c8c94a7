"""The machine a TensorFlow step runs on: CPU model, the ISA extensions TensorFlow uses, oneDNN, threads.

Same commit, data, config and seeds, op determinism on: 78,096 B / 0.8753 on one machine, 78,132 B /
0.8738 on another of the same kind. CPU kernels differ with the ISA TensorFlow dispatches to (oneDNN and
Eigen pick AVX2/AVX-512/AMX paths at run time), with oneDNN on or off, and with thread counts (the order of
floating-point reductions). So figures are reproducible per machine, and each run records these facts.

ISA: the extensions TensorFlow's CPU feature guard knows (tensorflow/core/platform/cpu_feature_guard.cc,
the list behind its start-up line "To enable the following instructions: AVX2 AVX512F FMA ...") that
/proc/cpuinfo says this CPU has, in TensorFlow's spelling. A test checks that every instruction TensorFlow
itself names at start-up is in the recorded list.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from shears.records import MachineInfo

# TensorFlow's name -> /proc/cpuinfo flag, for every feature cpu_feature_guard.cc checks (TF 2.21).
TF_ISA_FLAGS: dict[str, str] = {
    "SSE": "sse", "SSE2": "sse2", "SSE3": "pni", "SSE4.1": "sse4_1", "SSE4.2": "sse4_2",
    "AVX": "avx", "AVX2": "avx2", "FMA": "fma",
    "AVX512F": "avx512f", "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16",
    "AVX512_FP16": "avx512_fp16", "AVX_VNNI": "avx_vnni", "AVX_VNNI_INT8": "avx_vnni_int8",
    "AVX_NE_CONVERT": "avx_ne_convert", "AMX_TILE": "amx_tile", "AMX_INT8": "amx_int8", "AMX_BF16": "amx_bf16",
}
THREAD_ENV = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def cpuinfo(text: str | None = None) -> tuple[str, set[str]]:
    """(CPU model name, flags) from /proc/cpuinfo (or `text`); ('unknown', set()) where there is none."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return platform.processor() or "unknown", set()
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # x86 / arm
            flags = set(value.split())
    return model or platform.processor() or "unknown", flags


def tf_isa(flags: set[str]) -> list[str]:
    """The TensorFlow-relevant ISA extensions among `flags`, in TensorFlow's names, sorted."""
    return sorted(name for name, flag in TF_ISA_FLAGS.items() if flag in flags)


def collect_machine() -> MachineInfo:
    """This process's machine as TensorFlow sees it (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port

    from shears.keras.tfcompat import tf

    model, flags = cpuinfo()
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 0
    return MachineInfo(
        cpu_model=model,
        arch=platform.machine(),
        isa=tf_isa(flags),
        onednn=bool(_pywrap_util_port.IsMklEnabled()),  # TensorFlow's own answer (reads TF_ENABLE_ONEDNN_OPTS)
        onednn_env=os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        intra_op_threads=int(tf.config.threading.get_intra_op_parallelism_threads()),
        inter_op_threads=int(tf.config.threading.get_inter_op_parallelism_threads()),
        cpus_available=cpus,
        thread_env={k: os.environ[k] for k in THREAD_ENV if k in os.environ},
    )
