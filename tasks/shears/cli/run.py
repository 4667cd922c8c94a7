"""`shears run`: the whole chain in one process, with the artifact, sparsity and gate tables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shears.cli.common import err, fail, out
from shears.errors import ShearsError
from shears.records import GatesRecord, LatencyRecord, MetricsRecord, SearchRecord, SparsityRecord


def _fmt_bytes(n: int) -> str:
    return f"{n:,}"


def artifact_table(metrics: MetricsRecord, latency: LatencyRecord | None) -> Table:
    from shears.task import metric_info

    base = metrics.baseline
    names = list(base.metrics) or [base.primary]  # the primary metric first, then the task's others
    names = [base.primary, *(n for n in names if n != base.primary)]
    t = Table(title="Artifacts (why is my pruned model bigger?)")
    for col in ("artifact", "runtime", "raw bytes", "gzip bytes", "gz vs baseline",
                *(metric_info(n).label for n in names), "latency ms", "note"):
        t.add_column(col, justify="left" if col in ("artifact", "runtime", "note") else "right")
    lat = latency.latency if latency else {}
    for a in metrics.artifacts:
        ratio = base.gzip_bytes / max(a.gzip_bytes, 1)
        t.add_row(a.name, a.runtime or "-", _fmt_bytes(a.raw_bytes), _fmt_bytes(a.gzip_bytes), f"{ratio:.2f}x",
                  *(f"{a.metrics[n]:.4f}" if n in a.metrics else "-" for n in names),
                  f"{lat[a.name]:.3f}" if a.name in lat else "-", a.note)
    return t


def comparison_line(gates: GatesRecord) -> str | None:
    """The champion comparison in one line: both accuracies on this run's test rows, the paired difference."""
    c = gates.comparison
    if c is None:
        return None
    if not c.comparable:
        return f"champion {c.run_id}: not comparable on this data ({c.reason})"
    if c.challenger_score is not None:  # a regressor: mean per-row loss, paired interval, Wilcoxon
        return (f"champion {c.run_id} on this run's {c.n} test rows: {c.metric.upper()} challenger "
                f"{c.challenger_score:.4g} vs champion {c.champion_score:.4g} = {c.change_pct:+.2f} % (95% interval "
                f"{c.ci_low_pct:+.2f} to {c.ci_high_pct:+.2f} %; lower is better), Wilcoxon p={c.wilcoxon_p:.3g}")
    data = "the same data" if c.same_data else "other data (its own recorded accuracy: " + (
        f"{c.champion_recorded_accuracy:.4f})" if c.champion_recorded_accuracy is not None else "unknown)")
    return (f"champion {c.run_id} on this run's {c.n} test rows: challenger {c.challenger_accuracy:.4f} vs champion "
            f"{c.champion_accuracy:.4f} = {c.difference_pp:+.2f} pp (95% interval {c.ci_low_pp:+.2f} to "
            f"{c.ci_high_pp:+.2f}), McNemar p={c.mcnemar_p:.3g} ({c.challenger_only}/{c.champion_only} discordant); "
            f"champion trained on {data}")


