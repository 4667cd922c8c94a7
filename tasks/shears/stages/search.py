"""The search for the smallest deployable that passes the gates: recipes, proposals, the budget (what a trial is
judged by and which one wins: shears.stages.judge).

Objective: gzipped bytes of the deployable .tflite (measured). Constraints: the run's own gates, evaluated on
the validation split (the test split is never read here), plus the recipe's techniques verified in the file.

Search state and sampler are Optuna's (TPE with constraints, seeded). The study is not kept in a database:
each round rebuilds it in memory from the trial records in the run's store and asks for the next batch
(`constant_liar` spreads a batch). So every trial is an idempotent task whose only output is its record and
files — retry-safe, the same in the CLI and in Airflow whatever the store, and the run folder holds the
whole study. Round 1 starts from the sensitivity table: per-layer sparsity is allocated under one shared
tolerated drop (AIMET-style), with the configured recipe as trial 0.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shears.config import PipelineConfig, SearchConfig
from shears.errors import ConfigError
from shears.records import ModelSupportRecord, Recipe, SensitivityRecord, TrialRecord

# the search parameters (Optuna distributions are built from the config's space and the sensitivity table)
P_LEVEL, P_EPOCHS, P_CLUSTERS, P_QAT, P_VARIANT, P_DISTILL = "level", "epochs", "clusters", "qat", "variant", "distill"


# how much more a rung costs than the rung below it at least, when the measurement says it costs less (pp)
_TIE_BREAK = 1e-4
# how many rungs just below the most aggressive one that held on validation the bisection fills in: where the
# second look steps back to when that pass was luck (two, as when the second look was three looks)
FALLBACK_RUNGS = 2


def monotone_drops(drops: Sequence[float]) -> list[float]:
    """The drops along a layer's ladder (least sparse first) made strictly increasing: each rung costs at least
    what the rung below cost, plus a hair.

    Magnitude pruning at a higher sparsity removes a superset of the weights, so a smaller measured drop there is
    the noise of a one-shot measurement (e.g. a dense layer measured 26.3 pp at 0.94 but 27.4-27.5 pp at
    0.91-0.93). Taken as measured, no threshold allocates 0.91-0.93: the allocation jumps from 0.90 to 0.94 and
    the search cannot try the rungs between. Strictly increasing, every rung is one threshold of its own."""
    out: list[float] = []
    for d in drops:
        out.append(d if not out else max(d, out[-1] + _TIE_BREAK))
    return out


def allocate(sensitivity: SensitivityRecord, tolerated_drop_pp: float) -> dict[str, float]:
    """Per layer, the highest sparsity of the ladder whose drop (`monotone_drops`) stays within the threshold (a
    layer whose smallest rung already costs more is not pruned)."""
    out = {}
    for layer, ladder in _ladders(sensitivity).items():
        ok = [sparsity for sparsity, drop in ladder if drop <= tolerated_drop_pp]
        if ok:
            out[layer] = max(ok)
    return out


def _ladders(sensitivity: SensitivityRecord) -> dict[str, list[tuple[float, float]]]:
    """Per layer, (sparsity, drop) up its ladder with the drops made strictly increasing (`monotone_drops`)."""
    out = {}
    for layer in sensitivity.layers:
        points = sorted(layer.points, key=lambda p: p.sparsity)
        out[layer.layer] = list(zip([p.sparsity for p in points], monotone_drops([p.drop for p in points]),
                                    strict=True))
    return out


def levels(sensitivity: SensitivityRecord,
           tolerated_drop_pp: tuple[float, float]) -> list[tuple[float, dict[str, float]]]:
    """Every distinct allocation the table gives for a tolerated drop in the range, least aggressive first,
    each with the smallest threshold that gives it.

    The search samples an index into this list rather than the threshold itself: allocations change only
    where the threshold crosses a measured drop, so a continuous threshold leaves most of its range on a few
    allocations and the narrow bands between (e.g. 0.9 and 0.93 on the Dense layer) are rarely sampled.
    """
    lo, hi = tolerated_drop_pp
    drops = [d for ladder in _ladders(sensitivity).values() for _, d in ladder]
    cuts = sorted({lo, *(d for d in drops if lo < d <= hi)})
    out: list[tuple[float, dict[str, float]]] = []
    for t in cuts:
        alloc = allocate(sensitivity, t)
        if not out or alloc != out[-1][1]:
            out.append((round(t, 4), alloc))
    return out


def _unclusterable(support: ModelSupportRecord | None) -> dict[str, str]:
    return {p.layer: p.cluster for p in support.layers if p.cluster} if support is not None else {}


def fit_to_model(cfg: PipelineConfig, support: ModelSupportRecord | None) -> tuple[PipelineConfig, list[str]]:
    """The config with the search space narrowed to what the model can take (no QAT trials when tfmot's QAT
    cannot train it, no int8 trials when no int8 .tflite can be built), and why, for search.json."""
    if support is None:
        return cfg, []
    space = cfg.search.space
    changes: dict[str, object] = {}
    notes = []
    if support.qat and True in space.qat:
        changes["qat"] = (False,)
        notes.append(f"no QAT trials: {support.qat}")
    if support.int8 and "int8" in space.variants:
        left = tuple(v for v in space.variants if v != "int8") or ("dynamic_range",)
        changes["variants"] = left
        notes.append(f"no int8 trials ({', '.join(left)} instead): {support.int8}")
    for layer, why in _unclusterable(support).items():
        if any(space.clusters):
            notes.append(f"layer '{layer}' is pruned but not clustered: {why}")
    if support.fixed_batch:
        notes.append(f"every .tflite has a fixed batch of one: {support.fixed_batch}")
    if not changes:
        return cfg, notes
    search = cfg.search.model_copy(update={"space": space.model_copy(update=changes)})
    return cfg.model_copy(update={"search": search}), notes


def recipe_from_config(cfg: PipelineConfig, prunable: dict[str, int], default_sparsity: dict[str, float],
                       support: ModelSupportRecord | None = None) -> Recipe:
    """The configured recipe (trial 0; the only one with the search off). Asking for what the model cannot
    take (clustering a layer tfmot cannot cluster, QAT it cannot apply, int8 it cannot convert) is a
    ConfigError naming why."""
    r = cfg.recipe
    if r.sparsity is None:
        sparsity = dict(default_sparsity)
    elif isinstance(r.sparsity, dict):
        sparsity = {k: float(v) for k, v in r.sparsity.items() if v != "skip"}
    else:
        sparsity = {name: float(r.sparsity) for name in prunable}
    refused = _unclusterable(support)
    if r.clusters is None:
        clusters: dict[str, int] = {}
    elif isinstance(r.clusters, dict):
        clusters = dict(r.clusters)
        for name in clusters:
            if name in refused:
                raise ConfigError(f"recipe.clusters names layer '{name}': {refused[name]}")
    else:
        clusters = {n: int(r.clusters) for n, w in prunable.items()
                    if w >= cfg.search.min_cluster_weights and n not in refused}
    variant = r.variant or ("int8" if r.qat else cfg.convert.deployable)
    if support is not None and r.qat and support.qat:
        raise ConfigError(f"recipe.qat: {support.qat}")
    if support is not None and variant == "int8" and support.int8:
        raise ConfigError(f"the recipe's int8 variant cannot be built: {support.int8}")
    return Recipe(sparsity=sparsity, prune_epochs=cfg.prune.epochs, clusters=clusters,
                  cluster_epochs=r.cluster_epochs, cluster_learning_rate=r.cluster_learning_rate, qat=r.qat,
                  qat_epochs=r.qat_epochs, qat_learning_rate=r.qat_learning_rate, variant=variant,
                  fixed_batch=cfg.convert.fixed_batch or bool(support and support.fixed_batch),
                  **_distill(cfg, r.distill))


def _distill(cfg: PipelineConfig, on: bool) -> dict[str, Any]:
    r = cfg.recipe
    return {"distill": on, "distill_temperature": r.distill_temperature, "distill_alpha": r.distill_alpha}


def recipe_from_params(params: dict[str, Any], cfg: PipelineConfig, table: Sequence[tuple[float, dict[str, float]]],
                       prunable: dict[str, int], support: ModelSupportRecord | None = None) -> Recipe:
    """A search trial's recipe: the sparsity of the chosen level of `table` (see `levels`), the stack chosen by
    the parameters (`cfg` already fitted to the model, see `fit_to_model`)."""
    k = int(params[P_CLUSTERS])
    qat = bool(params[P_QAT])
    refused = _unclusterable(support)
    clusters = {n: k for n, w in prunable.items() if k and w >= cfg.search.min_cluster_weights and n not in refused}
    threshold, allocated = table[min(int(params[P_LEVEL]), len(table) - 1)]
    sparsity = dict(allocated)
    if clusters:
        # with clustering, only clustered layers are pruned: a small layer's zeros do not survive the
        # cluster-preserving QAT scheme (it re-derives such kernels), and they save ~100 B at a real accuracy cost
        sparsity = {n: v for n, v in sparsity.items() if n in clusters}
    return Recipe(sparsity=sparsity, prune_epochs=int(params[P_EPOCHS]),
                  clusters=clusters, cluster_epochs=cfg.recipe.cluster_epochs,
                  cluster_learning_rate=cfg.recipe.cluster_learning_rate, qat=qat, qat_epochs=cfg.recipe.qat_epochs,
                  qat_learning_rate=cfg.recipe.qat_learning_rate,
                  variant="int8" if qat else params[P_VARIANT],
                  fixed_batch=cfg.convert.fixed_batch or bool(support and support.fixed_batch),
                  tolerated_drop_pp=threshold, **_distill(cfg, bool(params.get(P_DISTILL, False))))


def _distributions(space: Any, n_levels: int) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    return {
        P_LEVEL: IntDistribution(0, max(n_levels - 1, 0)),  # ordered: TPE sees neighbouring allocations as near
        P_EPOCHS: CategoricalDistribution(list(space.epochs)),
        P_CLUSTERS: CategoricalDistribution(list(space.clusters)),
        P_QAT: CategoricalDistribution(list(space.qat)),
        P_VARIANT: CategoricalDistribution(list(space.variants)),
        P_DISTILL: CategoricalDistribution(list(space.distill)),
    }


def seed_params(search: SearchConfig, n: int, thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Round 1's starting points: the whole collaborative stack (as much as the space allows) at a spread
    of tolerated drops from moderate to aggressive (log scale over the range; each maps to the level that
    threshold allocates), alternating the two smallest cluster counts."""
    space = search.space
    lo, hi = space.tolerated_drop_pp
    fractions = [0.4, 0.6, 0.85, 0.95, 0.75, 0.5, 0.3, 0.9]
    ks = sorted((k for k in space.clusters if k), reverse=True)[-2:] or [0]
    out = []
    for i in range(n):
        f = fractions[i % len(fractions)]
        threshold = lo * (hi / lo) ** f
        out.append({P_LEVEL: max([j for j, t in enumerate(thresholds) if t <= threshold], default=0),
                    **full_stack(space, ks[i % len(ks)])})
    return out


