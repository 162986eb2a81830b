"""Values as the SQL stores write them (JSON text), and a clear refusal for a value no store can hold alike.

JSON has no NaN or Infinity, PostgreSQL cannot hold NUL (U+0000) in text or jsonb, and UTF-8 cannot
encode a lone surrogate. SQLite would take the first two and then give back text that is not JSON, so
both SQL stores refuse all three, with the same ``DataInvalid`` naming where the value is. The engine
checks payloads and data when a call comes in; this is the last line of defence for values made
inside a call (an expression's result, a host type).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from typing import Any

from ..errors import DataInvalid

MAX_DEPTH = 200  # nesting deeper than this is refused when it is the reason a value cannot be written


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


# one encoder, built once: json.dumps with options builds a new one on every call
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default).encode


def dumps(value: Any) -> str:
    """``value`` as compact JSON text; ValueError for NaN, Infinity or NUL, TypeError for a non-JSON type."""
    text = _encode(value)
    if "\\u0000" in text and _first_problem(value, "") is not None:  # the text may only quote a backslash-u0000
        raise ValueError("text contains NUL (U+0000)")
    return text


def _problem(value: Any) -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return "text containing NUL (U+0000), which PostgreSQL cannot store"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text that is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return f"{name}, which JSON has no number for"
    if value is None or isinstance(value, (bool, int, float, dict, list, tuple, set, frozenset, dt.date)):
        return None
    return f"a {type(value).__name__}, which is not a JSON value"


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k), k
            yield str(k), v
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield str(i), v


def _first_problem(value: Any, where: str) -> str | None:
    """Where the first value that cannot be stored is, and why; None if there is none."""
    stack = [(where, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"{path or 'the value'} is nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, dict) and any(not isinstance(k, (str, int, float, bool)) and k is not None for k in item):
            return f"{path or 'the value'} has a key that is not text"
        reason = _problem(item)
        if reason is not None:
            return f"{path or 'the value'} is {reason}"
        children = list(_children(item))
        for name, child in reversed(children):
            stack.append((f"{path}.{name}" if path else name, child, depth + 1))
    return None


def refusal(changes: Any) -> DataInvalid | None:
    """The DataInvalid that explains why ``changes`` cannot be written, or None if no value is to blame."""
    roots: list[tuple[str, Any]] = []
    for iid, inst in changes.instances.items():
        roots.append((f"{iid} data", inst.data))
    for entry in changes.history:
        roots.append((f"the history entry of {entry.get('instance_id')} ({entry.get('trigger')})", entry))
    for alert in changes.alerts:
        roots.append((f"alert {alert.get('id')}", alert))
    for sched in changes.schedules_added:
        roots.append((f"scheduled start {sched.get('id')}", sched))
    if changes.request is not None:
        roots.append(("the request id", changes.request[0]))
    for label, value in roots:
        found = _first_problem(value, "")
        if found is not None:
            return DataInvalid(f"cannot store {label}: {found.replace('the value', 'it', 1)}; nothing was changed", problems=[found])
    return None
