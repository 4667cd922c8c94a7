from __future__ import annotations

from shears.records import DatasetRef, ManifestRecord
from shears.release.manifest import build_manifest, versions


def test_manifest_lists_every_file_with_sha256_and_size() -> None:
    m = build_manifest(run_id="r", status="passed", files={"x": b"abc"}, config={},
                       dataset=DatasetRef(name="d", sha256="0" * 64, rows=3), timings={}, gates_passed=True,
                       deployable=None, champion_compared=None, commit=None)
    assert m.files["x"].bytes == 3 and m.files["x"].sha256.startswith("ba7816bf")
    assert ManifestRecord.from_bytes(m.to_bytes()) == m
    assert m.to_json()["schema"] == "shears.manifest/v1"


def test_versions_name_the_stack() -> None:
    v = versions()
    assert v["shears"] != "not installed" and {"tensorflow", "tfmot", "python"} <= set(v)