def full_stack(space: Any, clusters: int) -> dict[str, Any]:
    """Every parameter but the level: the longest fine-tune and as much of the collaborative stack as the space
    allows (the seeds' stack)."""
    return {
        P_EPOCHS: max(space.epochs),
        P_CLUSTERS: clusters,
        P_QAT: True in space.qat,
        P_VARIANT: "int8" if "int8" in space.variants else space.variants[0],
        P_DISTILL: True in space.distill,
    }


def _bisection_order(lo: int, hi: int) -> list[int]:
    """The integers strictly between lo and hi, middle first, then the middles of the halves, and so on: any
    prefix spreads evenly over the gap (a batch runs at once, so it cannot wait for the middle's outcome)."""
    out, queue = [], [(lo, hi)]
    while queue:  # bounded: every interval pushed is strictly shorter than the one popped
        a, b = queue.pop(0)
        m = (a + b) // 2
        if a < m < b:
            out.append(m)
            queue += [(a, m), (m, b)]
    return out


def bisect_params(trials: Sequence[TrialRecord], search: SearchConfig, n_levels: int,
                  computes: Callable[[dict[str, Any]], str] | None = None) -> list[dict[str, Any]]:
    """Where the smallest pass lies on the ladder, in the order to try it, at the seeds' stack (the cluster
    count of the smallest feasible trial, when the space has it).

    Size falls as the level rises, and a higher level is no more likely to pass, so between the most aggressive
    level that held on validation (`a`) and the least aggressive one above it that did not (`b`), the untried
    levels are bisected; then the `FALLBACK_RUNGS` levels just below `a` follow, so that the second look has
    neighbours to step back to when `a`'s pass was luck. Nothing is proposed before a trial ran at this stack.
    Levels that compute the same recipe (`computes` gives what a level's params compute; e.g. levels that differ
    only in a layer the stack does not prune) count as one rung."""
    space = search.space
    smallest = sorted((t for t in trials if t.feasible and t.gzip_bytes is not None and t.params
                       and t.params.get(P_CLUSTERS) in space.clusters), key=lambda t: (t.gzip_bytes, t.number))
    ks = sorted(k for k in space.clusters if k) or [0]
    stack = full_stack(space, smallest[0].params[P_CLUSTERS] if smallest else ks[0])
    at_stack = [t for t in trials if t.params and all(t.params.get(key) == value for key, value in stack.items())]
    here = [t for t in at_stack if t.state == "complete"]
    if not here:
        return []
    rungs: list[int] = []  # the first level of each distinct recipe, in order
    last: str | None = None
    for level in range(n_levels):
        key = computes({P_LEVEL: level, **stack}) if computes is not None else str(level)
        if key != last:
            rungs.append(level)
            last = key

    def rung(t: TrialRecord) -> int:
        return bisect_right(rungs, int(t.params[P_LEVEL])) - 1

    tried = {rung(t) for t in at_stack}
    a = max((rung(t) for t in here if t.feasible), default=-1)
    b = min((rung(t) for t in here if not t.feasible and rung(t) > a), default=len(rungs))
    below = [a - i for i in range(1, FALLBACK_RUNGS + 1) if a - i >= 0]
    return [{P_LEVEL: rungs[r], **stack} for r in _bisection_order(a, b) + below if r not in tried]


