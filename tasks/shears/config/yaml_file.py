"""One YAML config file, read as untrusted bytes: bounded in size and depth, UTF-8, no aliases, and every problem
one ConfigError line, before pydantic sees the mapping (shears.config builds the model from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shears.errors import ConfigError, elide, first_line

MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_DEPTH = 64


class _NoAliasLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses aliases (a few hundred bytes of nested aliases expand to gigabytes) and
    nesting deeper than MAX_YAML_DEPTH (PyYAML composes recursively: a RecursionError, thousands of lines)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise ConfigError(f"YAML alias *{elide(event.anchor, 30)} at line {line}: anchors and aliases are not "
                              "supported in Shears configs; write the values out")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                event = self.peek_event()
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(f"YAML nested more than {MAX_YAML_DEPTH} levels deep at line {line}: Shears "
                                  "configs are a few levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_config_file(path: Path) -> dict[str, Any]:
    """The mapping in one YAML config file: at most 1 MB, UTF-8, no aliases; every problem one ConfigError line."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is {size:,} bytes; the limit is {MAX_CONFIG_BYTES:,}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = f"0x{data[exc.start]:02x}"
        raise ConfigError(f"config file {path} is not UTF-8: byte {bad} at offset {exc.start}") from None
    try:
        loaded = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {first_line(exc)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return loaded
