"""A compiled fast path for payload validation: the common draft-07 keywords as plain Python predicates.

Measured in the year-long simulation (benchmarks/simulate_year.py): ``jsonschema`` ``iter_errors`` was
about a sixth of the engine's time per event. ``compile_check(schema)`` turns a payload schema into a
function ``instance -> bool`` when every keyword in it is one of those below, else returns None (and
the engine uses ``validator.is_valid``). The engine only trusts a True: on False it asks
``jsonschema`` for the errors, so the messages and any corner case stay jsonschema's. Nothing is
cached per payload; each call checks the payload it is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from ..patterns import compile_pattern

__all__ = ["compile_check"]

Check = Callable[[Any], bool]
# what _compile collects: checks called with the value alone, their other parameters bound as
# defaults (lambda v, n=n: ...), which Callable[[Any], bool] does not describe
_Part = Callable[..., bool]

# keywords that only annotate
_IGNORED = frozenset({"description", "title", "default", "examples", "$comment", "readOnly", "writeOnly", "$schema", "$id"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


class _Unsupported(Exception):
    pass


def _equal(one: Any, two: Any) -> bool:
    """JSON equality as jsonschema sees it: true is not 1, and lists and objects compare item by item."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, (list, tuple)) and isinstance(two, (list, tuple)):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=False))  # lengths checked first
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    return one == two


def _unique(items: list[Any]) -> bool:
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if _equal(items[i], items[j]):
                return False
    return True


def _is_date(v: Any) -> bool:
    if not isinstance(v, str):
        return True
    if not _DATE.match(v) or len(v) != 10:
        return False
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return True


def compile_check(schema: Any) -> Check | None:
    """A predicate equivalent to draft-07 validation with formats for ``schema``, or None if it uses other keywords."""
    try:
        return _compile(schema)
    except (_Unsupported, TypeError, ValueError):
        return None


def _reject(v: Any) -> bool:
    """The check for a property that ``additionalProperties: false`` forbids."""
    return False


def _compile(schema: Any) -> Check:
    if schema is True or schema == {}:
        return lambda v: True
    if schema is False:
        return lambda v: False
    if not isinstance(schema, Mapping):
        raise _Unsupported(repr(schema))
    checks: list[_Part] = []
    for key in schema:
        if key in _IGNORED or key in ("then", "else", "additionalProperties", "properties"):
            continue
        if key not in _KEYWORDS:
            raise _Unsupported(key)
    if "type" in schema:
        types = schema["type"]
        names = [types] if isinstance(types, str) else list(types)
        tests = [_TYPES[n] for n in names]
        if len(tests) == 1:
            checks.append(tests[0])
        else:
            def check_any_type(v: Any, tests=tuple(tests)) -> bool:
                for t in tests:  # noqa: SIM110 - a loop, as in check_all at the end: any(<generator>) showed in profiles
                    if t(v):
                        return True
                return False

            checks.append(check_any_type)
    if "enum" in schema:
        values = list(schema["enum"])
        simple = all(isinstance(x, str) for x in values)
        if simple:
            allowed = frozenset(values)
            checks.append(lambda v, allowed=allowed: isinstance(v, str) and v in allowed)
        else:
            checks.append(lambda v, values=values: any(_equal(v, x) for x in values))
    if "const" in schema:
        c = schema["const"]
        checks.append(lambda v, c=c: _equal(v, c))
    if "format" in schema:
        if schema["format"] != "date":
            raise _Unsupported("format " + str(schema["format"]))
        checks.append(_is_date)
    for key, op in (("minLength", "ge"), ("maxLength", "le")):
        if key in schema:
            n = schema[key]
            checks.append((lambda v, n=n: not isinstance(v, str) or len(v) >= n) if op == "ge"
                          else (lambda v, n=n: not isinstance(v, str) or len(v) <= n))
    if "pattern" in schema:  # RE2, as the payload validator: linear in the text (engine/patterns.py)
        search = compile_pattern(schema["pattern"])
        checks.append(lambda v, search=search: not isinstance(v, str) or search(v))
    num = _TYPES["number"]
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in schema:
            n = schema[key]
            if key == "minimum":
                checks.append(lambda v, n=n: not num(v) or v >= n)
            elif key == "maximum":
                checks.append(lambda v, n=n: not num(v) or v <= n)
            elif key == "exclusiveMinimum":
                checks.append(lambda v, n=n: not num(v) or v > n)
            else:
                checks.append(lambda v, n=n: not num(v) or v < n)
    if "minItems" in schema:
        n = schema["minItems"]
        checks.append(lambda v, n=n: not isinstance(v, list) or len(v) >= n)
    if "maxItems" in schema:
        n = schema["maxItems"]
        checks.append(lambda v, n=n: not isinstance(v, list) or len(v) <= n)
    if schema.get("uniqueItems"):
        checks.append(lambda v: not isinstance(v, list) or _unique(v))
    if "items" in schema:
        if not isinstance(schema["items"], (Mapping, bool)):
            raise _Unsupported("items as a list")
        item = _compile(schema["items"])
        checks.append(lambda v, item=item: not isinstance(v, list) or all(item(x) for x in v))
    if "required" in schema:
        req = tuple(schema["required"])
        def check_required(v: Any, req=req) -> bool:
            if isinstance(v, dict):
                for k in req:  # a loop, as in check_all at the end: all(<generator>) showed in profiles
                    if k not in v:
                        return False
            return True

        checks.append(check_required)
    props = schema.get("properties")
    extra = schema.get("additionalProperties", True)
    if props is not None or extra is not True:
        compiled = {k: _compile(s) for k, s in (props or {}).items()}
        if extra is False:
            extra_check: Check | None = _reject
        elif extra is True:
            extra_check = None
        else:
            extra_check = _compile(extra)

        def check_object(v: Any, compiled=compiled, extra_check=extra_check) -> bool:
            if not isinstance(v, dict):
                return True
            for k, x in v.items():
                c = compiled.get(k)
                if c is not None:
                    if not c(x):
                        return False
                elif extra_check is not None and not extra_check(x):
                    return False
            return True

        checks.append(check_object)
    if "if" in schema:
        cond = _compile(schema["if"])
        then = _compile(schema["then"]) if "then" in schema else None
        other = _compile(schema["else"]) if "else" in schema else None
        checks.append(lambda v, cond=cond, then=then, other=other:
                      (then is None or then(v)) if cond(v) else (other is None or other(v)))
    if "not" in schema:
        inner = _compile(schema["not"])
        checks.append(lambda v, inner=inner: not inner(v))
    if "allOf" in schema:
        parts = [_compile(s) for s in schema["allOf"]]
        checks.append(lambda v, parts=parts: all(p(v) for p in parts))
    if "anyOf" in schema:
        parts = [_compile(s) for s in schema["anyOf"]]
        checks.append(lambda v, parts=parts: any(p(v) for p in parts))
    if "oneOf" in schema:
        parts = [_compile(s) for s in schema["oneOf"]]
        checks.append(lambda v, parts=parts: sum(1 for p in parts if p(v)) == 1)
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    checks_t = tuple(checks)

    # a plain loop, not all(<generator>): the generator frame cost more than most checks themselves
    def check_all(v: Any, checks_t=checks_t) -> bool:
        for c in checks_t:  # noqa: SIM110 - see above
            if not c(v):
                return False
        return True

    return check_all


_KEYWORDS = frozenset({
    "type", "enum", "const", "format", "minLength", "maxLength", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "uniqueItems", "items", "required",
    "properties", "additionalProperties", "if", "then", "else", "not", "allOf", "anyOf", "oneOf",
})
