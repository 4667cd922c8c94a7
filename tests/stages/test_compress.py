"""Collaborative optimization on digits: pruning, sparsity-preserving clustering and PCQAT, verified in the .tflite."""

from __future__ import annotations

import numpy as np
import pytest
from shears.config import ModelConfig, PruneConfig
from shears.records import Recipe
from shears.stages.baseline import train_baseline
from shears.stages.compress import compress
from shears.stages.convert import convert_variant, representative_samples
from shears.stages.data import load_digits_default, split
from shears.stages.inspect import check_tflite, structure_gzip_bytes
from shears.stages.measure import gzip_size, tflite_accuracy

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    s = split(load_digits_default(), 0.2, 0, 10)
    return s, train_baseline(s, ModelConfig(epochs=4)).model


def _deploy(result, s, recipe: Recipe) -> bytes:  # type: ignore[no-untyped-def]
    return convert_variant(result.final, recipe.variant, representative_samples(s.x_train, 100), compact=True)


def test_pruning_clustering_and_pcqat_survive_into_the_tflite(digits) -> None:  # type: ignore[no-untyped-def]
    s, base = digits
    before = [w.copy() for w in base.get_weights()]
    recipe = Recipe(sparsity={"dense": 0.9}, prune_epochs=2, clusters={"dense": 4}, qat=True, variant="int8")
    result = compress(base, s, recipe, PruneConfig())
    for a, b in zip(before, base.get_weights(), strict=True):
        assert np.array_equal(a, b), "compressing mutated the caller's baseline"
    dense = result.stripped.get_layer("dense").kernel.numpy()
    assert np.mean(dense == 0) >= 0.89 and np.unique(dense).size <= 4
    deploy = _deploy(result, s, recipe)
    checks = {c.layer: c for c in check_tflite(deploy, result.stripped, recipe, 0.01)}
    assert checks["dense"].passed and checks["dense"].zero_fraction >= 0.89 and checks["dense"].distinct <= 4
    assert tflite_accuracy(deploy, s.x_val, s.y_val) > 0.85
    plain = Recipe(sparsity={"dense": 0.9}, prune_epochs=2, variant="dynamic_range")
    plain_file = _deploy(compress(base, s, plain, PruneConfig()), s, plain)
    assert gzip_size(deploy) < gzip_size(plain_file)  # clusters + int8 weights gzip better
    assert 0 < structure_gzip_bytes(deploy) < gzip_size(deploy)


def test_a_sparsity_the_tflite_does_not_hold_fails_the_check(digits) -> None:  # type: ignore[no-untyped-def]
    """tfmot's cluster-preserving QAT scheme re-derives the kernel of a pruned layer it does not cluster: the
    small convolution's zeros are gone from the .tflite. The check reads the file, so it notices."""
    s, base = digits
    recipe = Recipe(sparsity={"conv": 0.8, "dense": 0.9}, prune_epochs=2, clusters={"dense": 8}, qat=True,
                    variant="int8")
    result = compress(base, s, recipe, PruneConfig())
    checks = {c.layer: c for c in check_tflite(_deploy(result, s, recipe), result.stripped, recipe, 0.01)}
    assert checks["dense"].passed
    assert not checks["conv"].passed and checks["conv"].zero_fraction < 0.79


def test_compaction_keeps_outputs_and_signatures(digits) -> None:  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter
    from shears.stages.measure import tflite_outputs

    s, base = digits
    calib = representative_samples(s.x_train, 50)
    full = convert_variant(base, "int8", calib)
    small = convert_variant(base, "int8", calib, compact=True)
    assert len(small) < len(full) and gzip_size(small) < gzip_size(full)
    assert np.array_equal(tflite_outputs(full, s.x_val), tflite_outputs(small, s.x_val))
    assert Interpreter(model_content=small).get_signature_list() == Interpreter(model_content=full).get_signature_list()


def test_a_fixed_batch_signature_is_smaller_and_takes_one_sample(digits) -> None:  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    s, base = digits
    calib = representative_samples(s.x_train, 50)
    dynamic = convert_variant(base, "int8", calib, compact=True)
    fixed = convert_variant(base, "int8", calib, compact=True, fixed_batch=True)
    assert len(fixed) < len(dynamic)
    assert list(Interpreter(model_content=fixed).get_input_details()[0]["shape_signature"]) == [1, 8, 8]
    assert tflite_accuracy(fixed, s.x_val, s.y_val) == tflite_accuracy(dynamic, s.x_val, s.y_val)


def test_a_distilled_recipe_keeps_its_sparsity_clusters_and_qat(digits) -> None:  # type: ignore[no-untyped-def]
    """Distillation runs inside each fine-tune's own step (the masks, clusters and QAT still take hold)."""
    s, base = digits
    recipe = Recipe(sparsity={"dense": 0.9}, prune_epochs=2, clusters={"dense": 4}, qat=True, variant="int8",
                    distill=True, distill_temperature=4.0, distill_alpha=0.3)
    result = compress(base, s, recipe, PruneConfig())
    assert set(result.history) == {"prune", "cluster", "qat"} and "accuracy" not in result.history["prune"]
    dense = result.stripped.get_layer("dense").kernel.numpy()
    assert np.mean(dense == 0) >= 0.89 and np.unique(dense).size <= 4
    deploy = _deploy(result, s, recipe)
    assert all(c.passed for c in check_tflite(deploy, result.stripped, recipe, 0.01))
    assert tflite_accuracy(deploy, s.x_val, s.y_val) > 0.8 and "distilled (T 4, α 0.3)" in recipe.describe()


def test_the_distillation_loss_mixes_hard_labels_and_softened_teacher_outputs() -> None:
    import tensorflow as tf
    from shears.keras.training import Distill, DistillLoss, distill_targets
    from shears.task import Task

    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(16, 10)).astype(np.float32), rng.normal(size=(16, 10)).astype(np.float32)
    y = rng.integers(0, 10, size=16)
    task = Task("multiclass", 10, 10, "logits")
    target = tf.constant(distill_targets(y, teacher))
    hard = float(tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, student, from_logits=True)))
    assert float(DistillLoss(task, Distill(4.0, 1.0))(target, student)) == pytest.approx(hard, rel=1e-5)
    t = 2.0  # alpha 0: the softened teacher's cross-entropy, scaled by T^2
    p = tf.nn.softmax(teacher / t)
    soft = float(tf.reduce_mean(-tf.reduce_sum(p * tf.nn.log_softmax(student / t), axis=-1))) * t * t
    assert float(DistillLoss(task, Distill(t, 0.0))(target, student)) == pytest.approx(soft, rel=1e-5)
    # the student equal to the teacher is the soft term's minimum (for a fixed teacher)
    same = tf.constant(distill_targets(y, student))
    assert float(DistillLoss(task, Distill(t, 0.0))(same, student)) < float(DistillLoss(task, Distill(t, 0.0))(
        same, student + rng.normal(size=student.shape).astype(np.float32)))
