"""The model card: one page per run for reviewers, as JSON (ModelCardRecord) and Markdown rendered from it.

Built only from the run's typed records (RunRecords, baseline.json) plus what the publish step knows
(the machines the TensorFlow steps ran on, whether the folder is signed). The JSON is the stable,
documented form (`shears.model_card/v1`, fields only ever added); the Markdown is a rendering of exactly
that record, so the two never disagree. Written for passing and rejected runs alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shears.records import (
    BaselineRecord,
    CardArtifact,
    CardBaseline,
    CardChampion,
    CardConversion,
    CardData,
    CardGates,
    CardPruning,
    CardRecipe,
    CardSignature,
    DeployableRef,
    MachineInfo,
    ModelCardRecord,
)
from shears.report.readers import RunRecords

CHAMPION_GATE_PREFIX = "champion_"
SIGNATURE_FORMAT = "model-signing/v1.0 sigstore bundle (DSSE, in-toto), elliptic-curve key"


def _data(r: RunRecords, data_uri: str | None) -> CardData:
    v = r.validation
    ds = r.dataset
    split = r.config.data if r.config is not None and v is not None and v.test_rows == 0 else None
    rows = v.split_rows if v is not None and v.split_rows else {}
    return CardData(
        uri=data_uri,
        name=(v.dataset if v else None) or (ds.name if ds else None),
        sha256=(v.dataset_sha256 if v else None) or (ds.sha256 if ds else None),
        rows=v.rows if v else (ds.rows if ds else None),
        # the test split measured on; records before split_rows only knew the source's own (0: Shears split)
        test_rows=rows.get("test", v.test_rows if v and v.test_rows else None) if v else None,
        num_classes=v.num_classes if v else None,
        feature_shape=list(v.feature_shape) if v else None,
        validation_passed=v.success if v else None,
        validation_checks=len(v.checks) if v else 0,
        validation_failed=[f"{c.name} (observed {c.observed}; expected {c.expected})" for c in v.failed] if v else [],
        test_fraction=split.test_fraction if split else None,
        split_seed=split.split_seed if split else None,
        train_rows=rows.get("train"),
        validation_rows=rows.get("validation"),
    )


def _baseline(r: RunRecords, baseline: BaselineRecord | None) -> CardBaseline | None:
    cfg = r.config
    if baseline is None and cfg is None:
        return None
    pretrained = baseline.pretrained if baseline else (cfg.model.pretrained if cfg else None)
    trained = not pretrained
    m = cfg.model if cfg else None
    tested = r.metrics.artifact("baseline") if r.metrics else None
    return CardBaseline(
        source="trained" if trained else "pretrained",
        builder=baseline.builder if baseline else (m.builder if m else None),
        pretrained=pretrained,
        params=baseline.params if baseline else None,
        epochs=m.epochs if m and trained else None,
        batch_size=m.batch_size if m and trained else None,
        learning_rate=m.learning_rate if m and trained else None,
        seed=m.seed if m and trained else None,
        accuracy=baseline.score if baseline else None,
        metric=baseline.metric if baseline else "accuracy",
        accuracy_split=baseline.split if baseline else None,
        test_accuracy=tested.score if tested else None,
    )


def _pruning(r: RunRecords) -> CardPruning | None:
    """What prune.json says was published; with no prune.json (a run stopped early), what was configured."""
    cfg = r.config
    if cfg is None:
        return None
    p = cfg.prune
    rec = r.prune
    recipe = rec.recipe if rec else None
    targets = dict(recipe.sparsity) if recipe else dict(rec.layer_sparsity) if rec else {}
    return CardPruning(
        schedule=rec.schedule if rec else None,
        pruned_layers=list(rec.pruned_layers) if rec else list(p.layers or ()),
        target_sparsity=max(targets.values()) if targets else p.final_sparsity,
        tolerance=p.sparsity_tolerance,
        epochs=recipe.prune_epochs if recipe else p.epochs,
        seed=p.seed,
        accuracy_after_finetune=rec.score if rec else None,
        metric=rec.metric if rec else "accuracy",
        layers=list(r.sparsity.layers) if r.sparsity else [],
        sparsity_passed=r.sparsity.passed if r.sparsity else None,
        accuracy_split=rec.split if rec else None,
        layer_targets=targets,
        clusters=dict(recipe.clusters) if recipe else {},
        qat=recipe.qat_scheme if recipe else None,
        distill=(f"temperature {recipe.distill_temperature:g}, alpha {recipe.distill_alpha:g}"
                 if recipe and recipe.distill else None),
        trial=rec.trial if rec else None,
        recipe=recipe.describe() if recipe else None,
    )


def _conversion(r: RunRecords) -> CardConversion | None:
    cfg = r.config
    if cfg is None:
        return None
    c = cfg.convert
    recipe = r.prune.recipe if r.prune else None
    measured = [a.name.removeprefix("tflite_") for a in r.metrics.artifacts if a.kind == "tflite"] if r.metrics else []
    return CardConversion(variants=measured or list(c.variants), deployable=recipe.variant if recipe else c.deployable,
                          representative_samples=c.representative_samples,
                          fixed_batch=recipe.fixed_batch if recipe else False)


def _recipe(r: RunRecords, baseline: BaselineRecord | None) -> CardRecipe:
    return CardRecipe(baseline=_baseline(r, baseline), pruning=_pruning(r), conversion=_conversion(r))


def _artifacts(r: RunRecords) -> list[CardArtifact]:
    if r.metrics is None:
        return []
    lat = r.latency.latency if r.latency else {}
    return [
        CardArtifact(name=a.name, file=a.file, kind=a.kind, raw_bytes=a.raw_bytes, gzip_bytes=a.gzip_bytes,
                     accuracy=a.accuracy, metrics=dict(a.metrics), latency_ms=lat.get(a.name),
                     deployable=a.name == r.metrics.deployable, note=a.note, runtime=a.runtime,
                     arena_bytes=a.arena_bytes)
        for a in r.metrics.artifacts
    ]


def _deployable(r: RunRecords) -> DeployableRef | None:
    if r.metrics is None:
        return None
    d = r.metrics.artifact(r.metrics.deployable)
    if d is None:
        return None
    return DeployableRef(name=d.name, file=d.file, accuracy=d.accuracy, gzip_bytes=d.gzip_bytes, raw_bytes=d.raw_bytes,
                         metrics=dict(d.metrics), primary=d.primary, task=r.metrics.task if r.metrics else "multiclass",
                         runtimes=r.metrics.runtimes())


def signature_of(key_id: str | None, file: str) -> CardSignature:
    if key_id is None:
        return CardSignature(status="unsigned")
    return CardSignature(status="signed", key_id=key_id, file=file, format=SIGNATURE_FORMAT)


def build_model_card(
    r: RunRecords,
    *,
    baseline: BaselineRecord | None,
    machines: Sequence[MachineInfo],
    signature: CardSignature,
    intended_use: str | None,
    data_uri: str | None,
) -> ModelCardRecord:
    """The card of a passing or rejected run from its records (a missing record leaves its part empty)."""
    g = r.gates
    champion_run = r.champion_compared or (g.champion.run_id if g and g.champion else None)
    return ModelCardRecord(
        run_id=r.run_id,
        status="passed" if r.status == "passed" else "rejected",
        intended_use=intended_use,
        deployable=_deployable(r),
        data=_data(r, data_uri),
        recipe=_recipe(r, baseline),
        artifacts=_artifacts(r),
        gates=CardGates(passed=g.passed, summary=g.summary, gates=list(g.gates)) if g else None,
        champion=CardChampion(
            run_id=champion_run,
            gates=[x for x in g.gates if x.name.startswith(CHAMPION_GATE_PREFIX)] if g else [],
        ),
        versions=dict(r.versions or {}),
        git_commit=r.git_commit,
        machines=list(machines),
        signature=signature,
        micro=r.metrics.micro if r.metrics else None,
        trim=r.metrics.trim if r.metrics else None,
    )


# --------------------------------------------------------------------------------------------- Markdown


def _cell(value: object) -> str:
    """A Markdown table cell: no newlines, pipes escaped."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return out


