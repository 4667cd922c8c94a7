"""The report's plots: matplotlib's Agg canvas directly (no pyplot global state), PNG data URIs without timestamps."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from shears.records import ArtifactRecord, LayerSparsityRecord, Schedule, SensitivityRecord, TrialRecord
from shears.report.readers import TrendEntry

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PASS_COLOR = "#1a7f37"
FAIL_COLOR = "#cf222e"
RAW_COLOR = "#9ecae1"
GZIP_COLOR = "#2171b5"
NEUTRAL_COLOR = "#57606a"
CHAMPION_COLOR = "#d4a017"




def figure(width: float = 8.0, height: float = 3.6) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_data_uri(fig: Figure) -> str:
    """Render to PNG without a timestamp, so the same records always give the same bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _kb(n: float) -> str:
    return f"{n / 1000:,.1f} KB"


def plot_sizes(rows: Sequence[ArtifactRecord], deployable: str | None) -> str:
    fig = figure(8.0, 0.9 + 0.45 * len(rows))
    ax: Axes = fig.add_subplot()
    names = [r.name + ("  \u2605" if r.name == deployable else "") for r in rows]
    ys = list(range(len(rows)))
    raw = [float(r.raw_bytes) for r in rows]
    gz = [float(r.gzip_bytes) for r in rows]
    ax.barh([y - 0.2 for y in ys], raw, height=0.4, color=RAW_COLOR, label="raw bytes")
    ax.barh([y + 0.2 for y in ys], gz, height=0.4, color=GZIP_COLOR, label="gzipped bytes")
    top = max([*raw, *gz, 1.0])
    for y, r, g in zip(ys, raw, gz, strict=True):
        ax.text(r + top * 0.01, y - 0.2, _kb(r), va="center", fontsize=8, color=NEUTRAL_COLOR)
        ax.text(g + top * 0.01, y + 0.2, _kb(g), va="center", fontsize=8, color=GZIP_COLOR)
    base = next((float(r.gzip_bytes) for r in rows if r.name == "baseline"), None)
    if base is not None:
        ax.axvline(base, color=NEUTRAL_COLOR, linestyle=":", linewidth=1, label="baseline gzipped")
    ax.set_yticks(ys, names)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.18)
    ax.set_xlabel("bytes")
    ax.xaxis.set_major_formatter(lambda v, _pos: _kb(v))
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Artifact size along the pipeline (\u2605 deployable)", fontsize=10)
    return png_data_uri(fig)


def plot_accuracy(rows: Sequence[ArtifactRecord], deployable: str | None, min_accuracy: float | None) -> str:
    fig = figure(8.0, 3.4)
    ax: Axes = fig.add_subplot()
    from shears.task import metric_info

    primary = rows[0].primary if rows else "accuracy"
    label = metric_info(primary).label
    accs = [r.score for r in rows]
    xs = list(range(len(rows)))
    colors = [GZIP_COLOR if r.name == deployable else RAW_COLOR for r in rows]
    ax.bar(xs, accs, color=colors, edgecolor=GZIP_COLOR, linewidth=0.6)
    for x, a in zip(xs, accs, strict=True):
        ax.text(x, a, f"{a:.4f}", ha="center", va="bottom", fontsize=8)
    base = next((r.score for r in rows if r.name == "baseline"), None)
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
    if primary == "accuracy":
        # Zoom in on the interesting band, but keep every bar top and the gate line visibly inside the axes.
        ax.set_ylim(max(0.0, min(marks) - 0.05), min(1.005, max(marks) + 0.02))
    else:
        ax.set_ylim(0.0, max(marks) * 1.15 if marks and max(marks) > 0 else 1.0)
    ax.set_xticks(xs, [r.name for r in rows], rotation=20, ha="right", fontsize=8)
    better = "higher" if metric_info(primary).direction == "higher" else "lower"
    ax.set_ylabel(f"test {label} ({better} is better)")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    ax.set_title(f"Test {label} per artifact (dark: deployable)", fontsize=10)
    return png_data_uri(fig)


