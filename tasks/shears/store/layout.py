"""Every key Shears reads or writes in a store is built or parsed here, nowhere else.

Store layout (a local directory or s3://bucket/prefix):
    claims/<run_id>.json    the one writer of a run id while it runs (If-None-Match create, heartbeat)
    staging/<run_id>/...    intermediate outputs of the steps (models, splits, records)
    runs/<run_id>/...       a published run; manifest.json is written last and marks it complete
    rejected/<run_id>/...   why a run was not published (records only, never model files)
    champion.json           pointer to the current champion run
    champions/<seq>.json    append-only champion history
    reports/                derived pages written by `shears report` (safe to overwrite)

Run ids are validated here too (`RunLayout`, `check_run_id`): the same mistake gets the same error
(ConfigError, exit 2) in every command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shears.errors import ConfigError, elide
from shears.records import RUN_ID_RE

RUN_ID_RULE = "1-128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"

Area = Literal["runs", "rejected", "staging"]
AREAS: tuple[Area, ...] = ("runs", "rejected", "staging")

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
SEARCH_SPLITS = "data/search.npz"  # train + validation: all the search (and every step before evaluate) reads
TEST_SPLIT = "data/test.npz"  # read once, by evaluate
SEARCH_DIR = "search"  # staged trial models and records (search.json is what gets published)
UNTRIMMED_DEPLOYABLE = f"{SEARCH_DIR}/deployable.untrimmed.tflite"  # staging only: evaluate proves trim changed nothing
# staging only: the baseline's outputs on the validation split and the selection slice (the trials' bounds are
# paired with it, row by row)
BASELINE_OUTPUTS = f"{SEARCH_DIR}/baseline_outputs.npz"
BASELINE_MODEL = "models/baseline.h5"
PRUNED_MODEL = "models/pruned_unstripped.h5"
# the same, as a .keras zip, for a model whose pruning wrappers HDF5 cannot hold (an RNN's two masks share a name)
PRUNED_MODEL_KERAS = "models/pruned_unstripped.keras"
PRUNED_MODELS = (PRUNED_MODEL, PRUNED_MODEL_KERAS)
STRIPPED_MODEL = "models/stripped.h5"
STRIPPED_KERAS3 = "models/stripped.keras"  # given back as Keras 3 when the user's model was Keras 3
SAVED_MODEL_DIR = "models/saved_model"  # the stripped model for TF Serving (a directory: its files, each listed)
LABELS = "models/labels.txt"  # class names, one a line: line i is class id i (only when labels were names)
TENSORBOARD = "tensorboard"
MODELS_DIR = "models"
MODEL_CARD_JSON = "model_card.json"
MODEL_CARD_MD = "model_card.md"
# The model-signing bundle: covers every other file of the run folder (manifest.json included), so it is
# written just before the manifest and declared in it (ManifestRecord.signature), not listed in its files.
SIGNATURE = "model.sig"
MACHINE_DIR = "machine"  # staging only: the machine each TensorFlow step ran on (merged into the manifest)
INTAKE_DIR = "intake"  # staging only: what intake read from a user's model file
KERAS3_ARCHITECTURE = f"{INTAKE_DIR}/keras3_architecture.json"  # a Keras 3 model's architecture, as checked

# Records that say why a run was rejected; model files never go to rejected/.
REJECTED_FILES = (GATES, VALIDATION, METRICS, SPARSITY, FAILURE, CONFIG, REPORT, "claim.json", "search.json",
                  "sensitivity.json", PRUNE_REC, MODEL_CARD_JSON, MODEL_CARD_MD)
# Small staged records a failure keeps under rejected/<id>/ next to failure.json.
FAILURE_KEEPS = (CONFIG, VALIDATION, METRICS, SPARSITY, GATES)
# Staging-only files: never published.
STAGING_ONLY = ("data", TIMINGS_DIR, SEARCH_DIR, MACHINE_DIR, INTAKE_DIR)


def timing(step: str) -> str:
    return f"{TIMINGS_DIR}/{step}.json"


def machine(step: str) -> str:
    return f"{MACHINE_DIR}/{step}.json"


def tflite_model(variant: str) -> str:
    return f"{MODELS_DIR}/model_{variant}.tflite"


def saved_model_file(name: str) -> str:
    """A file of the SavedModel directory ('saved_model.pb', 'variables/variables.index', ...)."""
    return f"{SAVED_MODEL_DIR}/{name}"


SENSITIVITY = "sensitivity.json"
SEARCH = "search.json"


def sensitivity_part(layer: str) -> str:
    return f"{SEARCH_DIR}/sensitivity/{layer}.json"


def trial_dir(number: int) -> str:
    return f"{SEARCH_DIR}/trials/{number:04d}"


def trial_file(number: int, name: str) -> str:
    """A trial's own files: plan.json, result.json, model.tflite, stripped.h5, sparsity.json, prune_key.txt."""
    return f"{trial_dir(number)}/{name}"


