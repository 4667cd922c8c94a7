"""What every record shares: the canonical JSON encoding, the one parser, and the `schema` key.

A record class names its schema version and its file once, in its class statement
(`class GatesRecord(Record, schema="shears.gates/v1", file="gates.json")`); the `schema` key of every record
is derived from that. Records written before the key existed (Shears 0.1, tests/fixtures/store_v0) still
load: a missing key means the current version. Unknown keys are refused, so a typo in a writer or a
hand-edited record is found, not silently ignored.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from shears.bounded import loads_json
from shears.errors import RecordError

MAX_RECORD_BYTES = 64 << 20  # the largest record Shears writes is a few MB (search.json of a long search)

RunStatus = Literal["passed", "rejected"]
Variant = Literal["float32", "dynamic_range", "int8", "float16"]
Split = Literal["train", "validation", "test"]

# What a run id may be (keys are built from it): the one definition, shears.store.layout validates with it.
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
RUN_ID_RE = re.compile(RUN_ID_PATTERN)
RunId = Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN)]


def dumps(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, 2-space indent, trailing newline) for any JSON-able value."""
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """'field.path: message; ...' for the first few errors, never echoing the (possibly huge) input."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)


class Record(_Model):
    """Base of every top-level record: a `schema` key naming the record type and its version."""

    SCHEMA: ClassVar[str] = ""
    FILE: ClassVar[str] = ""  # the file name inside a run folder (shears.store.layout uses the same names)
    schema_: str = Field("", alias="schema")

    def __init_subclass__(cls, schema: str = "", file: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if schema:
            cls.SCHEMA = schema
        if file:
            cls.FILE = file

    @model_validator(mode="before")
    @classmethod
    def _schema(cls, data: Any) -> Any:
        """The record's own schema when the key is missing (Shears 0.1); any other schema is refused."""
        if isinstance(data, dict):
            found = data.get("schema", data.get("schema_", cls.SCHEMA))
            if found != cls.SCHEMA:
                raise ValueError(f"schema {str(found)[:80]!r} is not {cls.SCHEMA}")
            data = {k: v for k, v in data.items() if k != "schema_"}
            data["schema"] = cls.SCHEMA
        return data

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_bytes(self) -> bytes:
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, obj: Any, where: str = "") -> Self:
        where = where or cls.FILE or cls.__name__
        if not isinstance(obj, dict):
            raise RecordError(f"{where} is not a {cls.SCHEMA} record: not a JSON object")
        found = obj.get("schema", cls.SCHEMA)
        if found != cls.SCHEMA:
            raise RecordError(f"{where} has schema {str(found)[:80]!r}; this Shears reads {cls.SCHEMA}")
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise RecordError(f"{where} is not a valid {cls.SCHEMA} record: {describe_validation_error(exc)}") from None

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "") -> Self:
        """Parse one record: at most MAX_RECORD_BYTES and MAX_JSON_DEPTH levels, else one RecordError line."""
        obj = loads_json(data, where or cls.FILE or cls.__name__, RecordError, max_bytes=MAX_RECORD_BYTES)
        return cls.from_json(obj, where)