@dataclass(frozen=True)
class Proposal:
    origin: str  # "recipe", "seed" or "sampler"
    params: dict[str, Any]
    recipe: Recipe


def propose(round_no: int, n: int, trials: Sequence[TrialRecord], cfg: PipelineConfig,
            sensitivity: SensitivityRecord | None, prunable: dict[str, int], base: Recipe,
            support: ModelSupportRecord | None = None) -> list[Proposal]:
    """The next `n` trials: round 1 = the configured recipe and seeds from the sensitivity table; later rounds
    = half (rounded up) bisecting the ladder where the smallest pass lies (`bisect_params`, with
    `search.bisect`), the rest from Optuna's TPE sampler (seeded, constrained) over everything seen so far.
    Duplicates are not proposed.
    The search space is narrowed to what the model can take (`fit_to_model`)."""
    cfg, _ = fit_to_model(cfg, support)
    if n <= 0:
        return []
    seen = {_recipe_key(t.recipe) for t in trials}
    out: list[Proposal] = []

    def add(p: Proposal) -> None:
        key = _recipe_key(p.recipe)
        if p.recipe.sparsity and key not in seen and len(out) < n:
            seen.add(key)
            out.append(p)

    if not cfg.search.enabled or sensitivity is None:
        if not trials:
            add(Proposal("recipe", {}, base))
        return out
    table = levels(sensitivity, cfg.search.space.tolerated_drop_pp)
    n_levels = len(table)
    if round_no == 1 and not trials:
        add(Proposal("recipe", {}, base))
        for params in seed_params(cfg.search, n + 4, [t for t, _ in table]):
            add(Proposal("seed", params, recipe_from_params(params, cfg, table, prunable, support)))
        return out
    if cfg.search.bisect:
        share = len(out) + math.ceil(n / 2)
        def computes(params: dict[str, Any]) -> str:
            return _recipe_key(recipe_from_params(params, cfg, table, prunable, support))

        for params in bisect_params(trials, cfg.search, n_levels, computes):
            if len(out) >= share:
                break
            add(Proposal("bisect", params, recipe_from_params(params, cfg, table, prunable, support)))
    study = _study(trials, cfg, round_no, n_levels)
    dists = _distributions(cfg.search.space, n_levels)
    for _ in range(4 * n):  # bounded: duplicates are asked again, a few times at most
        if len(out) >= n:
            break
        trial = study.ask(dists)
        params = dict(trial.params)
        add(Proposal("sampler", params, recipe_from_params(params, cfg, table, prunable, support)))
    return out


