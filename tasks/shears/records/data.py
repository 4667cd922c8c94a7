"""Records of the data: what validation checked, and how the data was read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shears.records.base import Record, _Model


class CheckRecord(_Model):
    """One data expectation: what was expected, what was observed, and whether it held."""

    name: str
    expectation: str
    success: bool
    observed: Any
    expected: str


class TaskRecord(_Model):
    """The run's task as chosen at validate (shears.task.choose_task); every later step reads it from here."""

    kind: Literal["multiclass", "binary", "regression"]
    num_classes: int
    units: int
    output: Literal["logits", "probabilities", "values"]
    reason: str = ""
    primary: str | None = None  # the metric gates and the search judge by


class ValidationRecord(Record, schema="shears.validation/v1", file="validation.json"):
    dataset: str
    dataset_sha256: str
    kind: str
    rows: int
    test_rows: int
    num_classes: int
    feature_shape: list[int]
    checks: list[CheckRecord] = Field(default_factory=list)
    success: bool
    # integer images divided by this before anything else sees them (None: used as read); the deployed
    # model expects inputs scaled the same way
    input_scale: float | None = None
    input_dtype: str | None = None
    # labels given as class names: class id i is class_names[i] (sorted by name); published as models/labels.txt
    class_names: list[str] | None = None
    # images without a channel axis for a model that wants (H, W, 1): "added" (or "dropped" in the reverse case)
    channel_axis: Literal["added", "dropped"] | None = None
    model_input_shape: list[int] | None = None  # of a pre-trained model, read from its file
    # rows per split as the run used them ("train", "validation", "test"); `test_rows` counts the source's own
    split_rows: dict[str, int] | None = None
    task: TaskRecord | None = None  # None: written before Shears knew tasks (a multi-class classifier)

    @property
    def failed(self) -> list[CheckRecord]:
        return [c for c in self.checks if not c.success]

    def summary(self) -> str:
        """One line naming every failed check and its observed value."""
        if self.success:
            return f"data valid: {len(self.checks)} checks passed"
        parts = [f"{c.name} (observed {c.observed}; expected {c.expected})" for c in self.failed]
        return "data failed validation: " + "; ".join(parts)
