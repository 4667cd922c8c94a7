from __future__ import annotations

from shears.config import GateConfig
from shears.records import ArtifactRecord, LayerSparsityRecord, SparsityRecord
from shears.stages.gates import ChampionRef, evaluate_gates, failed_summary

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


def test_champion_gates_name_the_champion() -> None:
    champ = ChampionRef("night-1", accuracy=0.975, gzip_bytes=40_000)
    res = _by_name(evaluate_gates(BASE, DEP, GateConfig(), champion=champ))
    size, acc = res["champion_max_size_increase_pct"], res["champion_max_accuracy_drop_pp"]
    assert not size.passed and size.observed == 25.0 and size.compared_to == "champion night-1"
    assert not acc.passed and acc.observed == 1.5
    ok = evaluate_gates(BASE, DEP, GateConfig(), champion=ChampionRef("n0", 0.96, 50_000))
    assert all(r.passed for r in ok)


def test_sparsity_gate_uses_weakest_layer() -> None:
    rows = [_layer("a", 100, 80, 0.8, True), _layer("b", 100, 70, 0.8, False), _layer("c", 10, 0, None, True)]
    sparsity = SparsityRecord(target=0.8, tolerance=0.01, passed=False, layers=rows)
    res = _by_name(evaluate_gates(BASE, DEP, GateConfig(), strip=sparsity))
    assert not res["sparsity"].passed and res["sparsity"].observed == 0.7 and "layer b" in res["sparsity"].reason


def test_disabled_gates_are_absent_not_passed() -> None:
    cfg = GateConfig(min_accuracy=None, max_accuracy_drop_pp=None, min_compression_ratio=None)
    assert evaluate_gates(BASE, DEP, cfg) == []
