from __future__ import annotations

import pytest
from shears.config import GateConfig
from shears.records import ArtifactRecord, ChampionComparisonRecord, LayerSparsityRecord, SparsityRecord
from shears.stages.gates import evaluate_gates, failed_summary

BASE = ArtifactRecord(name="baseline", file="b.h5", kind="keras", raw_bytes=600_000, gzip_bytes=550_000, accuracy=0.97)
DEP = ArtifactRecord(name="tflite_dynamic_range", file="m.tflite", kind="tflite", raw_bytes=150_000, gzip_bytes=50_000,
                     accuracy=0.96)


def _layer(name: str, n: int, zeros: int, target: float | None, passed: bool) -> LayerSparsityRecord:
    return LayerSparsityRecord(layer=name, weights=n, zeros=zeros, sparsity=zeros / n, target=target, passed=passed)


def _by_name(results):  # type: ignore[no-untyped-def]
    return {r.name: r for r in results}


def test_all_pass_with_defaults_and_results_carry_numbers() -> None:
    res = _by_name(evaluate_gates(BASE, DEP, GateConfig()))
    assert set(res) == {"min_accuracy", "max_accuracy_drop_pp", "min_compression_ratio"}
    assert all(r.passed for r in res.values())
    assert res["max_accuracy_drop_pp"].observed == 1.0 and res["max_accuracy_drop_pp"].compared_to == "baseline"
    assert res["min_compression_ratio"].observed == 11.0


def test_each_gate_can_fail() -> None:
    cfg = GateConfig(min_accuracy=0.99, max_gzip_bytes=40_000, max_accuracy_drop_pp=0.5, min_compression_ratio=20)
    res = evaluate_gates(BASE, DEP, cfg)
    assert [r.passed for r in res] == [False, False, False, False]
    line = failed_summary(res)
    assert line.startswith("gate(s) failed: min_accuracy") and "max_gzip_bytes" in line and "\n" not in line


def _comparison(diff_pp: float, lo: float, hi: float, champ_gz: int = 40_000, **kw: object) -> ChampionComparisonRecord:
    base = {"run_id": "night-1", "comparable": True, "reason": "same rows", "n": 1000,
            "challenger_accuracy": 0.96, "champion_accuracy": round(0.96 - diff_pp / 100, 6),
            "difference_pp": diff_pp, "ci_low_pp": lo, "ci_high_pp": hi, "challenger_only": 5, "champion_only": 20,
            "mcnemar_p": 0.004, "champion_gzip_bytes": champ_gz}
    return ChampionComparisonRecord.model_validate({**base, **kw})


def test_champion_gates_compare_on_the_same_rows() -> None:
    res = _by_name(evaluate_gates(BASE, DEP, GateConfig(), champion=_comparison(-1.5, -2.4, -0.6)))
    size, acc = res["champion_max_size_increase_pct"], res["champion_max_accuracy_drop_pp"]
    assert not size.passed and size.observed == 25.0 and size.compared_to == "champion night-1"
    assert not acc.passed and acc.observed == 1.5 and "on the same 1000 test rows" in acc.reason
    assert "McNemar p=0.004" in acc.reason and "5/20 discordant" in acc.reason
    ok = evaluate_gates(BASE, DEP, GateConfig(), champion=_comparison(0.3, -0.5, 1.1, champ_gz=50_000))
    assert all(r.passed for r in ok)


def test_the_confident_rule_fails_only_a_significant_drop() -> None:
    noisy = _comparison(-1.5, -3.2, 0.2)  # a 1.5 pp drop whose interval reaches into an improvement
    point = _by_name(evaluate_gates(BASE, DEP, GateConfig(), champion=noisy))["champion_max_accuracy_drop_pp"]
    confident = _by_name(evaluate_gates(BASE, DEP, GateConfig(champion_rule="confident"),
                                        champion=noisy))["champion_max_accuracy_drop_pp"]
    assert not point.passed and point.observed == 1.5
    assert confident.passed and confident.observed == -0.2 and "confident" in confident.reason
    sure = _comparison(-3.0, -4.1, -1.9)  # significantly worse than the 1.0 pp allowed
    assert not _by_name(evaluate_gates(BASE, DEP, GateConfig(champion_rule="confident"),
                                       champion=sure))["champion_max_accuracy_drop_pp"].passed


