"""A draft-07 JSON Schema compiled into one Python predicate: is this document valid, yes or "ask jsonschema".

Measured on ``qaflow validate`` with the configuration cache cold: ``jsonschema``'s ``iter_errors`` over
documents that have no errors was about half of the time, walking the schemas keyword by keyword,
resolving ``$ref`` on every visit. ``compile_predicate(schema)`` turns a schema into a function
``instance -> bool`` once; check_schema (schemacheck.py) trusts a True and, on False, asks
``jsonschema`` for the errors, so what is reported and where stays jsonschema's.

The predicate must never say True where jsonschema finds an error. It follows the draft-07 keywords as
``jsonschema.Draft7Validator`` implements them (``$ref`` hides its siblings, ``integer`` takes 1.0, true
is not 1, ``pattern`` is Python's ``re.search``); a keyword it does not implement (``format``,
``contains``, ``multipleOf``, ``additionalItems``), a ``$ref`` that is not a pointer into the same
document or a nested ``$id`` makes ``compile_predicate`` return None (use jsonschema). An exception
while checking counts as False. Keywords draft-07 does not define are ignored, as jsonschema ignores them.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any
from urllib.parse import unquote

__all__ = ["compile_predicate"]

Predicate = Callable[[Any], bool]

#: Draft-07 keywords compiled here; "then"/"else" belong to "if", "definitions" is reached through "$ref".
_COMPILED = frozenset({
    "$ref", "type", "enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "uniqueItems", "items", "required",
    "properties", "patternProperties", "additionalProperties", "propertyNames", "minProperties",
    "maxProperties", "dependencies", "allOf", "anyOf", "oneOf", "not", "if",
})
#: Draft-07 keywords jsonschema checks that are not compiled: a schema using one is left to jsonschema.
_NOT_COMPILED = frozenset({"format", "contains", "multipleOf", "additionalItems"})


class _Unsupported(Exception):
    pass


def compile_predicate(schema: Any, *, formats: Mapping[str, Predicate] | None = None,
                      search: Callable[[str], Callable[[str], bool]] | None = None) -> Predicate | None:
    """``instance -> bool``, True only if ``jsonschema.Draft7Validator(schema)`` finds no error; None if not compiled.

    ``schema`` must be valid draft-07 (as the meta-schema checks): that is not checked here.
    ``formats``: ``format`` is compiled, as a validator with a format checker checks it: a format named
    here by the check for it (given any value, as jsonschema's checkers are), any other never passes
    (the checker may or may not know it). Without ``formats`` a schema using ``format`` is not compiled.
    ``search``: how a validator that replaces jsonschema's pattern matching matches (``pattern`` ->
    ``text -> bool``; an additional property is one that no pattern matches, pattern by pattern), as the
    payload validator does with RE2 (engine/patterns.py). Without it, Python's ``re`` as jsonschema.
    """
    try:
        if _nested_id(schema, top=True):
            return None
        check = _Compiler(schema, formats, search).compile(schema)
    except (_Unsupported, TypeError, ValueError, KeyError, IndexError, re.error, RecursionError):
        return None

    def predicate(instance: Any) -> bool:
        try:
            return check(instance)
        except Exception:  # jsonschema may fail here too (a number as a key under patternProperties): let it
            return False

    return predicate


_DEFINITION = re.compile(r"#/definitions/[^/~%]+\Z")
#: Draft-07 keywords whose value is a schema, a list of schemas, or a mapping of names to schemas.
_SCHEMA_VALUED = ("additionalItems", "additionalProperties", "contains", "else", "if", "items", "not", "propertyNames", "then")
_SCHEMA_LISTS = ("allOf", "anyOf", "items", "oneOf")
_SCHEMA_MAPS = ("definitions", "dependencies", "patternProperties", "properties")


def _nested_id(schema: Any, top: bool = False) -> bool:
    """True if an ``$id`` in a schema below the top would change where ``$ref`` resolves (not followed here)."""
    if not isinstance(schema, Mapping):
        return False
    if not top and "$id" in schema:
        return True
    subschemas: list[Any] = [schema.get(key) for key in _SCHEMA_VALUED]
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            subschemas += schema[key]
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), Mapping):
            subschemas += schema[key].values()
    return any(_nested_id(sub) for sub in subschemas)


# --------------------------------------------------------------------------- JSON equality as jsonschema sees it

_TRUE, _FALSE = object(), object()


def _unbool(value: Any) -> Any:
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    return value


def _equal(one: Any, two: Any) -> bool:
    """``jsonschema._utils.equal``: true is not 1, lists and mappings compare item by item."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(_equal(i, j) for i, j in zip(one, two, strict=False))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return one.keys() == two.keys() and all(_equal(one[key], two[key]) for key in one)
    return bool(_unbool(one) == _unbool(two))


