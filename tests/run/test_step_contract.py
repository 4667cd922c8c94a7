"""Every step reads only what an earlier step declared it writes, and declares what it really reads and writes.

A real search on digits runs through a store that records every staging key each step touched; the
declarations in shears.run.steps.STEPS are checked against those observations, and against each other
(a read must be an earlier step's declared write).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from shears.run.pipeline import run_pipeline
from shears.run.steps import STEPS, Step
from shears.store import LocalStore
from shears.store import layout as L

from tests.conftest import fast_config
from tests.run.test_search import CHEAP

pytestmark = pytest.mark.tf

BEFORE = "(begin)"


class RecordingStore(LocalStore):
    """A real local store that remembers which staging names each step read (get, exists) and wrote (put).
    Listing a folder reads no file."""

    def __init__(self, root: Path, run_id: str) -> None:
        super().__init__(root)
        self.prefix = L.RunLayout(run_id).staging_prefix + "/"
        self.step = BEFORE
        self.reads: dict[str, set[str]] = {}
        self.writes: dict[str, set[str]] = {}

    def _note(self, book: dict[str, set[str]], key: str) -> None:
        if key.startswith(self.prefix):
            book.setdefault(self.step, set()).add(key[len(self.prefix):])

    def get(self, key: str) -> bytes:
        self._note(self.reads, key)
        return super().get(key)

    def exists(self, key: str) -> bool:
        self._note(self.reads, key)
        return super().exists(key)

    def put(self, key: str, data: bytes) -> None:
        self._note(self.writes, key)
        super().put(key, data)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(name, p) for p in patterns)


def contract_violations(steps: tuple[Step, ...], reads: dict[str, set[str]],
                        writes: dict[str, set[str]]) -> list[str]:
    """What breaks the contract: a declared read that neither an earlier step nor the step itself (a mapped step's
    shared cache, a file it writes and reads back) declares writing; a name a step read or wrote that it does not
    declare."""
    problems: list[str] = []
    earlier: list[str] = [L.CLAIM_REC]  # staged by lifecycle.begin before the first step
    for step in steps:
        for pattern in step.reads:
            if pattern != "*" and not _matches(pattern, (*earlier, *step.all_writes)):
                problems.append(f"{step.name} declares reading {pattern}, which no earlier step writes")
        for name in sorted(reads.get(step.name, set())):
            if not _matches(name, (*step.reads, *step.all_writes)):
                problems.append(f"{step.name} read {name} without declaring it")
        for name in sorted(writes.get(step.name, set())):
            if not _matches(name, step.all_writes):
                problems.append(f"{step.name} wrote {name} without declaring it")
        earlier += step.all_writes
    return problems


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> RecordingStore:
    store = RecordingStore(tmp_path_factory.mktemp("contract"), "contract")

    def on_step(name: str, state: str) -> None:  # what the CLI reads between steps is not the step's
        store.step = name if state == "start" else f"after {name}"

    outcome = run_pipeline(store, fast_config(search={**CHEAP, "max_trials": 3, "rounds": 2, "trials_per_round": 2}),
                           "contract", on_step=on_step)
    assert outcome.passed, outcome.error
    return store


def test_every_step_reads_and_writes_only_what_it_declares(observed: RecordingStore) -> None:
    ran = [s.name for s in STEPS if s.name in observed.reads or s.name in observed.writes]
    assert {"validate", "baseline", "sensitivity", "propose_1", "trials_1", "propose_2", "trials_2", "select",
            "evaluate", "gate", "publish"} <= set(ran), ran
    assert contract_violations(STEPS, observed.reads, observed.writes) == []


def test_every_declared_read_is_an_earlier_steps_declared_write() -> None:
    assert contract_violations(STEPS, {}, {}) == []


def test_the_contract_check_finds_an_undeclared_read_and_a_read_of_a_later_write() -> None:
    reads: dict[str, Any] = {"baseline": {L.SEARCH_SPLITS, L.TEST_SPLIT}}  # the test split, before evaluate
    assert contract_violations(STEPS, reads, {}) == [f"baseline read {L.TEST_SPLIT} without declaring it"]
    early = tuple(s if s.name != "baseline" else Step(s.name, s.target, s.tensorflow, s.retry_io,
                                                       reads=(*s.reads, L.METRICS), writes=s.writes)
                  for s in STEPS)
    assert contract_violations(early, {}, {}) == [f"baseline declares reading {L.METRICS}, which no earlier step "
                                                  "writes"]
