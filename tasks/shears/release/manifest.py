"""The run's manifest — what was produced, from what, by which code; written last.

A run folder without a manifest is incomplete by definition; `shears audit` recomputes every sha256
listed here against the stored objects.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from shears.records import DatasetRef, DeployableRef, FileEntry, MachineInfo, ManifestRecord, RunStatus, SignatureRef
from shears.store import sha256_hex

_PACKAGES = {
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "tfmot": "tensorflow-model-optimization",
    "great_expectations": "great-expectations",
    "ai_edge_litert": "ai-edge-litert",
    "model_signing": "model-signing",
    "shears": "shears",
}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for key, dist in _PACKAGES.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = "not installed"
    return out


def git_commit(start: Path | None = None) -> str | None:
    """The checkout's HEAD commit (with '+dirty' when modified), or None outside a git checkout."""
    where = start or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def file_entry(data: bytes) -> FileEntry:
    return FileEntry(sha256=sha256_hex(data), bytes=len(data))


def build_manifest(
    *,
    run_id: str,
    status: RunStatus,
    files: dict[str, bytes],
    config: dict[str, Any],
    dataset: DatasetRef,
    timings: dict[str, float],
    gates_passed: bool,
    deployable: DeployableRef | None,
    champion_compared: str | None,
    commit: str | None,
    machines: list[MachineInfo] | None = None,
    signature: SignatureRef | None = None,
) -> ManifestRecord:
    return ManifestRecord(
        run_id=run_id,
        status=status,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        files={name: file_entry(data) for name, data in sorted(files.items())},
        config=config,
        dataset=dataset,
        versions=versions(),
        git_commit=commit,
        timings=timings,
        gates_passed=gates_passed,
        deployable=deployable,
        champion_compared=champion_compared,
        machines=machines or [],
        signature=signature,
    )
