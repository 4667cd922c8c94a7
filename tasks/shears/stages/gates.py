"""Gates. Each returns a result (threshold, observed, passed, reason); only callers raise."""

from __future__ import annotations

from dataclasses import dataclass

from shears.config import GateConfig
from shears.records import ArtifactRecord, GateRecord, SparsityRecord


@dataclass(frozen=True)
class ChampionRef:
    """What the regression gates need of the current champion (from its manifest)."""

    run_id: str
    accuracy: float
    gzip_bytes: int


def _gate(name: str, threshold: float, observed: float, ok: bool, what: str, compared_to: str | None) -> GateRecord:
    verdict = "ok" if ok else "FAILED"
    return GateRecord(name=name, threshold=threshold, observed=observed, passed=ok, reason=f"{what}: {verdict}",
                      compared_to=compared_to)


def sparsity_gate(strip: SparsityRecord) -> GateRecord:
    """The sparsity check as a gate: the weakest pruned layer must reach target - tolerance."""
    pruned = [r for r in strip.layers if r.target is not None]
    worst = min(pruned, key=lambda r: r.sparsity) if pruned else None
    observed = worst.sparsity if worst else 0.0
    floor = round(strip.target - strip.tolerance, 6)
    ok = strip.passed and worst is not None
    where = f" (layer {worst.layer})" if worst else ""
    return _gate(
        "sparsity", floor, observed, ok, f"lowest pruned-layer sparsity {observed:.4f}{where} vs floor {floor:.4f}",
        None,
    )


def evaluate_gates(
    baseline: ArtifactRecord,
    deployable: ArtifactRecord,
    cfg: GateConfig,
    strip: SparsityRecord | None = None,
    champion: ChampionRef | None = None,
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
            _gate("min_skill_margin_pp", cfg.min_skill_margin_pp, margin, margin >= cfg.min_skill_margin_pp,
                  f"{deployable.name} accuracy {acc:.4f} vs always answering the most frequent test class "
                  f"{majority_rate:.4f} = {margin:+.2f} pp vs minimum +{cfg.min_skill_margin_pp:.2f} pp",
                  "majority class")
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
        ref = f"champion {champion.run_id}"
        if cfg.champion_max_size_increase_pct is not None:
            growth = round((gz - champion.gzip_bytes) / max(champion.gzip_bytes, 1) * 100, 4)
            out.append(
                _gate("champion_max_size_increase_pct", cfg.champion_max_size_increase_pct, growth,
                      growth <= cfg.champion_max_size_increase_pct,
                      f"gzipped {gz} B vs {ref} {champion.gzip_bytes} B = {growth:+.2f}% vs maximum "
                      f"+{cfg.champion_max_size_increase_pct:.2f}%", ref)
            )
        if cfg.champion_max_accuracy_drop_pp is not None:
            drop = round((champion.accuracy - acc) * 100, 4)
            out.append(
                _gate("champion_max_accuracy_drop_pp", cfg.champion_max_accuracy_drop_pp, drop,
                      drop <= cfg.champion_max_accuracy_drop_pp,
                      f"accuracy {acc:.4f} vs {ref} {champion.accuracy:.4f} = drop {drop:.2f} pp vs maximum "
                      f"{cfg.champion_max_accuracy_drop_pp:.2f} pp", ref)
            )
    return out


def failed_summary(results: list[GateRecord]) -> str:
    """One line naming every failed gate and why."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return f"all {len(results)} gates passed"
    return "gate(s) failed: " + "; ".join(f"{r.name} ({r.reason})" for r in failed)
