"""Helpers for the S3 tests (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.seaweed import SeaweedServer

BUCKET = "shears-test"
VERSIONED = "shears-versioned"
DATA_KEY = "data/digits.npz"
CLI_TIMEOUT_S = 300

# Small and quick, with gates loose enough for 1-6 epochs on digits but still real.
GATES = {"min_accuracy": 0.7, "max_accuracy_drop_pp": 15.0, "min_compression_ratio": 3.0}


def fast_raw(epochs: int, **gates: float) -> dict[str, Any]:
    return {
        "model": {"epochs": epochs},
        "prune": {"epochs": 1},
        "convert": {"variants": ["dynamic_range"], "latency_runs": 5},
        "gates": {**GATES, **gates},
        "search": {"enabled": False},
    }


@dataclass
class Transcript:
    """Everything the CLI subprocesses printed, to check later that no secret ever appears."""

    lines: list[str] = field(default_factory=list)

    def add(self, *texts: str) -> None:
        self.lines.extend(texts)


def cli_env(server: SeaweedServer, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(server.env(**overrides))
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"})
    return env


def shears_cmd() -> list[str]:
    script = Path(sys.executable).parent / "shears"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "shears.cli.main"]


def run_cli(server: SeaweedServer, transcript: Transcript, *args: str, timeout: float = CLI_TIMEOUT_S,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`shears <args>` in a subprocess with the server's AWS_* environment (`env` overrides some)."""
    proc = subprocess.run([*shears_cmd(), *args], env=cli_env(server, **(env or {})), capture_output=True,
                          text=True, timeout=timeout, cwd=Path(__file__).resolve().parents[2])
    transcript.add(proc.stdout, proc.stderr)
    return proc


def digits_npz() -> bytes:
    from shears.stages.data import load_digits_default

    raw = load_digits_default()
    buf = io.BytesIO()
    np.savez(buf, x=raw.x, y=raw.y)
    return buf.getvalue()


def copy_prefix(client: Any, src: str, dst: str, *, bucket: str = BUCKET, dst_bucket: str | None = None,
                under: str = "") -> int:
    """Server-side copy of the objects under s3://bucket/src/<under> to dst/ (an independent store)."""
    n = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{src}/{under}"):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            client.copy_object(Bucket=dst_bucket or bucket, Key=dst + key[len(src):],
                               CopySource={"Bucket": bucket, "Key": key})
            n += 1
    return n


def all_objects(client: Any, bucket: str) -> dict[str, bytes]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


@dataclass(frozen=True)
class Flow:
    uri: str
    a: str
    b: str
    c: str
    outcomes: dict[str, Any]
    cli_a: subprocess.CompletedProcess[str]
    seconds: dict[str, float]


