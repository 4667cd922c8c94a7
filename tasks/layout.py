"""Every key Shears reads or writes is built here, nowhere else.

Store layout (a local directory or s3://bucket/prefix):
    staging/<run_id>/...    intermediate outputs of the steps (models, splits, records)
    runs/<run_id>/...       a published run; manifest.json is written last and marks it complete
    rejected/<run_id>/...   why a run was not published (records only, never model files)
    champion.json           pointer to the current champion run
    champions/<seq>.json    append-only champion history
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# File names inside a run (relative to the run's folder).
VALIDATION = "validation.json"
BASELINE_REC = "baseline.json"
PRUNE_REC = "prune.json"
SPARSITY = "sparsity.json"
METRICS = "metrics.json"
GATES = "gates.json"
TIMINGS_DIR = "timings"
LATENCY = "latency.json"
CONFIG = "config.json"
REPORT = "report.html"
FAILURE = "failure.json"
MANIFEST = "manifest.json"
SPLITS = "data/splits.npz"
BASELINE_MODEL = "models/baseline.h5"
PRUNED_MODEL = "models/pruned_unstripped.h5"
STRIPPED_MODEL = "models/stripped.h5"
TENSORBOARD = "tensorboard"

# Records that say why a run was rejected; model files never go to rejected/.
REJECTED_FILES = (GATES, VALIDATION, METRICS, SPARSITY, FAILURE, CONFIG, REPORT)
# Staging-only files: never published.
STAGING_ONLY = (SPLITS, TIMINGS_DIR)


def timing(step: str) -> str:
    return f"{TIMINGS_DIR}/{step}.json"


def tflite_model(variant: str) -> str:
    return f"models/model_{variant}.tflite"


def sanitize_run_id(raw: str) -> str:
    """Map any run id (Airflow's contain ':' and '+') to a key-safe one, deterministically."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._-")[:128]
    if not clean:
        raise ValueError(f"run id {raw!r} has no usable characters")
    return clean


@dataclass(frozen=True)
class RunLayout:
    run_id: str

    def __post_init__(self) -> None:
        if not RUN_ID_RE.match(self.run_id):
            raise ValueError(f"invalid run id {self.run_id!r}: use letters, digits, '.', '_' or '-'")

    @property
    def staging_prefix(self) -> str:
        return f"staging/{self.run_id}"

    @property
    def run_prefix(self) -> str:
        return f"runs/{self.run_id}"

    @property
    def rejected_prefix(self) -> str:
        return f"rejected/{self.run_id}"

    def staging(self, name: str) -> str:
        return f"{self.staging_prefix}/{name}"

    def run(self, name: str) -> str:
        return f"{self.run_prefix}/{name}"

    def rejected(self, name: str) -> str:
        return f"{self.rejected_prefix}/{name}"


# Derived pages written by `shears report`: safe to overwrite, outside run folders.
REPORTS_DIR = "reports"
TREND_REPORT = f"{REPORTS_DIR}/trend.html"


def run_report_key(run_id: str) -> str:
    return f"{REPORTS_DIR}/runs/{run_id}.html"


CHAMPION = "champion.json"
CHAMPIONS_DIR = "champions"


def champion_history(seq: int) -> str:
    return f"{CHAMPIONS_DIR}/{seq:06d}.json"
