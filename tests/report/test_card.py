"""The model card (model_card.json + model_card.md) from typed records, and `shears show`."""

from __future__ import annotations

import json
from pathlib import Path

from shears.records import BaselineRecord, DatasetRef, MachineInfo, ModelCardRecord
from shears.release.manifest import build_manifest
from shears.report import build_model_card, render_card_markdown, signature_of
from shears.report.readers import RunRecords
from shears.store import LocalStore
from shears.store import layout as L
from typer.testing import CliRunner

from tests.report.test_render import sample_records

V0 = Path(__file__).resolve().parents[1] / "fixtures" / "store_v0"
MACHINE = MachineInfo(cpu_model="Intel(R) Xeon(R) Processor @ 2.80GHz", arch="x86_64",
                      isa=["AVX", "AVX2", "AVX512F", "FMA"], onednn=True, onednn_env=None, intra_op_threads=0,
                      inter_op_threads=0, cpus_available=2, steps=["baseline", "prune", "strip", "convert", "evaluate"])
BASELINE = BaselineRecord(accuracy=0.958333, builder="shears.keras.builders:small_cnn", pretrained=None, params=149194)


def _card(records: RunRecords, key_id: str | None = "ab" * 32) -> ModelCardRecord:
    return build_model_card(records, baseline=BASELINE, machines=[MACHINE], signature=signature_of(key_id, L.SIGNATURE),
                            intended_use="Digits on 8x8 scans; not for handwriting in the wild.", data_uri=None)


def test_card_of_a_passing_run_covers_every_part() -> None:
    card = _card(sample_records(champion="r0"))
    assert card.to_json()["schema"] == "shears.model_card/v1" and card.status == "passed"
    assert card.data.sha256 == "8b3b" + "0" * 60 and card.data.rows == 1797 and card.data.num_classes == 10
    assert card.data.validation_passed and card.data.validation_checks == 2
    assert (card.data.test_fraction, card.data.split_seed) == (0.2, 0)  # no test split in the source
    assert card.recipe.baseline is not None and card.recipe.baseline.accuracy == 0.958333
    assert card.recipe.pruning is not None and card.recipe.pruning.schedule is not None
    assert card.recipe.pruning.schedule.end_step == 66 and card.recipe.pruning.pruned_layers == ["conv", "dense"]
    assert card.recipe.conversion is not None and card.recipe.conversion.deployable == "dynamic_range"
    assert [(a.name, a.gzip_bytes, a.accuracy) for a in card.artifacts][-2] == ("tflite_dynamic_range", 51422, 0.944444)
    assert card.deployable is not None and card.deployable.gzip_bytes == 51422
    assert card.gates is not None and card.gates.passed and len(card.gates.gates) == 4
    assert card.champion.run_id == "r0" and [g.name for g in card.champion.gates] == ["champion_max_accuracy_drop_pp"]
    assert card.signature.status == "signed" and card.signature.key_id == "ab" * 32
    assert card.machines == [MACHINE] and card.git_commit == "c18ded98ca97d687a39683132d944ef25883bc59"
    assert ModelCardRecord.from_bytes(card.to_bytes()) == card

    md = render_card_markdown(card)
    for text in ("# Model card: `r1`", "**PASSED", "Digits on 8x8 scans", "`8b3b" + "0" * 60 + "`",
                 "seeded stratified 20% of the rows", "polynomial_decay 0.50 → 0.80, steps 0–66 every 11",
                 "| ★ tflite_dynamic_range | LiteRT | models/model_dynamic_range.tflite | 155,664 | 51,422 | 0.9444 "
                 "| 0.0029 |",
                 "| LiteRT | models/model_dynamic_range.tflite | 155,664 | 51,422 | 0.9444 | phones, Linux",
                 "| Keras (tf_keras) | models/stripped.h5 | 614,552 | 166,790 | 0.9444 |",
                 "**Runs on TFLite Micro**: not checked (convert.micro is off",
                 "| min_accuracy | 0.9 | 0.944444 | pass |", "Compared against champion `r0`.",
                 "| champion_max_accuracy_drop_pp | 1 | 0 | pass |", "Signed with key id `" + "ab" * 32 + "`",
                 "AVX AVX2 AVX512F FMA", "on (default)", "| tensorflow | 2.21.0 |"):
        assert text in md, text


