"""Stage 9: the run's manifest — what was produced, from what, by which code; written last.

A run folder without a manifest is incomplete by definition; `shears audit` recomputes every sha256
listed here against the stored objects.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from tasks.storage import sha256_hex

MANIFEST_SCHEMA = "shears.manifest/v1"
REQUIRED_KEYS = (
    "schema", "run_id", "status", "created_at", "files", "config", "dataset", "versions", "git_commit",
    "timings", "gates_passed", "deployable",
)
_PACKAGES = {
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "tfmot": "tensorflow-model-optimization",
    "great_expectations": "great-expectations",
    "ai_edge_litert": "ai-edge-litert",
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


def file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": sha256_hex(data), "bytes": len(data)}


def build_manifest(
    *,
    run_id: str,
    status: str,
    files: dict[str, bytes],
    config: dict[str, Any],
    dataset: dict[str, Any],
    timings: dict[str, float],
    gates_passed: bool,
    deployable: dict[str, Any] | None,
    champion_compared: str | None,
    commit: str | None,
) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "run_id": run_id,
        "status": status,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": {name: file_entry(data) for name, data in sorted(files.items())},
        "config": config,
        "dataset": dataset,
        "versions": versions(),
        "git_commit": commit,
        "timings": timings,
        "gates_passed": gates_passed,
        "deployable": deployable,
        "champion_compared": champion_compared,
    }


def schema_problems(manifest: Any) -> list[str]:
    """Why a parsed manifest does not fit the schema (empty list when it does)."""
    if not isinstance(manifest, dict):
        return ["manifest is not a JSON object"]
    problems = [f"missing key '{k}'" for k in REQUIRED_KEYS if k not in manifest]
    if manifest.get("schema") not in (None, MANIFEST_SCHEMA) and "schema" in manifest:
        problems.append(f"unknown schema {manifest.get('schema')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict):
        problems.append("'files' is not a mapping")
    else:
        for name, entry in files.items():
            if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                    and isinstance(entry.get("bytes"), int)):
                problems.append(f"file entry '{name}' lacks sha256/bytes")
    if manifest.get("status") not in ("passed", "rejected"):
        problems.append(f"status {manifest.get('status')!r} is not 'passed' or 'rejected'")
    return problems


def dumps(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys) so records hash the same for the same content."""
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
