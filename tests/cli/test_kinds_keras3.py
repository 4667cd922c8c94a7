"""Every layer kind Shears prunes, in a Keras 3 file: pruned to target after strip and in the .tflite."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli import layer_kinds
from tests.keras import kinds

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return layer_kinds.family_runs(tmp_path_factory, "keras3")


@pytest.mark.parametrize("layer", sorted(kinds.KINDS))
def test_layer_kind_is_pruned_to_target(runs: dict[str, dict[str, Any]], layer: str) -> None:
    layer_kinds.check_kind(runs, layer)


def test_depthwise_conv_is_kept_dense_with_a_reason(runs: dict[str, dict[str, Any]]) -> None:
    layer_kinds.check_kept(runs, "depthwise")


def test_recurrent_model_converts_with_batch_one_and_no_int8(runs: dict[str, dict[str, Any]]) -> None:
    layer_kinds.check_recurrent_conversion(runs)
