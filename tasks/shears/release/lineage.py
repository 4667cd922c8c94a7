"""OpenLineage for Shears runs: what a step read (the data, the champion) and what it published.

`step_lineage` builds a step's input and output datasets, with facets, from the run's records; both
emitters use it, so the CLI and the DAG report the same lineage:

* in Airflow, plugins/shears_airflow.py hands them to the OpenLineage provider
  (`airflow.providers.openlineage.api.emit_dataset_lineage`), attributed to the running task, to whatever
  transport the provider is configured with (`[openlineage] transport`, OPENLINEAGE_URL, ...);
* `shears run` emits START / COMPLETE / FAIL RunEvents per step itself (`CliLineage`, openlineage-python),
  when the client finds a transport configuration (`transport_configured`). Job names are the Airflow
  ones (`shears_pipeline.<step>` under the parent job `shears_pipeline`), so both land on the same jobs.

Dataset names follow the OpenLineage naming spec and the Airflow provider's asset converters, so the data
node is the same one the Airflow data asset maps to: `s3://bucket/key` is namespace `s3://bucket`, name
`key`; a local file is namespace `file`, name `/absolute/path`; the bundled digits are namespace `sklearn`,
name `datasets.load_digits`. Store objects are named the same way (a local store's run folder is `file` +
`/abs/store/runs/<id>`).

Facets (custom facets are prefixed `shears_`; their fields are documented on the classes below):
    input data       version (datasetVersion = sha256), shears_data (sha256, rows, classes, validation)
    champion input   shears_model (the champion's deployable: run id, file, sha256, sizes, accuracy)
    run folder out   shears_run (run id, status, manifest sha256, signature key id), shears_gates
    deployable out   shears_model, shears_gates (every gate's threshold, observed value and verdict), version
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any, ClassVar

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import DatasetFacet, RunFacet, dataset_version_dataset, job_type_job, parent_run
from openlineage.client.uuid import generate_new_uuid

from shears.errors import RecordError, StoreError
from shears.records import GateRecord, GatesRecord, ManifestRecord, Record, ValidationRecord
from shears.store import Store, sha256_hex
from shears.store import layout as L

PIPELINE_JOB = "shears_pipeline"  # the Airflow DAG id: CLI and DAG events land on the same jobs
PRODUCER = f"https://pypi.org/project/shears/{_version('shears')}"
_SCHEMA = "urn:shears:openlineage:facet:"  # + class name + ":1"; fields are documented in this module
DEFAULT_NAMESPACE = "default"  # what the Airflow provider uses without [openlineage] namespace


# --------------------------------------------------------------------------------------------- facets


@attr.define
class ShearsDataFacet(DatasetFacet):
    """The data a run trained and tested on: its sha256 (of the file; of the arrays for the bundled digits)."""

    sha256: str
    rows: int | None = None
    testRows: int | None = None
    numClasses: int | None = None
    validationPassed: bool | None = None

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA + "ShearsDataFacet:1"


@attr.define
class ShearsModelFacet(DatasetFacet):
    """A deployable model: which run made it, its file and sha256, raw and gzipped bytes, its test metrics
    (accuracy for classifiers; `metrics` holds every metric of its task, e.g. mse/mae/r2)."""

    runId: str
    artifact: str
    file: str
    sha256: str | None
    rawBytes: int
    gzipBytes: int
    accuracy: float | None
    task: str = "multiclass"
    metrics: dict[str, float] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA + "ShearsModelFacet:1"


@attr.define
class ShearsGatesFacet(DatasetFacet):
    """The gates' verdict: passed, the one-line summary, and per gate name/threshold/observed/passed/comparedTo."""

    passed: bool
    summary: str
    gates: list[dict[str, Any]]

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA + "ShearsGatesFacet:1"


@attr.define
class ShearsRunFacet(DatasetFacet):
    """A published (or rejected) run folder: status, manifest sha256, and the key id that signed it (or None)."""

    runId: str
    status: str
    manifestSha256: str | None
    signatureKeyId: str | None
    files: int

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA + "ShearsRunFacet:1"


@attr.define
class ShearsRunIdRunFacet(RunFacet):
    """Run facet of the CLI's events: the Shears run id and the store it publishes to."""

    runId: str
    store: str

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA + "ShearsRunIdRunFacet:1"


# --------------------------------------------------------------------------------------------- naming


