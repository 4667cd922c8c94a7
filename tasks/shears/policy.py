"""Deployment policy: gate floors a run's config may tighten but never loosen.

In Airflow whoever triggers a run chooses its config, so the config cannot be what stops a no-skill model
from being published. The deployment names a policy file ($SHEARS_POLICY, read by the CLI and the Airflow
plugin, never by the run's config or DAG params); it sets floors for the gates and, optionally, requires
signatures. Applying it to a run's config:

* a value the config sets explicitly that is weaker than a floor (or `null`, which disables a gate) is
  refused in one line (ConfigError, exit 2) before anything is trained;
* a value left at its default is raised to the floor;
* the floors that applied are recorded in gates.json (`policy`).

With no policy file there is still one built-in floor: the no-skill gates (accuracy's `min_skill_margin_pp`,
a regressor's `min_skill_margin_pct`) apply with margin 0, so a constant model never passes even when the
config nulls every gate (then they are applied, not refused).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shears.config import PipelineConfig, read_config_file
from shears.errors import ConfigError, bounded
from shears.records import PolicyFloorsRecord

ENV_POLICY = "SHEARS_POLICY"
BUILT_IN = "built-in"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GateFloors(_Frozen):
    """Floors of the gates in a run's config (`gates:`); None: no floor for that gate."""

    min_accuracy: float | None = Field(None, ge=0, le=1)
    min_skill_margin_pp: float | None = Field(0.0, ge=0, le=100)
    max_accuracy_drop_pp: float | None = Field(None, ge=0, le=100)
    max_gzip_bytes: int | None = Field(None, ge=1)
    # regressors (MSE/MAE): better than the constant answer by at least this % (built in: strictly better)
    min_skill_margin_pct: float | None = Field(0.0, ge=0, le=100)
    max_change_pct: float | None = Field(None, ge=0)
    # microcontroller deployments: every run's deployable must run on TFLite Micro within this arena
    max_arena_bytes: int | None = Field(None, ge=1)


class SigningFloors(_Frozen):
    required: bool = False


class Policy(_Frozen):
    """The deployment's policy (one YAML file), or the built-in one."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    schema_: Literal["shears.policy/v1"] = Field("shears.policy/v1", alias="schema")
    gates: GateFloors = GateFloors()
    signing: SigningFloors = SigningFloors()
    source: str = Field(BUILT_IN, exclude=True)  # the file it came from (not part of the file's own schema)

    @property
    def deployed(self) -> bool:
        """A deployment's file (its floors refuse a weaker config) rather than the built-in floor."""
        return self.source != BUILT_IN


# (gate, True when a higher value is stricter)
_DIRECTIONS: tuple[tuple[str, bool], ...] = (("min_accuracy", True), ("min_skill_margin_pp", True),
                                              ("max_accuracy_drop_pp", False), ("max_gzip_bytes", False),
                                              ("min_skill_margin_pct", True), ("max_change_pct", False),
                                              ("max_arena_bytes", False))


def load_policy(path: str | Path | None) -> Policy:
    """The policy in `path` (bounded YAML, like configs), or the built-in policy when `path` is empty."""
    if not path:
        return Policy()
    raw = read_config_file(Path(path))
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "policy"
        raise ConfigError(f"invalid policy {path}: {loc}: "
                          f"{'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}") from None
    return policy.model_copy(update={"source": str(path)})


def _weaker(value: float | None, floor: float, higher_is_stricter: bool) -> bool:
    if value is None:
        return True
    return value < floor if higher_is_stricter else value > floor


def apply_policy(cfg: PipelineConfig, policy: Policy) -> PipelineConfig:
    """The config the run uses: every gate at least as strict as its floor (see the module docstring)."""
    gates: dict[str, Any] = {}
    explicit = cfg.gates.model_fields_set
    for name, higher in _DIRECTIONS:
        floor = getattr(policy.gates, name)
        value = getattr(cfg.gates, name)
        if floor is None or not _weaker(value, floor, higher):
            continue
        if policy.deployed and name in explicit:
            shown = "null (off)" if value is None else f"{value:g}"
            raise ConfigError(bounded(
                f"gates.{name} {shown} is weaker than the deployment's floor {floor:g} (policy {policy.source}): a "
                f"run's config may tighten the policy's floors, never loosen them"))
        gates[name] = floor
    update: dict[str, Any] = {}
    if gates:
        update["gates"] = cfg.gates.model_copy(update=gates)
    if policy.signing.required and not cfg.signing.required:
        if policy.deployed and "required" in cfg.signing.model_fields_set:
            raise ConfigError(f"signing.required false is weaker than the deployment's policy ({policy.source}), "
                              "which requires signed runs")
        update["signing"] = cfg.signing.model_copy(update={"required": True})
    return cfg.model_copy(update=update) if update else cfg


def floors_record(policy: Policy) -> PolicyFloorsRecord:
    """What gates.json records of the policy: where it came from and every floor."""
    return PolicyFloorsRecord(source=policy.source, gates=policy.gates.model_dump(mode="json"),
                              signing_required=policy.signing.required)