def _unique(items: list[Any]) -> bool:
    """No two items equal (finds every pair ``jsonschema._utils.uniq`` finds)."""
    if all(type(item) is str for item in items):
        return len(set(items)) == len(items)
    seen: list[Any] = []
    for given in items:
        item = _unbool(given)
        for other in seen:
            if _equal(other, item):
                return False
        seen.append(item)
    return True


# --------------------------------------------------------------------------- types

def _sizes(schema: Mapping[str, Any], fewest: str, most: str, kind: type[Sized]) -> list[Predicate]:
    """The checks of a size bound (``minLength``/``maxLength``, ``minItems``/``maxItems``,
    ``minProperties``/``maxProperties``): each holds for a value that is not a ``kind``."""
    checks: list[Predicate] = []
    if fewest in schema:
        low = schema[fewest]
        checks.append(lambda v: not isinstance(v, kind) or not len(v) < low)
    if most in schema:
        high = schema[most]
        checks.append(lambda v: not isinstance(v, kind) or not len(v) > high)
    return checks


def is_regex(value: Any) -> bool:
    """jsonschema's ``regex`` format, for ``formats``: text that Python's ``re`` compiles (anything else is not its business)."""
    return not isinstance(value, str) or bool(re.compile(value))


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float or (not isinstance(v, bool) and isinstance(v, numbers.Number))


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


_TYPES: Mapping[str, Predicate] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": _is_integer,
}


def _always(v: Any) -> bool:
    return True


def _never(v: Any) -> bool:
    return False


def _all(checks: list[Predicate]) -> Predicate:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks

        def both(v: Any) -> bool:
            return first(v) and second(v)

        return both
    parts = tuple(checks)

    def every(v: Any) -> bool:
        for check in parts:  # noqa: SIM110 - a loop: all(<generator>) costs a frame per call
            if not check(v):
                return False
        return True

    return every


# --------------------------------------------------------------------------- compiling


def _every(kind: type[list] | type[dict], check: Predicate) -> Predicate:
    """True unless the value is a ``kind`` with a member ``check`` refuses (a plain loop: all() over a generator cost more)."""
    def every(v: Any) -> bool:
        if isinstance(v, kind):
            for x in v:
                if not check(x):
                    return False
        return True

    return every


