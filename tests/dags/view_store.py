"""A small store for the Shears view's tests (in-process and browser): no training, real reports.

    runs/pass-1/       published, current champion: manifest, report.html, model_card.md, gates.json
    rejected/rej-1/    rejected by a gate: manifest, report.html, gates.json, failure.json
    runs/r1 ...        older runs from tests.report.test_render.make_trend_store (r1..r5)
"""

from __future__ import annotations

import json
from pathlib import Path

from shears.report import RunRecords, build_run_report
from shears.store import LocalStore
from shears.store import layout as L

from tests.report.test_render import make_trend_store, manifest, sample_records

PASSED = "pass-1"
REJECTED = "rej-1"


def make_view_store(root: Path) -> LocalStore:
    store = make_trend_store(root)
    ok = L.RunLayout(PASSED)
    store.put(ok.run(L.MANIFEST), manifest(PASSED, "passed", "2026-11-06T10:00:00+00:00", 0.958, 51915,
                                           (L.REPORT, L.MODEL_CARD_MD, L.GATES)))
    store.put(ok.run(L.REPORT), build_run_report(sample_records(run_id=PASSED)).encode())
    store.put(ok.run(L.MODEL_CARD_MD), b"# Model card: pass-1\n\nDeployable: tflite_dynamic_range\n")
    store.put(ok.run(L.GATES), json.dumps({"passed": True, "summary": "all gates passed", "gates": []}).encode())
    pointer = json.dumps({"run_id": PASSED, "seq": 3, "action": "promote", "manifest_sha256": "0" * 64,
                          "by": PASSED, "at": "2026-11-06T10:00:00+00:00", "previous": "r3"}).encode()
    store.put(L.champion_history(3), pointer)
    store.put(L.CHAMPION, pointer)

    bad = L.RunLayout(REJECTED)
    rec = sample_records(passed=False, run_id=REJECTED)
    rejected = RunRecords(**{**rec.__dict__, "prune": None, "latency": None})
    store.put(bad.rejected(L.MANIFEST), manifest(REJECTED, "rejected", "2026-11-07T10:00:00+00:00", 0.61, 51000,
                                                 (L.REPORT, L.GATES, L.FAILURE)))
    store.put(bad.rejected(L.REPORT), build_run_report(rejected).encode())
    store.put(bad.rejected(L.GATES), json.dumps({"passed": False, "summary": "gate(s) failed: min_accuracy",
                                                 "gates": []}).encode())
    store.put(bad.rejected(L.FAILURE), json.dumps({"run_id": REJECTED, "stage": "gate", "exit_code": 4,
                                                   "reason": "gate(s) failed: min_accuracy",
                                                   "at": "2026-11-07T10:00:00+00:00"}).encode())
    store.put("staging/rej-1/secret.json", b'{"not": "served"}')
    store.put("claims/rej-1.json", b"{}")
    return store
