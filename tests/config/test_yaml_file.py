from __future__ import annotations

from pathlib import Path

import pytest
from shears.config.yaml_file import read_config_file
from shears.errors import ConfigError


def test_missing_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "missing.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_config_file(p)


def test_deeply_nested_yaml_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError) as exc:
        read_config_file(deep)
    assert str(exc.value) == "YAML nested more than 64 levels deep at line 1: Shears configs are a few levels deep"