def _short(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def data_lines(results: dict[str, Any]) -> list[str]:
    """What was done to the data and the model to make them meet: channel axis, class names, the model's origin."""
    lines = []
    v = results.get("validate") or {}
    if v.get("task"):
        lines.append(f"task: {v['task']}: {v.get('task_reason') or 'as configured'}")
    if v.get("task_defaults"):
        filled = ", ".join(f"{k} {_short(val)}" for k, val in v["task_defaults"].items())
        lines.append(f"config: {filled} (the task's defaults for fields the config leaves unset)")
    if v.get("channel_axis"):
        lines.append(f"data: channel axis {v['channel_axis']} to fit the model's input shape")
    if v.get("classes"):
        names = ", ".join(f"{i} {n}" for i, n in enumerate(v["classes"][:12]))
        more = f", ... ({len(v['classes'])} classes)" if len(v["classes"]) > 12 else ""
        lines.append(f"labels: class names mapped to ids by sorted name: {names}{more} (models/labels.txt)")
    b = results.get("baseline") or {}
    if b.get("origin"):
        text = f"model: {b['origin']}"
        if b.get("conversion_max_abs_diff") is not None:
            text += (f"; rebuilt in tf_keras: max |output difference| {b['conversion_max_abs_diff']:.3g} on "
                     f"{b['conversion_samples']} rows (tolerance {b['conversion_tolerance']:g})")
        lines.append(text)
    for note in b.get("kept") or []:
        lines.append(f"model: {note}")
    for note in b.get("limits") or []:
        lines.append(f"model: {note}")
    return lines


def gate_table(gates: GatesRecord) -> Table:
    from shears.report.tables import GATE_COLUMNS, gate_rows

    t = Table(title="Gates")
    for col in GATE_COLUMNS:
        t.add_column(col)
    for r in gate_rows(gates):
        t.add_row(r.gate, r.threshold, r.observed, "[green]pass[/]" if r.passed else "[bold red]FAIL[/]", r.reason)
    return t


def search_table(search: SearchRecord, top: int = 8) -> Table:
    """The size/metric frontier of the search (validation split), winner marked."""
    from shears.task import metric_info

    by = {t.number: t for t in search.trials}
    metric = f"val {metric_info(search.metric).label}"
    feasible = sum(1 for t in search.trials if t.feasible)
    t = Table(title=f"Search: {len(search.trials)} trials, {feasible} passed the gates on the validation split; "
                    "frontier (smallest first)")
    bound = "bound"
    if search.confidence is not None:  # with judged_rows: a bound of what the test split will measure
        judged = f", {search.judged_rows:,} test rows" if search.judged_rows else ""
        bound = f"bound ({search.confidence:.0%}{judged})"
    for col in ("trial", "gzip bytes", metric, bound, "passes", "selection slice", "recipe"):
        t.add_column(col, justify="right" if col in ("gzip bytes", metric, bound) else "left")
    shown = [by[n] for n in search.frontier][:top]
    for n in [*search.second_look, search.winner]:  # every trial re-scored, and the winner, even off the frontier
        if n is not None and n not in [r.number for r in shown]:
            shown.append(by[n])
    for r in shown:
        mark = " *" if r.number == search.winner else ""
        verdict = "holds" if r.selection_feasible else "[red]fails[/]"
        second = ("-" if r.selection_feasible is None else
                  f"{r.selection_score:.4g} (bound {r.selection_bound:.4g}): {verdict}")
        t.add_row(f"{r.number}{mark}", f"{r.gzip_bytes:,}" if r.gzip_bytes else "-",
                  f"{r.score:.4g}" if r.score is not None else "-", f"{r.bound:.4g}" if r.bound is not None else "-",
                  "yes" if r.feasible else "[red]no[/]", second, r.recipe.describe())
    return t


def sparsity_table(sp: SparsityRecord) -> Table:
    t = Table(title=f"Sparsity after strip (target {sp.target:.2f}, tolerance {sp.tolerance:.2f})")
    for col in ("layer", "weights", "zeros", "sparsity", "target", "ok"):
        t.add_column(col)
    for r in sp.layers:
        t.add_row(r.layer, _fmt_bytes(r.weights), _fmt_bytes(r.zeros), f"{r.sparsity:.4f}",
                  "-" if r.target is None else f"{r.target:.2f}", "yes" if r.passed else "[red]NO[/]")
    return t


def load_signing_key(path: Path | None) -> Any:
    """The signing key from a file (passphrase from $SHEARS_SIGNING_KEY_PASSPHRASE), or None without a path."""
    import os

    if path is None:
        return None
    from shears.release.signing import SigningKey

    passphrase = os.environ.get("SHEARS_SIGNING_KEY_PASSPHRASE")
    return SigningKey.from_file(path, passphrase.encode() if passphrase else None)


def run(
    config: Annotated[Path | None, typer.Option("--config", help="pipeline YAML")] = None,
    data: Annotated[str | None, typer.Option("--data", help="NPZ/CSV/Parquet path or s3:// URI")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="label column of CSV/Parquet")] = None,
    model: Annotated[str | None, typer.Option("--model", help="pre-trained .keras/.h5 to prune")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="local artifact store directory")] = Path("artifacts"),
    store_uri: Annotated[
        str | None, typer.Option("--store", help="artifact store: directory or s3://bucket/prefix")
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="run id (default: UTC time + random suffix)")] = None,
    force_claim: Annotated[bool, typer.Option(
        "--force-claim", help="take over the run id's claim if its holder is dead or its heartbeat stale")] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=64, help="run the search's trials in N processes")] = 1,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", envvar="SHEARS_SIGNING_KEY",
        help="EC private key (PEM) to sign the run folder with; passphrase in $SHEARS_SIGNING_KEY_PASSPHRASE")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", help="also show TensorFlow's C++ start-up lines (same as SHEARS_VERBOSE=1)")] = False,
) -> None:
    """Validate → baseline → search (sensitivity, trials) → select → evaluate → gate → publish."""
    from shears.keras import quiet

    if verbose:
        os.environ[quiet.ENV_VERBOSE] = "1"  # also reaches the --jobs trial processes
    quiet.install()  # before anything imports TensorFlow
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from shears.config import load_config
    from shears.policy import ENV_POLICY, load_policy
    from shears.run.pipeline import new_run_id, run_pipeline
    from shears.store import LocalStore, open_store
    from shears.store.layout import check_run_id

    try:
        rid = new_run_id() if run_id is None else check_run_id(run_id)
        cfg = load_config(config, {"data.uri": data, "data.label_column": label_column, "model.pretrained": model})
        policy = load_policy(os.environ.get(ENV_POLICY))  # the deployment's floors: never from the run's config
        key = load_signing_key(signing_key)
        store = open_store(store_uri or out_dir)
        if isinstance(store, LocalStore):
            store.check_writable()
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                      transient=False, disable=not err.is_terminal) as progress:
            ids: dict[str, Any] = {}

            def on_step(name: str, state: str) -> None:
                if state == "start":
                    ids[name] = progress.add_task(f"{name}", total=1)
                else:
                    progress.update(ids[name], completed=1, description=f"{name} [{state}]")
                if not err.is_terminal:
                    err.print(f"step {name}: {state}", highlight=False)

            outcome = run_pipeline(store, cfg, rid, on_step=on_step, force_claim=force_claim, jobs=jobs,
                                   signing_key=key, policy=policy)
    except ShearsError as exc:
        raise fail(exc) from None
    for note in data_lines(outcome.results):
        out.print(note, highlight=False, soft_wrap=True)
    if outcome.search and outcome.search.enabled:
        out.print(search_table(outcome.search))
    if outcome.sparsity:
        out.print(sparsity_table(outcome.sparsity))
    if outcome.metrics:
        out.print(artifact_table(outcome.metrics, outcome.latency))
        micro = outcome.metrics.micro
        out.print(f"runs on TFLite Micro: {micro.summary()}" if micro is not None else
                  "runs on TFLite Micro: not checked (convert.micro off; on by default for an int8 deployable)",
                  highlight=False, soft_wrap=True)
    if outcome.gates:
        out.print(gate_table(outcome.gates))
        line = comparison_line(outcome.gates)
        if line:
            out.print(line, highlight=False, soft_wrap=True)
    chosen = outcome.results.get("select") or {}
    if chosen.get("recipe"):
        out.print(f"published recipe: {chosen['recipe']} (trial {chosen['winner']}; figures above: test split)",
                  highlight=False, soft_wrap=True)
    where = f"{outcome.store}/runs/{rid}" if outcome.passed else f"{outcome.store}/rejected/{rid}"
    out.print(f"run {rid}: {'PASSED' if outcome.passed else 'REJECTED'} -> {where}", highlight=False)
    if outcome.metrics:
        out.print(f"report: {where}/report.html", highlight=False)
        out.print(f"model card: {where}/model_card.md (shears show {outcome.store} {rid})", highlight=False)
        if key is not None:
            out.print(f"signed: {where}/model.sig (key id {key.key_id})", highlight=False)
    if outcome.error is not None:
        raise fail(outcome.error)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
