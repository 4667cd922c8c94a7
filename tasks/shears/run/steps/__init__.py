"""The steps of a run, in order, each declaring what it reads and writes in staging (Kedro-node style).

`STEPS` is the one list of steps. The CLI runs it in sequence in one process; the Airflow DAG has one task
per step whose task id is the step's name, and takes each task's queue, pool, retries and trigger rule from
the step's entry here; failure records name the step. A step runs a function of one phase module
(`data`, `baseline`, `search`, `trial`, `select`, `evaluate`, `gate`, `publish`), imported only when the
step runs, so importing this table is cheap (the DAG file does, at parse time).

`reads` and `writes` are staging names (shears.store.layout), `*` matching any run of characters: every
name a step reads must be written by an earlier step (tests/run/test_step_contract.py runs a real search and
checks both declarations against what each step really read and wrote). Every step also writes its timing
(timings/) and a TensorFlow step the machine it ran on (machine/), which publish reads.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shears.store import layout as L

if TYPE_CHECKING:
    from shears.run.context import RunContext

# The DAG's shape is fixed (DAGs are acyclic): SEARCH_ROUNDS fan-outs of trials; config.search.rounds uses
# the first ones, a later round with nothing to propose maps over an empty list (skipped).
SEARCH_ROUNDS = 3


@dataclass(frozen=True)
class Step:
    """One step of a run: its name (= the Airflow task id, = failure.json's stage), what it runs and how.

    A step with `expands` set is fanned out: it runs once per item of the list that step returned (Airflow
    dynamic task mapping, `.expand()`; the CLI runs the items in sequence or in N processes).
    """

    name: str
    target: str  # "module:function" of the phase module, imported when the step runs
    tensorflow: bool  # imports TensorFlow: Airflow routes it to the TensorFlow queue/pool
    retry_io: bool  # Airflow retries transient store/network errors; validate and gate fail at once
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    expands: str | None = None  # the step whose returned list this one maps over
    light_when_empty: bool = False  # runs even when the step before it mapped over nothing (skipped)
    args: tuple[Any, ...] = ()  # extra arguments of the function (the round of a propose step)

    @property
    def function(self) -> Callable[..., Any]:
        module, _, name = self.target.partition(":")
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return fn

    def run(self, ctx: RunContext, item: Any = None) -> Any:
        """Run the step (a mapped step for one `item`)."""
        if self.expands is not None:
            return self.function(ctx, item, *self.args)
        return self.function(ctx, *self.args)

    @property
    def all_writes(self) -> tuple[str, ...]:
        """What it declares, plus its timing and (TensorFlow steps) its machine record."""
        return (*self.writes, f"{L.TIMINGS_DIR}/*.json", *((f"{L.MACHINE_DIR}/*.json",) if self.tensorflow else ()))


_P = "shears.run.steps"
TRIAL_PLAN = L.trial_file_pattern("plan.json")
TRIAL_RESULT = L.trial_file_pattern("result.json")
TRIAL_FILES = tuple(L.trial_file_pattern(n) for n in ("model.tflite", "untrimmed.tflite", "stripped.h5",
                                                       "prune_key.txt", "sparsity.json"))
PRUNED = L.pruned_cache("*")
SPLITS = (L.SEARCH_SPLITS, L.VALIDATION)  # the arrays, and the task validate recorded with them


def _search_round(r: int) -> tuple[Step, Step]:
    # round 1 assembles sensitivity.json from the per-layer parts; later rounds read it
    # (and the trials of the rounds before it)
    before = (L.sensitivity_part("*"),) if r == 1 else (L.SENSITIVITY, TRIAL_PLAN, TRIAL_RESULT)
    propose = Step(f"propose_{r}", f"{_P}.search:step_propose", tensorflow=False, retry_io=True, args=(r,),
                   light_when_empty=True, reads=(L.BASELINE_REC, *before, L.timing("plan_sensitivity")),
                   writes=((L.SENSITIVITY,) if r == 1 else ()) + (TRIAL_PLAN,))
    trials = Step(f"trials_{r}", f"{_P}.trial:step_trial", tensorflow=True, retry_io=True, expands=f"propose_{r}",
                  reads=(TRIAL_PLAN, L.BASELINE_REC, *SPLITS, L.BASELINE_MODEL, L.BASELINE_OUTPUTS, PRUNED),
                  writes=(PRUNED, *TRIAL_FILES, TRIAL_RESULT))
    return propose, trials


STEPS: tuple[Step, ...] = (
    Step("validate", f"{_P}.data:step_validate", tensorflow=False, retry_io=False,
         writes=(L.CONFIG, L.VALIDATION, L.LABELS, L.SEARCH_SPLITS, L.TEST_SPLIT)),
    Step("baseline", f"{_P}.baseline:step_baseline", tensorflow=True, retry_io=True, reads=SPLITS,
         writes=(L.BASELINE_MODEL, L.BASELINE_REC, L.KERAS3_ARCHITECTURE, L.BASELINE_OUTPUTS)),
    Step("plan_sensitivity", f"{_P}.search:step_plan_sensitivity", tensorflow=False, retry_io=True,
         reads=(L.BASELINE_REC,)),
    Step("sensitivity", f"{_P}.search:step_sensitivity", tensorflow=True, retry_io=True, expands="plan_sensitivity",
         reads=(L.BASELINE_REC, L.BASELINE_MODEL, *SPLITS), writes=(L.sensitivity_part("*"),)),
    *(s for r in range(1, SEARCH_ROUNDS + 1) for s in _search_round(r)),
    Step("select", f"{_P}.select:step_select", tensorflow=True, retry_io=True, light_when_empty=True,
         reads=(TRIAL_PLAN, TRIAL_RESULT, *TRIAL_FILES, PRUNED, L.BASELINE_REC, L.BASELINE_OUTPUTS,
                L.KERAS3_ARCHITECTURE,
                L.STRIPPED_MODEL, *SPLITS, f"{L.TIMINGS_DIR}/*.json"),
         writes=(*L.PRUNED_MODELS, L.STRIPPED_MODEL, L.tflite_model("*"), L.SPARSITY, L.PRUNE_REC,
                 f"{L.TENSORBOARD}/*", L.STRIPPED_KERAS3, L.saved_model_file("*"), L.SEARCH, L.UNTRIMMED_DEPLOYABLE)),
    Step("evaluate", f"{_P}.evaluate:step_evaluate", tensorflow=True, retry_io=True,
         reads=(*SPLITS, L.TEST_SPLIT, L.PRUNE_REC, L.BASELINE_MODEL, *L.PRUNED_MODELS, L.STRIPPED_MODEL,
                L.STRIPPED_KERAS3, L.saved_model_file("*"), L.tflite_model("*"), L.UNTRIMMED_DEPLOYABLE),
         writes=(L.METRICS, L.LATENCY)),
    Step("gate", f"{_P}.gate:step_gate", tensorflow=False, retry_io=False,
         reads=(L.METRICS, L.SPARSITY, L.SEARCH, *SPLITS, L.TEST_SPLIT, L.VALIDATION, L.tflite_model("*")),
         writes=(L.GATES,)),
    # publish takes the files every step recorded writing (their timings list them): it reads them all
    Step("publish", f"{_P}.publish:step_publish", tensorflow=False, retry_io=True, reads=("*",),
         writes=(L.REPORT, L.MODEL_CARD_JSON, L.MODEL_CARD_MD)),
)
STEP_NAMES: tuple[str, ...] = tuple(s.name for s in STEPS)


def step(name: str) -> Step:
    """The step called `name` (a KeyError names the known steps)."""
    for s in STEPS:
        if s.name == name:
            return s
    raise KeyError(f"no step {name!r}; steps are {', '.join(STEP_NAMES)}")
