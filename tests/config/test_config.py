from __future__ import annotations

from pathlib import Path

import pytest
from shears.config import PipelineConfig, build_config, load_config
from shears.errors import ConfigError


def test_defaults_are_valid_and_frozen() -> None:
    cfg = PipelineConfig()
    assert cfg.prune.final_sparsity == 0.8
    assert cfg.convert.deployable in cfg.convert.variants
    with pytest.raises(Exception, match="frozen"):
        cfg.prune.final_sparsity = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"prune": {"final_sparsity": 1.5}}, "prune.final_sparsity"),
        ({"prune": {"final_sparsity": 0}}, "prune.final_sparsity"),
        ({"prune": {"bogus": 1}}, "prune.bogus: unknown key"),
        ({"nope": {}}, "nope: unknown key"),
        ({"convert": {"variants": ["int8"], "deployable": "float16"}}, "deployable 'float16' is not among"),
        ({"prune": {"initial_sparsity": 0.9, "final_sparsity": 0.5}}, "initial_sparsity must not exceed"),
        ({"validation": {"value_min": 2, "value_max": 1}}, "value_min must not exceed"),
    ],
)
def test_bad_values_give_one_line_naming_the_field(raw: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build_config(raw)
    msg = str(exc.value)
    assert needle in msg
    assert "\n" not in msg


def test_yaml_and_overrides(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("prune:\n  final_sparsity: 0.6\ndata:\n  label_column: y\n")
    cfg = load_config(p, {"data.label_column": "target", "model.pretrained": None})
    assert cfg.prune.final_sparsity == 0.6
    assert cfg.data.label_column == "target"  # CLI flag wins over the file
    assert cfg.model.pretrained is None


def test_example_config_documents_the_defaults() -> None:
    from pathlib import Path as _P

    example = load_config(_P(__file__).resolve().parents[2] / "configs" / "example.yaml")
    assert example == PipelineConfig()


def test_example_config_names_every_key() -> None:
    """configs/example.yaml is the reference: every section and key of the config model appears in it."""
    from pathlib import Path as _P

    import yaml

    raw = yaml.safe_load((_P(__file__).resolve().parents[2] / "configs" / "example.yaml").read_text())
    defaults = PipelineConfig().model_dump(mode="json", by_alias=True)
    missing = [f"{section}.{key}" for section, values in defaults.items() if isinstance(values, dict)
               for key in values if key not in (raw.get(section) or {})]
    assert missing == []


def test_task_defaults_fill_only_the_fields_a_config_leaves_unset() -> None:
    from shears.config import TASK_DEFAULTS, with_task_defaults

    cfg, filled = with_task_defaults(build_config({}), "regression")
    assert filled == TASK_DEFAULTS["regression"]
    resolved = (cfg.model.epochs, cfg.prune.epochs, cfg.prune.final_sparsity, cfg.search.space.epochs)
    assert resolved == (60, 60, 0.9, (60,))
    # set by the user, kept: the rest still filled
    given = build_config({"model": {"epochs": 7}, "search": {"space": {"clusters": [0]}}})
    cfg, filled = with_task_defaults(given, "regression")
    assert cfg.model.epochs == 7 and "model.epochs" not in filled
    assert cfg.search.space.epochs == (60,) and cfg.search.space.clusters == (0,)
    # classifiers keep today's defaults; resolving twice fills nothing more (the staged config is final)
    assert with_task_defaults(build_config({}), "multiclass") == (PipelineConfig(), {})
    assert with_task_defaults(build_config({}), "binary")[1] == {}
    assert with_task_defaults(cfg, "regression") == (cfg, {})
    assert with_task_defaults(PipelineConfig.model_validate_json(cfg.to_bytes()), "regression")[1] == {}
