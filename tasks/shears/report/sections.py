"""The sections of a run report: each builds its template context from typed records, or says why it cannot."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shears.records import ArtifactRecord, BaselineRecord
from shears.report.plots import (
    plot_accuracy,
    plot_binary,
    plot_regression,
    plot_schedule,
    plot_search,
    plot_sensitivity,
    plot_sizes,
    plot_sparsity,
)
from shears.report.readers import RunRecords
from shears.task import drop, metric_info


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


def _artifacts(r: RunRecords) -> list[ArtifactRecord]:
    if r.metrics is None:
        raise _NotAvailable("no metrics.json (the run stopped before evaluation)")
    if not r.metrics.artifacts:
        raise _NotAvailable("metrics.json lists no artifacts")
    return r.metrics.artifacts


def _deployable(r: RunRecords) -> str | None:
    return r.metrics.deployable if r.metrics else None


def model_origin(b: BaselineRecord) -> str:
    """Where the baseline came from, with the conversion's proof for a Keras 3 model rebuilt in tf_keras."""
    text = b.origin if b.pretrained is None else f"{b.origin} ({b.pretrained})"
    if b.conversion_max_abs_diff is not None:
        text += (f"; rebuilt in tf_keras, max |output difference| {b.conversion_max_abs_diff:.3g} on "
                 f"{b.conversion_samples} rows (tolerance {b.conversion_tolerance:g})")
    return text


def _summary(r: RunRecords) -> _Body:
    dep_name = _deployable(r)
    dep = r.metrics.artifact(dep_name) if r.metrics and dep_name else None
    base = r.metrics.artifact("baseline") if r.metrics else None
    facts: list[tuple[str, str]] = []
    if dep:
        facts.append(("deployable", dep.name))
        if r.metrics and r.metrics.task != "multiclass":
            facts.append(("task", r.metrics.task))
        info = metric_info(dep.primary)
        acc = f"{dep.score:.4g}"
        if base:
            worse = drop(dep.primary, base.score, dep.score)
            acc += f" (baseline {base.score:.4g}, {worse:+.2f} {info.unit} worse; {info.direction} is better)"
        facts.append((f"test {info.label}", acc))
        others = [f"{metric_info(k).label} {v:.4g}" for k, v in dep.metrics.items() if k != dep.primary]
        if others:
            facts.append(("other test metrics", ", ".join(others)))
        size = f"{dep.gzip_bytes:,} B gzipped"
        if base:
            ratio = base.gzip_bytes / max(dep.gzip_bytes, 1)
            size += f" ({ratio:.1f}\u00d7 smaller than baseline)"
        facts.append(("size", size))
    recipe = r.prune.recipe if r.prune else None
    if recipe is not None:
        which = f"search trial {r.prune.trial}" if r.prune and r.prune.trial is not None else "configured"
        facts.append(("recipe", f"{recipe.describe()} ({which})"))
    if r.metrics is not None and r.metrics.micro is not None:
        facts.append(("runs on TFLite Micro", r.metrics.micro.summary()))
    if r.baseline is not None:
        facts.append(("model", model_origin(r.baseline)))
    if r.gates:
        facts.append(("gates", r.gates.summary))
    champion = r.champion_compared or (r.gates.champion.run_id if r.gates and r.gates.champion else None)
    if r.gates is not None:
        facts.append(("champion compared against", str(champion) if champion else "none (no champion yet)"))
    if r.failure:
        facts.append(("stopped at", f"{r.failure.stage}: {r.failure.reason}"))
    if r.created_at:
        facts.append(("created", r.created_at))
    for problem in r.problems:
        facts.append(("unreadable record", problem))
    headline = {
        "passed": "PASSED: every gate passed; published to runs/",
        "rejected": "REJECTED: at least one gate failed; nothing was promoted",
        "failed": "FAILED: the run stopped before the gates",
    }.get(r.status, "status unknown")
    return _Body({"status": r.status, "headline": headline, "facts": facts})


