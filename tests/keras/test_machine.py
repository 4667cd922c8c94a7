"""The machine record: what TensorFlow itself says about this CPU must be in it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from shears.keras.machine import TF_ISA_FLAGS, collect_machine, cpuinfo, tf_isa

pytestmark = pytest.mark.tf

CPUINFO = """processor\t: 0
model name\t: Example CPU @ 3.00GHz
flags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile f16c
"""


def test_cpuinfo_is_parsed_into_tensorflows_isa_names() -> None:
    model, flags = cpuinfo(CPUINFO)
    assert model == "Example CPU @ 3.00GHz"
    assert tf_isa(flags) == ["AMX_TILE", "AVX", "AVX2", "AVX512F", "AVX512_VNNI", "FMA", "SSE", "SSE2", "SSE3",
                             "SSE4.1", "SSE4.2"]  # ssse3 and f16c are not among the features TensorFlow checks


def test_the_record_names_every_instruction_tensorflow_reports_at_start_up() -> None:
    """TensorFlow logs the extensions it uses in performance-critical ops but was not compiled for; each
    must be in the recorded ISA (else the record would miss what decides the kernels)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True,
                          timeout=300)
    found = re.search(r"To enable the following instructions: ([A-Z0-9_. ]+), in other operations", proc.stderr)
    machine = collect_machine()
    if found is None:
        pytest.skip("TensorFlow printed no CPU feature line on this machine (a binary built for all its features)")
    reported = found.group(1).split()
    assert reported and set(reported) <= set(TF_ISA_FLAGS)
    assert set(reported) <= set(machine.isa), (reported, machine.isa)


def test_onednn_and_threads_are_tensorflows_own_answers() -> None:
    machine = collect_machine()
    assert machine.cpus_available >= 1 and machine.arch
    assert machine.onednn_env == os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    code = ("import os; os.environ['TF_ENABLE_ONEDNN_OPTS'] = '0'; from shears.keras.machine import collect_machine;"
            "m = collect_machine(); print(m.onednn, m.onednn_env)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert off.stdout.split() == ["False", "0"], off.stderr[-2000:]
