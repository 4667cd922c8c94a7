"""Trial records for the search and judge tests (no TensorFlow): one recipe, the sizes and verdicts given."""

from __future__ import annotations

from typing import Any

from shears.records import Recipe, TrialRecord


def trial_record(number: int, gz: int, acc: float, feasible: bool, cons: list[float] | None = None,
                 params: dict[str, Any] | None = None) -> TrialRecord:
    """A completed trial at logits 0.9; a trial with search params is a seed, one without is the recipe."""
    recipe = Recipe(sparsity={"logits": 0.9}, prune_epochs=2, variant="int8")
    return TrialRecord(number=number, round=1, origin="seed" if params else "recipe", recipe=recipe,
                       params=params or {}, state="complete", accuracy=acc, gzip_bytes=gz, feasible=feasible,
                       constraints=cons if cons is not None else ([-1.0] if feasible else [2.0]))
