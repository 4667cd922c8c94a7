"""Gates. Each returns a result (threshold, observed, passed, reason); only callers raise."""

from __future__ import annotations

from shears.config import GateConfig
from shears.records import (
    ArtifactRecord,
    ChampionComparisonRecord,
    GateRecord,
    MicroRecord,
    SparsityRecord,
    TrimRecord,
)
from shears.task import drop, metric_info


def _gate(name: str, threshold: float, observed: float, ok: bool, what: str, compared_to: str | None) -> GateRecord:
    verdict = "ok" if ok else "FAILED"
    return GateRecord(name=name, threshold=threshold, observed=observed, passed=ok, reason=f"{what}: {verdict}",
                      compared_to=compared_to)


def sparsity_gate(strip: SparsityRecord) -> GateRecord:
    """The sparsity check as a gate: every pruned layer must reach its own target - tolerance (the one
    furthest from its target is reported), and a clustered layer may hold no more distinct values than
    its clusters."""
    pruned = [r for r in strip.layers if r.target is not None]
    worst = min(pruned, key=lambda r: r.sparsity - (r.target or 0.0)) if pruned else None
    observed = worst.sparsity if worst else 0.0
    floor = round((worst.target if worst and worst.target is not None else strip.target) - strip.tolerance, 6)
    ok = strip.passed and worst is not None
    where = f" (layer {worst.layer})" if worst else ""
    what = f"lowest pruned-layer sparsity vs its target: {observed:.4f}{where} vs floor {floor:.4f}"
    over = [r for r in strip.layers if r.clusters is not None and (r.distinct or 0) > r.clusters]
    if over:
        what += "; " + ", ".join(f"{r.layer} holds {r.distinct} distinct values > {r.clusters} clusters" for r in over)
    return _gate("sparsity", floor, observed, ok, what, None)


def skilled(margin_pp: float, minimum_pp: float) -> bool:
    """Beats the no-skill answer strictly, and by at least the minimum: a margin of 0 still fails a constant model."""
    return margin_pp > 0 and margin_pp >= minimum_pp


def evaluate_gates(
    baseline: ArtifactRecord,
    deployable: ArtifactRecord,
    cfg: GateConfig,
    strip: SparsityRecord | None = None,
    champion: ChampionComparisonRecord | None = None,
    *,
    majority_rate: float | None = None,
    no_skill: dict[str, float] | None = None,
    micro: MicroRecord | None = None,
) -> list[GateRecord]:
    """All configured gates; a gate whose threshold is None is skipped (not silently passed).

    What they judge is the deployable's primary metric (`deployable.primary`: accuracy for classifiers, MSE
    for regressors unless gates.metric says otherwise): accuracy with today's accuracy gates, any other metric
    with the metric gates (bounds, change from the baseline, skill over the constant answer), each with the
    metric's direction."""
    out: list[GateRecord] = []
    if strip is not None:
        out.append(sparsity_gate(strip))
    gz = deployable.gzip_bytes
    if deployable.primary == "accuracy":
        out += _accuracy_gates(baseline, deployable, cfg, majority_rate)
    else:
        out += metric_gates(baseline, deployable, cfg, (no_skill or {}).get(deployable.primary))
    if cfg.max_gzip_bytes is not None:
        out.append(
            _gate("max_gzip_bytes", cfg.max_gzip_bytes, gz, gz <= cfg.max_gzip_bytes,
                  f"{deployable.name} gzipped {gz} B vs maximum {cfg.max_gzip_bytes} B", None)
        )
    if cfg.min_compression_ratio is not None:
        ratio = round(baseline.gzip_bytes / max(gz, 1), 4)
        out.append(
            _gate("min_compression_ratio", cfg.min_compression_ratio, ratio, ratio >= cfg.min_compression_ratio,
                  f"gzipped baseline {baseline.gzip_bytes} B / {deployable.name} {gz} B = {ratio:.2f}x vs minimum "
                  f"{cfg.min_compression_ratio:.2f}x", "baseline")
        )
    if cfg.max_arena_bytes is not None:
        out.append(micro_gate(micro, cfg.max_arena_bytes))
    if champion is not None:
        out += champion_gates(champion, cfg, deployable)
    return out


def micro_gate(micro: MicroRecord | None, max_arena: int) -> GateRecord:
    """The deployable runs on TFLite Micro, with outputs that agree with LiteRT's, in at most `max_arena` bytes
    of tensor arena. Without a TFLite Micro run (convert.micro off) the gate cannot be met: it fails, saying so."""
    if micro is None:
        return _gate("max_arena_bytes", max_arena, 0, False, "the deployable was not run on TFLite Micro "
                     "(convert.micro is off, or the deployable is not int8): set convert.micro: true", None)
    if not micro.runs or micro.arena_bytes is None:
        return _gate("max_arena_bytes", max_arena, 0, False, f"does not run on TFLite Micro: {micro.reason}", None)
    ok = micro.arena_bytes <= max_arena and bool(micro.agrees)
    what = f"TFLite Micro tensor arena {micro.arena_bytes:,} B vs maximum {max_arena:,} B"
    if not micro.agrees:
        what += f"; its {micro.primary} differs from LiteRT's beyond the test split's rounding"
    return _gate("max_arena_bytes", max_arena, micro.arena_bytes, ok, what, None)


