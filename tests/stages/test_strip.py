from __future__ import annotations

import pytest
from shears.config import ModelConfig
from shears.stages.baseline import train_baseline
from shears.stages.data import load_digits_default, split
from shears.stages.strip import strip_and_verify

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def splits():  # type: ignore[no-untyped-def]
    return split(load_digits_default(), 0.2, 0, 10)


@pytest.fixture(scope="module")
def baseline(splits):  # type: ignore[no-untyped-def]
    return train_baseline(splits, ModelConfig(epochs=3)).model


def test_verification_fails_an_unpruned_model(baseline) -> None:  # type: ignore[no-untyped-def]
    # A dense model claimed as pruned (the silent 0% case) must fail verification, not pass.
    result = strip_and_verify(baseline, {"conv": 0.8, "dense": 0.8}, 0.01)
    assert not result.passed
    assert {r.layer for r in result.record.layers if not r.passed} == {"conv", "dense"}
