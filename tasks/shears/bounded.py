"""Bounded parsing of the bytes users hand us: JSON with a size and depth limit, zip archives read from their
directory with a cap on every member, so nothing is inflated or recursed into before it is measured.

Python's json decoder recurses once per nesting level, and so do the walkers that read what it returns; a
few kilobytes of `[[[[...` turned into a RecursionError with a 3,000-line traceback. Zip archives (`.keras`
models, `.npz` data) say how big each member is in their directory: that is checked before inflating, and
the inflation itself is capped too, because the directory can lie.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from typing import Any

from shears.errors import ShearsError, first_line

MAX_JSON_DEPTH = 100


def depth_of(obj: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of a JSON value (a scalar is 0), counted without recursion; stops past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def loads_json(data: bytes | str, what: str, error: type[ShearsError], *, max_bytes: int,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads with a size and a nesting limit; every problem is one `error` line naming `what`."""
    if len(data) > max_bytes:
        raise error(f"{what} is {len(data):,} bytes; the limit is {max_bytes:,}")
    try:
        obj = json.loads(data)
    except RecursionError:
        raise error(f"{what} is nested too deeply (more than {max_depth} levels)") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise error(f"{what} is not valid JSON: {first_line(exc)}") from None
    if depth_of(obj, max_depth) > max_depth:
        raise error(f"{what} is nested too deeply (more than {max_depth} levels)")
    return obj


def check_zip_directory(z: zipfile.ZipFile, what: str, error: type[ShearsError], *, max_members: int,
                        max_member_bytes: Callable[[str], int], max_total_bytes: int) -> list[zipfile.ZipInfo]:
    """The archive's members, refused (one line) when there are too many, a name could leave a folder, or the
    directory says a member (or all of them) inflates past its limit."""
    infos = z.infolist()
    if len(infos) > max_members:
        raise error(f"{what} has {len(infos):,} members; the limit is {max_members:,}")
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith("/") or "\\" in name or any(part == ".." for part in name.split("/")):
            raise error(f"{what}: member name {name[:80]!r} is not a plain relative path")
        limit = max_member_bytes(name)
        if info.file_size > limit:
            raise error(f"{what}: member {name[:80]} inflates to {info.file_size:,} bytes; the limit is {limit:,}")
        total += info.file_size
    if total > max_total_bytes:
        raise error(f"{what} inflates to {total:,} bytes in all; the limit is {max_total_bytes:,}")
    return infos


def read_zip_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, error: type[ShearsError],
                    limit: int) -> bytes:
    """One member, inflated in chunks and stopped at `limit` bytes whatever the directory claimed."""
    chunks: list[bytes] = []
    size = 0
    try:
        with z.open(info) as fh:
            while chunk := fh.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise error(f"{what}: member {info.filename[:80]} inflates past {limit:,} bytes (its directory "
                                f"entry says {info.file_size:,})")
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise error(f"{what}: member {info.filename[:80]} cannot be read: {type(exc).__name__}: "
                    f"{first_line(exc)[:120]}") from None
    return b"".join(chunks)