# Which artifact each one is made from: the waterfall's steps (every TFLite variant comes from stripped).
_MADE_FROM = {"pruned_unstripped": "baseline", "stripped": "pruned_unstripped"}


def _made_from(art: ArtifactRecord) -> str | None:
    return "stripped" if art.kind == "tflite" else _MADE_FROM.get(art.name)


def _sizes(r: RunRecords) -> _Body:
    arts = _artifacts(r)
    gz_by_name = {a.name: a.gzip_bytes for a in arts}
    base = gz_by_name.get("baseline")
    rows = []
    for a in arts:
        gz = a.gzip_bytes
        src = _made_from(a)
        rows.append(
            {
                "name": a.name,
                "kind": a.kind,
                "runtime": a.runtime or "\u2014",
                "file": a.file,
                "note": a.note,
                "raw": a.raw_bytes,
                "gzip": gz,
                "vs_baseline": f"{base / max(gz, 1):.2f}\u00d7" if base is not None else "\u2014",
                "structure": a.structure_gzip_bytes,
                "delta": f"{gz - gz_by_name[src]:+,} vs {src}" if src in gz_by_name else "\u2014",
                "deployable": a.name == _deployable(r),
            }
        )
    return _Body(
        {"rows": rows},
        plots=[{"src": plot_sizes(arts, _deployable(r)), "alt": "raw and gzipped bytes per artifact"}],
    )


def _runtimes(r: RunRecords) -> _Body:
    """Which file to take for which runtime, and whether the deployable runs on TFLite Micro (and why not)."""
    if r.metrics is None:
        raise _NotAvailable("no metrics.json (the run stopped before evaluation)")
    refs = r.metrics.runtimes()
    if not refs:
        raise _NotAvailable("metrics.json says where no artifact runs (a run from before runtimes)")
    micro = r.metrics.micro
    rows = [{"runtime": x.runtime, "file": x.file, "raw": x.raw_bytes, "gzip": x.gzip_bytes,
             "score": (f"{metric_info(x.primary).label} {x.metrics[x.primary]:.4g}" if x.primary in x.metrics
                       else "\u2014"),
             "arena": x.arena_bytes, "note": x.note} for x in refs]
    return _Body({"rows": rows, "micro": micro.summary() if micro is not None else
                  "not checked (convert.micro is off; it is on by default for an int8 deployable)",
                  "ops": ", ".join(micro.ops) if micro is not None else ""})


def _accuracy(r: RunRecords) -> _Body:
    arts = _artifacts(r)
    lat = r.latency.latency if r.latency else {}
    primary = arts[0].primary if arts else "accuracy"
    min_acc = r.config.gates.min_accuracy if r.config and primary == "accuracy" else None
    base = next((a.score for a in arts if a.name == "baseline"), None)
    others = sorted({k for a in arts for k in a.metrics if k != primary})
    rows = [
        {
            "name": a.name,
            "accuracy": a.score,
            "others": [f"{a.metrics[k]:.4g}" if k in a.metrics else "\u2014" for k in others],
            "delta_pp": "\u2014" if base is None else f"{-drop(primary, base, a.score):+.2f}",
            "latency": f"{lat[a.name]:.4f}" if a.name in lat else "\u2014",
            "deployable": a.name == _deployable(r),
        }
        for a in arts
    ]
    latency_note = (
        f"batch-1 median of {r.latency.median_of} invokes, {r.latency.unit}"
        if r.latency
        else "latency.json not available (not kept for rejected runs)"
    )
    plots = [{"src": plot_accuracy(arts, _deployable(r), min_acc), "alt": f"test {metric_info(primary).label} per "
              "artifact"}]
    pairs = r.metrics.deployable_outputs if r.metrics else None
    if pairs:
        if r.metrics is not None and r.metrics.task == "regression":
            plots.append({"src": plot_regression(pairs), "alt": "deployable: predicted vs actual, residuals"})
        else:
            plots.append({"src": plot_binary(pairs), "alt": "deployable: ROC and calibration curves"})
    return _Body(
        {"rows": rows, "latency_note": latency_note, "metric": metric_info(primary).label,
         "unit": metric_info(primary).unit, "others": [metric_info(k).label for k in others]},
        plots=plots,
    )


