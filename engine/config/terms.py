"""Quoted values in conditions checked against the terms the compared name can hold (``payload.overall == "inadequte"``).

What a name can hold is known from the workflow and the rules: a state name (``state``), a deadline's
status, a data field's ``enum`` or vocabulary, a trigger's payload schema (``enum``, vocabularies
expanded), a grading scale (``rank('grade', 'god')``), and, one step removed, what ``set:`` copied
into a data field from a payload or another field, or what a decision table's ``evaluate ... into``
gave it. Where a value is never one of them the comparison can never hold: a typo that silently
makes a guard false or an alert never go.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..definitions import DecisionTable, Scale, WorkflowDef
from ..expressions import _placeholder_end, _shift, _Text, parse_wrapped

__all__ = ["Quoted", "quoted_values", "WorkflowTerms", "DEADLINE_STATUSES"]

#: What ``deadlines.NAME.status`` can be (engine/runtime: a clock's statuses, and one never started).
DEADLINE_STATUSES = ("open", "paused", "breached", "met", "cancelled", "not_started")
_SCALE = "<scale>"  # the path of a scale level named in rank()/label(): (_SCALE, scale name)
_TEXT = "<text>"  # what set: copied is a text literal: (_TEXT, the text)
_MAX_DEPTH = 6  # copies followed: data.final.overall <- data.lead.overall <- payload.overall


@dataclass(frozen=True)
class Quoted:
    """A text literal compared with a name path, at its 1-based position in the expression's text.

    ``member``: the literal is looked for among the items of the list at ``path`` (``"x" in data.tags``).
    """

    path: tuple[str, ...]
    value: str
    line: int
    column: int
    member: bool = False


def _parse(source: str) -> ast.expr | None:
    try:  # wrapped as the expression compiler wraps it: within validate, its tree is read, not parsed again
        return parse_wrapped("(\n" + source.replace("\r\n", "\n").replace("\r", "\n") + "\n)").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the expression compiler says what is wrong with it


def _path(node: ast.AST) -> tuple[str, ...] | None:
    """``data.lead["overall"]`` -> ("data", "lead", "overall"); None for anything else."""
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Attribute):
        base = _path(node.value)
        return base + (node.attr,) if base is not None else None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        base = _path(node.value)
        return base + (node.slice.value,) if base is not None else None
    return None


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _walk(tree: ast.AST) -> Iterator[tuple[tuple[str, ...], ast.Constant, bool]]:
    """(path, literal node, member) for each comparison of a name path with text in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
                if isinstance(op, (ast.Eq, ast.NotEq)):
                    for a, b in ((left, right), (right, left)):
                        path, value = _path(a), _text(b)
                        if path is not None and value is not None:
                            yield path, b, False  # type: ignore[misc]
                elif isinstance(op, (ast.In, ast.NotIn)):
                    path = _path(left)
                    if path is not None and isinstance(right, (ast.List, ast.Tuple)):
                        for item in right.elts:
                            if _text(item) is not None:
                                yield path, item, False  # type: ignore[misc]
                    elif _text(left) is not None and (inside := _path(right)) is not None:
                        yield inside, left, True  # type: ignore[misc]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("rank", "label")
              and len(node.args) == 2 and _text(node.args[0]) is not None and _text(node.args[1]) is not None):
            yield (_SCALE, _text(node.args[0]) or ""), node.args[1], False  # type: ignore[misc]


def quoted_values(source: str, *, template: bool = False) -> list[Quoted]:
    """Every text literal ``source`` compares with a name path (a message template: inside its placeholders)."""
    if "'" not in source and '"' not in source:
        return []
    if not template:
        return _quoted_in(source)
    found: list[Quoted] = []
    i = 0
    where = _Text(source)
    while i < len(source):
        if source.startswith("{{", i) or source.startswith("}}", i):
            i += 2
        elif source[i] == "{":
            end = _placeholder_end(source, i + 1)
            if end is None:
                break
            line0, column0 = where.position(i + 1)
            found += [Quoted(q.path, q.value, *_shift(line0, column0, q.line, q.column), q.member)
                      for q in _quoted_in(source[i + 1 : end])]
            i = end + 1
        else:
            i += 1
    return found


