"""The DAG files load cleanly in Airflow and stay light: no TensorFlow, tfmot or GX at parse time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.dags.airflow_env import DAGS, HEAVY, PLUGINS


def test_dagbag_has_no_import_errors() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert {"shears_pipeline", "shears_data_push"} <= set(bag.dag_ids)


_PARSE = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
for path in sys.argv[2:]:
    spec = importlib.util.spec_from_file_location(path.rsplit("/", 1)[-1][:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
heavy = sys.argv[1].split(",")
print(json.dumps({"heavy": [m for m in heavy if m in sys.modules], "seconds": time.perf_counter() - t0,
                  "shears_modules": sorted(m for m in sys.modules if m.startswith("shears."))}))
"""


def test_parsing_the_dag_files_imports_no_heavy_library() -> None:
    """What the DAG processor does every few minutes must not pay for TensorFlow or GX."""
    files = [str(DAGS / "shears_pipeline.py"), str(DAGS / "shears_data_push.py"), str(PLUGINS / "shears_plugin.py")]
    env = {**os.environ, "PYTHONPATH": str(PLUGINS)}
    proc = subprocess.run([sys.executable, "-c", _PARSE, ",".join(HEAVY), *files], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    # the DAG files may resolve the retry policy's exception classes and read the step table (shears.run.steps:
    # names, queues, retries), nothing that trains or converts: no step's phase module, no stage, no Keras
    assert not [m for m in out["shears_modules"] if m.startswith(("shears.stages", "shears.keras"))]
    assert [m for m in out["shears_modules"] if m.startswith("shears.run")] == ["shears.run", "shears.run.steps"]


def test_plugin_registers_global_links() -> None:
    code = (
        "from airflow import plugins_manager as pm\n"
        "print(sorted(link.name for link in pm.get_global_operator_extra_links()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == (
        "['Shears manifest', 'Shears model card', 'Shears rejection', 'Shears report', 'Shears run']")


def test_plugin_alone_imports_only_light_modules() -> None:
    """The API server loads the plugin: its store keys and s3:// parsing come from light shears.store modules."""
    code = (
        "import json, sys\n"
        "import shears_plugin\n"
        f"print(json.dumps({{'heavy': [m for m in {list(HEAVY)!r} if m in sys.modules],\n"
        "                  'shears': sorted(m for m in sys.modules if m.startswith('shears.'))}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PLUGINS)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    records = {m for m in out["shears"] if m.startswith("shears.records")}  # the typed records (pydantic)
    assert set(out["shears"]) - records <= {"shears.errors", "shears.bounded", "shears.store", "shears.store.base",
                                            "shears.store.local", "shears.store.layout", "shears.store.datauri",
                                            "shears.run", "shears.run.steps"}  # the step table, not the steps
