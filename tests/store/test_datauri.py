"""shears.store.datauri: the data asset's default URI and data-URI parsing (`shears data push` and the DAGs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shears.errors import ConfigError
from shears.store.datauri import default_data_uri, local_path, location


def test_default_data_uri_follows_shears_data_uri_then_airflow_home(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    monkeypatch.delenv("SHEARS_DATA_URI", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "air flow"))
    assert default_data_uri() == f"file://{tmp_path}/air%20flow/shears-incoming/data.npz"
    monkeypatch.setenv("SHEARS_DATA_URI", "")  # empty counts as unset
    assert default_data_uri() == (tmp_path / "air flow" / "shears-incoming" / "data.npz").as_uri()
    monkeypatch.setenv("SHEARS_DATA_URI", "s3://bucket/incoming/data.npz")
    assert default_data_uri() == "s3://bucket/incoming/data.npz"

    monkeypatch.delenv("SHEARS_DATA_URI")
    monkeypatch.delenv("AIRFLOW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_uri() == (tmp_path / "home" / "airflow" / "shears-incoming" / "data.npz").as_uri()


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:///data/in/new.npz", "/data/in/new.npz"),
        ("file:///data/with%20space/x.csv", "/data/with space/x.csv"),  # percent-decoded
        ("file://localhost/data/x.npz", "/data/x.npz"),
        ("/data/plain.npz", "/data/plain.npz"),
        ("relative/x.npz", "relative/x.npz"),  # as given: callers decide what it is relative to
        ("s3://bucket/incoming/data.npz", None),
    ],
)
def test_local_path_and_location(uri: str, path: str | None) -> None:
    assert local_path(uri) == (Path(path) if path is not None else None)
    assert location(uri) == (path if path is not None else uri)


def test_the_default_round_trips_to_a_readable_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SHEARS_DATA_URI", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "a%b c"))
    assert location(default_data_uri()) == str(tmp_path / "a%b c" / "shears-incoming" / "data.npz")


@pytest.mark.parametrize("uri", ["gs://bucket/x.npz", "http://example.com/x.npz", "file://"])
def test_unsupported_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(ConfigError, match=uri.split("/")[0]):
        local_path(uri)
    with pytest.raises(ConfigError):
        location(uri)