def _accuracies(accuracy: float | None, split: str | None, test: float | None, metric: str = "accuracy") -> str:
    """Every figure with its split named ("validation accuracy 0.9514; test accuracy 0.9722"; "... MSE 1.71")."""
    from shears.task import metric_info

    label = metric_info(metric).label
    parts = []
    if accuracy is not None:
        parts.append(f"{split or 'test'} {label} {accuracy:.4f}")
    if test is not None and (split or "test") != "test":
        parts.append(f"test {label} {test:.4f}")
    return "; ".join(parts) or f"{label} —"


def _score(metrics: dict[str, float], accuracy: float | None) -> str:
    """An artifact's figures: its accuracy, or every metric of its task when it has more than accuracy."""
    if metrics and set(metrics) != {"accuracy"}:
        return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    return f"{accuracy:.4f}" if accuracy is not None else "—"


def render_card_markdown(card: ModelCardRecord) -> str:
    """model_card.md: every field of the card, in reading order."""
    lines: list[str] = [f"# Model card: `{card.run_id}`", ""]
    verdict = ("PASSED: every gate passed; published under runs/" if card.status == "passed"
               else "REJECTED: at least one gate failed; records kept under rejected/, no model files")
    lines += [f"**{verdict}**", "", f"Schema `{card.SCHEMA}`: the JSON twin of this page is `model_card.json`; "
              "the run's report is `report.html`, its manifest (with the date) `manifest.json`.", ""]

    lines += ["## Intended use", "", card.intended_use.strip() if card.intended_use
              else "_Not stated (set `card.intended_use` in the pipeline config)._", ""]

    lines += ["## Deployable model", ""]
    d = card.deployable
    if d is not None:
        lines += _table(["artifact", "file", "raw bytes", "gzip bytes",
                         "test accuracy" if set(d.metrics) <= {"accuracy"} else "test metrics"],
                        [(d.name, d.file, d.raw_bytes, d.gzip_bytes, _score(d.metrics, d.accuracy))])
        if d.runtimes:
            lines += ["", "Which file for which runtime (figures on the test split):", "",
                      *_table(["runtime", "file", "raw bytes", "gzip bytes", "test figures", "for"],
                              [(x.runtime, x.file, x.raw_bytes, x.gzip_bytes, _score(x.metrics, x.metrics.get(
                                  "accuracy")) + (f"; arena {x.arena_bytes:,} B" if x.arena_bytes else ""), x.note)
                               for x in d.runtimes])]
        if card.status != "passed":
            lines += ["", "_Not published: rejected runs keep no model files._"]
    else:
        lines.append("_Not available: the run has no metrics._")
    micro = card.micro
    lines += ["", f"**Runs on TFLite Micro**: {micro.summary()}" if micro is not None else
              "**Runs on TFLite Micro**: not checked (convert.micro is off; it is on by default for an int8 "
              "deployable)", ""]

    data = card.data
    lines += ["## Data", ""]
    shape = "×".join(str(n) for n in data.feature_shape) if data.feature_shape else "—"
    lines += [
        f"- URI: `{data.uri}`" if data.uri else "- URI: none (the bundled sklearn digits)",
        f"- name: {_cell(data.name)}",
        f"- sha256: `{data.sha256}`" if data.sha256 else "- sha256: —",
        f"- rows: {_cell(data.rows)}, classes: {_cell(data.num_classes)}, features per row: {shape}",
        f"- splits: train {_cell(data.train_rows)}, validation {_cell(data.validation_rows)} (every choice of the "
        f"search), test {_cell(data.test_rows)} (read once, for the figures below)",
        f"- test split: a seeded stratified {data.test_fraction:.0%} of the rows (split_seed {data.split_seed}), "
        f"{_cell(data.test_rows)} rows"
        if data.test_fraction is not None else f"- test split: the source's own, {_cell(data.test_rows)} rows",
    ]
    if data.validation_passed is None:
        lines.append("- validation: not available")
    else:
        verdict_v = "passed" if data.validation_passed else "FAILED"
        lines.append(f"- validation (Great Expectations): {verdict_v}, {data.validation_checks} checks")
        lines += [f"  - failed: {_cell(f)}" for f in data.validation_failed]
    lines.append("")

    lines += ["## Recipe", ""]
    b = card.recipe.baseline
    if b is not None:
        if b.source == "trained":
            how = (f"trained here: builder `{b.builder or 'default'}`, {b.epochs} epochs, batch {b.batch_size}, "
                   f"learning rate {b.learning_rate}, seed {b.seed}")
        else:
            how = f"pre-trained model `{b.pretrained}` (evaluated, not retrained)"
        acc = _accuracies(b.accuracy, b.accuracy_split, b.test_accuracy, b.metric)
        lines += [f"- **Baseline**: {how}; {_cell(b.params)} parameters; {acc}"]
    p = card.recipe.pruning
    if p is not None:
        s = p.schedule
        if s is not None:
            sched = (f"{s.kind} {s.initial_sparsity:.2f} → {s.final_sparsity:.2f}, steps {s.begin_step}–{s.end_step} "
                     f"every {s.frequency} (power {s.power:g}; {s.steps_per_epoch} steps per epoch, "
                     f"{'derived' if s.derived else 'configured'})")
        else:
            sched = f"target sparsity {p.target_sparsity:.2f}"
        acc = _accuracies(p.accuracy_after_finetune, p.accuracy_split, None, p.metric)
        epochs = f"{p.epochs} fine-tune epoch{'s' if p.epochs != 1 else ''}"
        which = f"search trial {p.trial}" if p.trial is not None else "the configured recipe"
        if p.recipe:
            lines += [f"- **Published recipe** ({which}): {p.recipe}"]
        targets = (", ".join(f"{k} {v:.2f}" for k, v in sorted(p.layer_targets.items())) if p.layer_targets
                   else ", ".join(p.pruned_layers) or "—")
        lines += [f"- **Pruning** (tfmot): {sched}; {epochs}, seed {p.seed}; after fine-tuning {acc}",
                  f"- pruned layers and targets: {targets}; tolerance {p.tolerance:.2f}"]
        if p.clusters:
            lines += ["- **Clustering** (tfmot, sparsity-preserving k-means++): "
                      + ", ".join(f"{k} {v} clusters" for k, v in sorted(p.clusters.items()))]
        if p.qat:
            lines += [f"- **Quantization-aware training** (tfmot): {p.qat.upper()}"]
        if p.distill:
            lines += [f"- **Distillation**: every fine-tune learned from the baseline as teacher ({p.distill}; "
                      "alpha weighs the labels)"]
        if p.layers:
            lines += ["", *_table(["layer", "weights", "zeros", "achieved sparsity", "target", "verdict"],
                                  [(x.layer, x.weights, x.zeros, f"{x.sparsity:.4f}",
                                    "not pruned" if x.target is None else f"{x.target:.2f}",
                                    "pass" if x.passed else "FAIL") for x in p.layers])]
    c = card.recipe.conversion
    if c is not None:
        lines += ["", f"- **Conversion** (TFLite): variants {', '.join(c.variants)}; deployable `{c.deployable}`"
                      f"{' (batch of one)' if c.fixed_batch else ''}; int8 calibration rows {c.representative_samples}"]
        t = card.trim
        if t is not None:
            same = "identical" if t.litert_identical else "DIFFERENT"
            micro_same = {None: "", True: " and TFLite Micro", False: "; TFLite Micro's DIFFER"}[t.micro_identical]
            lines += [f"- **Trimmed** (`convert.trim`: no metadata, signatures, names or dynamic-batch shape ops): "
                      f"{t.gzip_before:,} → {t.gzip_after:,} B gzipped, structure {t.structure_before:,} → "
                      f"{t.structure_after:,} B; outputs on {t.rows:,} test rows {same} in LiteRT{micro_same}"]
    lines.append("")

    lines += ["## Artifacts", ""]
    if card.artifacts:
        only_accuracy = all(not a.metrics or set(a.metrics) == {"accuracy"} for a in card.artifacts)
        lines += _table(["artifact", "runtime", "file", "raw bytes", "gzip bytes",
                         "test accuracy" if only_accuracy else "test metrics", "latency ms", "note"],
                        [(("★ " if a.deployable else "") + a.name, a.runtime, a.file, a.raw_bytes, a.gzip_bytes,
                          _score(a.metrics, a.accuracy), a.latency_ms, a.note) for a in card.artifacts])
    else:
        lines.append("_Not available: the run has no metrics._")
    lines.append("")

    lines += ["## Gates", ""]
    g = card.gates
    if g is not None:
        lines += [f"**{'PASSED' if g.passed else 'FAILED'}**: {g.summary}", ""]
        lines += _table(["gate", "threshold", "observed", "verdict", "compared to", "reason"],
                        [(x.name, x.threshold, x.observed, "pass" if x.passed else "FAIL", x.compared_to, x.reason)
                         for x in g.gates])
    else:
        lines.append("_Not available: the run stopped before the gates._")
    lines.append("")

    lines += ["## Champion comparison", ""]
    ch = card.champion
    if ch.run_id is None:
        lines.append("No champion when the gates ran: only the absolute and baseline-relative gates applied.")
    else:
        lines.append(f"Compared against champion `{ch.run_id}`.")
        if ch.gates:
            lines += ["", *_table(["gate", "threshold", "observed", "verdict"],
                                  [(x.name, x.threshold, x.observed, "pass" if x.passed else "FAIL")
                                   for x in ch.gates])]
    lines.append("")

    lines += ["## Signature", ""]
    sig = card.signature
    if sig.status == "signed":
        lines += [f"Signed with key id `{sig.key_id}`: `{sig.file}` ({sig.format}) covers every file of the run "
                  "folder, manifest.json included. Check it with `shears audit STORE --trust KEY.pub`, or without "
                  f"Shears: `model_signing verify key runs/{card.run_id} --signature runs/{card.run_id}/{sig.file} "
                  "--public_key KEY.pub`."]
    else:
        lines.append("Unsigned: no signing key was configured when the run was published.")
    lines.append("")

    lines += ["## Machine", ""]
    if card.machines:
        lines += _table(
            ["steps", "CPU", "arch", "ISA (TensorFlow)", "oneDNN", "intra/inter-op threads", "CPUs"],
            [(", ".join(m.steps) or "—", m.cpu_model, m.arch, " ".join(m.isa) or "—",
              ("on" if m.onednn else "off") + (f" (TF_ENABLE_ONEDNN_OPTS={m.onednn_env})" if m.onednn_env is not None
                                                else " (default)"),
              f"{m.intra_op_threads or 'auto'}/{m.inter_op_threads or 'auto'}"
              + (" " + " ".join(f"{k}={v}" for k, v in sorted(m.thread_env.items())) if m.thread_env else ""),
              m.cpus_available) for m in card.machines])
        lines += ["", "Sizes and accuracies are reproducible on a machine with the same CPU ISA, oneDNN setting and "
                      "threads (op determinism is on; CPU kernels differ between machines)."]
    else:
        lines.append("_Not recorded (the run was published by a Shears without machine records)._")
    lines.append("")

    lines += ["## Versions", "", f"- git commit: `{card.git_commit}`" if card.git_commit
              else "- git commit: not recorded (not run from a git checkout)", ""]
    if card.versions:
        lines += _table(["package", "version"], sorted(card.versions.items()))
    lines.append("")
    return "\n".join(lines)
