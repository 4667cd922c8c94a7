"""The search's logic without TensorFlow: allocation from sensitivity, proposals, constraints, the winner."""

from __future__ import annotations

import pytest
from shears.config import build_config
from shears.records import LayerSensitivityRecord, SensitivityPoint, SensitivityRecord, TrialRecord
from shears.stages.search import (
    P_CLUSTERS,
    P_EPOCHS,
    P_LEVEL,
    allocate,
    bisect_params,
    full_stack,
    levels,
    monotone_drops,
    propose,
    recipe_from_config,
    round_size,
)

from tests.stages.trials import trial_record

PRUNABLE = {"conv": 108, "logits": 20280}
LADDER = [0.5, 0.7, 0.8, 0.9, 0.95]


def _sensitivity() -> SensitivityRecord:
    def layer(name: str, weights: int, drops: list[float]) -> LayerSensitivityRecord:
        points = [SensitivityPoint(sparsity=s, score=0.9 - d / 100, drop=d)
                  for s, d in zip(LADDER, drops, strict=True)]
        return LayerSensitivityRecord(layer=name, weights=weights, points=points)

    return SensitivityRecord(baseline_accuracy=0.9, ladder=LADDER, layers=[
        layer("conv", 108, [3.0, 9.0, 15.0, 30.0, 50.0]),  # a tiny layer: every zero hurts
        layer("logits", 20280, [0.1, 0.4, 1.0, 4.0, 12.0]),
    ])


def test_one_threshold_allocates_per_layer_sparsity_from_the_table() -> None:
    s = _sensitivity()
    assert allocate(s, 2.0) == {"logits": 0.8}  # conv costs 3 pp at its first rung: not pruned
    assert allocate(s, 10.0) == {"conv": 0.7, "logits": 0.9}
    assert allocate(s, 60.0) == {"conv": 0.95, "logits": 0.95}
    assert allocate(s, 0.01) == {}


def test_levels_are_the_distinct_allocations_of_the_tolerated_range_in_order() -> None:
    table = levels(_sensitivity(), (0.5, 60.0))
    assert [alloc for _, alloc in table] == [
        {"logits": 0.7}, {"logits": 0.8}, {"conv": 0.5, "logits": 0.8}, {"conv": 0.5, "logits": 0.9},
        {"conv": 0.7, "logits": 0.9}, {"conv": 0.7, "logits": 0.95}, {"conv": 0.8, "logits": 0.95},
        {"conv": 0.9, "logits": 0.95}, {"conv": 0.95, "logits": 0.95}]
    assert [t for t, _ in table] == [0.5, 1.0, 3.0, 4.0, 9.0, 12.0, 15.0, 30.0, 50.0]  # the smallest threshold
    assert levels(_sensitivity(), (2.0, 2.5)) == [(2.0, {"logits": 0.8})]  # a narrow range: one allocation


def test_a_rung_measured_cheaper_than_the_one_below_it_does_not_hide_the_rungs_between() -> None:
    # seed 1's dense layer in the Fashion-MNIST bench: 0.94 measured 26.32 pp, below 0.91-0.93 (26.67-27.53)
    ladder = [0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97]
    drops = [18.1, 24.42, 27.37, 26.67, 27.53, 26.32, 30.53, 31.5, 29.38]
    assert monotone_drops(drops) == pytest.approx(
        [18.1, 24.42, 27.37, 27.3701, 27.53, 27.5301, 30.53, 31.5, 31.5001])
    s = SensitivityRecord(baseline_accuracy=0.89, ladder=ladder, layers=[LayerSensitivityRecord(
        layer="logits", weights=20280,
        points=[SensitivityPoint(sparsity=p, score=0.89 - d / 100, drop=d)
                for p, d in zip(ladder, drops, strict=True)])])
    assert [alloc["logits"] for _, alloc in levels(s, (18.1, 60.0))] == ladder  # every rung is a level
    assert allocate(s, 27.0) == {"logits": 0.9}  # 0.92 and 0.94 measured under 27 pp, but 0.91 did not
    assert allocate(s, 60.0) == {"logits": 0.97}


