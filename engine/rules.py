"""Decision tables: evaluate a table's rows against inputs under its hit policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .definitions import ANY, DecisionTable, TableRow
from .errors import EvaluationError


def _cell_matches(cell: Any, value: Any) -> bool:
    if cell == ANY:
        return True
    if isinstance(cell, tuple):
        return value in cell
    return cell == value


def row_matches(row: TableRow, inputs: Mapping[str, Any]) -> bool:
    return all(_cell_matches(cell, inputs.get(name)) for name, cell in row.cells.items())


def evaluate_table(table: DecisionTable, inputs: Mapping[str, Any]) -> Any:
    """The outputs of the matching row(s): a dict (first, unique, any) or a list of dicts (collect)."""
    matches = [row for row in table.rows if row_matches(row, inputs)]
    if table.hit_policy == "collect":
        return [dict(row.outputs) for row in matches]
    if not matches:
        if table.default is not None:
            return dict(table.default)
        shown = ", ".join(f"{k}={v!r}" for k, v in inputs.items())
        raise EvaluationError(f"no row of table '{table.name}' matches {shown}")
    if table.hit_policy == "unique" and len(matches) > 1:
        raise EvaluationError(f"{len(matches)} rows of table '{table.name}' match, but its hit policy is 'unique'")
    if table.hit_policy == "any" and any(dict(m.outputs) != dict(matches[0].outputs) for m in matches):
        raise EvaluationError(f"rows of table '{table.name}' with different outputs match, but its hit policy is 'any'")
    return dict(matches[0].outputs)
