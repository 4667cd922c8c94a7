"""Shears: make Keras models small enough to ship, and prove it — as a library, a CLI and an Airflow pipeline.

Layers (each may import only the ones below it; `make lint` checks this with import-linter):

    cli/       the `shears` command line
    run/       one run, the same in the CLI and in Airflow: its steps and its lifecycle
    report/    self-contained HTML reports from typed records
    release/   what was published, and is it intact: manifest, publish, champion, audit
    stages/    pure stages: arrays and models in, results out (data, checks, baseline, prune, ...)
    store/     where bytes live: local directory or S3, and every key (layout)
    keras/     the one place TensorFlow/tf_keras/tfmot are imported; builders, model I/O, training
    config     the one config model;  records  one typed model per JSON record;  errors  one per exit code

From Python:

    import shears
    cfg = shears.load_config("configs/example.yaml")
    outcome = shears.run_pipeline(shears.open_store("artifacts"), cfg, run_id="try-1")
    print(outcome.passed, outcome.metrics.deployable_artifact.gzip_bytes)

Names are imported lazily, so `import shears` stays cheap and never imports TensorFlow by itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> module that defines it
_EXPORTS = {
    "PipelineConfig": "shears.config",
    "load_config": "shears.config",
    "build_config": "shears.config",
    "ShearsError": "shears.errors",
    "ConfigError": "shears.errors",
    "DataError": "shears.errors",
    "GateFailure": "shears.errors",
    "StoreError": "shears.errors",
    "open_store": "shears.store",
    "run_pipeline": "shears.run.pipeline",
    "RunOutcome": "shears.run.pipeline",
    "STEP_NAMES": "shears.run.steps",
    "Splits": "shears.stages.data",
    "parse_dataset": "shears.stages.data",
    "split": "shears.stages.data",
    "validate_data": "shears.stages.checks",
    "train_baseline": "shears.stages.baseline",
    "evaluate_pretrained": "shears.stages.baseline",
    "prune_finetune": "shears.stages.prune",
    "strip_and_verify": "shears.stages.strip",
    "convert": "shears.stages.convert",
    "evaluate_gates": "shears.stages.gates",
}

__all__ = [
    "STEP_NAMES",
    "ConfigError",
    "DataError",
    "GateFailure",
    "PipelineConfig",
    "RunOutcome",
    "ShearsError",
    "Splits",
    "StoreError",
    "build_config",
    "convert",
    "evaluate_gates",
    "evaluate_pretrained",
    "load_config",
    "open_store",
    "parse_dataset",
    "prune_finetune",
    "run_pipeline",
    "split",
    "strip_and_verify",
    "train_baseline",
    "validate_data",
]

if TYPE_CHECKING:
    from shears.config import PipelineConfig, build_config, load_config
    from shears.errors import ConfigError, DataError, GateFailure, ShearsError, StoreError
    from shears.run.pipeline import RunOutcome, run_pipeline
    from shears.run.steps import STEP_NAMES
    from shears.stages.baseline import evaluate_pretrained, train_baseline
    from shears.stages.checks import validate_data
    from shears.stages.convert import convert
    from shears.stages.data import Splits, parse_dataset, split
    from shears.stages.gates import evaluate_gates
    from shears.stages.prune import prune_finetune
    from shears.stages.strip import strip_and_verify
    from shears.store import open_store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shears' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