def trial_file_pattern(name: str) -> str:
    """The same file of every trial (`*` for the trial's number): how steps declare what they read and write."""
    return f"{SEARCH_DIR}/trials/*/{name}"


def pruned_cache(key: str) -> str:
    """A pruned model shared by trials that prune the same way (content-addressed)."""
    return f"{SEARCH_DIR}/pruned/{key}"


def round_plan(round_no: int) -> str:
    return f"{SEARCH_DIR}/rounds/{round_no}.json"


def is_model_file(name: str) -> bool:
    """A model artifact inside a run folder (never allowed under rejected/)."""
    return name.startswith(MODELS_DIR + "/") or name.endswith((".h5", ".keras", ".tflite", ".pb", ".onnx"))


def check_run_id(run_id: str) -> str:
    """The run id itself, or a ConfigError (exit 2) saying what a run id may hold."""
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise ConfigError(f"invalid run id {elide(run_id)}: {RUN_ID_RULE}")
    return run_id


def sanitize_run_id(raw: str) -> str:
    """Map any run id (Airflow's contain ':' and '+') to a key-safe one, deterministically."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._-")[:128]
    if not clean:
        raise ConfigError(f"run id {elide(raw)} has no usable characters")
    return clean


RUN_FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,7}")


def check_run_file(name: str) -> str:
    """A file name inside a run folder as a reader may ask for it (a URL path): relative, no '.'/'..' part,
    no hidden or empty part, no backslash; else a ConfigError. Keeps requests inside the run's folder."""
    if not isinstance(name, str) or not RUN_FILE_RE.fullmatch(name):
        raise ConfigError(f"not a file of a run folder: {elide(str(name))}")
    return name


@dataclass(frozen=True)
class RunLayout:
    """The keys of one run id in every area of the store."""

    run_id: str

    def __post_init__(self) -> None:
        check_run_id(self.run_id)

    def prefix(self, area: Area) -> str:
        return f"{area}/{self.run_id}"

    @property
    def staging_prefix(self) -> str:
        return self.prefix("staging")

    @property
    def run_prefix(self) -> str:
        return self.prefix("runs")

    @property
    def rejected_prefix(self) -> str:
        return self.prefix("rejected")

    def staging(self, name: str) -> str:
        return f"{self.staging_prefix}/{name}"

    def run(self, name: str) -> str:
        return f"{self.run_prefix}/{name}"

    def rejected(self, name: str) -> str:
        return f"{self.rejected_prefix}/{name}"

    def key(self, area: Area, name: str) -> str:
        return f"{self.prefix(area)}/{name}"


def area_prefix(area: Area) -> str:
    """The listing prefix of every run folder in an area ('runs/', 'rejected/', 'staging/')."""
    return f"{area}/"


def split_run_key(key: str) -> tuple[Area, str, str] | None:
    """'runs/<id>/<name>' -> ('runs', id, name); None for keys outside run folders (or a bad id)."""
    parts = key.split("/", 2)
    if len(parts) < 2 or parts[0] not in AREAS or not RUN_ID_RE.fullmatch(parts[1]):
        return None
    area: Area = parts[0]
    return area, parts[1], parts[2] if len(parts) == 3 else ""


def group_run_keys(keys: list[str], area: Area) -> dict[str, list[str]]:
    """{run_id: [names inside the run folder]} from a listing of `area/`."""
    out: dict[str, list[str]] = {}
    for key in keys:
        found = split_run_key(key)
        if found is None or found[0] != area:
            continue
        names = out.setdefault(found[1], [])
        if found[2]:
            names.append(found[2])
    return out


# Derived pages written by `shears report`: safe to overwrite, outside run folders.
REPORTS_DIR = "reports"
TREND_REPORT = f"{REPORTS_DIR}/trend.html"


def run_report_key(run_id: str) -> str:
    return f"{REPORTS_DIR}/runs/{check_run_id(run_id)}.html"


CLAIM_REC = "claim.json"  # the claim as taken at the start of the run, published with it
CLAIMS_DIR = "claims"


def claim_key(run_id: str) -> str:
    """claims/<run_id>.json: who currently writes this run id (created with If-None-Match)."""
    return f"{CLAIMS_DIR}/{check_run_id(run_id)}.json"


CHAMPION = "champion.json"
CHAMPIONS_DIR = "champions"


def champion_history(seq: int) -> str:
    return f"{CHAMPIONS_DIR}/{seq:06d}.json"