def _sparsity(r: RunRecords) -> _Body:
    if r.sparsity is None:
        raise _NotAvailable("no sparsity.json (the run stopped before strip)")
    layers = r.sparsity.layers
    if not layers:
        raise _NotAvailable("sparsity.json lists no layers")
    floor = round(r.sparsity.target - r.sparsity.tolerance, 6)
    return _Body(
        {
            "rows": layers,
            "target": r.sparsity.target,
            "tolerance": r.sparsity.tolerance,
            "floor": floor,
            "passed": r.sparsity.passed,
        },
        plots=[{"src": plot_sparsity(layers, floor), "alt": "per-layer sparsity, target vs achieved"}],
    )


def _schedule(r: RunRecords) -> _Body:
    if r.prune is None:
        raise _NotAvailable("no prune.json (it is not kept for rejected runs)")
    by_step = r.prune.sparsity_by_step
    if not by_step:
        raise _NotAvailable("prune.json has no sparsity_by_step")
    updates = r.prune.mask_update_steps
    pruned = [row for row in (r.sparsity.layers if r.sparsity else []) if row.target is not None]
    achieved = None
    if pruned:
        achieved = sum(x.zeros for x in pruned) / max(sum(x.weights for x in pruned), 1)
    return _Body(
        {
            "schedule": sorted(r.prune.schedule.model_dump().items()),
            "updates": updates,
            "pruned_layers": r.prune.pruned_layers,
            "accuracy": r.prune.score,
        },
        plots=[
            {
                "src": plot_schedule(by_step, updates, r.prune.schedule, achieved),
                "alt": "sparsity schedule over training steps",
            }
        ],
    )


def _gates(r: RunRecords) -> _Body:
    if r.gates is None:
        raise _NotAvailable("no gates.json (the run stopped before the gates)")
    champion = (r.gates.champion.run_id if r.gates.champion else None) or r.champion_compared
    return _Body({"rows": r.gates.gates, "passed": r.gates.passed, "summary": r.gates.summary, "champion": champion,
                  "comparison": r.gates.comparison})


def _validation(r: RunRecords) -> _Body:
    v = r.validation
    if v is None:
        raise _NotAvailable("no validation.json")
    facts: list[tuple[str, Any]] = [
        (k, getattr(v, k)) for k in ("dataset", "kind", "rows", "test_rows", "num_classes", "feature_shape")]
    if v.class_names is not None:
        facts.append(("class names (id: name, models/labels.txt)",
                      ", ".join(f"{i}: {n}" for i, n in enumerate(v.class_names))))
    if v.channel_axis is not None:
        facts.append(("channel axis", f"{v.channel_axis} to fit the model's input "
                                      f"{tuple(v.model_input_shape or ())}"))
    return _Body({"success": v.success, "facts": facts, "checks": v.checks, "failed": len(v.failed)})


