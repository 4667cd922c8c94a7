"""Gates. Each returns a result (threshold, observed, passed, reason); only callers raise."""

from __future__ import annotations

from shears.config import GateConfig
from shears.records import ArtifactRecord, ChampionComparisonRecord, GateRecord, SparsityRecord


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
) -> list[GateRecord]:
    """All configured gates; a gate whose threshold is None is skipped (not silently passed)."""
    out: list[GateRecord] = []
    if strip is not None:
        out.append(sparsity_gate(strip))
    acc = deployable.accuracy
    gz = deployable.gzip_bytes
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
    if cfg.max_gzip_bytes is not None:
        out.append(
            _gate("max_gzip_bytes", cfg.max_gzip_bytes, gz, gz <= cfg.max_gzip_bytes,
                  f"{deployable.name} gzipped {gz} B vs maximum {cfg.max_gzip_bytes} B", None)
        )
    if cfg.max_accuracy_drop_pp is not None:
        drop = round((baseline.accuracy - acc) * 100, 4)
        out.append(
            _gate("max_accuracy_drop_pp", cfg.max_accuracy_drop_pp, drop, drop <= cfg.max_accuracy_drop_pp,
                  f"accuracy drop {drop:.2f} pp from baseline {baseline.accuracy:.4f} vs maximum "
                  f"{cfg.max_accuracy_drop_pp:.2f} pp", "baseline")
        )
    if cfg.min_compression_ratio is not None:
        ratio = round(baseline.gzip_bytes / max(gz, 1), 4)
        out.append(
            _gate("min_compression_ratio", cfg.min_compression_ratio, ratio, ratio >= cfg.min_compression_ratio,
                  f"gzipped baseline {baseline.gzip_bytes} B / {deployable.name} {gz} B = {ratio:.2f}x vs minimum "
                  f"{cfg.min_compression_ratio:.2f}x", "baseline")
        )
    if champion is not None:
        out += champion_gates(champion, cfg, deployable)
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
    if cfg.champion_max_accuracy_drop_pp is not None and c.difference_pp is not None:
        thr = cfg.champion_max_accuracy_drop_pp
        drop = round(-c.difference_pp, 4)
        drop_low = round(-(c.ci_high_pp if c.ci_high_pp is not None else c.difference_pp), 4)
        drop_high = round(-(c.ci_low_pp if c.ci_low_pp is not None else c.difference_pp), 4)
        judged = drop if cfg.champion_rule == "point" else drop_low
        rule = "point" if cfg.champion_rule == "point" else "confident: the interval's lower bound"
        out.append(
            _gate("champion_max_accuracy_drop_pp", thr, judged, judged <= thr,
                  f"on the same {c.n} test rows: {c.challenger_accuracy:.4f} vs {ref} {c.champion_accuracy:.4f} = "
                  f"drop {drop:.2f} pp (95% interval {drop_low:.2f} to {drop_high:.2f}; McNemar p={c.mcnemar_p:.3g}, "
                  f"{c.challenger_only}/{c.champion_only} discordant) vs maximum {thr:.2f} pp [{rule}]", ref)
        )
    return out