def _recipe_key(recipe: Recipe) -> str:
    """What a trial computes: two thresholds that allocate the same sparsities are the same trial."""
    return recipe.model_dump_json(exclude={"tolerated_drop_pp"})


def _study(trials: Sequence[TrialRecord], cfg: PipelineConfig, round_no: int, n_levels: int) -> Any:
    """An in-memory Optuna study holding every completed search trial (constraints included)."""
    import optuna
    from optuna.samplers import TPESampler
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = TPESampler(seed=(cfg.search.seed * 1000 + round_no) % 2**32, n_startup_trials=1, multivariate=True,
                         constant_liar=True)  # TPE reads each trial's constraints (set below) itself
    study = optuna.create_study(direction="minimize", sampler=sampler)
    dists = _distributions(cfg.search.space, n_levels)
    for t in trials:
        if not t.params or set(t.params) != set(dists):
            continue  # trial 0 (the configured recipe) lies outside the parametrised space
        if not _inside(t.params, cfg, n_levels):
            continue  # a parameter the current space no longer allows
        if t.state == "complete" and t.gzip_bytes is not None:
            frozen = create_trial(params=t.params, distributions=dists, value=float(t.gzip_bytes))
            for i, value in enumerate(t.constraints or [0.0]):
                frozen.set_constraint(f"c{i}", value)
            study.add_trial(frozen)
        else:
            study.add_trial(create_trial(params=t.params, distributions=dists, state=TrialState.FAIL))
    return study


def _inside(params: dict[str, Any], cfg: PipelineConfig, n_levels: int) -> bool:
    space = cfg.search.space
    return (0 <= int(params[P_LEVEL]) < max(n_levels, 1) and params[P_EPOCHS] in space.epochs
            and params[P_CLUSTERS] in space.clusters and params[P_QAT] in space.qat
            and params[P_VARIANT] in space.variants and params.get(P_DISTILL, False) in space.distill)


def round_size(round_no: int, cfg: SearchConfig, done: int, elapsed_s: float, trial_seconds: Sequence[float],
               jobs: int = 1) -> int:
    """How many trials round `round_no` may start within the budget (trials left, minutes left)."""
    if round_no > cfg.rounds:
        return 0
    left = cfg.max_trials - done
    budget_s = cfg.max_minutes * 60 - elapsed_s
    if left <= 0 or budget_s <= 0:
        return 0
    n = min(cfg.trials_per_round, left)
    if trial_seconds:
        mean = sum(trial_seconds) / len(trial_seconds)
        n = min(n, max(1, math.floor(budget_s / max(mean, 1e-3))) * max(1, jobs))
    return n