def _flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping) and obj:
        for k in sorted(obj):
            yield from _flatten(obj[k], f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, json.dumps(obj) if not isinstance(obj, str) else obj


def _lineage(r: RunRecords) -> _Body:
    ds = r.dataset
    timings = dict(r.timings or {})
    commit = r.git_commit
    config = r.config.to_json() if r.config else {}
    config.pop("schema", None)
    return _Body(
        {
            "facts": [
                ("run id", r.run_id),
                ("status", r.status),
                ("created", r.created_at or "\u2014"),
                ("dataset", (ds.name if ds else None) or "\u2014"),
                ("dataset sha256", (ds.sha256 if ds else None) or "\u2014"),
                ("dataset rows", ds.rows if ds and ds.rows is not None else "\u2014"),
                ("git commit", commit or "not recorded (not run from a git checkout)"),
                ("champion compared against", r.champion_compared or "\u2014"),
            ],
            "dirty": bool(commit and commit.endswith("+dirty")),
            "versions": sorted((r.versions or {}).items()),
            "timings": sorted(timings.items(), key=lambda kv: -float(kv[1])),
            "total_seconds": round(sum(float(v) for v in timings.values()), 3),
            "config": list(_flatten(config)) if config else [],
        },
    )


def _search(r: RunRecords) -> _Body:
    if r.search is None:
        raise _NotAvailable("no search.json (a run from before the search, or one stopped before it)")
    s = r.search
    rows = [{
        "number": t.number, "round": t.round, "origin": t.origin, "recipe": t.recipe.describe(), "state": t.state,
        "gzip": t.gzip_bytes, "structure": t.structure_gzip_bytes, "accuracy": t.score, "feasible": t.feasible,
        "why": "; ".join(t.violations) or (t.error or ""), "seconds": t.seconds, "winner": t.number == s.winner,
        "frontier": t.number in s.frontier, "bound": t.bound,
        "selection": (None if t.selection_feasible is None else
                      f"{t.selection_score:.4g} (bound {t.selection_bound:.4g}): "
                      + ("holds" if t.selection_feasible else "fails: " + "; ".join(t.selection_violations))),
    } for t in s.trials]
    min_acc = r.config.gates.min_accuracy if r.config else None
    data = {"rows": rows, "enabled": s.enabled, "sampler": s.sampler, "winner": s.winner,
            "feasible": s.winner_feasible, "budget": s.budget, "seconds": sorted(s.seconds.items()),
            "baseline_accuracy": s.baseline_score, "baseline_gzip": s.baseline_gzip_bytes,
            "metric": metric_info(s.metric).label, "confidence": s.confidence, "selection_rows": s.selection_rows,
            "judged_rows": s.judged_rows}
    plots = []
    if any(t.state == "complete" for t in s.trials):
        plots.append({"src": plot_search(s.trials, s.frontier, s.winner, min_acc if s.metric == "accuracy" else None,
                                         s.baseline_score, metric_info(s.metric).label),
                      "alt": "search trials: gzipped bytes vs validation accuracy"})
    return _Body(data, plots=plots)


def _sensitivity_section(r: RunRecords) -> _Body:
    if r.sensitivity is None:
        raise _NotAvailable("no sensitivity.json (the search was off)")
    sens = r.sensitivity
    rows = [{"layer": row.layer, "weights": row.weights, "drops": [p.drop for p in row.points]}
            for row in sens.layers]
    return _Body({"ladder": sens.ladder, "rows": rows, "baseline": sens.baseline_score, "method": sens.method,
                  "metric": metric_info(sens.metric).label, "unit": sens.unit},
                 plots=[{"src": plot_sensitivity(sens), "alt": "per-layer sensitivity"}])


SECTIONS: tuple[tuple[str, str, Callable[[RunRecords], _Body]], ...] = (
    ("summary", "Summary", _summary),
    ("runtimes", "Which file for which runtime", _runtimes),
    ("search", "Search", _search),
    ("sensitivity", "Per-layer sensitivity", _sensitivity_section),
    ("sizes", "Size waterfall", _sizes),
    ("accuracy", "Accuracy per artifact", _accuracy),
    ("sparsity", "Per-layer sparsity", _sparsity),
    ("schedule", "Sparsity schedule", _schedule),
    ("gates", "Gates", _gates),
    ("validation", "Data validation", _validation),
    ("lineage", "Lineage", _lineage),
)
SECTION_IDS = tuple(s[0] for s in SECTIONS)


def build_section(section_id: str, title: str, build: Callable[[RunRecords], _Body], r: RunRecords) -> _Section:
    """A section never breaks the report (or the publish step calling it): failures become 'not available'."""
    try:
        body = build(r)
        return _Section(section_id, title, body.data, plots=body.plots)
    except _NotAvailable as exc:
        return _Section(section_id, title, missing=str(exc))
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        return _Section(section_id, title, missing=f"records are malformed ({type(exc).__name__}: {exc})")




def build_sections(r: RunRecords) -> list[_Section]:
    return [build_section(sid, title, fn, r) for sid, title, fn in SECTIONS]
