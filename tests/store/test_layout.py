from __future__ import annotations

import pytest
from shears.errors import ConfigError
from shears.store import layout as L


def test_run_layout_keys() -> None:
    lay = L.RunLayout("r1")
    assert lay.run(L.MANIFEST) == "runs/r1/manifest.json" and lay.staging(L.TEST_SPLIT) == "staging/r1/data/test.npz"
    assert lay.rejected(L.FAILURE) == "rejected/r1/failure.json" and lay.key("runs", "x") == "runs/r1/x"


@pytest.mark.parametrize("bad", ["../x", "", "a/b", ".hidden", "x" * 129, "ok\n", "sp ace"])
def test_one_place_refuses_bad_run_ids_with_exit_code_2(bad: str) -> None:
    with pytest.raises(ConfigError, match="invalid run id") as info:
        L.RunLayout(bad)
    assert info.value.exit_code == 2 and len(str(info.value)) <= 300


def test_sanitize_airflow_run_ids() -> None:
    assert L.sanitize_run_id("manual__2026-11-21T05:00:00+00:00") == "manual__2026-11-21T05_00_00_00_00"
    with pytest.raises(ConfigError):
        L.sanitize_run_id(":::")


def test_run_keys_are_parsed_where_they_are_built() -> None:
    assert L.split_run_key("runs/r1/models/a.tflite") == ("runs", "r1", "models/a.tflite")
    assert L.split_run_key("champion.json") is None and L.split_run_key("runs/../x") is None
    keys = ["runs/a/manifest.json", "runs/a/models/m.h5", "runs/b/x", "rejected/c/failure.json"]
    assert L.group_run_keys(keys, "runs") == {"a": ["manifest.json", "models/m.h5"], "b": ["x"]}
    assert L.is_model_file("models/model_int8.tflite") and not L.is_model_file("gates.json")
