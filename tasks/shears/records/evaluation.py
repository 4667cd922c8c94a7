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
    # where it runs: "Keras (tf_keras)", "Keras 3", "LiteRT", "TFLite Micro" or "TF Serving" (None: before runtimes)
    runtime: str | None = None
    arena_bytes: int | None = None  # TFLite Micro: the smallest tensor arena that allocates

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


class MicroRecord(_Model):
    """The deployable under TFLite Micro (the `tflite-micro` Python interpreter: the microcontroller runtime's
    kernels), on the test split: whether it runs, the smallest tensor arena, its metrics against LiteRT's."""

    file: str
    package: str  # the tflite-micro version that ran it
    runs: bool
    reason: str | None = None  # why it does not run (an op TFLite Micro lacks is named)
    ops: list[str] = Field(default_factory=list)
    missing_ops: list[str] = Field(default_factory=list)
    arena_bytes: int | None = None  # the smallest arena that allocates: one byte less does not (bisection)
    arena_searched: tuple[int, int] = (1024, 1 << 20)  # bisection range, bytes
    probes: int = 0  # interpreter processes started to find and prove the arena
    rows: int = 0
    primary: str = "accuracy"
    metrics: dict[str, float] = Field(default_factory=dict)
    litert_metrics: dict[str, float] = Field(default_factory=dict)
    max_output_difference: float | None = None  # largest |output difference| from LiteRT on the test rows
    agrees: bool | None = None  # the primary metric equals LiteRT's within the test split's rounding

    def summary(self) -> str:
        """'yes, arena 10.1 KB (10,144 B), accuracy 0.8875 = LiteRT' or 'no: <why>' (model card, report)."""
        if not self.runs:
            return f"no: {self.reason}"
        value = self.metrics.get(self.primary)
        litert = self.litert_metrics.get(self.primary)
        score = f", {self.primary} {value:.4f}" if value is not None else ""
        same = ("" if litert is None else " = LiteRT" if self.agrees
                else f" vs LiteRT {litert:.4f} (DIFFERS beyond the test split's rounding)")
        arena = self.arena_bytes or 0
        return f"yes, arena {arena / 1000:.1f} KB ({arena:,} B){score}{same}"


class RuntimeRef(_Model):
    """Which file to take for one runtime, and what it scored there (test split): the manifest's `deployable`, the
    artifact table and the model card group the outputs by where they run."""

    runtime: str  # "LiteRT", "TFLite Micro", "TF Serving", "Keras 3", "Keras (tf_keras)"
    artifact: str  # its name in metrics.json
    file: str  # a file of the run folder (a directory for TF Serving: models/saved_model/)
    raw_bytes: int
    gzip_bytes: int
    metrics: dict[str, float] = Field(default_factory=dict)
    primary: str = "accuracy"
    arena_bytes: int | None = None  # TFLite Micro: the tensor arena it needs
    note: str = ""


# the order runtimes are listed in, with what each is for
RUNTIMES: tuple[tuple[str, str], ...] = (
    ("LiteRT", "phones, Linux and desktop devices (ai_edge_litert / TFLite interpreter)"),
    ("TFLite Micro", "microcontrollers: the same .tflite, with the tensor arena it needs"),
    ("TF Serving", "servers: the SavedModel directory, signature serving_default (input -> output)"),
    ("Keras 3", "your own Keras 3 code: the stripped model in your format"),
    ("Keras (tf_keras)", "tf_keras / TensorFlow 2 Keras code: the stripped .h5"),
)


class TrimRecord(_Model):
    """The deployable before and after convert.trim (shears.keras.tflite.trim): bytes, and whether every output
    on the test split is identical in LiteRT and in TFLite Micro."""

    raw_before: int
    raw_after: int
    gzip_before: int
    gzip_after: int
    structure_before: int  # gzip of the file with every weight zeroed
    structure_after: int
    rows: int
    litert_identical: bool
    micro_identical: bool | None = None  # None: TFLite Micro does not run the deployable (or convert.micro is off)


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
    micro: MicroRecord | None = None  # the deployable on TFLite Micro (None: not asked for)
    trim: TrimRecord | None = None  # the deployable before and after convert.trim (None: trim off, or before it)

    def artifact(self, name: str) -> ArtifactRecord | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def runtimes(self) -> list[RuntimeRef]:
        """The file to take for each runtime: the deployable .tflite for LiteRT (and, when it runs there, for
        TFLite Micro with its arena), the SavedModel for TF Serving, the stripped model for Keras 3 and tf_keras."""
        picks = {"LiteRT": self.deployable, "TFLite Micro": self.deployable.replace("tflite_", "tflm_", 1),
                 "TF Serving": "saved_model", "Keras 3": "stripped_keras3", "Keras (tf_keras)": "stripped"}
        out = []
        for runtime, what in RUNTIMES:
            a = self.artifact(picks[runtime])
            if a is None:
                continue
            out.append(RuntimeRef(runtime=runtime, artifact=a.name, file=a.file, raw_bytes=a.raw_bytes,
                                  gzip_bytes=a.gzip_bytes, metrics=dict(a.metrics), primary=a.primary,
                                  arena_bytes=a.arena_bytes, note=what))
        return out

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