def plot_sparsity(layers: Sequence[LayerSparsityRecord], floor: float | None) -> str:
    fig = figure(8.0, 3.2)
    ax: Axes = fig.add_subplot()
    xs = list(range(len(layers)))
    targets = [r.target if r.target is not None else 0.0 for r in layers]
    achieved = [r.sparsity for r in layers]
    ax.bar([x - 0.2 for x in xs], targets, width=0.4, color=RAW_COLOR, label="target")
    ax.bar(
        [x + 0.2 for x in xs],
        achieved,
        width=0.4,
        color=[PASS_COLOR if r.passed else FAIL_COLOR for r in layers],
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
        [r.layer + ("" if r.target is not None else "\n(not pruned)") for r in layers],
        fontsize=8,
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of zero weights")
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    ax.set_title("Per-layer sparsity after strip: target vs achieved", fontsize=10)
    return png_data_uri(fig)


def plot_schedule(
    by_step: Sequence[tuple[int, float]], updates: Sequence[int], schedule: Schedule, achieved: float | None
) -> str:
    fig = figure(8.0, 3.4)
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
    per_epoch = schedule.steps_per_epoch
    if isinstance(per_epoch, int) and per_epoch > 0 and steps:
        for i, s in enumerate(range(per_epoch, max(steps) + 1, per_epoch)):
            ax.axvline(
                s,
                color=NEUTRAL_COLOR,
                linestyle=":",
                linewidth=0.8,
                label="epoch boundary" if i == 0 else None,
            )
    final = schedule.final_sparsity
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
    ax.set_title(f"Pruning schedule ({schedule.kind})", fontsize=10)
    return png_data_uri(fig)


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


def plot_trend(entries: Sequence[TrendEntry]) -> str:
    fig = figure(9.0, 5.6)
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
    return png_data_uri(fig)




def plot_search(trials: Sequence[TrialRecord], frontier: Sequence[int], winner: int | None,
                min_accuracy: float | None, baseline_accuracy: float | None, metric_label: str = "accuracy") -> str:
    """Every completed trial: gzipped bytes vs the validation metric, the Pareto frontier and the winner."""
    fig = figure(8.0, 4.2)
    ax: Axes = fig.add_subplot()
    done = [(t.number, float(t.gzip_bytes), float(t.score), t.feasible) for t in trials
            if t.state == "complete" and t.gzip_bytes and t.score is not None]
    for feasible, color, label in ((True, PASS_COLOR, "passes every gate"), (False, FAIL_COLOR, "fails a gate")):
        pts = [p for p in done if p[3] == feasible]
        if pts:
            ax.scatter([p[1] for p in pts], [p[2] for p in pts], color=color, s=36, zorder=3, label=label,
                       marker="o" if feasible else "x")
    front = [p for n in frontier for p in done if p[0] == n]
    if front:
        ax.plot([p[1] for p in front], [p[2] for p in front], color=NEUTRAL_COLOR, linewidth=1, linestyle="--",
                label="Pareto frontier")
    won = next((p for p in done if p[0] == winner), None)
    if won is not None:
        ax.scatter([won[1]], [won[2]], marker="*", s=220, color=CHAMPION_COLOR, edgecolors="black", linewidths=0.6,
                   zorder=4, label=f"published: trial {won[0]}")
    bounds = [(float(t.gzip_bytes), float(t.score), float(t.bound)) for t in trials
              if t.state == "complete" and t.gzip_bytes and t.score is not None and t.bound is not None]
    if bounds:  # each trial's metric at its plausible worst: what the gates judged
        ax.vlines([b[0] for b in bounds], [min(b[1], b[2]) for b in bounds], [max(b[1], b[2]) for b in bounds],
                  color=NEUTRAL_COLOR, linewidth=1, alpha=0.7, label="down to its confidence bound")
        ax.scatter([b[0] for b in bounds], [b[2] for b in bounds], marker="_", s=60, color=NEUTRAL_COLOR, zorder=2)
    for number, gz, acc, _ in done:
        ax.annotate(str(number), (gz, acc), textcoords="offset points", xytext=(4, 4), fontsize=7,
                    color=NEUTRAL_COLOR)
    if min_accuracy is not None:
        ax.axhline(min_accuracy, color=FAIL_COLOR, linestyle=":", linewidth=1, label=f"min_accuracy {min_accuracy:.4f}")
    if baseline_accuracy is not None:
        ax.axhline(baseline_accuracy, color=NEUTRAL_COLOR, linestyle=":", linewidth=1,
                   label=f"baseline {baseline_accuracy:.4f}")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(lambda v, _pos: _kb(v))
    ax.set_xlabel("deployable .tflite, gzipped (log scale)")
    ax.set_ylabel(f"validation {metric_label}")
    ax.margins(y=0.1)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    ax.set_title(f"Search trials: size vs {metric_label} on the validation split", fontsize=10)
    return png_data_uri(fig)


def plot_sensitivity(sensitivity: SensitivityRecord) -> str:
    """Accuracy drop of each layer pruned alone, per sparsity of the ladder (no fine-tune)."""
    fig = figure(8.0, 3.6)
    ax: Axes = fig.add_subplot()
    for row in sensitivity.layers:
        ax.plot([p.sparsity for p in row.points], [p.drop for p in row.points], marker="o", linewidth=1.2,
                label=f"{row.layer} ({row.weights:,} weights)")
    ax.axhline(0, color=NEUTRAL_COLOR, linewidth=0.8)
    ax.set_xlabel("sparsity of that layer alone")
    from shears.task import metric_info

    ax.set_ylabel(f"validation {metric_info(sensitivity.metric).label} worse by ({sensitivity.unit})")
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    ax.set_title("Per-layer sensitivity (magnitude pruning, no fine-tune)", fontsize=10)
    return png_data_uri(fig)


def plot_regression(pairs: Sequence[tuple[float, float]]) -> str:
    """The deployable on the test split: predicted vs actual (the diagonal is perfect) and the residuals."""
    y = np.array([p[0] for p in pairs])
    pred = np.array([p[1] for p in pairs])
    fig = figure(8.0, 3.6)
    left, right = fig.subplots(1, 2)
    left.scatter(y, pred, s=6, color=GZIP_COLOR, alpha=0.6)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    left.plot([lo, hi], [lo, hi], color=NEUTRAL_COLOR, linestyle=":", linewidth=1)
    left.set_xlabel("actual")
    left.set_ylabel("predicted")
    left.set_title("Predicted vs actual (test split)", fontsize=10)
    right.hist(pred - y, bins=40, color=RAW_COLOR, edgecolor=GZIP_COLOR, linewidth=0.4)
    right.axvline(0, color=NEUTRAL_COLOR, linewidth=0.8)
    right.set_xlabel("residual (predicted - actual)")
    right.set_title("Residuals", fontsize=10)
    return png_data_uri(fig)


def plot_binary(pairs: Sequence[tuple[float, float]], bins: int = 10) -> str:
    """The deployable on the test split: the ROC curve and the calibration curve (reliability diagram)."""
    y = np.array([p[0] for p in pairs]).astype(bool)
    score = np.array([p[1] for p in pairs])
    order = np.argsort(-score, kind="mergesort")
    tps = np.cumsum(y[order])
    fps = np.cumsum(~y[order])
    tpr = np.r_[0.0, tps / max(int(y.sum()), 1)]
    fpr = np.r_[0.0, fps / max(int((~y).sum()), 1)]
    fig = figure(8.0, 3.6)
    left, right = fig.subplots(1, 2)
    left.plot(fpr, tpr, color=GZIP_COLOR, linewidth=1.4)
    left.plot([0, 1], [0, 1], color=NEUTRAL_COLOR, linestyle=":", linewidth=1)
    left.set_xlabel("false positive rate")
    left.set_ylabel("true positive rate")
    left.set_title("ROC (test split)", fontsize=10)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(score, edges) - 1, 0, bins - 1)
    mean_p = [float(score[which == b].mean()) for b in range(bins) if np.any(which == b)]
    rate = [float(y[which == b].mean()) for b in range(bins) if np.any(which == b)]
    right.plot(mean_p, rate, marker="o", color=GZIP_COLOR, linewidth=1.2)
    right.plot([0, 1], [0, 1], color=NEUTRAL_COLOR, linestyle=":", linewidth=1)
    right.set_xlabel("predicted probability")
    right.set_ylabel("observed positive rate")
    right.set_title("Calibration", fontsize=10)
    return png_data_uri(fig)
