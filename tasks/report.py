"""Reports people can open without Airflow: one self-contained HTML page per run, and a trend page.

Self-contained means no network at all: CSS is inline, plots are base64 PNG data URIs, and a
Content-Security-Policy forbids anything else, so a report copied out of S3 or attached to a ticket
renders the same everywhere. Builders are pure (records in, HTML out) and never raise on missing or
malformed records: a rejected run keeps only a few records, so absent sections say "not available".
Plots use matplotlib's Agg canvas directly (no pyplot global state); HTML comes from jinja2
templates in tasks/templates/ with autoescaping on.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jinja2

from tasks import layout as L
from tasks.storage import Store

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Record = Mapping[str, Any]

# Where `shears report` writes inside a store (keys live in tasks.layout with every other key).
REPORTS_DIR = L.REPORTS_DIR
TREND_REPORT = L.TREND_REPORT
run_report_key = L.run_report_key


PASS_COLOR = "#1a7f37"
FAIL_COLOR = "#cf222e"
RAW_COLOR = "#9ecae1"
GZIP_COLOR = "#2171b5"
NEUTRAL_COLOR = "#57606a"
CHAMPION_COLOR = "#d4a017"


@dataclass(frozen=True)
class RunRecords:
    """The parsed records of one run; any record may be None (e.g. rejected runs keep only a few)."""

    run_id: str
    status: str  # "passed", "rejected", "failed" (stopped before the gates) or "unknown"
    metrics: Record | None = None
    gates: Record | None = None
    sparsity: Record | None = None
    prune: Record | None = None
    validation: Record | None = None
    latency: Record | None = None
    config: Record | None = None
    failure: Record | None = None
    created_at: str | None = None
    dataset: Record | None = None
    versions: Mapping[str, str] | None = None
    git_commit: str | None = None
    timings: Mapping[str, float] | None = None
    champion_compared: str | None = None


@dataclass(frozen=True)
class TrendEntry:
    """One run on the trend page (from its manifest, or its failure.json when it stopped early)."""

    run_id: str
    status: str  # "passed", "rejected" or "failed"
    created_at: str
    deployable: str | None = None
    accuracy: float | None = None
    gzip_bytes: int | None = None
    champion_seqs: tuple[int, ...] = ()  # positions in the champion history naming this run
    current_champion: bool = False
    reason: str | None = None
    report_key: str | None = None  # store key of the run's report.html, when it has one


class _NotAvailable(Exception):
    """A section's records are absent (not an error: rejected runs keep only a few records)."""


