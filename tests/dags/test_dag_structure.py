"""Shape of the DAGs: task order, retry semantics, schedule (cron OR asset), params, producer outlets."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from shears.run.steps import STEP_NAMES, STEPS

from tests.dags.airflow_env import DAGS

STAGES = list(STEP_NAMES)
IO_TASKS = [s.name for s in STEPS if s.retry_io]


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags


def test_task_ids_are_the_step_names_in_one_chain(dags: dict[str, Any]) -> None:
    dag = dags["shears_pipeline"]
    assert [t.task_id for t in dag.topological_sort()] == STAGES
    for upstream, downstream in itertools.pairwise(STAGES):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    # a skipped fan-out (nothing to map over: the search off, or its budget spent) must not skip what follows;
    # everything else needs all of its upstream to succeed (a failed gate never publishes)
    after_fanout = {s.name for s in STEPS if s.light_when_empty}
    for t in dag.tasks:
        assert t.trigger_rule == ("none_failed" if t.task_id in after_fanout else "all_success"), t.task_id
    assert dag.max_active_runs == 1


def test_sensitivity_points_and_trials_are_mapped_tasks(dags: dict[str, Any]) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator
    from shears.run.steps import SEARCH_ROUNDS
    from shears_airflow import SEARCH_ROUNDS as GLUE_ROUNDS

    dag = dags["shears_pipeline"]
    mapped = {t.task_id for t in dag.tasks if isinstance(t, MappedOperator)}
    assert mapped == {s.name for s in STEPS if s.expands} == {"sensitivity", *(f"trials_{r}" for r in (1, 2, 3))}
    assert GLUE_ROUNDS is SEARCH_ROUNDS == 3  # the glue re-exports the library's constant


def test_search_rounds_is_assigned_once() -> None:
    root = Path(__file__).resolve().parents[2]
    sources = [*root.glob("tasks/shears/**/*.py"), *root.glob("plugins/**/*.py"), *root.glob("dags/*.py")]
    assigned = [p for p in sources if re.search(r"^SEARCH_ROUNDS\s*(:[^=]*)?=", p.read_text(), re.MULTILINE)]
    assert [p.relative_to(root).as_posix() for p in assigned] == ["tasks/shears/run/steps/__init__.py"]


def test_each_tasks_queue_retries_and_trigger_rule_come_from_its_step(dags: dict[str, Any]) -> None:
    from shears_airflow import task_args

    dag = dags["shears_pipeline"]
    for s in STEPS:
        t = dag.get_task(s.name)
        args = task_args(s.name)
        assert t.retries == args.get("retries", 3), s.name
        assert t.trigger_rule == args.get("trigger_rule", "all_success"), s.name
        assert (t.retries == 0) == (not s.retry_io), s.name


def test_io_tasks_retry_with_exponential_backoff(dags: dict[str, Any]) -> None:
    dag = dags["shears_pipeline"]
    for task_id in IO_TASKS:
        t = dag.get_task(task_id)
        assert t.retries == 3, task_id
        assert t.retry_exponential_backoff > 1, task_id  # a multiplier in Airflow 3.3: True would be 1.0
        assert t.retry_delay <= timedelta(seconds=30), task_id
        assert t.retry_policy is not None, task_id


@pytest.mark.parametrize("task_id", ["validate", "gate"])
def test_gate_and_validate_never_retry(dags: dict[str, Any], task_id: str) -> None:
    assert dags["shears_pipeline"].get_task(task_id).retries == 0


def test_every_task_records_its_failure(dags: dict[str, Any]) -> None:
    from shears_airflow import on_task_failure

    for t in dags["shears_pipeline"].tasks:
        callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
        assert on_task_failure in callbacks, t.task_id  # (a mapped task keeps the callback unwrapped)


def test_retry_policy_retries_only_transient_io() -> None:
    from airflow.sdk import RetryAction
    from shears.errors import ConfigError, ConflictError, DataError, GateFailure, InternalError, RecordError, StoreError
    from shears.store import PreconditionFailed
    from shears_airflow import TRANSIENT_IO_ONLY

    def action(exc: BaseException) -> RetryAction:
        return TRANSIENT_IO_ONLY.evaluate(exc, try_number=1, max_tries=4).action

    assert action(StoreError("s3 timed out")) is RetryAction.RETRY
    assert action(ConnectionResetError()) is RetryAction.RETRY
    assert action(PreconditionFailed("champion changed")) is RetryAction.FAIL
    for exc in (ConfigError("x"), DataError("x"), GateFailure("x"), ValueError("tf shape"), KeyError("k"),
                RecordError("metrics.json: not a shears.metrics record"), InternalError("bug"),
                ConflictError("runs/r1 is already published with different content")):
        assert action(exc) is RetryAction.FAIL, exc


def test_schedule_is_nightly_cron_or_data_asset(dags: dict[str, Any]) -> None:
    from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable
    from shears_airflow import data_uri

    dag = dags["shears_pipeline"]
    schedule = dag.timetable
    assert isinstance(schedule, AssetOrTimeSchedule)
    assert isinstance(schedule.timetable, CronTriggerTimetable)
    assert schedule.timetable.expression == "0 2 * * *"
    assert str(schedule.timetable.timezone) in ("UTC", "Timezone('UTC')")
    assets = list(schedule.asset_condition.objects)
    assert [a.uri for a in assets] == [data_uri()]
    producer = dags["shears_data_push"]
    outlets = [o for t in producer.tasks for o in t.outlets]
    assert outlets == [Asset(uri=data_uri(), group="shears")]
    assert producer.timetable.can_be_scheduled is False  # manual / API only


@pytest.mark.parametrize("now", ["01:50", "02:00:01", "02:30", "04:20", "12:00"])
def test_first_nightly_run_is_never_in_the_past(dags: dict[str, Any], now: str) -> None:
    """Deploying or unpausing at any time of day schedules the next 02:00 UTC, never "last night's" run
    (Airflow's default would, within 2.4 h after 02:00). Checked on the timetable as the scheduler sees it."""
    from datetime import UTC, datetime
    from unittest import mock

    import airflow.timetables.trigger as trigger
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = decode_timetable(encode_timetable(dags["shears_pipeline"].timetable))
    at = datetime.fromisoformat(f"2026-11-21T{now}+00:00")
    with mock.patch.object(trigger, "utcnow", return_value=at):
        info = timetable.next_dagrun_info(last_automated_data_interval=None,
                                          restriction=TimeRestriction(earliest=None, latest=None, catchup=False))
    day = 21 if at.hour < 2 else 22
    assert info is not None and info.run_after == datetime(2026, 11, day, 2, tzinfo=UTC)


def test_params_have_types_patterns_and_null_defaults(dags: dict[str, Any]) -> None:
    params = dags["shears_pipeline"].params
    assert params.validate() == {"config": None, "data_uri": None, "model_uri": None, "force_claim": False}
    for name in ("config", "data_uri", "model_uri"):
        schema = params.get_param(name).schema
        assert schema["type"] == ["null", "string"] and schema["pattern"]


def test_params_say_what_they_accept_with_an_example(dags: dict[str, Any]) -> None:
    params = dags["shears_pipeline"].params
    for name in ("config", "data_uri", "model_uri"):
        schema = params.get_param(name).schema
        assert "Example: " in str(params.get_param(name).description) and len(schema["pattern"]) <= 50, name
        for example in schema["examples"]:
            assert params.get_param(name).resolve(example) == example  # the examples are accepted


def test_descriptions_owners_and_docs(dags: dict[str, Any]) -> None:
    pipeline, producer = dags["shears_pipeline"], dags["shears_data_push"]
    assert "nightly at 02:00 UTC or when the data asset updates" in pipeline.description
    assert producer.description and "shears_pipeline" in producer.description
    assert {t.owner for d in (pipeline, producer) for t in d.tasks} == {"shears"}
    assert "(/shears/)" in pipeline.doc_md and "(/shears/)" in producer.doc_md


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("config", "/etc/shears/nightly.yaml", True),
        ("config", "configs/relative.yaml", False),
        ("config", "/etc/shears/nightly.json", False),
        ("data_uri", "/data/new.npz", True),
        ("data_uri", "file:///data/new.csv", True),
        ("data_uri", "s3://ml-data/incoming/x.parquet", True),
        ("data_uri", "http://example.com/x.npz", False),
        ("data_uri", "s3://ml-data/incoming/x.txt", False),
        ("data_uri", "relative.txt", False),
        ("data_uri", "data/x.npz", False),
        ("model_uri", "s3://models/base/model.keras", True),
        ("model_uri", "/models/base.h5", True),
        ("model_uri", "/models/base.onnx", False),
    ],
)
def test_param_patterns(dags: dict[str, Any], name: str, value: str, ok: bool) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    param = dags["shears_pipeline"].params.get_param(name)
    if ok:
        assert param.resolve(value) == value
    else:
        with pytest.raises(ParamValidationError):
            param.resolve(value)


def test_tensorflow_tasks_can_be_routed_to_their_own_queue_and_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SHEARS_TF_QUEUE", "tensorflow")
    monkeypatch.setenv("SHEARS_TF_POOL", "shears_training")
    dag = DagBag(dag_folder=str(DAGS / "shears_pipeline.py")).dags["shears_pipeline"]
    tf_tasks = {s.name for s in STEPS if s.tensorflow}
    for t in dag.tasks:
        if t.task_id in tf_tasks:
            assert (t.queue, t.pool) == ("tensorflow", "shears_training"), t.task_id
        else:
            assert (t.queue, t.pool) == ("default", "default_pool"), t.task_id
