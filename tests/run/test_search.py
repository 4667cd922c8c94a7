"""The search end to end on digits: a winner smaller than the fixed recipe, a run where nothing passes, and a
search that never reads the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shears.records import MetricsRecord, PruneRecord, SearchRecord, SensitivityRecord, ValidationRecord
from shears.run.pipeline import RunOutcome, make_context, run_pipeline
from shears.run.steps import STEPS
from shears.store import LocalStore
from shears.store import layout as L

from tests.conftest import fast_config

pytestmark = pytest.mark.tf

SEARCH: dict[str, Any] = {"enabled": True, "max_trials": 4, "rounds": 2, "trials_per_round": 2,
                          "space": {"epochs": [2], "clusters": [0, 8], "qat": [True], "variants": ["int8"]}}
# For tests of the run's behaviour rather than the techniques: sparsity only, one cheap variant.
CHEAP: dict[str, Any] = {**SEARCH, "space": {"epochs": [1], "clusters": [0], "qat": [False],
                                             "variants": ["dynamic_range"]}}


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, RunOutcome]:
    store = LocalStore(tmp_path_factory.mktemp("search"))
    outcome = run_pipeline(store, fast_config(search=SEARCH), "s1")
    return store, outcome


def test_the_winner_passes_the_gates_and_beats_the_fixed_recipe(searched: tuple[LocalStore, RunOutcome]) -> None:
    store, outcome = searched
    assert outcome.passed, outcome.error
    search = SearchRecord.from_bytes(store.get("runs/s1/search.json"))
    assert search.split == "validation" and search.enabled and search.winner_feasible
    assert [t.origin for t in search.trials] == ["recipe", "seed", "bisect", "sampler"]
    seed, bisect = search.trials[1], search.trials[2]  # round 2 bisects the ladder at the seed's stack first
    assert {k: v for k, v in bisect.params.items() if k != "level"} == \
        {k: v for k, v in seed.params.items() if k != "level"} and bisect.params["level"] != seed.params["level"]
    assert search.sampler.startswith("half of each later round bisects")
    fixed = search.trials[0]  # the configured recipe: today's single recipe, on the same data
    winner = next(t for t in search.trials if t.number == search.winner)
    assert fixed.state == "complete" and fixed.gzip_bytes is not None and winner.gzip_bytes is not None
    assert winner.gzip_bytes < fixed.gzip_bytes and winner.feasible
    assert all(c.passed for c in winner.checks) and winner.checks  # verified in the .tflite itself
    metrics = MetricsRecord.from_bytes(store.get("runs/s1/metrics.json"))
    assert metrics.split == "test" and metrics.deployable == f"tflite_{winner.recipe.variant}"
    assert metrics.deployable_artifact.gzip_bytes == winner.gzip_bytes  # the trial's file is what ships
    prune = PruneRecord.from_bytes(store.get("runs/s1/prune.json"))
    assert prune.recipe == winner.recipe and prune.trial == winner.number and prune.split == "validation"
    sens = SensitivityRecord.from_bytes(store.get("runs/s1/sensitivity.json"))
    assert [row.layer for row in sens.layers] == ["conv", "dense", "logits"] and sens.split == "validation"
    assert search.winner in search.frontier or not search.frontier
    names = store.list("runs/s1/")
    assert not [n for n in names if "/search/" in n or "/data/" in n]  # trial files and splits stay in staging
    assert outcome.gates is not None and outcome.gates.gates[0].name == "search" and outcome.gates.gates[0].passed


def test_a_search_where_nothing_passes_fails_naming_the_closest_trial(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    cfg = fast_config(search={**CHEAP, "max_trials": 2, "rounds": 1}, gates={"min_accuracy": 0.999})
    outcome = run_pipeline(store, cfg, "none")
    assert not outcome.passed and outcome.error is not None and outcome.error.exit_code == 4
    rows = ValidationRecord.from_bytes(store.get("rejected/none/validation.json")).split_rows or {}
    assert str(outcome.error).startswith("gate(s) failed: search (no trial met the gates on the validation split at "
                                         f"90% confidence (bounds of what the {rows['test']:,}-row test split will "
                                         "measure); closest: trial ")
    search = SearchRecord.from_bytes(store.get("rejected/none/search.json"))
    assert not search.winner_feasible and all(not t.feasible for t in search.trials)
    assert not store.list("runs/")


def test_the_search_never_reads_the_test_split(tmp_path: Path) -> None:
    """Every step before evaluate runs with the test split taken out of staging; evaluate then reads it."""
    from shears.run import lifecycle
    from shears.run.claim import this_process

    store = LocalStore(tmp_path)
    cfg = fast_config(search={**CHEAP, "max_trials": 3})
    claim = lifecycle.begin(store, L.RunLayout("iso"), cfg, this_process())
    ctx = make_context(store, "iso", cfg)
    results: dict[str, Any] = {}
    hidden = tmp_path / "hidden-test.npz"
    try:
        for step in STEPS:
            if step.name == "evaluate":
                hidden.rename(tmp_path / "staging" / "iso" / L.TEST_SPLIT)
            if step.expands:
                results[step.name] = [step.run(ctx, item) for item in results[step.expands]]
            else:
                results[step.name] = step.run(ctx)
            if step.name == "validate":
                (tmp_path / "staging" / "iso" / L.TEST_SPLIT).rename(hidden)
            if step.name == "evaluate":
                break
    finally:
        claim.release()
    assert results["select"]["trials"] == 3 and MetricsRecord.from_bytes(store.get("staging/iso/metrics.json"))


def test_the_second_look_walks_the_passes_largest_first_on_rows_no_trial_saw(tmp_path: Path) -> None:
    """A selection slice carved from training: no trial is scored on it; the feasible trials are, then, largest
    first until one fails, and the published one held its bounds there (and the baseline was measured on the
    same rows)."""
    store = LocalStore(tmp_path)
    search = {**CHEAP, "max_trials": 3, "rounds": 1, "trials_per_round": 3, "selection_fraction": 0.15,
              "min_selection_rows": 50, "second_look": 2, "confidence": 0.8}
    outcome = run_pipeline(store, fast_config(search=search, gates={"max_accuracy_drop_pp": 5.0}), "look")
    assert outcome.passed, outcome.error
    record = SearchRecord.from_bytes(store.get("runs/look/search.json"))
    rows = ValidationRecord.from_bytes(store.get("runs/look/validation.json")).split_rows or {}
    assert record.selection_rows == rows["selection"] >= 50 and record.confidence == 0.8
    assert record.judged_rows == rows["test"] > 0  # the bounds are of what the test split will measure
    by = {t.number: t for t in record.trials}
    looked = [by[n] for n in record.second_look]  # largest first, until the first that fails on the slice
    assert looked and [t.gzip_bytes or 0 for t in looked] == sorted((t.gzip_bytes or 0 for t in looked), reverse=True)
    held = [bool(t.selection_feasible) for t in looked]
    assert held[0] and held == sorted(held, reverse=True) and held.count(False) <= 1
    assert record.winner == looked[held.count(True) - 1].number  # the last that held
    smallest = min((t for t in record.trials if t.feasible), key=lambda t: (t.gzip_bytes or 0, t.number))
    if all(held):  # a walk that never failed reached the smallest
        assert looked[-1].number == smallest.number
    winner = next(t for t in record.trials if t.number == record.winner)
    assert winner.selection_feasible and winner.selection_score is not None and winner.selection_bound is not None
    assert winner.selection_bound <= winner.selection_score
    assert winner.bound is not None and winner.score is not None and winner.bound <= winner.score
    untouched = [t for t in record.trials if t.number not in record.second_look]
    assert all(t.selection_score is None for t in untouched)  # trials themselves never see the slice
    gate = outcome.gates.gates[0] if outcome.gates else None
    assert gate is not None and gate.name == "search" and "held on the" in gate.reason


def test_the_search_gate_names_a_second_look_that_held_nothing() -> None:
    from shears.records import Recipe, TrialRecord
    from shears.run.steps.gate import search_gate

    recipe = Recipe(sparsity={"logits": 0.95}, prune_epochs=2, variant="int8")
    # trial 1 (the larger) was re-scored first and failed, so the walk stopped before trial 0
    trials = [TrialRecord(number=n, round=1, origin="seed", recipe=recipe, state="complete", score=0.9,
                          gzip_bytes=3000 + n, feasible=True, selection_feasible=False if n else None,
                          selection_violations=["accuracy 0.86, at least 0.85 < min_accuracy 0.8749"] if n else [])
              for n in range(2)]
    record = SearchRecord(enabled=True, sampler="x", budget={}, baseline_score=0.89, baseline_gzip_bytes=78_000,
                          no_skill_score=0.1, trials=trials, winner=1, winner_feasible=False, frontier=[0],
                          confidence=0.9, selection_rows=5400, second_look=[1])
    gate = search_gate(record)
    assert not gate.passed and "2 trial(s) met the gates on the validation split at 90% confidence, but the " \
        "first the second look re-scored (the largest, trial 1: " in gate.reason
    assert "did not hold on the 5,400-row selection slice, so none smaller can be trusted: accuracy 0.86" \
        in gate.reason