@dataclass(frozen=True)
class _Body:
    """What a section builder returns: the template context and its plots (PNG data URIs)."""

    data: dict[str, Any]
    plots: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Section:
    """What a run-report template section gets: a context dict, or why it is not available."""

    id: str
    title: str
    data: dict[str, Any] | None = None
    missing: str | None = None
    plots: list[dict[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# Loading records


def _json_or_none(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def records_from_files(
    files: Mapping[str, bytes],
    *,
    run_id: str,
    status: str,
    dataset: Record | None = None,
    versions: Mapping[str, str] | None = None,
    git_commit: str | None = None,
    timings: Mapping[str, float] | None = None,
    champion_compared: str | None = None,
    created_at: str | None = None,
) -> RunRecords:
    """RunRecords from files (name -> bytes) plus lineage: what step_publish holds before the manifest."""

    def rec(name: str) -> dict[str, Any] | None:
        return _dict_or_none(_json_or_none(files.get(name)))

    return RunRecords(
        run_id=run_id,
        status=status,
        metrics=rec(L.METRICS),
        gates=rec(L.GATES),
        sparsity=rec(L.SPARSITY),
        prune=rec(L.PRUNE_REC),
        validation=rec(L.VALIDATION),
        latency=rec(L.LATENCY),
        config=rec(L.CONFIG),
        failure=rec(L.FAILURE),
        created_at=created_at,
        dataset=dataset,
        versions=versions,
        git_commit=git_commit,
        timings=timings,
        champion_compared=champion_compared,
    )


def _infer_status(manifest: Record | None, gates: Record | None, failure: Record | None) -> str:
    if manifest and manifest.get("status") in ("passed", "rejected"):
        return str(manifest["status"])
    if failure is not None:
        return "failed"
    if gates is not None and "passed" in gates:
        return "passed" if gates["passed"] else "rejected"
    return "unknown"


def load_run_records(store: Store, prefix: str) -> RunRecords:
    """Read a run's records from runs/<id>/ or rejected/<id>/ (one listing, then only files that exist)."""
    prefix = prefix.strip("/")
    run_id = prefix.rsplit("/", 1)[-1]
    present = set(store.list(prefix + "/"))
    names = (
        L.METRICS,
        L.GATES,
        L.SPARSITY,
        L.PRUNE_REC,
        L.VALIDATION,
        L.LATENCY,
        L.CONFIG,
        L.FAILURE,
        L.MANIFEST,
    )
    files = {n: store.get(f"{prefix}/{n}") for n in names if f"{prefix}/{n}" in present}
    manifest = _dict_or_none(_json_or_none(files.get(L.MANIFEST))) or {}
    gates = _dict_or_none(_json_or_none(files.get(L.GATES)))
    failure = _dict_or_none(_json_or_none(files.get(L.FAILURE)))
    validation = _dict_or_none(_json_or_none(files.get(L.VALIDATION)))
    dataset = _dict_or_none(manifest.get("dataset"))
    if dataset is None and validation is not None:
        dataset = {
            "name": validation.get("dataset"),
            "sha256": validation.get("dataset_sha256"),
            "rows": validation.get("rows"),
        }
    if L.CONFIG not in files and isinstance(manifest.get("config"), dict):
        files[L.CONFIG] = json.dumps(manifest["config"]).encode()
    return records_from_files(
        files,
        run_id=str(manifest.get("run_id") or run_id),
        status=_infer_status(manifest or None, gates, failure),
        dataset=dataset,
        versions=_dict_or_none(manifest.get("versions")),
        git_commit=manifest.get("git_commit"),
        timings=_dict_or_none(manifest.get("timings")),
        champion_compared=manifest.get("champion_compared") or ((gates or {}).get("champion") or {}).get("run_id"),
        created_at=manifest.get("created_at") or (failure or {}).get("at"),
    )


_RUN_FILE_RE = re.compile(r"^(runs|rejected)/([^/]+)/(manifest\.json|failure\.json)$")


def _champions(store: Store) -> tuple[str | None, dict[str, list[int]]]:
    """Current champion run id and, per run id, its positions in the champion history."""
    from tasks.publish import read_champion_history

    current = _dict_or_none(_json_or_none(store.get(L.CHAMPION) if store.exists(L.CHAMPION) else None))
    seqs: dict[str, list[int]] = {}
    for entry in read_champion_history(store)[0]:
        if entry.get("run_id"):
            seqs.setdefault(str(entry["run_id"]), []).append(int(entry["seq"]))
    return (str(current["run_id"]) if current and current.get("run_id") else None), seqs


def load_trend_entries(store: Store, last: int | None = None) -> list[TrendEntry]:
    """The newest `last` runs, oldest first: runs/*/manifest.json, rejected/*/{manifest,failure}.json."""
    found: dict[tuple[str, str], set[str]] = {}
    for top in ("runs/", "rejected/"):
        for key in store.list(top):
            m = _RUN_FILE_RE.match(key)
            if m:
                found.setdefault((m.group(1), m.group(2)), set()).add(m.group(3))
    current, seqs = _champions(store)
    rows: list[tuple[str, str, str, dict[str, Any]]] = []  # (created_at, folder, run id, record)
    for (folder, run_id), names in found.items():
        name = L.MANIFEST if L.MANIFEST in names else L.FAILURE
        rec = _dict_or_none(_json_or_none(store.get(f"{folder}/{run_id}/{name}"))) or {}
        if name == L.FAILURE:
            rec = {
                "status": "failed",
                "created_at": rec.get("at", ""),
                "reason": rec.get("reason"),
                "stage": rec.get("stage"),
            }
        rows.append((str(rec.get("created_at") or ""), folder, run_id, rec))
    rows.sort(key=lambda r: (r[0], r[2]))
    if last is not None:
        rows = rows[-last:] if last > 0 else []
    out = []
    for created_at, folder, run_id, rec in rows:
        dep = _dict_or_none(rec.get("deployable")) or {}
        status = str(rec.get("status") or ("passed" if folder == "runs" else "rejected"))
        reason = rec.get("reason")
        if status == "failed" and rec.get("stage"):
            reason = f"stopped at {rec['stage']}: {reason}"
        elif status == "rejected" and store.exists(f"{folder}/{run_id}/{L.GATES}"):
            reason = (_dict_or_none(_json_or_none(store.get(f"{folder}/{run_id}/{L.GATES}"))) or {}).get("summary")
        files = _dict_or_none(rec.get("files")) or {}
        out.append(
            TrendEntry(
                run_id=run_id,
                status=status,
                created_at=created_at,
                deployable=dep.get("name"),
                accuracy=float(dep["accuracy"]) if isinstance(dep.get("accuracy"), int | float) else None,
                gzip_bytes=int(dep["gzip_bytes"]) if isinstance(dep.get("gzip_bytes"), int | float) else None,
                champion_seqs=tuple(sorted(seqs.get(run_id, []))) if folder == "runs" else (),
                current_champion=folder == "runs" and run_id == current,
                reason=str(reason) if reason else None,
                report_key=f"{folder}/{run_id}/{L.REPORT}" if L.REPORT in files else None,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------------
# Plots


def _figure(width: float = 8.0, height: float = 3.6) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png_data_uri(fig: Figure) -> str:
    """Render to PNG without a timestamp, so the same records always give the same bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _kb(n: float) -> str:
    return f"{n / 1000:,.1f} KB"


def _plot_sizes(rows: Sequence[Record], deployable: str | None) -> str:
    fig = _figure(8.0, 0.9 + 0.45 * len(rows))
    ax: Axes = fig.add_subplot()
    names = [str(r["name"]) + ("  \u2605" if r["name"] == deployable else "") for r in rows]
    ys = list(range(len(rows)))
    raw = [float(r["raw_bytes"]) for r in rows]
    gz = [float(r["gzip_bytes"]) for r in rows]
    ax.barh([y - 0.2 for y in ys], raw, height=0.4, color=RAW_COLOR, label="raw bytes")
    ax.barh([y + 0.2 for y in ys], gz, height=0.4, color=GZIP_COLOR, label="gzipped bytes")
    top = max([*raw, *gz, 1.0])
    for y, r, g in zip(ys, raw, gz, strict=True):
        ax.text(r + top * 0.01, y - 0.2, _kb(r), va="center", fontsize=8, color=NEUTRAL_COLOR)
        ax.text(g + top * 0.01, y + 0.2, _kb(g), va="center", fontsize=8, color=GZIP_COLOR)
    base = next((float(r["gzip_bytes"]) for r in rows if r["name"] == "baseline"), None)
    if base is not None:
        ax.axvline(base, color=NEUTRAL_COLOR, linestyle=":", linewidth=1, label="baseline gzipped")
    ax.set_yticks(ys, names)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.18)
    ax.set_xlabel("bytes")
    ax.xaxis.set_major_formatter(lambda v, _pos: _kb(v))
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Artifact size along the pipeline (\u2605 deployable)", fontsize=10)
    return _png_data_uri(fig)


def _plot_accuracy(rows: Sequence[Record], deployable: str | None, min_accuracy: float | None) -> str:
    fig = _figure(8.0, 3.4)
    ax: Axes = fig.add_subplot()
    accs = [float(r["accuracy"]) for r in rows]
    xs = list(range(len(rows)))
    colors = [GZIP_COLOR if r["name"] == deployable else RAW_COLOR for r in rows]
    ax.bar(xs, accs, color=colors, edgecolor=GZIP_COLOR, linewidth=0.6)
    for x, a in zip(xs, accs, strict=True):
        ax.text(x, a, f"{a:.4f}", ha="center", va="bottom", fontsize=8)
    base = next((float(r["accuracy"]) for r in rows if r["name"] == "baseline"), None)
    if base is not None:
        ax.axhline(base, color=NEUTRAL_COLOR, linestyle=":", linewidth=1, label=f"baseline {base:.4f}")
    if min_accuracy is not None:
        ax.axhline(
            min_accuracy,
            color=FAIL_COLOR,
            linestyle="--",
            linewidth=1,
            label=f"gate min_accuracy {min_accuracy:.4f}",
        )
    marks = [*accs, *([min_accuracy] if min_accuracy is not None else [])]
    # Zoom in on the interesting band, but keep every bar top and the gate line visibly inside the axes.
    ax.set_ylim(max(0.0, min(marks) - 0.05), min(1.005, max(marks) + 0.02))
    ax.set_xticks(xs, [str(r["name"]) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    ax.set_title("Test accuracy per artifact (dark: deployable)", fontsize=10)
    return _png_data_uri(fig)


def _plot_sparsity(layers: Sequence[Record], floor: float | None) -> str:
    fig = _figure(8.0, 3.2)
    ax: Axes = fig.add_subplot()
    xs = list(range(len(layers)))
    targets = [float(r["target"]) if r.get("target") is not None else 0.0 for r in layers]
    achieved = [float(r["sparsity"]) for r in layers]
    ax.bar([x - 0.2 for x in xs], targets, width=0.4, color=RAW_COLOR, label="target")
    ax.bar(
        [x + 0.2 for x in xs],
        achieved,
        width=0.4,
        color=[PASS_COLOR if r.get("passed", True) else FAIL_COLOR for r in layers],
        label="achieved",
    )
    for x, a in zip(xs, achieved, strict=True):
        ax.text(x + 0.2, a, f"{a:.3f}", ha="center", va="bottom", fontsize=8)
    if floor is not None:
        ax.axhline(
            floor,
            color=FAIL_COLOR,
            linestyle="--",
            linewidth=1,
            label=f"floor (target - tolerance) {floor:.3f}",
        )
    ax.set_xticks(
        xs,
        [str(r["layer"]) + ("" if r.get("target") is not None else "\n(not pruned)") for r in layers],
        fontsize=8,
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of zero weights")
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    ax.set_title("Per-layer sparsity after strip: target vs achieved", fontsize=10)
    return _png_data_uri(fig)


def _plot_schedule(
    by_step: Sequence[Sequence[float]], updates: Sequence[int], schedule: Record, achieved: float | None
) -> str:
    fig = _figure(8.0, 3.4)
    ax: Axes = fig.add_subplot()
    steps = [int(p[0]) for p in by_step]
    values = [float(p[1]) for p in by_step]
    ax.plot(steps, values, color=GZIP_COLOR, linewidth=1.2, label="scheduled target sparsity")
    lookup = dict(zip(steps, values, strict=True))
    upd = [s for s in updates if s in lookup]
    if upd:
        # Masks only change at update steps, so the weights follow a staircase under the curve.
        xs = [*upd, max(steps)]
        ys = [lookup[s] for s in upd] + [lookup[upd[-1]]]
        ax.plot(
            xs,
            ys,
            drawstyle="steps-post",
            color=FAIL_COLOR,
            linewidth=1.0,
            alpha=0.7,
            label="applied by masks",
        )
    ax.scatter(upd, [lookup[s] for s in upd], color=FAIL_COLOR, s=18, zorder=3, label="mask updates")
    per_epoch = schedule.get("steps_per_epoch")
    if isinstance(per_epoch, int) and per_epoch > 0 and steps:
        for i, s in enumerate(range(per_epoch, max(steps) + 1, per_epoch)):
            ax.axvline(
                s,
                color=NEUTRAL_COLOR,
                linestyle=":",
                linewidth=0.8,
                label="epoch boundary" if i == 0 else None,
            )
    final = schedule.get("final_sparsity")
    if isinstance(final, int | float):
        ax.axhline(
            float(final),
            color=NEUTRAL_COLOR,
            linestyle="--",
            linewidth=0.8,
            label=f"final target {final:.2f}",
        )
    if achieved is not None and steps:
        ax.scatter(
            [max(steps)],
            [achieved],
            marker="D",
            color=PASS_COLOR,
            s=30,
            zorder=4,
            label=f"achieved after strip {achieved:.3f}",
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("sparsity")
    ax.set_ylim(0, 1.0)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    ax.set_title(f"Pruning schedule ({schedule.get('kind', '?')})", fontsize=10)
    return _png_data_uri(fig)


def _trend_marker(e: TrendEntry) -> tuple[str, str, str]:
    """(marker, color, legend label) so each kind of run looks the same in both trend plots."""
    if e.current_champion:
        return "*", CHAMPION_COLOR, "current champion"
    if e.champion_seqs:
        return "o", CHAMPION_COLOR, "former champion"
    if e.status == "passed":
        return "o", GZIP_COLOR, "passed"
    return "X", FAIL_COLOR, "rejected"


def _short(run_id: str) -> str:
    return run_id if len(run_id) <= 24 else run_id[:22] + "\u2026"


def _plot_trend(entries: Sequence[TrendEntry]) -> str:
    fig = _figure(9.0, 5.6)
    ax_acc, ax_size = fig.subplots(2, 1, sharex=True)
    xs = list(range(len(entries)))
    for ax, value, label in (
        (ax_acc, "accuracy", "deployable accuracy"),
        (ax_size, "gzip_bytes", "deployable gzipped"),
    ):
        pts = [(x, getattr(e, value)) for x, e in zip(xs, entries, strict=True) if getattr(e, value) is not None]
        passed = [(x, v) for x, v in pts if entries[x].status == "passed"]
        if passed:
            ax.plot([p[0] for p in passed], [p[1] for p in passed], color=NEUTRAL_COLOR, linewidth=0.8, alpha=0.6)
        seen: set[str] = set()
        for x, v in pts:
            marker, color, kind = _trend_marker(entries[x])
            ax.scatter(
                [x],
                [v],
                marker=marker,
                color=color,
                s=140 if marker == "*" else 45,
                zorder=3,
                edgecolors="black" if kind == "former champion" else "none",
                linewidths=0.6,
                label=None if kind in seen else kind,
            )
            seen.add(kind)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.15)  # markers at the extremes stay clear of the frame
    ax_size.yaxis.set_major_formatter(lambda v, _pos: _kb(v))
    handles, labels = ax_acc.get_legend_handles_labels()  # both axes hold the same kinds: show them once
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    ax_acc.set_title("Deployable model over runs (oldest left)", fontsize=10)
    every = -(-len(entries) // 16)  # at most ~16 readable labels; the table below names every run
    labelled = [x for x in xs if x % every == 0 or x == xs[-1]]
    ax_size.set_xticks(
        labelled,
        [_short(entries[x].run_id) for x in labelled],
        rotation=30 if len(labelled) <= 8 else 60,
        ha="right",
        rotation_mode="anchor",
        fontsize=8,
    )
    ax_size.set_xticks(xs, minor=True)
    if len(xs) == 1:
        ax_size.set_xlim(-1, 1)
    return _png_data_uri(fig)


# ---------------------------------------------------------------------------------------------------
# Sections of the run report (each returns its template context; missing records -> "not available")


def _artifacts(r: RunRecords) -> list[Record]:
    if r.metrics is None:
        raise _NotAvailable("no metrics.json (the run stopped before evaluation)")
    arts = r.metrics.get("artifacts")
    if not isinstance(arts, list) or not arts:
        raise _NotAvailable("metrics.json lists no artifacts")
    return arts


def _deployable(r: RunRecords) -> str | None:
    dep = (r.metrics or {}).get("deployable")
    return str(dep) if dep else None


def _summary(r: RunRecords) -> _Body:
    dep_name = _deployable(r)
    arts = {a.get("name"): a for a in ((r.metrics or {}).get("artifacts") or [])}
    dep, base = arts.get(dep_name), arts.get("baseline")
    facts: list[tuple[str, str]] = []
    if dep:
        facts.append(("deployable", str(dep_name)))
        acc = f"{float(dep['accuracy']):.4f}"
        if base:
            drop_pp = (float(dep["accuracy"]) - float(base["accuracy"])) * 100
            acc += f" (baseline {float(base['accuracy']):.4f}, {drop_pp:+.2f} pp)"
        facts.append(("accuracy", acc))
        size = f"{int(dep['gzip_bytes']):,} B gzipped"
        if base:
            ratio = int(base["gzip_bytes"]) / max(int(dep["gzip_bytes"]), 1)
            size += f" ({ratio:.1f}\u00d7 smaller than baseline)"
        facts.append(("size", size))
    if r.gates:
        facts.append(("gates", str(r.gates.get("summary", ""))))
    champion = r.champion_compared or ((r.gates or {}).get("champion") or {}).get("run_id")
    if r.gates is not None:
        facts.append(("champion compared against", str(champion) if champion else "none (no champion yet)"))
    if r.failure:
        facts.append(("stopped at", f"{r.failure.get('stage', '?')}: {r.failure.get('reason', '')}"))
    if r.created_at:
        facts.append(("created", r.created_at))
    headline = {
        "passed": "PASSED: every gate passed; published to runs/",
        "rejected": "REJECTED: at least one gate failed; nothing was promoted",
        "failed": "FAILED: the run stopped before the gates",
    }.get(r.status, "status unknown")
    return _Body({"status": r.status, "headline": headline, "facts": facts})


# Which artifact each one is made from: the waterfall's steps (every TFLite variant comes from stripped).
_MADE_FROM = {"pruned_unstripped": "baseline", "stripped": "pruned_unstripped"}


def _made_from(art: Record) -> str | None:
    return "stripped" if art.get("kind") == "tflite" else _MADE_FROM.get(str(art.get("name")))


def _sizes(r: RunRecords) -> _Body:
    arts = _artifacts(r)
    gz_by_name = {str(a.get("name")): int(a["gzip_bytes"]) for a in arts}
    base = gz_by_name.get("baseline")
    rows = []
    for a in arts:
        gz = int(a["gzip_bytes"])
        src = _made_from(a)
        rows.append(
            {
                "name": a["name"],
                "kind": a.get("kind", ""),
                "file": a.get("file", ""),
                "note": a.get("note", ""),
                "raw": int(a["raw_bytes"]),
                "gzip": gz,
                "vs_baseline": f"{base / max(gz, 1):.2f}\u00d7" if base is not None else "\u2014",
                "delta": f"{gz - gz_by_name[src]:+,} vs {src}" if src in gz_by_name else "\u2014",
                "deployable": a.get("name") == _deployable(r),
            }
        )
    return _Body(
        {"rows": rows},
        plots=[{"src": _plot_sizes(arts, _deployable(r)), "alt": "raw and gzipped bytes per artifact"}],
    )


def _accuracy(r: RunRecords) -> _Body:
    arts = _artifacts(r)
    lat = (r.latency or {}).get("latency") or {}
    min_acc = ((r.config or {}).get("gates") or {}).get("min_accuracy")
    base = next((float(a["accuracy"]) for a in arts if a.get("name") == "baseline"), None)
    rows = [
        {
            "name": a["name"],
            "accuracy": float(a["accuracy"]),
            "delta_pp": "\u2014" if base is None else f"{(float(a['accuracy']) - base) * 100:+.2f}",
            "latency": f"{float(lat[a['name']]):.4f}" if a["name"] in lat else "\u2014",
            "deployable": a.get("name") == _deployable(r),
        }
        for a in arts
    ]
    latency_note = (
        f"batch-1 median of {r.latency.get('median_of')} invokes, {r.latency.get('unit', 'ms')}"
        if r.latency
        else "latency.json not available (not kept for rejected runs)"
    )
    return _Body(
        {"rows": rows, "latency_note": latency_note},
        plots=[
            {
                "src": _plot_accuracy(arts, _deployable(r), float(min_acc) if min_acc is not None else None),
                "alt": "test accuracy per artifact",
            }
        ],
    )


def _sparsity(r: RunRecords) -> _Body:
    if r.sparsity is None:
        raise _NotAvailable("no sparsity.json (the run stopped before strip)")
    layers = r.sparsity.get("layers") or []
    if not layers:
        raise _NotAvailable("sparsity.json lists no layers")
    target, tol = r.sparsity.get("target"), r.sparsity.get("tolerance")
    floor = round(float(target) - float(tol), 6) if target is not None and tol is not None else None
    return _Body(
        {
            "rows": layers,
            "target": target,
            "tolerance": tol,
            "floor": floor,
            "passed": r.sparsity.get("passed"),
        },
        plots=[{"src": _plot_sparsity(layers, floor), "alt": "per-layer sparsity, target vs achieved"}],
    )


def _schedule(r: RunRecords) -> _Body:
    if r.prune is None:
        raise _NotAvailable("no prune.json (it is not kept for rejected runs)")
    schedule = r.prune.get("schedule") or {}
    by_step = r.prune.get("sparsity_by_step") or []
    if not by_step:
        raise _NotAvailable("prune.json has no sparsity_by_step")
    updates = [int(s) for s in r.prune.get("mask_update_steps") or []]
    pruned = [row for row in (r.sparsity or {}).get("layers") or [] if row.get("target") is not None]
    achieved = None
    if pruned:
        achieved = sum(int(x["zeros"]) for x in pruned) / max(sum(int(x["weights"]) for x in pruned), 1)
    return _Body(
        {
            "schedule": sorted(schedule.items()),
            "updates": updates,
            "pruned_layers": r.prune.get("pruned_layers") or [],
            "accuracy": r.prune.get("accuracy"),
        },
        plots=[
            {
                "src": _plot_schedule(by_step, updates, schedule, achieved),
                "alt": "sparsity schedule over training steps",
            }
        ],
    )


def _gates(r: RunRecords) -> _Body:
    if r.gates is None:
        raise _NotAvailable("no gates.json (the run stopped before the gates)")
    champion = (r.gates.get("champion") or {}).get("run_id") or r.champion_compared
    return _Body(
        {
            "rows": r.gates.get("gates") or [],
            "passed": r.gates.get("passed"),
            "summary": r.gates.get("summary", ""),
            "champion": champion,
        },
    )


def _validation(r: RunRecords) -> _Body:
    v = r.validation
    if v is None:
        raise _NotAvailable("no validation.json")
    checks = v.get("checks") or []
    facts = [(k, v.get(k)) for k in ("dataset", "kind", "rows", "test_rows", "num_classes", "feature_shape") if k in v]
    return _Body(
        {
            "success": v.get("success", all(c.get("success") for c in checks)),
            "facts": facts,
            "checks": checks,
            "failed": sum(1 for c in checks if not c.get("success")),
        },
    )


def _flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping) and obj:
        for k in sorted(obj):
            yield from _flatten(obj[k], f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, json.dumps(obj) if not isinstance(obj, str) else obj


def _lineage(r: RunRecords) -> _Body:
    ds = r.dataset or {}
    timings = dict(r.timings or {})
    commit = r.git_commit
    return _Body(
        {
            "facts": [
                ("run id", r.run_id),
                ("status", r.status),
                ("created", r.created_at or "\u2014"),
                ("dataset", ds.get("name") or "\u2014"),
                ("dataset sha256", ds.get("sha256") or "\u2014"),
                ("dataset rows", ds.get("rows") if ds.get("rows") is not None else "\u2014"),
                ("git commit", commit or "not recorded (not run from a git checkout)"),
                ("champion compared against", r.champion_compared or "\u2014"),
            ],
            "dirty": bool(commit and commit.endswith("+dirty")),
            "versions": sorted((r.versions or {}).items()),
            "timings": sorted(timings.items(), key=lambda kv: -float(kv[1])),
            "total_seconds": round(sum(float(v) for v in timings.values()), 3),
            "config": list(_flatten(r.config)) if r.config else [],
        },
    )


_SECTIONS: tuple[tuple[str, str, Callable[[RunRecords], _Body]], ...] = (
    ("summary", "Summary", _summary),
    ("sizes", "Size waterfall", _sizes),
    ("accuracy", "Accuracy per artifact", _accuracy),
    ("sparsity", "Per-layer sparsity", _sparsity),
    ("schedule", "Sparsity schedule", _schedule),
    ("gates", "Gates", _gates),
    ("validation", "Data validation", _validation),
    ("lineage", "Lineage", _lineage),
)
SECTION_IDS = tuple(s[0] for s in _SECTIONS)


def _safe(section_id: str, title: str, build: Callable[[RunRecords], _Body], r: RunRecords) -> _Section:
    """A section never breaks the report (or the publish step calling it): failures become 'not available'."""
    try:
        body = build(r)
        return _Section(section_id, title, body.data, plots=body.plots)
    except _NotAvailable as exc:
        return _Section(section_id, title, missing=str(exc))
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        return _Section(section_id, title, missing=f"records are malformed ({type(exc).__name__}: {exc})")


# ---------------------------------------------------------------------------------------------------
# Rendering


def _fmt_num(value: Any) -> str:
    """Numbers for tables: ints with thousands separators, floats to 6 significant digits."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:.6g}"
    return str(value)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tasks", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt_num
    return env


def build_run_report(records: RunRecords) -> str:
    """The run's report.html: every section present, missing records marked 'not available'."""
    sections = [_safe(sid, title, fn, records) for sid, title, fn in _SECTIONS]
    return _env().get_template("run_report.html.j2").render(r=records, sections=sections)


def build_trend_report(entries: Sequence[TrendEntry], *, source: str = "", link_reports: bool = False) -> str:
    """The trend page over `entries` (oldest first); `link_reports` links run reports from reports/."""
    plot = _plot_trend(entries) if any(e.accuracy is not None for e in entries) else None
    counts = {s: sum(1 for e in entries if e.status == s) for s in ("passed", "rejected", "failed")}
    champion = next((e.run_id for e in entries if e.current_champion), None)
    return (
        _env()
        .get_template("trend_report.html.j2")
        .render(
            entries=list(reversed(entries)),
            plot=plot,
            counts=counts,
            source=source,
            champion=champion,
            link_reports=link_reports,
        )
    )
