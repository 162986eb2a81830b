"""Payload-schema ``pattern``s, matched by RE2 in time linear in the text: no pattern can make a check hang."""

# Why RE2: Python's `re` (like JavaScript's) backtracks, so a pattern such as
# '^(a+)+$' takes time exponential in the length of the text it is given: 28
# characters took 20 s. Payload text comes from the people using the host system,
# the patterns from configuration authors; neither should be able to stall the
# engine. RE2 compiles a pattern to an automaton and never backtracks. It refuses
# what needs backtracking (look-ahead, look-behind, back-references), and
# `qaflow validate` reports those with their position. It also warns about nested
# repetition, which is harmless here but not in a backtracking engine that may
# check the same schema elsewhere (a web form, the host system).
#
# JSON Schema patterns are ECMA-262 regular expressions. RE2 agrees with ECMA-262
# where Python's `re` does not: `\d` and `\w` are ASCII only, and `$` matches only
# at the very end (Python's also matches before a final newline). ECMA's `\uXXXX`
# is written `\x{XXXX}` for RE2: translated here.

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .problems import Severity

__all__ = ["PatternError", "PayloadValidator", "compile_pattern", "iter_pattern_problems", "payload_fits", "payload_validator"]


class PatternError(ValueError):
    """A pattern RE2 cannot run (it needs backtracking, or it is too large)."""


_UNICODE_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9A-Fa-f]{4})")


def _translate(pattern: str) -> str:
    """ECMA-262 syntax that RE2 writes differently: ``\\uXXXX`` becomes ``\\x{XXXX}``."""
    return _UNICODE_ESCAPE.sub(r"\1\\x{\2}", pattern)


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """``search(text) -> bool``: whether ``pattern`` matches anywhere in ``text``, as JSON Schema's ``pattern``.

    Raises :class:`PatternError` if RE2 cannot run the pattern.
    """
    import re2  # type: ignore[import-untyped]  # imported on first use: most configurations have no patterns

    options = re2.Options()
    options.never_capture = True  # only "does it match": lets RE2 use its fastest automaton
    options.log_errors = False
    try:
        compiled = re2.compile(_translate(pattern), options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise PatternError(reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)) from None
    # The public search() decodes match offsets back to characters, which costs several
    # microseconds; a yes/no needs only the match on the encoded text.
    low = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(getattr(re2, "_re2", None), "RE2", None), "Anchor", None)
    if low is None or not hasattr(low, "Match") or anchor is None:  # pragma: no cover - another binding version
        return lambda text: compiled.search(text) is not None
    match, unanchored = low.Match, anchor.UNANCHORED

    def search(text: str) -> bool:
        encoded = text.encode("utf-8", "surrogatepass")
        return bool(match(unanchored, encoded, 0, len(encoded))[0][0] >= 0)

    return search


def _search(pattern: str, text: str) -> bool:
    try:
        return compile_pattern(pattern)(text)
    except PatternError as exc:  # validate refuses such patterns; a schema built by hand may still have one
        import jsonschema

        raise jsonschema.SchemaError(f"pattern {pattern!r} cannot be used: {exc}") from None


# -- jsonschema with RE2: the three draft-07 keywords that match patterns -----------------------------
# Built on first use: jsonschema takes ~90 ms to import, which a command that checks no payload
# (``qaflow show``, ``list``) should not pay.


