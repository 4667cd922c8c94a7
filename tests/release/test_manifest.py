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


def test_manifest_records_machines_and_the_signature_and_old_manifests_still_load() -> None:
    from pathlib import Path

    from shears.records import MachineInfo, SignatureRef

    machine = MachineInfo(cpu_model="x", arch="x86_64", isa=["AVX2"], onednn=False, onednn_env="0",
                          intra_op_threads=2, inter_op_threads=1, cpus_available=2, steps=["baseline"])
    m = build_manifest(run_id="r", status="passed", files={"x": b"abc"}, config={},
                       dataset=DatasetRef(name="d", sha256=None, rows=None), timings={}, gates_passed=True,
                       deployable=None, champion_compared=None, commit=None, machines=[machine],
                       signature=SignatureRef(file="model.sig", key_id="ab" * 32))
    again = ManifestRecord.from_bytes(m.to_bytes())
    assert again.machines == [machine] and again.signature is not None and again.signature.key_id == "ab" * 32
    old = Path(__file__).resolve().parents[1] / "fixtures" / "store_v0" / "runs" / "v0-pass" / "manifest.json"
    v0 = ManifestRecord.from_bytes(old.read_bytes())
    assert v0.machines == [] and v0.signature is None
