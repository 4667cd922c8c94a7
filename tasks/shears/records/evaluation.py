"""Records of the measurements: every artifact on the test split, latency, step timings, machines."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from shears.errors import RecordError
from shears.records.base import Record, Split, _Model


class ArtifactRecord(_Model):
    """One artifact's measurements: bytes as stored, gzipped bytes (deterministic), its metrics on the test split.

    `metrics` holds every metric of the run's task and `primary` names the one gates and the search judge by;
    `accuracy` is the classifiers' (None for a regressor). Records written before metrics had a map load with
    `metrics = {"accuracy": accuracy}`.
    """

    name: str
    file: str
    kind: str  # "keras" or "tflite"
    raw_bytes: int
    gzip_bytes: int
    accuracy: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    primary: str = "accuracy"
    note: str = ""
    # .tflite only: gzip of the file with every weight zeroed (the flatbuffer's structure); the rest is weights
    structure_gzip_bytes: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _metrics_from_accuracy(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("metrics") and data.get("accuracy") is not None:
            data = {**data, "metrics": {"accuracy": data["accuracy"]}}
        return data

    @property
    def score(self) -> float:
        """The primary metric's value."""
        return float(self.metrics[self.primary])


class MetricsRecord(Record, schema="shears.metrics/v1", file="metrics.json"):
    deployable: str
    artifacts: list[ArtifactRecord]
    # accuracy of always answering the test split's most frequent class (the no-skill baseline); classifiers
    test_majority_rate: float | None = None
    task: str = "multiclass"
    # every metric of the constant answer on the test split (majority class, positive rate, training mean)
    no_skill: dict[str, float] = Field(default_factory=dict)
    # binary and regression: (label, deployable's output) per test row, the first MAX_OUTPUT_ROWS rows: the
    # report's ROC and calibration curves, or its predicted-vs-actual and residual plots
    deployable_outputs: list[tuple[float, float]] | None = None
    split: Split = "test"

    def artifact(self, name: str) -> ArtifactRecord | None:
        return next((a for a in self.artifacts if a.name == name), None)

    @property
    def deployable_artifact(self) -> ArtifactRecord:
        found = self.artifact(self.deployable)
        if found is None:
            raise RecordError(f"{self.FILE}: deployable {self.deployable!r} is not among its artifacts")
        return found

    @property
    def baseline(self) -> ArtifactRecord:
        found = self.artifact("baseline")
        if found is None:
            raise RecordError(f"{self.FILE}: no 'baseline' artifact")
        return found


class LatencyRecord(Record, schema="shears.latency/v1", file="latency.json"):
    unit: str
    batch: int
    median_of: int
    latency: dict[str, float]


class TimingRecord(Record, schema="shears.timing/v1"):
    """What one step took, and the files it wrote to staging (what the publish step may publish)."""

    step: str
    seconds: float
    outputs: list[str] = Field(default_factory=list)
    started_at: str | None = None


class MachineInfo(_Model):
    """The machine a TensorFlow step ran on: what decides the last digits of sizes and accuracies.

    With op determinism on, the same commit, data, config and seeds still give slightly different
    figures on CPUs whose kernels differ (ISA, oneDNN on/off, thread counts), so figures are
    reproducible per machine, and these fields say which machine. Collected by shears.keras.machine.
    """

    cpu_model: str
    arch: str
    # The ISA extensions TensorFlow's CPU feature guard checks (SSE…AVX-512, AMX, FMA) that this CPU has,
    # in TensorFlow's spelling (e.g. "AVX2", "AVX512F", "FMA").
    isa: list[str]
    onednn: bool  # oneDNN custom operations on (TensorFlow's own answer at run time)
    onednn_env: str | None  # TF_ENABLE_ONEDNN_OPTS as set (None: unset, TensorFlow's default applies)
    intra_op_threads: int  # 0: TensorFlow picks (all available cores)
    inter_op_threads: int
    cpus_available: int
    thread_env: dict[str, str] = Field(default_factory=dict)  # OMP_NUM_THREADS, TF_NUM_*_THREADS when set
    steps: list[str] = Field(default_factory=list)  # the steps that ran on it (filled in the manifest)

    def same_machine(self, other: MachineInfo) -> bool:
        return self.model_dump(exclude={"steps"}) == other.model_dump(exclude={"steps"})


class MachineRecord(Record, schema="shears.machine/v1"):
    """staging/<id>/machine/<step>.json: the machine one TensorFlow step ran on (merged into the manifest)."""

    step: str
    at: str  # when the step finished (UTC, ISO 8601): orders the steps across workers
    machine: MachineInfo
