"""One mapped Airflow task of a run, as a process: resume the run's claim, keep it fresh, check it, report.

`python -m tests.run.claim_holder STORE RUN_ID AIRFLOW_RUN HOLD_S HEARTBEAT_S` prints one JSON line
{"pid", "lost", "writes"}: the same calls the Airflow step runner makes (lifecycle.resume, start_heartbeat,
stop_heartbeat, check) around a step that takes HOLD_S seconds.
"""

from __future__ import annotations

import json
import sys
import time

from shears.errors import ConfigError
from shears.run.claim import resume, this_process
from shears.store import open_store


def main(store_uri: str, run_id: str, airflow_run: str, hold_s: float, heartbeat_s: float) -> int:
    store = open_store(store_uri)
    claim = resume(store, run_id, this_process("airflow", airflow_run), heartbeat_s=heartbeat_s)
    claim.start_heartbeat()
    time.sleep(hold_s)
    claim.stop_heartbeat()
    try:
        claim.check()
        lost = None
    except ConfigError as exc:
        lost = str(exc)
    print(json.dumps({"pid": claim.record.holder.pid, "lost": lost, "writes": claim.writes}))
    return 0 if lost is None else 1


if __name__ == "__main__":
    a = sys.argv[1:]
    sys.exit(main(a[0], a[1], a[2], float(a[3]), float(a[4])))