class _Compiler:
    def __init__(self, root: Any, formats: Mapping[str, Predicate] | None = None,
                 search: Callable[[str], Callable[[str], bool]] | None = None) -> None:
        self.root = root
        self.formats = formats
        self.search = search
        self.refs: dict[str, list[Predicate]] = {}  # pointer -> [its predicate], filled in once compiled

    def _matcher(self, pattern: Any) -> Callable[[Any], bool]:
        """``text -> bool``: does ``pattern`` match somewhere in the text."""
        if self.search is not None:
            return self.search(pattern)
        found = re.compile(pattern).search  # as re.search(pattern, text) in jsonschema
        return lambda text: found(text) is not None

    def compile(self, schema: Any) -> Predicate:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, Mapping):
            raise _Unsupported(repr(schema))
        ref = schema.get("$ref")
        if ref is not None:  # draft-07: $ref hides every keyword beside it
            return self._ref(ref)
        for key in schema:
            if key in _NOT_COMPILED and not (key == "format" and self.formats is not None):
                raise _Unsupported(key)
        checks: list[Predicate] = []
        if "format" in schema:
            checks.append(self.formats.get(schema["format"], _never) if self.formats is not None else _never)
        if "type" in schema:
            checks.append(self._type(schema["type"]))
        for key in ("enum", "const"):
            if key in schema:
                checks.append(self._enum(schema[key]) if key == "enum" else self._const(schema[key]))
        checks += self._string(schema)
        checks += self._number(schema)
        checks += self._array(schema)
        checks += self._object(schema)
        checks += self._combined(schema)
        return _all(checks)

    # -- $ref

    def _ref(self, ref: Any) -> Predicate:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _Unsupported(f"$ref {ref!r}")
        cell = self.refs.get(ref)
        if cell is None:
            cell = self.refs[ref] = []
            target = self._resolve(ref)
            # a definition was looked at with the root (compile_predicate); anything else is looked at here
            if not _DEFINITION.match(ref) and target is not self.root and _nested_id(target, top=False):
                raise _Unsupported(f"$ref {ref!r} into a schema with its own $id")
            cell.append(self.compile(target))

        def follow(v: Any, cell: list[Predicate] = cell) -> bool:
            return cell[0](v)

        return follow

    def _resolve(self, ref: str) -> Any:
        """The target of a ``#/a/b`` pointer in the root schema (as ``referencing`` resolves it)."""
        pointer = unquote(ref[1:])
        if pointer and not pointer.startswith("/"):
            raise _Unsupported(f"$ref {ref!r}: an anchor, not a pointer")
        node = self.root
        for escaped in pointer.split("/")[1:]:
            segment = escaped.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Sequence) and not isinstance(node, str):
                node = node[int(segment)]
            elif isinstance(node, Mapping):
                node = node[segment]
            else:
                raise _Unsupported(f"$ref {ref!r}")
        return node

    # -- keywords on any value

    @staticmethod
    def _type(types: Any) -> Predicate:
        names = [types] if isinstance(types, str) else list(types)
        tests = tuple(_TYPES[name] for name in names)  # KeyError: jsonschema raises UnknownType
        if len(tests) == 1:
            return tests[0]

        def any_type(v: Any) -> bool:
            for test in tests:  # noqa: SIM110 - as in _all
                if test(v):
                    return True
            return False

        return any_type

    @staticmethod
    def _enum(values: Any) -> Predicate:
        if isinstance(values, list) and values and all(type(x) is str for x in values):
            allowed = frozenset(values)
            return lambda v: isinstance(v, str) and v in allowed
        options = list(values)
        return lambda v: any(_equal(x, v) for x in options)

    @staticmethod
    def _const(value: Any) -> Predicate:
        if type(value) is str:
            return lambda v: isinstance(v, str) and v == value
        return lambda v: _equal(v, value)

    def _string(self, schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = _sizes(schema, "minLength", "maxLength", str)
        if "pattern" in schema:
            matches = self._matcher(schema["pattern"])
            checks.append(lambda v: not isinstance(v, str) or matches(v))
        return checks

    @staticmethod
    def _number(schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = []
        if "minimum" in schema:
            low = schema["minimum"]
            checks.append(lambda v: not _is_number(v) or not v < low)
        if "maximum" in schema:
            high = schema["maximum"]
            checks.append(lambda v: not _is_number(v) or not v > high)
        if "exclusiveMinimum" in schema:
            xlow = schema["exclusiveMinimum"]
            checks.append(lambda v: not _is_number(v) or not v <= xlow)
        if "exclusiveMaximum" in schema:
            xhigh = schema["exclusiveMaximum"]
            checks.append(lambda v: not _is_number(v) or not v >= xhigh)
        return checks

    def _array(self, schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = []
        checks.extend(_sizes(schema, "minItems", "maxItems", list))
        if schema.get("uniqueItems"):
            checks.append(lambda v: not isinstance(v, list) or _unique(v))
        if "items" in schema:
            items = schema["items"]
            if isinstance(items, list):  # one schema per position; items past the last are free
                each = tuple(self.compile(s) for s in items)

                def positions(v: Any) -> bool:
                    if isinstance(v, list):
                        for check, item in zip(each, v, strict=False):
                            if not check(item):
                                return False
                    return True

                checks.append(positions)
            else:
                item = self.compile(items)
                if item is not _always:
                    checks.append(_every(list, item))
        return checks

    def _object(self, schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = []
        if "required" in schema:
            needed = tuple(schema["required"])
            if needed:
                def required(v: Any) -> bool:
                    if isinstance(v, dict):
                        for key in needed:
                            if key not in v:
                                return False
                    return True

                checks.append(required)
        checks.extend(_sizes(schema, "minProperties", "maxProperties", dict))
        if "properties" in schema or "patternProperties" in schema or "additionalProperties" in schema:
            checks.append(self._members(schema))
        if "propertyNames" in schema:
            name = self.compile(schema["propertyNames"])
            if name is not _always:
                checks.append(_every(dict, name))  # a mapping's members are its keys
        if "dependencies" in schema:
            checks.append(self._dependencies(schema["dependencies"]))
        return checks

    def _members(self, schema: Mapping[str, Any]) -> Predicate:
        """properties, patternProperties and additionalProperties, in one pass over the mapping."""
        known = {key: self.compile(sub) for key, sub in schema.get("properties", {}).items()}
        patterns = [(self._matcher(p), self.compile(sub)) for p, sub in schema.get("patternProperties", {}).items()]
        matched: Callable[[Any], bool] | None = None
        if patterns and self.search is None:  # jsonschema tells additional properties by the patterns joined with '|'
            matched = self._matcher("|".join(schema["patternProperties"]))
        elif patterns:
            each = tuple(match for match, _ in patterns)

            def matched(key: Any) -> bool:
                for match in each:  # noqa: SIM110 - as in _all
                    if match(key):
                        return True
                return False
        extra = schema.get("additionalProperties", True)
        other: Predicate | None = None if extra is True else _never if extra is False else self.compile(extra)

        if not patterns:
            def members(v: Any) -> bool:
                if isinstance(v, dict):
                    for key, value in v.items():
                        check = known.get(key)
                        if check is not None:
                            if not check(value):
                                return False
                        elif other is not None and not other(value):
                            return False
                return True

            return members

        def members_with_patterns(v: Any) -> bool:
            if isinstance(v, dict):
                for key, value in v.items():
                    check = known.get(key)
                    if check is not None and not check(value):
                        return False
                    for match, sub in patterns:
                        if match(key) and not sub(value):
                            return False
                    if other is not None and key not in known and (matched is None or not matched(key)) \
                            and not other(value):
                        return False
            return True

        return members_with_patterns

    def _dependencies(self, dependencies: Mapping[str, Any]) -> Predicate:
        keys: list[tuple[Any, tuple[Any, ...]]] = []
        schemas: list[tuple[Any, Predicate]] = []
        for name, needs in dependencies.items():
            if isinstance(needs, list):
                keys.append((name, tuple(needs)))
            else:
                schemas.append((name, self.compile(needs)))

        def dependencies_hold(v: Any) -> bool:
            if isinstance(v, dict):
                for name, needs in keys:
                    if name in v:
                        for need in needs:
                            if need not in v:
                                return False
                for name, check in schemas:
                    if name in v and not check(v):
                        return False
            return True

        return dependencies_hold

    # -- combinations

    def _combined(self, schema: Mapping[str, Any]) -> list[Predicate]:
        checks: list[Predicate] = []
        if "allOf" in schema:
            checks.append(_all([self.compile(s) for s in schema["allOf"]]))
        if "anyOf" in schema:
            options = tuple(self.compile(s) for s in schema["anyOf"])

            def any_of(v: Any) -> bool:
                for option in options:  # noqa: SIM110 - as in _all
                    if option(v):
                        return True
                return False

            checks.append(any_of)
        if "oneOf" in schema:
            branches = tuple(self.compile(s) for s in schema["oneOf"])

            def one_of(v: Any) -> bool:
                found = False
                for branch in branches:
                    if branch(v):
                        if found:
                            return False
                        found = True
                return found

            checks.append(one_of)
        if "not" in schema:
            negated = self.compile(schema["not"])
            checks.append(lambda v: not negated(v))
        if "if" in schema:
            condition = self.compile(schema["if"])
            then = self.compile(schema["then"]) if "then" in schema else _always
            otherwise = self.compile(schema["else"]) if "else" in schema else _always
            checks.append(lambda v: then(v) if condition(v) else otherwise(v))
        return checks