def metric_gates(baseline: ArtifactRecord, deployable: ArtifactRecord, cfg: GateConfig,
                 no_skill: float | None) -> list[GateRecord]:
    """TFMA-style value and change thresholds on any metric, with its direction; reasons name both, e.g.
    `tflite_int8 MSE 1.93 vs baseline 1.71 = +12.9 % > +10.0 %`."""
    metric = deployable.primary
    info = metric_info(metric)
    name, value, base = info.label, deployable.score, baseline.score
    better = "lower" if info.direction == "lower" else "higher"
    out: list[GateRecord] = []
    if cfg.metric_min is not None:
        out.append(_gate("metric_min", cfg.metric_min, value, value >= cfg.metric_min,
                         f"{deployable.name} {name} {value:.4g} vs minimum {cfg.metric_min:g}", None))
    if cfg.metric_max is not None:
        out.append(_gate("metric_max", cfg.metric_max, value, value <= cfg.metric_max,
                         f"{deployable.name} {name} {value:.4g} vs maximum {cfg.metric_max:g}", None))
    worse = round(drop(metric, base, value), 4)
    if cfg.max_change_pct is not None and info.unit == "%":
        out.append(_gate("max_change_pct", cfg.max_change_pct, worse, worse <= cfg.max_change_pct,
                         f"{deployable.name} {name} {value:.4g} vs baseline {base:.4g} = {worse:+.2f} % worse "
                         f"({better} is better) vs maximum +{cfg.max_change_pct:.2f} %", "baseline"))
    if cfg.max_change is not None:
        absolute = round(value - base if info.direction == "lower" else base - value, 6)
        out.append(_gate("max_change", cfg.max_change, absolute, absolute <= cfg.max_change,
                         f"{deployable.name} {name} {value:.4g} vs baseline {base:.4g}: worse by {absolute:.4g} "
                         f"({better} is better) vs maximum {cfg.max_change:g}", "baseline"))
    if cfg.min_skill_margin_pct is not None and info.unit == "%" and no_skill is not None:
        skill = round(-drop(metric, no_skill, value), 4)
        out.append(_gate("min_skill_margin_pct", cfg.min_skill_margin_pct, skill,
                         skilled(skill, cfg.min_skill_margin_pct),
                         f"{deployable.name} {name} {value:.4g} vs the constant answer's {no_skill:.4g} (training "
                         f"mean/median) = {skill:+.2f} % better vs minimum +{cfg.min_skill_margin_pct:.2f} % (and "
                         "above 0: a constant model never passes)", "constant answer"))
    return out


def _accuracy_gates(baseline: ArtifactRecord, deployable: ArtifactRecord, cfg: GateConfig,
                    majority_rate: float | None) -> list[GateRecord]:
    """The classifiers' gates, by their historical names (configs from before metrics had directions load)."""
    out: list[GateRecord] = []
    acc = deployable.score
    if cfg.min_accuracy is not None:
        out.append(
            _gate("min_accuracy", cfg.min_accuracy, acc, acc >= cfg.min_accuracy,
                  f"{deployable.name} accuracy {acc:.4f} vs minimum {cfg.min_accuracy:.4f}", None)
        )
    if cfg.min_skill_margin_pp is not None and majority_rate is not None:
        margin = round((acc - majority_rate) * 100, 4)
        out.append(
            _gate("min_skill_margin_pp", cfg.min_skill_margin_pp, margin, skilled(margin, cfg.min_skill_margin_pp),
                  f"{deployable.name} accuracy {acc:.4f} vs always answering the most frequent test class "
                  f"{majority_rate:.4f} = {margin:+.2f} pp vs minimum +{cfg.min_skill_margin_pp:.2f} pp (and above "
                  "0: a constant model never passes)", "majority class")
        )
    if cfg.max_accuracy_drop_pp is not None:
        lost = round((baseline.score - acc) * 100, 4)
        out.append(
            _gate("max_accuracy_drop_pp", cfg.max_accuracy_drop_pp, lost, lost <= cfg.max_accuracy_drop_pp,
                  f"accuracy drop {lost:.2f} pp from baseline {baseline.score:.4f} vs maximum "
                  f"{cfg.max_accuracy_drop_pp:.2f} pp", "baseline")
        )
    return out


