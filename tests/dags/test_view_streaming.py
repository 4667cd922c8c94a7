"""The Shears view streams files: a real server process serves a file larger than its memory budget in chunks."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.dags.view_store import PASSED, make_view_store

ROOT = Path(__file__).resolve().parents[2]
BIG = 768 << 20  # the file served
BUDGET = 96 << 20  # what the server may grow by while serving it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vm_hwm(pid: int) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _get(port: int, path: str) -> tuple[int, int]:
    """(status, bytes read) of one GET, read in 1 MB chunks and discarded."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        total = 0
        while chunk := resp.read(1 << 20):
            total += len(chunk)
        return resp.status, total
    finally:
        conn.close()


def test_a_file_larger_than_the_memory_budget_is_streamed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_view_store(store)
    big = store / "runs" / PASSED / "models" / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    with open(big, "wb") as fh:  # sparse: no disk written, zeros read back
        fh.truncate(BIG)
    port = _free_port()
    env = {**os.environ, "SHEARS_STORE": str(store), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "tests.dags.view_server", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = _get(port, f"/shears/files/runs/{PASSED}/model_card.md")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "the view server never answered"
                time.sleep(0.2)
        assert status == 200
        before = _vm_hwm(server.pid)
        status, total = _get(port, f"/shears/files/runs/{PASSED}/models/big.bin")
        assert status == 200 and total == BIG
        grew = _vm_hwm(server.pid) - before
        assert grew < BUDGET, f"the server grew by {grew >> 20} MB while serving {BIG >> 20} MB"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
