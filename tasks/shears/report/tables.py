"""The rows of the tables a run prints (the CLI's rich tables, the Airflow task log's plain ones), built once."""

from __future__ import annotations

from typing import NamedTuple

from shears.records import GatesRecord

GATE_COLUMNS = ("gate", "threshold", "observed", "verdict", "reason")


class GateRow(NamedTuple):
    gate: str
    threshold: str
    observed: str
    passed: bool
    reason: str

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "FAIL"


def gate_rows(gates: GatesRecord) -> list[GateRow]:
    """One row per gate, in the order the gates ran."""
    return [GateRow(g.name, str(g.threshold), str(g.observed), g.passed, g.reason) for g in gates.gates]


def plain_table(rows: list[GateRow]) -> str:
    """The gate rows as aligned plain text (for logs), header first; the reason is the last, unpadded column."""
    cells = [GATE_COLUMNS, *((r.gate, r.threshold, r.observed, r.verdict, r.reason) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(c[:4], widths, strict=True)) + "  " + c[4] for c in cells)
