from __future__ import annotations

import pytest
from shears.errors import ConfigError
from shears.keras.builders import mlp, resolve_builder, small_cnn, tutorial_cnn

pytestmark = pytest.mark.tf


def test_builders_emit_logits_per_class() -> None:
    assert small_cnn((8, 8), 10).output_shape == (None, 10)
    assert tutorial_cnn((28, 28), 10).count_params() == 12 * 9 + 12 + 13 * 13 * 12 * 10 + 10
    assert mlp((30,), 2).output_shape == (None, 2)


@pytest.mark.parametrize(("spec", "needle"), [("nocolon", "module:function"), ("no.such.mod:f", "is not allowed"),
                                              ("shears.keras.builders:nope", "no function nope")])
def test_bad_builder_specs(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve_builder(spec)
