"""Records of what was published: the manifest, the champion pointer and the run id's claim."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shears.records.base import Record, RunId, RunStatus, _Model
from shears.records.evaluation import MachineInfo, RuntimeRef


class FileEntry(_Model):
    sha256: str
    bytes: int


class DatasetRef(_Model):
    name: str | None
    sha256: str | None
    rows: int | None


class DeployableRef(_Model):
    """The deployable artifact as the manifest and the champion pointer record it."""

    name: str
    file: str
    accuracy: float | None  # classifiers; None for a regressor (its figures are in `metrics`)
    gzip_bytes: int
    raw_bytes: int
    metrics: dict[str, float] = Field(default_factory=dict)  # every test metric of the run's task
    primary: str = "accuracy"
    task: str = "multiclass"
    # which file to take for which runtime (LiteRT, TFLite Micro, TF Serving, Keras 3, tf_keras); [] before runtimes
    runtimes: list[RuntimeRef] = Field(default_factory=list)

    def score_text(self) -> str:
        """'accuracy 0.9611' or 'mse 1.71': what the deployable scored on its test split."""
        value = self.metrics.get(self.primary, self.accuracy)
        return f"{self.primary} {value:.4g}" if value is not None else "-"


class SignatureRef(_Model):
    """The manifest's declaration that the run folder is signed: which file, which key, which format.

    The signature covers every file of the folder, manifest.json included, so it cannot be listed in
    the manifest's `files`; this declaration (signed with the rest) says it must be there.
    """

    file: str
    key_id: str  # sha256 of the public key's PEM: model-signing's public-key hint
    format: str = "model-signing/v1.0 sigstore bundle (DSSE, in-toto), elliptic-curve key"


class ManifestRecord(Record, schema="shears.manifest/v1", file="manifest.json"):
    """What a run published, from what, by which code; written last (no manifest = incomplete)."""

    run_id: RunId
    status: RunStatus
    created_at: str
    files: dict[str, FileEntry]
    # the config as the run resolved it, kept verbatim: a later Shears may have a different config model
    config: dict[str, Any]
    dataset: DatasetRef
    versions: dict[str, str]
    git_commit: str | None
    timings: dict[str, float]
    gates_passed: bool
    deployable: DeployableRef | None
    champion_compared: str | None = None
    machines: list[MachineInfo] = Field(default_factory=list)  # where the TensorFlow steps ran
    signature: SignatureRef | None = None  # None: the run folder is not signed


class ChampionRecord(Record, schema="shears.champion/v1", file="champion.json"):
    """champion.json and each champions/<seq>.json history entry (the same bytes at promotion)."""

    run_id: RunId
    manifest_sha256: str
    seq: int = Field(ge=1)
    action: Literal["promote", "rollback"]
    by: str
    at: str
    previous: RunId | None
    deployable: DeployableRef | None = None


class HolderRecord(_Model):
    """Who holds a run id's claim: a process (host, pid and its start time) or an Airflow DAG run."""

    kind: Literal["cli", "airflow"]
    host: str
    pid: int
    pid_started: str | None = None  # /proc/<pid>/stat start time: tells a reused pid from the holder
    user: str | None = None
    airflow_run: str | None = None  # "<dag_id>/<run_id>" for kind "airflow"

    def describe(self) -> str:
        who = f"Airflow run {self.airflow_run}" if self.airflow_run else "shears"
        return f"{who} (pid {self.pid} on {self.host})"


class ClaimRecord(Record, schema="shears.claim/v1", file="claim.json"):
    """claims/<run_id>.json: the one writer of a run id, kept fresh by its heartbeat; copied into the run."""

    run_id: RunId
    holder: HolderRecord
    claimed_at: str
    heartbeat_at: str
    stale_after_s: float
    took_over: HolderRecord | None = None  # the stale holder this claim replaced (--force-claim)
    took_over_why: str | None = None
    reclaimed: int = 0  # times the same Airflow run took its own claim again (a cleared run)
