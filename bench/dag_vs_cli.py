"""What does Airflow cost? `airflow dags test shears_pipeline` vs `shears run`, same data and config.

    .venv/bin/python bench/dag_vs_cli.py                       # embedded defaults (digits, full config)
    .venv/bin/python bench/dag_vs_cli.py --config my.yaml --repeat 3

Both run in a fresh temporary directory: the DAG in its own AIRFLOW_HOME with a migrated SQLite DB
(migration is setup, not timed) and its own local store; the CLI with its own store. Wall time is
measured around each process (interpreter start, imports, Airflow's DAG parsing and bookkeeping
included); "steps" is the sum of the per-step timings the run's manifest records, so
"overhead" = wall - steps is what the orchestration (or the CLI process) adds. With --repeat the
median is reported; runs alternate CLI / DAG so that neither gets all the warm caches. Both run from
the repository root, so a config may name repo-relative data (bench/fashion_mnist.yaml does).

Note: `airflow dags test` runs every task in one process (TensorFlow is imported once). Under a real
executor every task is its own process and pays the imports again (~3-5 s per task here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_RATIO = 1.3


@dataclass
class Result:
    mode: str
    wall: float
    steps: float
    status: str
    accuracy: float | None


def _manifest(store: Path) -> dict:
    found = sorted(store.glob("runs/*/manifest.json")) + sorted(store.glob("rejected/*/manifest.json"))
    if not found:
        raise SystemExit(f"no manifest in {store}: the run failed before the gate (see the log above)")
    return dict(json.loads(found[-1].read_text()))


def _run(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    with log.open("w") as fh:
        fh.write(f"#bench start {time.time():.3f}\n")
        fh.flush()
        rc = subprocess.run(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.perf_counter() - t0
    with log.open("a") as fh:
        fh.write(f"#bench end {time.time():.3f}\n")
    return wall, rc


_MARKS: dict[str, str | None] = {
    "first_log": None,
    "running": "[DAG TEST] running task",
    "started": "Task started",
    "finished": "DagRun Finished",
}


def dag_phases(log: Path) -> dict[str, float]:
    """Where `airflow dags test` spends its time, from the timestamps in its own log."""
    import datetime as dt

    seen: dict[str, float] = {}
    start = end = 0.0
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("#bench start"):
            start = float(line.split()[-1])
        elif line.startswith("#bench end"):
            end = float(line.split()[-1])
        elif line[:4].isdigit() and "Z [" in line[:40]:
            ts = dt.datetime.fromisoformat(line[: line.index("Z")]).replace(tzinfo=dt.UTC).timestamp()
            for name, marker in _MARKS.items():
                if name not in seen and (marker is None or marker in line):
                    seen[name] = ts
            if "DagRun Finished" in line:
                seen["finished"] = ts
    if len(seen) < len(_MARKS) or not (start and end):
        return {}
    return {
        "interpreter + airflow CLI start": seen["first_log"] - start,
        "DAG parse, bundle sync, run creation": seen["running"] - seen["first_log"],
        "in-process execution API start": seen["started"] - seen["running"],
        "tasks (steps + per-task bookkeeping)": seen["finished"] - seen["started"],
        "interpreter exit (final GC)": end - seen["finished"],
    }


def _result(mode: str, wall: float, rc: int, store: Path, log: Path) -> Result:
    m = _manifest(store)
    if rc != 0 and m["status"] != "rejected":
        raise SystemExit(f"{mode} failed (exit {rc}); log: {log}")
    return Result(mode, wall, float(sum(m["timings"].values())), m["status"], m["deployable"].get("accuracy"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="pipeline YAML for both (default: the embedded defaults)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per mode; the median is reported")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (stores, logs)")
    ap.add_argument("--check", action="store_true", help=f"exit 1 if DAG/CLI > {TARGET_RATIO}")
    args = ap.parse_args()
    config = args.config.resolve() if args.config else None

    root = Path(tempfile.mkdtemp(prefix="shears-bench-dag-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SHEARS_"))}
    base.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    home = root / "airflow-home"
    af_env = {
        **base,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SHEARS_DATA_URI": (root / "no-incoming-data.npz").as_uri(),  # absent: the embedded digits are used
    }
    print(f"workdir {root}", file=sys.stderr)
    t0 = time.perf_counter()
    migrate, rc = _run([str(BIN / "airflow"), "db", "migrate"], af_env, root, root / "migrate.log")
    if rc:
        raise SystemExit(f"airflow db migrate failed; see {root / 'migrate.log'}")
    # warm the page cache for TensorFlow's shared objects so the first timed run is not penalised
    subprocess.run([sys.executable, "-c", "import tensorflow, tf_keras, tensorflow_model_optimization"],
                   env=base, check=True)
    print(f"setup (db migrate {migrate:.1f} s, warm-up): {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    runs: dict[str, list[Result]] = {"cli": [], "dag": []}
    for i in range(args.repeat):
        cli_store, dag_store = root / f"cli-store-{i}", root / f"dag-store-{i}"
        cli_cmd = [str(BIN / "shears"), "run", "--store", str(cli_store), "--run-id", f"bench-cli-{i}"]
        dag_cmd = [str(BIN / "airflow"), "dags", "test", "shears_pipeline"]
        if config:
            cli_cmd += ["--config", str(config)]
            dag_cmd += ["--conf", json.dumps({"config": str(config)})]
        log = root / f"cli-{i}.log"
        wall, rc = _run(cli_cmd, base, REPO, log)
        runs["cli"].append(_result("shears run", wall, rc, cli_store, log))
        print(f"  cli #{i}: {wall:.1f} s", file=sys.stderr)
        log = root / f"dag-{i}.log"
        wall, rc = _run(dag_cmd, {**af_env, "SHEARS_STORE": str(dag_store)}, REPO, log)
        runs["dag"].append(_result("airflow dags test", wall, rc, dag_store, log))
        print(f"  dag #{i}: {wall:.1f} s", file=sys.stderr)

    def med(rs: list[Result], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in rs)

    rows = []
    for key in ("cli", "dag"):
        rs = runs[key]
        wall, steps = med(rs, "wall"), med(rs, "steps")
        accuracy = rs[-1].accuracy
        shown = "-" if accuracy is None else f"{accuracy:.4f}"
        rows.append((rs[0].mode, wall, steps, wall - steps, rs[-1].status, shown))
    ratio = rows[1][1] / rows[0][1]
    cfg = str(config) if config else "embedded defaults (sklearn digits)"
    print(f"\nconfig: {cfg}; runs per mode: {args.repeat} (median); machine: {os.cpu_count()} CPUs\n")
    print(f"| {'mode':<18} | {'wall s':>7} | {'steps s':>7} | {'overhead s':>10} | {'status':<8} | {'accuracy':>8} |")
    print(f"|{'-' * 20}|{'-' * 9}|{'-' * 9}|{'-' * 12}|{'-' * 10}|{'-' * 10}|")
    for mode, wall, steps, over, status, acc in rows:
        print(f"| {mode:<18} | {wall:>7.1f} | {steps:>7.1f} | {over:>10.1f} | {status:<8} | {acc:>8} |")
    phases = dag_phases(root / f"dag-{args.repeat - 1}.log")
    if phases:
        print(f"\nwhere `airflow dags test` spends its {runs['dag'][-1].wall:.1f} s (last run):")
        for name, seconds in phases.items():
            print(f"  {name:<40} {seconds:6.1f} s")
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"\nDAG / CLI wall-time ratio: {ratio:.2f}x (target <= {TARGET_RATIO:.2f}x: {verdict})")
    if args.keep:
        print(f"kept {root}", file=sys.stderr)
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 1 if args.check and ratio > TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