def test_card_of_a_rejected_run_says_why_and_is_unsigned_without_a_key() -> None:
    card = _card(sample_records(passed=False), key_id=None)
    assert card.status == "rejected" and card.gates is not None and not card.gates.passed
    assert card.champion.run_id is None and card.signature.status == "unsigned"
    md = render_card_markdown(card)
    assert "**REJECTED" in md and "_Not published: rejected runs keep no model files._" in md
    assert "| min_accuracy | 0.999 | 0.944444 | FAIL |" in md
    assert "No champion when the gates ran" in md and "Unsigned: no signing key" in md


def test_same_records_give_identical_cards() -> None:
    a, b = _card(sample_records()), _card(sample_records())
    assert a.to_bytes() == b.to_bytes() and render_card_markdown(a) == render_card_markdown(b)


def test_an_empty_run_still_renders() -> None:
    card = build_model_card(RunRecords(run_id="bare", status="rejected"), baseline=None, machines=[],
                            signature=signature_of(None, L.SIGNATURE), intended_use=None, data_uri=None)
    md = render_card_markdown(card)
    assert "_Not stated" in md and "_Not available: the run has no metrics._" in md and "_Not recorded" in md


def _publish_card(store: LocalStore, run_id: str) -> None:
    card = _card(sample_records(run_id=run_id))
    files = {L.MODEL_CARD_JSON: card.to_bytes(), L.MODEL_CARD_MD: render_card_markdown(card).encode()}
    for name, data in files.items():
        store.put(L.RunLayout(run_id).run(name), data)
    m = build_manifest(run_id=run_id, status="passed", files=files, config={},
                       dataset=DatasetRef(name="d", sha256=None, rows=None), timings={}, gates_passed=True,
                       deployable=None, champion_compared=None, commit=None)
    store.put(L.RunLayout(run_id).run(L.MANIFEST), m.to_bytes())


def test_shears_show_prints_the_stored_card_and_refuses_a_changed_one(tmp_path: Path) -> None:
    from shears.cli.main import app

    store = LocalStore(tmp_path)
    _publish_card(store, "r1")
    runner = CliRunner()
    res = runner.invoke(app, ["show", str(tmp_path), "r1"])
    assert res.exit_code == 0, res.output
    assert res.stdout == store.get("runs/r1/model_card.md").decode()
    res = runner.invoke(app, ["show", str(tmp_path), "r1", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["schema"] == "shears.model_card/v1"
    store.put("runs/r1/model_card.md", b"# a nicer story\n")
    res = runner.invoke(app, ["show", str(tmp_path), "r1"])
    assert res.exit_code == 1
    assert res.stderr.strip() == ("error: runs/r1/model_card.md does not match its manifest (changed after "
                                  f"publication); run `shears audit {tmp_path}`")
    res = runner.invoke(app, ["show", str(tmp_path), "nope"])
    assert res.exit_code == 1 and "run nope: no published or rejected run" in res.stderr
    assert runner.invoke(app, ["show", str(tmp_path), "../x"]).exit_code == 2


def test_shears_show_builds_a_card_for_runs_published_before_cards(tmp_path: Path) -> None:
    from shears.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["show", str(V0), "v0-pass"])
    assert res.exit_code == 0, res.output
    assert "published without a model card; this one is built now from its records" in res.stderr
    assert "# Model card: `v0-pass`" in res.stdout and "52,674" in res.stdout
    res = runner.invoke(app, ["show", str(V0), "v0-rejected"])
    assert res.exit_code == 0 and "**REJECTED" in res.stdout