def test_the_configured_recipe_is_trial_0_and_seeds_come_from_the_table() -> None:
    cfg = build_config({"search": {"trials_per_round": 3,
                                   "space": {"clusters": [0, 8, 4], "epochs": [2, 6], "qat": [False, True]}},
                        "prune": {"final_sparsity": 0.8, "epochs": 2}})
    base = recipe_from_config(cfg, PRUNABLE, {"conv": 0.8, "logits": 0.8})
    first = propose(1, 3, [], cfg, _sensitivity(), PRUNABLE, base)
    assert [p.origin for p in first] == ["recipe", "seed", "seed"]
    assert first[0].recipe == base and base.variant == "dynamic_range" and not base.clusters
    for p in first[1:]:  # the whole collaborative stack, only clustered (large) layers pruned
        assert p.recipe.qat and p.recipe.variant == "int8" and p.recipe.prune_epochs == 6
        assert set(p.recipe.clusters) == {"logits"} and set(p.recipe.sparsity) == {"logits"}
        assert p.params[P_CLUSTERS] in (8, 4)
    assert propose(1, 3, [], cfg, _sensitivity(), PRUNABLE, base) == first  # deterministic


def test_later_rounds_ask_optuna_and_never_repeat_a_recipe() -> None:
    cfg = build_config({"search": {"seed": 7, "bisect": False}})
    base = recipe_from_config(cfg, PRUNABLE, {"conv": 0.8, "logits": 0.8})
    first = propose(1, 3, [], cfg, _sensitivity(), PRUNABLE, base)
    done = [trial_record(i, 5000 - 1000 * i, 0.88, i > 0, params=p.params).model_copy(update={"recipe": p.recipe})
            for i, p in enumerate(first)]
    second = propose(2, 3, done, cfg, _sensitivity(), PRUNABLE, base)
    assert len(second) == 3 and all(p.origin == "sampler" for p in second)
    # the same computation counts as a repeat even when another threshold allocated it
    computed = [r.model_dump_json(exclude={"tolerated_drop_pp"}) for r in [t.recipe for t in done]
                + [p.recipe for p in second]]
    assert len(set(computed)) == len(computed)
    n_levels = len(levels(_sensitivity(), cfg.search.space.tolerated_drop_pp))
    assert all(0 <= p.params[P_LEVEL] < n_levels for p in second)
    assert propose(2, 3, done, cfg, _sensitivity(), PRUNABLE, base) == second  # seeded: the same batch again


def _at_level(number: int, level: int, feasible: bool, cfg, **stack) -> TrialRecord:
    params = {P_LEVEL: level, **full_stack(cfg.search.space, 4), **stack}
    return trial_record(number, 5000 - 100 * level, 0.88, feasible, params=params)


def test_bisection_splits_the_gap_between_the_level_that_held_and_the_one_that_did_not() -> None:
    cfg = build_config({"search": {"space": {"clusters": [4], "epochs": [12, 20], "qat": [True],
                                             "distill": [True]}}})
    # levels 2 and 4 held, 10 did not: the gap is 5..9, middle first; then the two below 4 (FALLBACK_RUNGS)
    done = [_at_level(1, 2, True, cfg), _at_level(2, 4, True, cfg), _at_level(3, 10, False, cfg)]
    order = [p[P_LEVEL] for p in bisect_params(done, cfg.search, 13)]
    assert order == [7, 5, 8, 6, 9, 3]  # 2 was tried
    assert all(p[P_EPOCHS] == 20 and p[P_CLUSTERS] == 4 for p in bisect_params(done, cfg.search, 13))
    # nothing failed above: up to the top of the ladder
    assert [p[P_LEVEL] for p in bisect_params(done[:2], cfg.search, 8)][:3] == [6, 5, 7]
    # nothing held: below the lowest that failed
    assert [p[P_LEVEL] for p in bisect_params(done[2:], cfg.search, 13)][:3] == [4, 1, 7]
    # a trial at a shorter fine-tune says nothing about the seeds' stack: no proposal before one ran there
    assert bisect_params([_at_level(1, 4, True, cfg, epochs=12)], cfg.search, 13) == []
    # adjacent levels, one held and one did not, and the two below tried: nothing left to bisect
    done = [_at_level(1, 3, True, cfg), _at_level(2, 4, True, cfg), _at_level(3, 5, False, cfg),
            _at_level(4, 2, True, cfg)]
    assert bisect_params(done, cfg.search, 13) == []


