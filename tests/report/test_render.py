"""Run and trend report builders on hand-made records (no TensorFlow, no browser)."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from shears.records import DatasetRef
from shears.report import (
    TREND_REPORT,
    RunRecords,
    build_run_report,
    build_trend_report,
    load_run_records,
    load_trend_entries,
    records_from_files,
    run_report_key,
)
from shears.report.sections import SECTION_IDS
from shears.store import LocalStore
from shears.store import layout as L
from typer.testing import CliRunner

# --------------------------------------------------------------------------------------------------
# Hand-made records shaped like the ones shears.run.steps writes (also used by test_browser.py)


def _artifact(name: str, kind: str, raw: int, gz: int, acc: float, note: str = "") -> dict[str, Any]:
    file = f"models/{name}.h5" if kind == "keras" else f"models/model_{name.removeprefix('tflite_')}.tflite"
    return {"name": name, "file": file, "kind": kind, "raw_bytes": raw, "gzip_bytes": gz, "accuracy": acc,
            "note": note, "runtime": "Keras (tf_keras)" if kind == "keras" else "LiteRT"}


def sample_files(*, passed: bool = True, champion: str | None = None) -> dict[str, dict[str, Any]]:
    """Every record of one run, by file name."""
    min_acc = 0.9 if passed else 0.999
    gates = [
        {"name": "sparsity", "threshold": 0.79, "observed": 0.798611, "passed": True, "compared_to": None,
         "reason": "lowest pruned-layer sparsity 0.7986 (layer conv) vs floor 0.7900: ok"},
        {"name": "min_accuracy", "threshold": min_acc, "observed": 0.944444, "passed": passed, "compared_to": None,
         "reason": f"tflite_dynamic_range accuracy 0.9444 vs minimum {min_acc:.4f}: {'ok' if passed else 'FAILED'}"},
        {"name": "min_compression_ratio", "threshold": 5.0, "observed": 10.7759, "passed": True,
         "compared_to": "baseline", "reason": "gzipped baseline 554117 B / 51422 B = 10.78x vs minimum 5.00x: ok"},
    ]
    if champion:
        gates.append({"name": "champion_max_accuracy_drop_pp", "threshold": 1.0, "observed": 0.0, "passed": True,
                      "compared_to": f"champion {champion}", "reason": f"accuracy vs champion {champion}: ok"})
    return {
        L.METRICS: {
            "deployable": "tflite_dynamic_range",
            "artifacts": [
                _artifact("baseline", "keras", 614552, 554117, 0.958333, ".h5 without optimizer"),
                _artifact("pruned_unstripped", "keras", 2431008, 1066652, 0.944444, "wrappers, masks, optimizer"),
                _artifact("stripped", "keras", 614552, 166790, 0.944444),
                _artifact("tflite_float32", "tflite", 600116, 163070, 0.944444),
                _artifact("tflite_dynamic_range", "tflite", 155664, 51422, 0.944444, "deployable"),
                _artifact("tflite_int8", "tflite", 157464, 51922, 0.941667),
            ],
        },
        L.GATES: {
            "passed": passed,
            "summary": "all 3 gates passed" if passed else "gate(s) failed: min_accuracy (accuracy too low)",
            "champion": {"run_id": champion, "etag": "abc"} if champion else None,
            "gates": gates,
        },
        L.SPARSITY: {
            "target": 0.8, "tolerance": 0.01, "passed": True,
            "layers": [
                {"layer": "conv", "weights": 288, "zeros": 230, "sparsity": 0.798611, "target": 0.8, "passed": True},
                {"layer": "dense", "weights": 147456, "zeros": 117965, "sparsity": 0.800001, "target": 0.8,
                 "passed": True},
                {"layer": "norm", "weights": 64, "zeros": 0, "sparsity": 0.0, "target": None, "passed": True},
            ],
        },
        L.PRUNE_REC: {
            "accuracy": 0.944444,
            "pruned_layers": ["conv", "dense"],
            "schedule": {"kind": "polynomial_decay", "begin_step": 0, "end_step": 66, "frequency": 11,
                         "initial_sparsity": 0.5, "final_sparsity": 0.8, "power": 3.0, "steps_per_epoch": 45,
                         "total_steps": 90, "derived": True},
            "mask_update_steps": [0, 11, 22, 33, 44, 55, 66],
            "sparsity_by_step": [[s, round(0.8 + (0.5 - 0.8) * (1 - min(s, 66) / 66) ** 3, 6)] for s in range(90)],
            "history": {"accuracy": [0.94, 0.95], "loss": [0.35, 0.3]},
        },
        L.VALIDATION: {
            "dataset": "sklearn-digits", "dataset_sha256": "8b3b" + "0" * 60, "kind": "image", "rows": 1797,
            "test_rows": 0, "num_classes": 10, "feature_shape": [8, 8], "success": True,
            "checks": [
                {"name": "minimum rows", "expectation": "expect_table_row_count_to_be_between",
                 "expected": "min_value=100", "observed": 1797, "success": True},
                {"name": "label domain", "expectation": "expect_column_values_to_be_in_set",
                 "expected": "value_set=[0.0..9.0]", "observed": "0 of 1797 rows violate", "success": True},
            ],
        },
        L.SENSITIVITY: {
            "baseline_accuracy": 0.958, "ladder": [0.5, 0.9],
            "layers": [{"layer": "conv", "weights": 288,
                        "points": [{"sparsity": 0.5, "accuracy": 0.9, "drop_pp": 5.8},
                                   {"sparsity": 0.9, "accuracy": 0.5, "drop_pp": 45.8}]},
                       {"layer": "dense", "weights": 147456,
                        "points": [{"sparsity": 0.5, "accuracy": 0.958, "drop_pp": 0.0},
                                   {"sparsity": 0.9, "accuracy": 0.94, "drop_pp": 1.8}]}],
        },
        L.SEARCH: {
            "enabled": True, "sampler": "optuna TPE", "budget": {"max_trials": 3, "max_minutes": 5, "rounds": 1},
            "baseline_accuracy": 0.958, "baseline_gzip_bytes": 554117, "majority_rate": 0.1,
            "winner": 1, "winner_feasible": passed, "frontier": [1, 0], "seconds": {"trial": 20.5},
            "trials": [
                {"number": 0, "round": 1, "origin": "recipe", "state": "complete", "accuracy": 0.95,
                 "gzip_bytes": 51422, "feasible": True, "constraints": [-1.0], "seconds": 5.0,
                 "recipe": {"sparsity": {"conv": 0.8, "dense": 0.8}, "prune_epochs": 2, "variant": "dynamic_range"}},
                {"number": 1, "round": 1, "origin": "seed", "state": "complete", "accuracy": 0.944,
                 "gzip_bytes": 13400, "structure_gzip_bytes": 1200, "feasible": passed, "constraints": [-1.0],
                 "seconds": 9.5, "violations": [] if passed else ["accuracy 0.9440 < 0.9990"],
                 "recipe": {"sparsity": {"dense": 0.95}, "prune_epochs": 2, "clusters": {"dense": 8}, "qat": True,
                            "variant": "int8"}},
            ],
        },
        L.LATENCY: {"unit": "ms", "batch": 1, "median_of": 200,
                    "latency": {"tflite_float32": 0.0075, "tflite_dynamic_range": 0.0029, "tflite_int8": 0.0029}},
        L.CONFIG: {"gates": {"min_accuracy": min_acc, "min_compression_ratio": 5.0},
                   "prune": {"final_sparsity": 0.8, "block_size": [1, 1]}, "data": {"uri": None}},
    }


LINEAGE_JSON: dict[str, Any] = {
    "dataset": {"name": "sklearn-digits", "sha256": "8b3b" + "0" * 60, "rows": 1797},
    "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "tfmot": "0.8.1"},
    "git_commit": "c18ded98ca97d687a39683132d944ef25883bc59",
    "timings": {"validate": 3.0, "prune": 2.6, "publish": 0.01},
}
LINEAGE: dict[str, Any] = {**LINEAGE_JSON, "dataset": DatasetRef.model_validate(LINEAGE_JSON["dataset"])}


def sample_records(*, passed: bool = True, champion: str | None = None, run_id: str = "r1") -> RunRecords:
    files = {name: json.dumps(rec).encode() for name, rec in sample_files(passed=passed, champion=champion).items()}
    return records_from_files(files, run_id=run_id, status="passed" if passed else "rejected",
                              champion_compared=champion, created_at="2026-11-21T05:16:32+00:00", **LINEAGE)


def manifest(run_id: str, status: str, created_at: str, acc: float, gz: int, files: tuple[str, ...] = ()) -> bytes:
    return json.dumps({
        "schema": "shears.manifest/v1", "run_id": run_id, "status": status, "created_at": created_at,
        "gates_passed": status == "passed", "files": {f: {"sha256": "0" * 64, "bytes": 1} for f in files},
        "deployable": {"name": "tflite_dynamic_range", "accuracy": acc, "gzip_bytes": gz, "raw_bytes": gz * 3,
                       "file": "models/model_dynamic_range.tflite"},
        "config": {},
        **LINEAGE_JSON,
    }).encode()


def make_trend_store(root: Path) -> LocalStore:
    """r1 champion #1, r2 rejected, r3 passed + champion #2 (current), r4 passed, r5 stopped at validate."""
    store = LocalStore(root)
    store.put("runs/r1/manifest.json", manifest("r1", "passed", "2026-11-01T10:00:00+00:00", 0.944, 51422,
                                                (L.REPORT,)))
    store.put("runs/r1/report.html", b"<html></html>")
    store.put("rejected/r2/manifest.json", manifest("r2", "rejected", "2026-11-02T10:00:00+00:00", 0.90, 60000))
    rejected_gates = {"passed": False, "summary": "gate(s) failed: min_accuracy", "gates": []}
    store.put("rejected/r2/gates.json", json.dumps(rejected_gates).encode())
    store.put("runs/r3/manifest.json", manifest("r3", "passed", "2026-11-03T10:00:00+00:00", 0.95, 50000))
    store.put("runs/r4/manifest.json", manifest("r4", "passed", "2026-11-04T10:00:00+00:00", 0.949, 50500))
    failure = {"run_id": "r5", "stage": "validate", "exit_code": 3, "reason": "data failed validation",
               "at": "2026-11-05T10:00:00+00:00"}
    store.put("rejected/r5/failure.json", json.dumps(failure).encode())
    for seq, run_id, previous in ((1, "r1", None), (2, "r3", "r1")):
        pointer = json.dumps({"run_id": run_id, "seq": seq, "action": "promote", "manifest_sha256": "0" * 64,
                              "by": run_id, "at": "2026-11-03T10:00:00+00:00", "previous": previous}).encode()
        store.put(L.champion_history(seq), pointer)
    store.put(L.CHAMPION, pointer)
    return store