@functools.cache
def _validator_class() -> Any:
    import jsonschema
    from jsonschema.exceptions import ValidationError

    additional = jsonschema.Draft7Validator.VALIDATORS["additionalProperties"]

    def pattern_(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not _search(pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")

    def pattern_properties(validator: Any, patterns: Mapping[str, Any], instance: Any,
                           schema: Mapping[str, Any]) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object"):
            return
        for pattern, subschema in patterns.items():
            for key, value in instance.items():
                if _search(pattern, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=pattern)

    def additional_properties(validator: Any, allowed: Any, instance: Any,
                              schema: Mapping[str, Any]) -> Iterator[ValidationError]:
        patterns = schema.get("patternProperties")
        if not patterns:  # no pattern involved: jsonschema's own
            yield from additional(validator, allowed, instance, schema)
            return
        if not validator.is_type(instance, "object"):
            return
        properties = schema.get("properties", {})
        extras = {k for k in instance if k not in properties and not any(_search(p, k) for p in patterns)}
        if validator.is_type(allowed, "object"):
            for extra in extras:
                yield from validator.descend(instance[extra], allowed, path=extra)
        elif not allowed and extras:  # jsonschema's message
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")

    return jsonschema.validators.extend(
        jsonschema.Draft7Validator,
        {"pattern": pattern_, "patternProperties": pattern_properties, "additionalProperties": additional_properties},
    )


class PayloadValidator:
    """A draft-07 validator (all formats checked) whose patterns are matched by RE2, built on first use.

    ``is_valid`` and ``iter_errors`` are jsonschema's; any other attribute is the built validator's.
    """

    __slots__ = ("schema", "_built")

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        self.schema = schema
        self._built: Any = None

    def _validator(self) -> Any:
        built = self._built
        if built is None:
            import jsonschema

            # two threads racing here build equal validators; either may be kept
            built = self._built = _validator_class()(self.schema, format_checker=jsonschema.FormatChecker())
        return built

    def is_valid(self, instance: Any) -> bool:
        return bool(self._validator().is_valid(instance))

    def iter_errors(self, instance: Any) -> Iterator[Any]:
        return self._validator().iter_errors(instance)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy and pickle look up hooks here; never build a validator for them
            raise AttributeError(name)
        return getattr(self._validator(), name)

    def __repr__(self) -> str:
        return f"PayloadValidator({self.schema!r})"


def payload_validator(schema: Mapping[str, Any] | bool) -> PayloadValidator:
    """A draft-07 validator (all formats checked) whose patterns are matched by RE2."""
    return PayloadValidator(schema)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def _is_date(value: Any) -> bool:
    """jsonschema's ``date`` format (a ValueError is its "no")."""
    import datetime

    return not isinstance(value, str) or bool(_DATE.fullmatch(value) and datetime.date.fromisoformat(value))


_PREDICATES: OrderedDict[int, tuple[Any, Callable[[Any], bool] | None]] = OrderedDict()  # id(schema) -> (schema, its predicate)
_PREDICATES_LOCK = threading.Lock()


def payload_predicate(schema: Mapping[str, Any] | bool) -> Callable[[Any], bool] | None:
    """``instance -> bool``, True only if ``payload_validator(schema)`` finds no error; None if the schema uses
    a keyword (or format) that is not compiled (engine/config/schemapredicate.py). Compiled once per schema object.
    """
    with _PREDICATES_LOCK:
        found = _PREDICATES.get(id(schema))
    if found is None or found[0] is not schema:
        from .config.schemapredicate import compile_predicate, is_regex

        # the formats every checker of jsonschema's knows; a payload with another (email...) is left to the validator
        found = (schema, compile_predicate(schema, formats={"date": _is_date, "regex": is_regex}, search=compile_pattern))
        with _PREDICATES_LOCK:
            _PREDICATES[id(schema)] = found  # holding the schema keeps its id from being reused
            while len(_PREDICATES) > 256:
                _PREDICATES.popitem(last=False)
    return found[1]


def payload_fits(schema: Mapping[str, Any] | bool, instance: Any) -> bool:
    """True only if ``payload_validator(schema)`` finds no error in ``instance``, answered without jsonschema.

    False means "ask the validator". ``schema`` must be valid draft-07 (it is checked when a workflow loads).
    """
    predicate = payload_predicate(schema)
    return predicate is not None and predicate(instance)


# -- validate-time checks --------------------------------------------------------------------------

_ONE_SCHEMA = ("items", "additionalItems", "additionalProperties", "propertyNames", "contains", "not", "if", "then", "else")
_SCHEMA_LISTS = ("items", "allOf", "anyOf", "oneOf")
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "dependencies")


def _iter_patterns(schema: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], bool, str]]:
    """(path, is_key, pattern) for every pattern in a schema: ``pattern`` values and ``patternProperties`` keys."""
    if not isinstance(schema, Mapping):
        return
    if isinstance(schema.get("pattern"), str):
        yield path + ("pattern",), False, schema["pattern"]
    if isinstance(schema.get("patternProperties"), Mapping):
        for key in schema["patternProperties"]:
            if isinstance(key, str):
                yield path + ("patternProperties", key), True, key
    for keyword in _ONE_SCHEMA:
        if isinstance(schema.get(keyword), Mapping):
            yield from _iter_patterns(schema[keyword], path + (keyword,))
    for keyword in _SCHEMA_LISTS:
        if isinstance(schema.get(keyword), list):
            for i, sub in enumerate(schema[keyword]):
                yield from _iter_patterns(sub, path + (keyword, i))
    for keyword in _SCHEMA_MAPS:
        if isinstance(schema.get(keyword), Mapping):
            for name, sub in schema[keyword].items():
                yield from _iter_patterns(sub, path + (keyword, name))


