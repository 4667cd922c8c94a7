"""Policy floors: a run's config may tighten them, never loosen them (regressors' gates included)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shears.config import build_config
from shears.errors import ConfigError
from shears.policy import Policy, apply_policy, load_policy


def test_the_built_in_floor_keeps_a_regressors_skill_gate_when_the_config_nulls_it() -> None:
    cfg = build_config({"gates": {"min_skill_margin_pct": None, "min_skill_margin_pp": None}})
    applied = apply_policy(cfg, Policy())
    assert applied.gates.min_skill_margin_pct == 0.0 and applied.gates.min_skill_margin_pp == 0.0


def test_a_deployment_refuses_a_config_loosening_the_regression_floors(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("gates:\n  max_change_pct: 5\n  min_skill_margin_pct: 20\n")
    policy = load_policy(path)
    with pytest.raises(ConfigError, match=r"gates.max_change_pct 50 is weaker than the deployment's floor 5"):
        apply_policy(build_config({"gates": {"max_change_pct": 50}}), policy)
    with pytest.raises(ConfigError, match=r"gates.min_skill_margin_pct null \(off\) is weaker"):
        apply_policy(build_config({"gates": {"min_skill_margin_pct": None}}), policy)
    tighter = apply_policy(build_config({"gates": {"max_change_pct": 2}}), policy)
    assert tighter.gates.max_change_pct == 2 and tighter.gates.min_skill_margin_pct == 20  # default raised