def _quoted_in(source: str) -> list[Quoted]:
    tree = _parse(source)
    if tree is None:
        return []
    text = _Text(source)
    out = [Quoted(path, str(node.value), *text.node_position(node.lineno, node.col_offset), member)
           for path, node, member in _walk(tree)]
    return sorted(set(out), key=lambda q: (q.line, q.column))


def _shape(source: str) -> Any:
    """What a ``set:`` value copies: a name path, or a mapping literal of name paths (nested); None: something else."""
    tree = _parse(source)
    return _shape_of(tree) if tree is not None else None


def _shape_of(node: ast.AST) -> Any:
    """A name path; a mapping of shapes; a list of shapes (either branch of ``a if c else b``); text as (_TEXT, text)."""
    if isinstance(node, ast.Dict):
        return {k.value: _shape_of(v) for k, v in zip(node.keys, node.values, strict=False)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    if isinstance(node, ast.IfExp):
        return [_shape_of(node.body), _shape_of(node.orelse)]
    if _text(node) is not None:
        return (_TEXT, _text(node))
    return _path(node)


def _resolve_ref(schema: Mapping[str, Any], node: Any) -> Any:
    """A payload schema node with a local ``$ref`` (#/definitions/X) followed once."""
    ref = node.get("$ref") if isinstance(node, Mapping) else None
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        return target if isinstance(target, Mapping) else node
    return node


def _texts(values: Any) -> tuple[str, ...] | None:
    if isinstance(values, (list, tuple)) and values and all(isinstance(v, str) for v in values):
        return tuple(values)
    return None


class WorkflowTerms:
    """What each name path can hold in one workflow: ``of(path, context)`` -> (terms or None, certain)."""

    def __init__(self, wf: WorkflowDef, raw: Mapping[str, Any], sites: list[tuple[tuple, bool, tuple[str, ...]]],
                 tables: Mapping[str, DecisionTable], scales: Mapping[str, Scale]) -> None:
        self.wf = wf
        self.tables = tables
        self.scales = scales
        # data path -> [(what was copied into it: a name path, or None for something unknown, the context)]
        self.assigned: dict[tuple[str, ...], list[tuple[tuple[str, ...] | None, tuple[str, ...]]]] = {}
        for path, template, context in sites:
            if template or len(path) < 2 or path[-2] != "set":
                continue
            try:
                text = _value_at(raw, path)
            except (KeyError, IndexError, TypeError):
                continue
            self._assign((str(path[-1]),), _shape(text) if isinstance(text, str) else None, context)
        for path, _, context in sites:
            if len(path) >= 3 and path[-3] == "evaluate" and path[-2] == "with":
                try:
                    body = _value_at(raw, path[:-2])
                except (KeyError, IndexError, TypeError):
                    continue
                if isinstance(body, Mapping) and isinstance(body.get("into"), str):
                    self.assigned.setdefault((body["into"],), []).append((("<table>", str(body.get("rule"))), context))

    def _assign(self, key: tuple[str, ...], shape: Any, context: tuple[str, ...]) -> None:
        if isinstance(shape, dict):
            for name, inner in shape.items():
                self._assign(key + (name,), inner, context)
        elif isinstance(shape, list):
            for inner in shape:
                self._assign(key, inner, context)
        else:
            self.assigned.setdefault(key, []).append((shape, context))

    def of(self, path: tuple[str, ...], context: tuple[str, ...], depth: int = 0) -> tuple[tuple[str, ...] | None, bool]:
        """The terms ``path`` can hold, read in ``context`` (a site's (kind, name)), and whether that is certain
        (said by a definition) rather than inferred from what was copied into a data field."""
        if depth > _MAX_DEPTH or not path:
            return None, False
        head, rest = path[0], path[1:]
        if head == _SCALE and rest:
            scale = self.scales.get(rest[0])
            return (tuple(level.key for level in scale.levels) if scale else None), True
        if head == _TEXT and len(rest) == 1:
            return rest, False
        if head == "state" and not rest:
            return tuple(self.wf.states), True
        if head == "deadlines" and len(rest) == 2 and rest[1] == "status" and rest[0] in self.wf.deadlines:
            return DEADLINE_STATUSES, True
        if head == "payload" and context[:1] == ("trigger",):
            trigger = self.wf.triggers.get(context[1])
            schema = trigger.payload_schema if trigger is not None else None
            return (self._in_schema(schema, rest) if isinstance(schema, Mapping) else None), True
        if head == "data" and rest:
            field = self.wf.fields.get(rest[0])
            if len(rest) == 1 and field is not None and field.enum is not None:
                return (_texts(field.enum) if field.type != "array" else None), True
            return self._copied(rest, depth), False
        if head == "<table>" and len(rest) == 2:
            table = self.tables.get(rest[0])
            if table is None:
                return None, False
            values = [row.outputs.get(rest[1]) for row in table.rows] + ([table.default.get(rest[1])] if table.default else [])
            return _texts([v for v in values if v is not None]), False
        return None, False

    def _copied(self, rest: tuple[str, ...], depth: int) -> tuple[str, ...] | None:
        """The union of what every ``set``/``evaluate`` puts at data path ``rest``; None if any of them is unknown."""
        terms: list[str] = []
        found = False
        for i in range(len(rest), 0, -1):
            for source, context in self.assigned.get(rest[:i], ()):
                if source is None:
                    return None
                got, _ = self.of(source + rest[i:], context, depth + 1)
                if got is None:
                    return None
                found = True
                terms += [t for t in got if t not in terms]
        # a copy of something longer (data.final set whole) says nothing of its own parts unless listed
        if any(key[: len(rest)] == rest and len(key) > len(rest) for key in self.assigned):
            return None
        return tuple(terms) if found else None

    def _in_schema(self, schema: Mapping[str, Any], rest: tuple[str, ...]) -> tuple[str, ...] | None:
        node: Any = _resolve_ref(schema, schema)
        for name in rest:
            properties = node.get("properties") if isinstance(node, Mapping) else None
            if not isinstance(properties, Mapping) or name not in properties:
                return None
            node = _resolve_ref(schema, properties[name])
        return _texts(node.get("enum")) if isinstance(node, Mapping) else None

    def items_of(self, path: tuple[str, ...], context: tuple[str, ...]) -> tuple[tuple[str, ...] | None, bool]:
        """The terms each item of the list at ``path`` can be (``"x" in payload.themes``)."""
        if path[:1] == ("data",) and len(path) == 2:
            field = self.wf.fields.get(path[1])
            if field is not None and field.type == "array" and field.enum is not None:
                return _texts(field.enum), True
            return None, False
        if path[:1] == ("payload",) and context[:1] == ("trigger",):
            trigger = self.wf.triggers.get(context[1])
            schema = trigger.payload_schema if trigger is not None else None
            if not isinstance(schema, Mapping):
                return None, False
            node: Any = _resolve_ref(schema, schema)
            for name in path[1:]:
                properties = node.get("properties") if isinstance(node, Mapping) else None
                if not isinstance(properties, Mapping) or name not in properties:
                    return None, False
                node = _resolve_ref(schema, properties[name])
            items = _resolve_ref(schema, node.get("items")) if isinstance(node, Mapping) else None
            return (_texts(items.get("enum")) if isinstance(items, Mapping) else None), True
        return None, False

    def problem_text(self, quoted: Quoted, context: tuple[str, ...]) -> tuple[str, bool] | None:
        """(message, certain) when ``quoted`` is a value its name can never hold; None when it can (or nobody knows)."""
        terms, certain = self.items_of(quoted.path, context) if quoted.member else self.of(quoted.path, context)
        if not terms or quoted.value in terms:
            return None
        if quoted.path[0] == _SCALE:
            what = f"a level of the scale '{quoted.path[1]}'"
        elif quoted.member:
            what = f"an item of {'.'.join(quoted.path)}"
        elif quoted.path == ("state",):
            what = f"a state of workflow '{self.wf.id}'"
        else:
            what = f"a value of {'.'.join(quoted.path)}"
        close = difflib.get_close_matches(quoted.value, list(terms), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        shown = ", ".join(terms[:12]) + (", ..." if len(terms) > 12 else "")
        return f"'{quoted.value}' is never {what} (it is one of: {shown}){hint}", certain


def _value_at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data