def object_dataset(uri: str) -> tuple[str, str]:
    """(namespace, name) of an object or folder URI: s3://b/k -> ('s3://b', 'k'); /p -> ('file', '/p')."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        return f"s3://{bucket}", key.strip("/") or "/"
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return "file", str(Path(uri).expanduser().absolute())


def data_dataset(data_uri: str | None) -> tuple[str, str]:
    return ("sklearn", "datasets.load_digits") if data_uri is None else object_dataset(data_uri)


def store_object(store: Store, key: str) -> tuple[str, str]:
    return object_dataset(f"{store.uri.rstrip('/')}/{key}")


# --------------------------------------------------------------------------------------------- a step's lineage


@dataclass(frozen=True)
class StepLineage:
    inputs: list[InputDataset] = field(default_factory=list)
    outputs: list[OutputDataset] = field(default_factory=list)


def _read(stores: Sequence[tuple[Store, str]], model: type[Record]) -> Any:
    """The first of (store, key) that holds a readable `model` record, or None."""
    for store, key in stores:
        try:
            if store.exists(key):
                return model.from_bytes(store.get(key), key)
        except (RecordError, StoreError):
            continue
    return None


def _gates_facet(g: GatesRecord) -> ShearsGatesFacet:
    def one(x: GateRecord) -> dict[str, Any]:
        return {"name": x.name, "threshold": x.threshold, "observed": x.observed, "passed": x.passed,
                "comparedTo": x.compared_to}

    return ShearsGatesFacet(passed=g.passed, summary=g.summary, gates=[one(x) for x in g.gates], producer=PRODUCER)


def _model_dataset(store: Store, run_id: str, manifest: ManifestRecord, gates: GatesRecord | None,
                   cls: type[Any]) -> Any:
    dep = manifest.deployable
    if dep is None:
        return None
    key = L.RunLayout(run_id).run(dep.file)
    entry = manifest.files.get(dep.file)
    facets: dict[str, Any] = {
        "shears_model": ShearsModelFacet(runId=run_id, artifact=dep.name, file=dep.file,
                                         sha256=entry.sha256 if entry else None, rawBytes=dep.raw_bytes,
                                         gzipBytes=dep.gzip_bytes, accuracy=dep.accuracy, task=dep.task,
                                         metrics=dict(dep.metrics), producer=PRODUCER),
    }
    if entry is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=entry.sha256,
                                                                               producer=PRODUCER)
    if gates is not None:
        facets["shears_gates"] = _gates_facet(gates)
    ns, name = store_object(store, key)
    return cls(namespace=ns, name=name, facets=facets)


def step_lineage(store: Store, layout: L.RunLayout, data_uri: str | None, step: str,
                 work: Store | None = None) -> StepLineage:
    """Inputs and outputs of `step` of this run, from whatever records exist now (never raises on missing ones).

    Every step reads the data; `gate` and `publish` also read the champion they compared against; `publish`
    writes the run folder and the deployable model, a rejecting `gate` writes the rejected folder.
    """
    work = work or store
    where = [(work, layout.staging(L.VALIDATION)), (store, layout.run(L.VALIDATION)),
             (store, layout.rejected(L.VALIDATION))]
    validation: ValidationRecord | None = _read(where, ValidationRecord)
    facets: dict[str, Any] = {}
    if validation is not None:
        facets["shears_data"] = ShearsDataFacet(
            sha256=validation.dataset_sha256, rows=validation.rows, testRows=validation.test_rows,
            numClasses=validation.num_classes, validationPassed=validation.success, producer=PRODUCER)
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=validation.dataset_sha256, producer=PRODUCER)
    ns, name = data_dataset(data_uri)
    out = StepLineage(inputs=[InputDataset(namespace=ns, name=name, facets=facets)])
    if step not in ("gate", "publish"):
        return out
    gates: GatesRecord | None = _read([(work, layout.staging(L.GATES)), (store, layout.run(L.GATES)),
                                       (store, layout.rejected(L.GATES))], GatesRecord)
    if gates is not None and gates.champion is not None:
        champ = gates.champion.run_id
        champ_manifest = _read([(store, L.RunLayout(champ).run(L.MANIFEST))], ManifestRecord)
        if champ_manifest is not None and (ds := _model_dataset(store, champ, champ_manifest, None, InputDataset)):
            out.inputs.append(ds)
    area: L.Area = "runs" if step == "publish" else "rejected"
    mkey = layout.key(area, L.MANIFEST)
    raw = None
    try:
        raw = store.get(mkey) if store.exists(mkey) else None
        manifest = ManifestRecord.from_bytes(raw, mkey) if raw is not None else None
    except (RecordError, StoreError):
        manifest = None
    if manifest is None or raw is None:
        return out
    ns, name = store_object(store, layout.prefix(area))
    out.outputs.append(OutputDataset(namespace=ns, name=name, facets={
        "shears_run": ShearsRunFacet(runId=layout.run_id, status=manifest.status, manifestSha256=sha256_hex(raw),
                                     signatureKeyId=manifest.signature.key_id if manifest.signature else None,
                                     files=len(manifest.files), producer=PRODUCER),
        **({"shears_gates": _gates_facet(gates)} if gates is not None else {}),
    }))
    if area == "runs" and (model := _model_dataset(store, layout.run_id, manifest, gates, OutputDataset)):
        out.outputs.append(model)
    return out


# --------------------------------------------------------------------------------------------- the CLI's events


def transport_configured() -> bool:
    """Whether openlineage-python would find a transport (the rules the Airflow provider uses too):
    OPENLINEAGE_URL, OPENLINEAGE__TRANSPORT__* variables, or an openlineage.yml ($OPENLINEAGE_CONFIG, the
    working directory, ~/.openlineage/). OPENLINEAGE_DISABLED=true turns it off. Without any, nothing is
    emitted (the client's fallback would print every event to the console)."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OPENLINEAGE_URL"):
        return True
    if any(k.startswith("OPENLINEAGE__TRANSPORT") and v for k, v in os.environ.items()):
        return True
    paths = [os.environ.get("OPENLINEAGE_CONFIG"), "openlineage.yml",
             str(Path("~/.openlineage/openlineage.yml").expanduser())]
    return any(p and Path(p).is_file() for p in paths)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class CliLineage:
    """START/COMPLETE/FAIL RunEvents of one `shears run`: a parent run for the pipeline, one child run per step.

    Emission problems are logged by the client and never fail a run.
    """

    JOB_TYPE: ClassVar[str] = "TASK"

    def __init__(self, store: Store, layout: L.RunLayout, data_uri: str | None, work: Store | None = None,
                 client: Any | None = None, namespace: str | None = None) -> None:
        from openlineage.client import OpenLineageClient

        self.client = client or OpenLineageClient()
        self.namespace = namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or DEFAULT_NAMESPACE
        self.store, self.layout, self.data_uri, self.work = store, layout, data_uri, work
        self.run_id = str(generate_new_uuid())
        self._steps: dict[str, str] = {}

    def _emit(self, event: RunEvent) -> None:
        try:
            self.client.emit(event)
        except Exception as exc:  # a lineage backend being down must not fail a training run
            import logging

            logging.getLogger(__name__).warning("OpenLineage event not emitted: %s", exc)

    def _run_facets(self) -> dict[str, Any]:
        return {"shears": ShearsRunIdRunFacet(runId=self.layout.run_id, store=self.store.uri, producer=PRODUCER)}

    def _job(self, name: str, job_type: str) -> Job:
        return Job(namespace=self.namespace, name=name, facets={
            "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="SHEARS", jobType=job_type,
                                                    producer=PRODUCER)})

    def pipeline(self, state: RunState) -> None:
        self._emit(RunEvent(eventType=state, eventTime=_now(), producer=PRODUCER,
                            run=Run(runId=self.run_id, facets=self._run_facets()), job=self._job(PIPELINE_JOB, "DAG")))

    def step(self, step: str, state: RunState) -> None:
        run_id = self._steps.setdefault(step, str(generate_new_uuid()))
        parent = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=self.run_id), job=parent_run.Job(namespace=self.namespace, name=PIPELINE_JOB),
            root=parent_run.Root(run=parent_run.RootRun(runId=self.run_id),
                                 job=parent_run.RootJob(namespace=self.namespace, name=PIPELINE_JOB)),
            producer=PRODUCER)
        lineage = step_lineage(self.store, self.layout, self.data_uri, step, self.work)
        if state == RunState.START:  # what a step reads is known up front; outputs come with its end
            lineage = StepLineage(inputs=lineage.inputs)
        self._emit(RunEvent(
            eventType=state, eventTime=_now(), producer=PRODUCER,
            run=Run(runId=run_id, facets={"parent": parent, **self._run_facets()}),
            job=self._job(f"{PIPELINE_JOB}.{step}", self.JOB_TYPE),
            inputs=lineage.inputs, outputs=lineage.outputs,
        ))

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        except Exception:  # best effort, as emission
            return