def test_levels_computing_the_same_recipe_are_one_rung() -> None:
    cfg = build_config({"search": {"space": {"clusters": [4], "epochs": [20], "qat": [True], "distill": [True]}}})
    # levels 0-1, 2-4 and 5-8 compute the same (say, they differ only in a layer the stack does not prune)
    same = {0: "x", 1: "x", 2: "y", 3: "y", 4: "y", 5: "z", 6: "z", 7: "z", 8: "z", 9: "w", 10: "v"}
    done = [_at_level(1, 0, True, cfg), _at_level(2, 10, False, cfg)]
    order = [p[P_LEVEL] for p in bisect_params(done, cfg.search, 11, lambda p: same[p[P_LEVEL]])]
    assert order == [5, 2, 9]  # rungs start at levels 0 2 5 9 10: 0 held, 10 did not; middle 5, then 2 and 9
    # a trial at level 3 runs the rung that starts at level 2, and it held: that rung is tried and is now `a`
    order = [p[P_LEVEL] for p in bisect_params([*done, _at_level(3, 3, True, cfg)], cfg.search, 11,
                                               lambda p: same[p[P_LEVEL]])]
    assert order == [5, 9]  # between the rungs at levels 2 and 10: 5 then 9; below it, level 0 was tried


def test_later_rounds_give_half_their_trials_to_the_bisection() -> None:
    space = {"clusters": [4], "epochs": [12, 20], "qat": [True], "distill": [True]}
    cfg = build_config({"search": {"seed": 3, "space": space}})
    base = recipe_from_config(cfg, PRUNABLE, {"conv": 0.8, "logits": 0.8})
    table = levels(_sensitivity(), cfg.search.space.tolerated_drop_pp)
    # with clusters only the logits layer is pruned: the table's 9 levels compute 4 recipes (0.7 0.8 0.9 0.95)
    done = [_at_level(1, 0, True, cfg), _at_level(2, len(table) - 1, False, cfg)]
    batch = propose(2, 3, done, cfg, _sensitivity(), PRUNABLE, base)
    assert [p.origin for p in batch] == ["bisect", "bisect", "sampler"]
    assert [p.recipe.sparsity for p in batch[:2]] == [{"logits": 0.8}, {"logits": 0.9}]
    assert all(p.recipe.prune_epochs == 20 and p.recipe.distill and p.recipe.qat for p in batch[:2])
    off = build_config({"search": {"seed": 3, "bisect": False, "space": space}})
    assert all(p.origin == "sampler" for p in propose(2, 3, done, off, _sensitivity(), PRUNABLE, base))


def test_with_the_search_off_only_the_configured_recipe_runs() -> None:
    cfg = build_config({"search": {"enabled": False}})
    base = recipe_from_config(cfg, PRUNABLE, {"conv": 0.8, "logits": 0.8})
    assert [p.origin for p in propose(1, 5, [], cfg, None, PRUNABLE, base)] == ["recipe"]
    assert propose(2, 5, [trial_record(0, 1, 0.9, True)], cfg, None, PRUNABLE, base) == []