def test_an_incomparable_champion_fails_or_is_skipped_as_configured() -> None:
    other = ChampionComparisonRecord(run_id="n0", comparable=False, reason="it takes inputs of shape (4, 4)")
    failed = evaluate_gates(BASE, DEP, GateConfig(), champion=other)
    assert [(r.name, r.passed) for r in failed if r.name.startswith("champion")] == [("champion_comparable", False)]
    skipped = evaluate_gates(BASE, DEP, GateConfig(champion_incomparable="skip"), champion=other)
    (gate,) = [r for r in skipped if r.name.startswith("champion")]
    assert gate.passed and "champion gates skipped" in gate.reason
    tampered = other.model_copy(update={"reason": "x does not match the sha256 its manifest lists", "tampered": True})
    gates = evaluate_gates(BASE, DEP, GateConfig(champion_incomparable="skip"), champion=tampered)
    assert not next(r for r in gates if r.name == "champion_comparable").passed  # a changed file: never skipped


def test_sparsity_gate_uses_weakest_layer() -> None:
    rows = [_layer("a", 100, 80, 0.8, True), _layer("b", 100, 70, 0.8, False), _layer("c", 10, 0, None, True)]
    sparsity = SparsityRecord(target=0.8, tolerance=0.01, passed=False, layers=rows)
    res = _by_name(evaluate_gates(BASE, DEP, GateConfig(), strip=sparsity))
    assert not res["sparsity"].passed and res["sparsity"].observed == 0.7 and "layer b" in res["sparsity"].reason


def test_disabled_gates_are_absent_not_passed() -> None:
    cfg = GateConfig(min_accuracy=None, max_accuracy_drop_pp=None, min_compression_ratio=None)
    assert evaluate_gates(BASE, DEP, cfg) == []


def _regressor(name: str, mse: float, gz: int) -> ArtifactRecord:
    return ArtifactRecord(name=name, file=f"{name}.bin", kind="tflite", raw_bytes=gz * 3, gzip_bytes=gz,
                          metrics={"mse": mse, "mae": mse / 2, "r2": 0.9}, primary="mse")


def test_regression_gates_judge_mse_with_its_direction() -> None:
    """MSE: lower is better; a change is in % of the baseline; the skill gate compares with the mean predictor."""
    base, dep = _regressor("baseline", 1.71, 7_000), _regressor("tflite_int8", 1.93, 700)
    results = {g.name: g for g in evaluate_gates(base, dep, GateConfig(max_change_pct=10.0),
                                                 no_skill={"mse": 24.0})}
    assert "min_accuracy" not in results and "max_accuracy_drop_pp" not in results
    change = results["max_change_pct"]
    assert not change.passed and change.observed == pytest.approx(12.8655, abs=1e-3)
    assert "tflite_int8 MSE 1.93 vs baseline 1.71 = +12.87 % worse (lower is better) vs maximum +10.00 %" \
        in change.reason
    assert results["min_skill_margin_pct"].passed  # 1.93 vs 24: 92 % better than the training mean
    better = {g.name: g for g in evaluate_gates(base, _regressor("tflite_int8", 1.60, 700),
                                                GateConfig(max_change_pct=10.0), no_skill={"mse": 24.0})}
    assert better["max_change_pct"].passed and better["max_change_pct"].observed < 0
    constant = {g.name: g for g in evaluate_gates(base, _regressor("tflite_int8", 24.0, 700), GateConfig(),
                                                  no_skill={"mse": 24.0})}
    assert not constant["min_skill_margin_pct"].passed  # the mean predictor itself never passes


def test_metric_bounds_and_absolute_change() -> None:
    base, dep = _regressor("baseline", 1.0, 7_000), _regressor("tflite_int8", 1.3, 700)
    cfg = GateConfig(metric_max=1.2, max_change=0.2, max_change_pct=None, min_skill_margin_pct=None)
    results = {g.name: g for g in evaluate_gates(base, dep, cfg)}
    assert not results["metric_max"].passed and not results["max_change"].passed
    assert results["max_change"].observed == pytest.approx(0.3)


def test_a_regressors_collapsed_or_saturated_outputs_fail_its_trial() -> None:
    from shears.run.steps.trial import output_resolution
    from shears.task import Task

    reg, clf = Task("regression", 0, 1, "values"), Task("multiclass", 3, 3, "logits")
    assert output_resolution(reg, 500, 0.0, 1000) is None
    assert "collapse to 4 distinct values" in (output_resolution(reg, 4, 0.0, 1000) or "")
    assert "saturated" in (output_resolution(reg, 500, 0.05, 1000) or "")
    assert output_resolution(clf, 3, 0.5, 1000) is None  # classifiers are judged by their metrics