# --------------------------------------------------------------------------------------------------
# Tiny HTML inspection helpers


class _Page(HTMLParser):
    """Collects sections (id -> text, availability), every src/href, tag names and meta tags."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, Any]] = {}
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: set[str] = set()
        self.metas: list[dict[str, str | None]] = []
        self._current: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section" and a.get("id"):
            self._current = str(a["id"])
            self.sections[self._current] = {"text": "", "available": a.get("data-available"), "imgs": [],
                                            "headings": [], "rows": []}
        if tag == "tr" and self._current:
            self.sections[self._current]["rows"].append([])
        if tag in ("td", "th") and self._current and self.sections[self._current]["rows"]:
            self._cell = []
            self.sections[self._current]["rows"][-1].append(self._cell)
        for attr in ("src", "href", "srcset", "action", "data", "poster"):
            if a.get(attr) is not None:
                self.urls.append((tag, attr, str(a[attr])))
        if tag == "img" and self._current:
            self.sections[self._current]["imgs"].append(a.get("src"))
        if tag == "meta":
            self.metas.append(a)
        if tag == "h2" and self._current:
            self.sections[self._current]["headings"].append(True)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._current = None
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._current:
            self.sections[self._current]["text"] += data
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, section: str) -> list[list[str]]:
        """Table rows of a section as lists of whitespace-normalised cell texts."""
        return [[" ".join("".join(c).split()) for c in row] for row in self.sections[section]["rows"]]


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def assert_self_contained(html: str) -> _Page:
    """No external or relative resource loads: images are PNG data URIs; no scripts/styles/frames to fetch."""
    page = parse(html)
    for tag, attr, value in page.urls:
        if tag == "a" and attr == "href":
            assert not value.lower().startswith(("http:", "https:", "//")), value
            continue
        assert value.startswith("data:image/png;base64,"), f"<{tag} {attr}={value[:60]!r}> is not embedded"
    assert not page.tags & {"script", "link", "iframe", "object", "embed", "video", "audio", "source"}
    assert "http://" not in html and "https://" not in html
    csp = [m for m in page.metas if (m.get("http-equiv") or "").lower() == "content-security-policy"]
    assert csp and "default-src 'none'" in str(csp[0]["content"])
    return page


def decode_png(src: str) -> Image.Image:
    data = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# --------------------------------------------------------------------------------------------------
# Run report


def test_every_section_present_with_heading_and_content() -> None:
    page = assert_self_contained(build_run_report(sample_records()))
    assert list(page.sections) == list(SECTION_IDS)
    assert set(SECTION_IDS) == {"summary", "runtimes", "search", "sensitivity", "sizes", "accuracy", "sparsity",
                                "schedule", "gates", "validation", "lineage"}
    for sid, sec in page.sections.items():
        assert sec["headings"], f"section {sid} has no <h2>"
        assert sec["available"] == "true", f"{sid}: {sec['text'][:200]}"
        assert "not available" not in sec["text"].lower(), sid


def test_plots_are_embedded_pngs_that_decode() -> None:
    page = parse(build_run_report(sample_records()))
    imgs = {sid: sec["imgs"] for sid, sec in page.sections.items() if sec["imgs"]}
    assert set(imgs) == {"search", "sensitivity", "sizes", "accuracy", "sparsity", "schedule"}
    for srcs in imgs.values():
        for src in srcs:
            img = decode_png(src)
            assert img.width >= 400 and img.height >= 200
            assert len(set(img.convert("L").getdata())) > 10, "plot is blank"


def test_content_of_sections() -> None:
    page = parse(build_run_report(sample_records(champion="r0")))
    s = {k: " ".join(v["text"].split()) for k, v in page.sections.items()}
    assert "PASSED" in s["summary"] and "tflite_dynamic_range" in s["summary"]
    assert "10.8× smaller than baseline" in s["summary"]
    assert "2,431,008" in s["sizes"] and "1,066,652" in s["sizes"] and "-115,368 vs stripped" in s["sizes"]
    assert "0.9583" in s["accuracy"] and "0.0029" in s["accuracy"]
    assert "not pruned" in s["sparsity"] and "117,965" in s["sparsity"]
    assert "0, 11, 22, 33, 44, 55, 66" in s["schedule"]
    assert "8b3b" + "0" * 60 in s["lineage"] and "c18ded98ca97d687a39683132d944ef25883bc59" in s["lineage"]
    assert "tensorflow" in s["lineage"] and "2.21.0" in s["lineage"]
    assert "prune.final_sparsity" in s["lineage"] and "gates.min_accuracy" in s["lineage"]
    assert "Champion compared against: r0" in s["gates"]
    assert "sklearn-digits" in s["validation"] and "8×8" in s["validation"]
    assert "trial 1 published" in s["search"] and "13,400" in s["search"] and "validation split" in s["search"]
    assert "45.80" in s["sensitivity"] and "147,456" in s["sensitivity"]


def test_gate_verdicts_thresholds_and_champion_rendered() -> None:
    html = build_run_report(sample_records(passed=False, champion="champ-7"))
    page = parse(html)
    gates = " ".join(page.sections["gates"]["text"].split())
    assert "FAILED" in gates and "gate(s) failed: min_accuracy" in gates
    rows = {r[0]: r for r in page.rows("gates")}
    assert rows["gate"][:4] == ["gate", "threshold", "observed", "verdict"]
    assert rows["min_accuracy"][1:4] == ["0.999", "0.944444", "FAIL"]
    assert rows["sparsity"][1:4] == ["0.79", "0.798611", "pass"]
    assert rows["min_compression_ratio"][1:5] == ["5", "10.7759", "pass", "baseline"]
    assert rows["champion_max_accuracy_drop_pp"][3:5] == ["pass", "champion champ-7"]
    assert "Champion compared against: champ-7" in gates
    assert "REJECTED" in page.sections["summary"]["text"]
    assert '<tr class="failed"><td>min_accuracy</td>' in html


def test_rejected_folder_records_mark_missing_sections() -> None:
    files = sample_files(passed=False)
    kept = {k: json.dumps(v).encode() for k, v in files.items() if k in L.REJECTED_FILES}
    kept.pop(L.PRUNE_REC)  # a rejected run published before prune.json was kept with the records
    records = records_from_files(kept, run_id="rej", status="rejected")
    assert records.prune is None and records.latency is None and records.metrics is not None
    page = assert_self_contained(build_run_report(records))
    assert list(page.sections) == list(SECTION_IDS)
    sched = page.sections["schedule"]
    assert sched["available"] == "false" and "Not available" in sched["text"] and "prune.json" in sched["text"]
    assert not sched["imgs"]
    for sid in ("summary", "sizes", "accuracy", "sparsity", "gates", "validation", "lineage"):
        assert page.sections[sid]["available"] == "true", sid
    assert "latency.json not available" in page.sections["accuracy"]["text"]
    assert "no versions recorded" in page.sections["lineage"]["text"]


def test_nothing_but_a_run_id_still_renders() -> None:
    page = assert_self_contained(build_run_report(RunRecords(run_id="empty", status="unknown")))
    assert list(page.sections) == list(SECTION_IDS)
    missing = {sid for sid, sec in page.sections.items() if sec["available"] == "false"}
    assert missing == {"runtimes", "search", "sensitivity", "sizes", "accuracy", "sparsity", "schedule", "gates",
                       "validation"}
    for sid in missing:
        assert "Not available" in page.sections[sid]["text"]


def test_malformed_records_become_not_available_instead_of_raising() -> None:
    files = {name: json.dumps(rec).encode() for name, rec in sample_files().items()}
    files[L.METRICS] = json.dumps({"deployable": "x", "artifacts": [{"name": "baseline"}]}).encode()
    files[L.PRUNE_REC] = b'{"sparsity_by_step": "oops"'
    broken = records_from_files(files, run_id="bad", status="passed")
    assert broken.metrics is None and broken.prune is None and len(broken.problems) == 2
    page = parse(build_run_report(broken))
    assert page.sections["sizes"]["available"] == "false"
    assert page.sections["schedule"]["available"] == "false"
    assert page.sections["gates"]["available"] == "true"
    summary = " ".join(page.sections["summary"]["text"].split())
    assert "unreadable record" in summary and "metrics.json is not a valid shears.metrics/v1 record" in summary


def test_text_is_escaped() -> None:
    files = sample_files()
    files[L.GATES]["gates"][0]["reason"] = '<script>alert("x")</script><img src="https://evil.example/x.png">'
    records = records_from_files({k: json.dumps(v).encode() for k, v in files.items()}, run_id="esc",
                                 status="passed")
    html = build_run_report(records)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'src="https://evil' not in html


def test_same_records_give_identical_bytes() -> None:
    """The report is hashed into the manifest: it must not embed timestamps or random ids."""
    assert build_run_report(sample_records()) == build_run_report(sample_records())


def test_load_run_records_reads_a_rejected_folder(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for name, rec in sample_files(passed=False, champion="r0").items():
        if name in L.REJECTED_FILES:
            store.put(f"rejected/rej/{name}", json.dumps(rec).encode())
    store.put("rejected/rej/manifest.json", manifest("rej", "rejected", "2026-11-02T10:00:00+00:00", 0.94, 51422))
    records = load_run_records(store, "rejected/rej/")
    assert records.run_id == "rej" and records.status == "rejected"
    assert records.prune is not None and records.gates is not None and records.versions == LINEAGE["versions"]
    assert records.champion_compared == "r0" and records.created_at == "2026-11-02T10:00:00+00:00"
    page = parse(build_run_report(records))
    assert page.sections["schedule"]["available"] == "true"  # rejected runs keep their records, prune.json too
    assert "REJECTED" in page.sections["summary"]["text"]


def test_load_run_records_of_a_run_stopped_by_bad_data(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    validation = sample_files()[L.VALIDATION] | {"success": False}
    store.put("rejected/bad/validation.json", json.dumps(validation).encode())
    store.put("rejected/bad/failure.json", json.dumps({"stage": "validate", "reason": "data failed validation: x",
                                                       "run_id": "bad", "exit_code": 3,
                                                       "at": "2026-11-05T10:00:00+00:00"}).encode())
    records = load_run_records(store, "rejected/bad")
    assert records.status == "failed" and records.dataset and records.dataset.name == "sklearn-digits"
    page = parse(build_run_report(records))
    summary = page.sections["summary"]["text"]
    assert "stopped at" in summary and "data failed validation" in summary
    assert "INVALID" in page.sections["validation"]["text"]
    assert page.sections["gates"]["available"] == "false"


def test_records_from_staged_files_match_published_ones(tmp_path: Path) -> None:
    """step_publish builds from staged bytes; `shears report --run` from the store: same page."""
    store = LocalStore(tmp_path)
    files = {k: json.dumps(v).encode() for k, v in sample_files().items()}
    for name, data in files.items():
        store.put(f"runs/r1/{name}", data)
    store.put("runs/r1/manifest.json", manifest("r1", "passed", "2026-11-21T05:16:32+00:00", 0.944444, 51422))
    staged = records_from_files(files, run_id="r1", status="passed", created_at="2026-11-21T05:16:32+00:00",
                                **LINEAGE)
    assert build_run_report(load_run_records(store, "runs/r1")) == build_run_report(staged)


# --------------------------------------------------------------------------------------------------
# Trend


def test_trend_entries_order_status_and_champions(tmp_path: Path) -> None:
    entries = load_trend_entries(make_trend_store(tmp_path))
    assert [e.run_id for e in entries] == ["r1", "r2", "r3", "r4", "r5"]
    assert [e.status for e in entries] == ["passed", "rejected", "passed", "passed", "failed"]
    by = {e.run_id: e for e in entries}
    assert by["r1"].champion_seqs == (1,) and not by["r1"].current_champion
    assert by["r3"].champion_seqs == (2,) and by["r3"].current_champion
    assert by["r4"].champion_seqs == () and by["r2"].reason == "gate(s) failed: min_accuracy"
    assert by["r5"].accuracy is None and by["r5"].reason and "stopped at validate" in by["r5"].reason
    assert by["r1"].report_key == "runs/r1/report.html" and by["r3"].report_key is None
    assert [e.run_id for e in load_trend_entries(make_trend_store(tmp_path), last=2)] == ["r4", "r5"]


def test_trend_page(tmp_path: Path) -> None:
    entries = load_trend_entries(make_trend_store(tmp_path))
    page = assert_self_contained(build_trend_report(entries, source="/store", link_reports=True))
    assert set(page.sections) == {"trend", "runs"}
    (src,) = page.sections["trend"]["imgs"]
    assert decode_png(src).width >= 600
    runs = " ".join(page.sections["runs"]["text"].split())
    assert runs.index("r5") < runs.index("r4") < runs.index("r1")  # newest first
    assert "★ current #2" in runs and "promoted #1" in runs
    assert "gate(s) failed: min_accuracy" in runs and "rejected" in runs
    assert ("a", "href", "../runs/r1/report.html") in page.urls
    unlinked = parse(build_trend_report(entries, link_reports=False))
    assert not [u for u in unlinked.urls if u[0] == "a" and "report.html" in u[2]]


def test_trend_page_of_an_empty_store(tmp_path: Path) -> None:
    page = assert_self_contained(build_trend_report(load_trend_entries(LocalStore(tmp_path))))
    assert page.sections["trend"]["imgs"] == [] and "Not available" in page.sections["trend"]["text"]


def test_cli_writes_trend_into_the_store_or_to_out(tmp_path: Path) -> None:
    from shears.cli.main import app

    store = make_trend_store(tmp_path / "store")
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(tmp_path / "store"), "--last", "3"])
    assert res.exit_code == 0, res.output
    assert store.exists(TREND_REPORT) and str(tmp_path / "store" / "reports" / "trend.html") in res.output
    assert "trend over 3 runs" in res.output
    out = tmp_path / "local" / "trend.html"
    res = runner.invoke(app, ["report", str(tmp_path / "store"), "--out", str(out)])
    assert res.exit_code == 0, res.output and out.is_file()
    assert_self_contained(out.read_text())
    res = runner.invoke(app, ["report", str(tmp_path / "store"), "--run", "r2"])
    assert res.exit_code == 0, res.output
    assert store.exists(run_report_key("r2")) and not store.exists("rejected/r2/report.html")
    res = runner.invoke(app, ["report", str(tmp_path / "store"), "--run", "nope"])
    assert res.exit_code == 2


@pytest.mark.parametrize("bad", ["--last=0", "--last=-1"])
def test_cli_rejects_bad_last(tmp_path: Path, bad: str) -> None:
    from shears.cli.main import app

    assert CliRunner().invoke(app, ["report", str(tmp_path), bad]).exit_code == 2