def test_a_recipe_section_is_validated_and_resolved() -> None:
    cfg = build_config({"recipe": {"sparsity": {"conv": "skip", "logits": 0.93}, "clusters": 4, "qat": True}})
    r = recipe_from_config(cfg, PRUNABLE, {})
    assert r.sparsity == {"logits": 0.93} and r.clusters == {"logits": 4} and r.variant == "int8"
    assert r.qat_scheme == "pcqat" and "PCQAT" in r.describe()
    from shears.errors import ConfigError

    for bad, needle in (({"qat": True, "variant": "dynamic_range"}, "qat trains for int8"),
                        ({"sparsity": 1.5}, "must lie in"), ({"clusters": 1}, "greater than or equal to 2")):
        with pytest.raises(ConfigError, match=needle):
            build_config({"recipe": bad})
    with pytest.raises(ConfigError, match="qat needs the int8 variant"):
        build_config({"search": {"space": {"qat": [True], "variants": ["dynamic_range"]}}})
    with pytest.raises(ConfigError, match="ladder must be increasing"):
        build_config({"search": {"ladder": [0.9, 0.5]}})


def test_rounds_respect_the_budget() -> None:
    cfg = build_config({"search": {"max_trials": 6, "rounds": 2, "trials_per_round": 4, "max_minutes": 10}})
    s = cfg.search
    assert round_size(1, s, 0, 0.0, []) == 4
    assert round_size(2, s, 4, 60.0, [10.0] * 4) == 2  # trials left
    assert round_size(2, s, 2, 590.0, [20.0, 20.0]) == 1  # minutes left: one 20-s trial fits
    assert round_size(2, s, 2, 601.0, [20.0]) == 0
    assert round_size(3, s, 2, 0.0, []) == 0  # beyond the configured rounds


def test_the_search_leaves_out_what_the_model_cannot_take_and_says_why() -> None:
    from shears.errors import ConfigError
    from shears.records import LayerPlanRecord, ModelSupportRecord
    from shears.stages.search import fit_to_model, recipe_from_params

    support = ModelSupportRecord(
        layers=[LayerPlanRecord(layer="conv", class_name="Conv1D", weights={"kernel": 108},
                                cluster="tfmot cannot cluster a Conv1D: ..."),
                LayerPlanRecord(layer="logits", class_name="Dense", weights={"kernel": 20280})],
        qat="tfmot's 8-bit QAT cannot take this model: RuntimeError: Layer lstm", qat_probed=True,
        int8="GRU layer 'gru' becomes a WHILE loop in TFLite", fixed_batch="LSTM layer 'lstm': ...")
    cfg = build_config({"search": {"min_cluster_weights": 100,
                                   "space": {"qat": [True, False], "variants": ["int8"], "clusters": [0, 8]}}})
    fitted, notes = fit_to_model(cfg, support)
    assert fitted.search.space.qat == (False,) and fitted.search.space.variants == ("dynamic_range",)
    assert any(n.startswith("no QAT trials: tfmot's 8-bit QAT") for n in notes)
    assert any(n.startswith("no int8 trials (dynamic_range instead): GRU layer 'gru'") for n in notes)
    assert any("layer 'conv' is pruned but not clustered" in n for n in notes)
    assert fit_to_model(cfg, None) == (cfg, [])
    table = levels(_sensitivity(), (0.5, 60.0))
    params = {P_LEVEL: len(table) - 1, "epochs": 2, P_CLUSTERS: 8, "qat": False, "variant": "dynamic_range"}
    r = recipe_from_params(params, fitted, table, PRUNABLE, support)
    assert r.clusters == {"logits": 8} and r.fixed_batch  # conv cannot be clustered; RNNs convert batch-1
    # a configured recipe asking for what the model cannot take is refused, naming why
    for recipe, needle in (({"qat": True}, "recipe.qat: tfmot's 8-bit QAT"),
                           ({"clusters": {"conv": 8}}, "recipe.clusters names layer 'conv'"),
                           ({"variant": "int8"}, "the recipe's int8 variant cannot be built")):
        with pytest.raises(ConfigError, match=needle):
            recipe_from_config(build_config({"recipe": recipe}), PRUNABLE, {"logits": 0.8}, support)
