"""Which modules `model.builder` may name, decided before anything is imported (no TensorFlow here).

In Airflow whoever triggers a run chooses its config, so the run's own config cannot widen the list:
the deployment does, with $SHEARS_BUILDER_MODULES (comma-separated module names; a name ending in ".*"
allows that package's sub-modules). Shears' own builders are always allowed.
"""

from __future__ import annotations

import os
import re

from shears.errors import ConfigError, elide

ENV_BUILDER_MODULES = "SHEARS_BUILDER_MODULES"
BUILTIN_MODULES = ("shears.keras.builders", "tasks.models")  # tasks.models: configs written for Shears 0.1
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def allowed_modules() -> tuple[str, ...]:
    extra = [m.strip() for m in os.environ.get(ENV_BUILDER_MODULES, "").split(",") if m.strip()]
    return (*BUILTIN_MODULES, *extra)


def _allowed(module: str, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        if entry.endswith(".*") and module.startswith(entry[:-1]):
            return True
        if module == entry:
            return True
    return False


def check_builder(spec: str) -> tuple[str, str]:
    """('module', 'function') of an allowed 'module:function' spec; a ConfigError (exit 2) otherwise."""
    module, sep, func = spec.partition(":")
    if not sep or not _MODULE_RE.match(module) or not func.isidentifier():
        raise ConfigError(f"model.builder {elide(spec)} must look like 'package.module:function'")
    allowed = allowed_modules()
    if not _allowed(module, allowed):
        raise ConfigError(
            f"model.builder {elide(spec)}: module {elide(module, 60)} is not allowed; allowed: "
            f"{', '.join(allowed)} (a deployment adds modules with ${ENV_BUILDER_MODULES})"
        )
    return module, func