def failed_summary(results: list[GateRecord]) -> str:
    """One line naming every failed gate and why."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return f"all {len(results)} gates passed"
    return "gate(s) failed: " + "; ".join(f"{r.name} ({r.reason})" for r in failed)


def champion_gates(c: ChampionComparisonRecord, cfg: GateConfig, deployable: ArtifactRecord) -> list[GateRecord]:
    """The regression gates against the champion, on this run's test split (never on its own old figures).

    Not comparable (another input shape, other classes, a changed file): one failing gate, or with
    `champion_incomparable: skip` one passing gate that says the champion gates were skipped and why.
    """
    ref = f"champion {c.run_id}"
    if not c.comparable:
        ok = cfg.champion_incomparable == "skip" and not c.tampered  # a changed champion file is never skipped
        what = f"{ref} not comparable on this data ({c.reason})" + ("; champion gates skipped" if ok else "")
        return [_gate("champion_comparable", 1, 0, ok, what, ref)]
    out = []
    if cfg.champion_max_size_increase_pct is not None and c.champion_gzip_bytes is not None:
        gz = deployable.gzip_bytes
        growth = round((gz - c.champion_gzip_bytes) / max(c.champion_gzip_bytes, 1) * 100, 4)
        out.append(
            _gate("champion_max_size_increase_pct", cfg.champion_max_size_increase_pct, growth,
                  growth <= cfg.champion_max_size_increase_pct,
                  f"gzipped {gz} B vs {ref} {c.champion_gzip_bytes} B (same gzip) = {growth:+.2f}% vs maximum "
                  f"+{cfg.champion_max_size_increase_pct:.2f}%", ref)
        )
    if cfg.champion_max_change_pct is not None and c.change_pct is not None:
        thr = cfg.champion_max_change_pct
        low = c.ci_low_pct if c.ci_low_pct is not None else c.change_pct
        judged = round(c.change_pct if cfg.champion_rule == "point" else low, 4)
        rule = "point" if cfg.champion_rule == "point" else "confident: the interval's lower bound"
        name = metric_info(c.metric).label
        out.append(
            _gate("champion_max_change_pct", thr, judged, judged <= thr,
                  f"on the same {c.n} test rows: {name} {c.challenger_score:.4g} vs {ref} {c.champion_score:.4g} = "
                  f"{c.change_pct:+.2f} % (lower is better; 95% interval {low:+.2f} to {c.ci_high_pct:+.2f} %; "
                  f"Wilcoxon p={c.wilcoxon_p:.3g}) vs maximum +{thr:.2f} % [{rule}]", ref)
        )
    if cfg.champion_max_accuracy_drop_pp is not None and c.difference_pp is not None:
        thr = cfg.champion_max_accuracy_drop_pp
        lost = round(-c.difference_pp, 4)
        drop_low = round(-(c.ci_high_pp if c.ci_high_pp is not None else c.difference_pp), 4)
        drop_high = round(-(c.ci_low_pp if c.ci_low_pp is not None else c.difference_pp), 4)
        judged = lost if cfg.champion_rule == "point" else drop_low
        rule = "point" if cfg.champion_rule == "point" else "confident: the interval's lower bound"
        auc = ""
        if c.auc_difference is not None:
            auc = f"; ΔAUC {c.auc_difference:+.4f} (95% interval {c.auc_ci_low:+.4f} to {c.auc_ci_high:+.4f})"
        out.append(
            _gate("champion_max_accuracy_drop_pp", thr, judged, judged <= thr,
                  f"on the same {c.n} test rows: {c.challenger_accuracy:.4f} vs {ref} {c.champion_accuracy:.4f} = "
                  f"drop {lost:.2f} pp (95% interval {drop_low:.2f} to {drop_high:.2f}; McNemar p={c.mcnemar_p:.3g}, "
                  f"{c.challenger_only}/{c.champion_only} discordant{auc}) vs maximum {thr:.2f} pp [{rule}]", ref)
        )
    return out


def trim_gate(trim: TrimRecord) -> GateRecord:
    """convert.trim changed no output: every test row's outputs identical before and after, in LiteRT and (when
    it runs the deployable) TFLite Micro. Never expected to fail: the trim is checked on a sample before it is
    kept; this is the proof on the whole test split."""
    micro = {None: "TFLite Micro not run", True: "TFLite Micro identical", False: "TFLite Micro DIFFERS"}
    ok = trim.litert_identical and trim.micro_identical is not False
    what = (f"trimmed deployable {trim.gzip_after:,} B gz (structure {trim.structure_after:,} B) vs "
            f"{trim.gzip_before:,} B ({trim.structure_before:,} B) untrimmed; outputs on {trim.rows:,} test rows: "
            f"LiteRT {'identical' if trim.litert_identical else 'DIFFER'}, {micro[trim.micro_identical]}")
    return _gate("trim_identical", 0, 0 if ok else 1, ok, what, "the untrimmed deployable")