def iter_pattern_problems(schema: Any) -> Iterator[tuple[tuple[Any, ...], bool, Severity, str, str]]:
    """(path in the schema, is_key, severity, code, message) for each pattern that is a problem.

    Errors (``payload-pattern``): RE2 cannot run the pattern. Warnings
    (``pattern-backtracking``): a repetition inside a repetition, which a backtracking engine
    may take exponential time over; a heuristic, as every such check is.
    """
    for path, is_key, pattern in _iter_patterns(schema):
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            message = (f"pattern {pattern!r} cannot be used: {exc}. Payload patterns are matched in time linear "
                       "in the text (RE2), which has no look-ahead (?=...), look-behind (?<=...) or back-references (\\1)")
            yield path, is_key, "error", "payload-pattern", message
            continue
        if _nested_repetition(pattern):
            message = (f"pattern {pattern!r} repeats a group that itself repeats, as in '(a+)+': qaflow matches it "
                       "in linear time, but a backtracking engine (Python's re, JavaScript) checking the same schema "
                       "can take exponential time over a short text; write the repeated part once, or make the parts "
                       "exclusive")
            yield path, is_key, "warning", "pattern-backtracking", message


def _nested_repetition(pattern: str) -> bool:
    """True if a repeated group holds an unbounded repetition and nothing it must match once.

    '(a+)+' and '(\\w+\\s?)+' are caught; '(\\s\\w+)*' is left alone (each turn needs one space, so it
    cannot backtrack badly); '(a|aa)+' (overlapping choices) is missed: a heuristic, as every such check
    is. Read with Python's own parser.
    """
    try:
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(pattern)
    except Exception:  # Python cannot read it (RE2 syntax): nothing to say about backtracking engines
        return False
    repeats = {_parser.MAX_REPEAT, _parser.MIN_REPEAT}

    def unbounded(items: Any) -> bool:
        for op, av in items:
            if op in repeats and (av[1] == _parser.MAXREPEAT or av[1] > 16):
                return True
            if op in repeats and unbounded(av[2]):
                return True
            if op is _parser.SUBPATTERN and unbounded(av[3]):
                return True
            if op is _parser.BRANCH and any(unbounded(b) for b in av[1]):
                return True
        return False

    def only_repeats(items: Any) -> bool:
        """Nothing in the group is required once (a separator such as ',' in '([a-z]+,)*' is)."""
        for op, av in items:
            if op is _parser.SUBPATTERN:
                if not only_repeats(av[3]):
                    return False
            elif op is _parser.BRANCH:
                if not any(only_repeats(b) for b in av[1]):
                    return False
            elif op not in repeats and op is not _parser.AT:
                return False
        return True

    def find(items: Any) -> bool:
        for op, av in items:
            if op in repeats:
                _, high, body = av
                if (high == _parser.MAXREPEAT or high > 16) and unbounded(body) and only_repeats(body):
                    return True
                if find(body):
                    return True
            elif (op is _parser.SUBPATTERN and find(av[3])) or (op is _parser.BRANCH and any(find(b) for b in av[1])):
                return True
        return False

    return find(parsed)
