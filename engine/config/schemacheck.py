"""Check a Document against a JSON Schema, reporting each error where it was written.

A document is first put to the schema's compiled predicate (schemapredicate.py), which answers in a
fraction of jsonschema's time; only a document it does not pass is walked by jsonschema, whose errors
are described here. jsonschema is imported only then (it takes ~90 ms): a configuration without errors
checked against the package's own schemas needs none of it.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from engine.problems import Location, Problem

from .schemapredicate import Predicate, compile_predicate, is_regex
from .yamlsource import Document

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

__all__ = ["check_schema", "draft7_error", "make_validator", "package_schema"]

_CACHE_SIZE = 64
# id(schema) -> (schema, validator); holding the schema keeps its id from being reused.
_validators: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
# id(schema) -> (schema, its predicate or None), as _validators
_predicates: OrderedDict[int, tuple[Any, Predicate | None]] = OrderedDict()
# id(schema) -> schema: the package's own schemas, valid draft-07 (tests/cli/test_schema_command.py checks them)
_package: dict[int, Any] = {}

_TYPE_NAMES = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
    "null": "nothing",
}
# Errors at the top of a branch that show the branch was meant for another shape.
_SHAPE_KEYWORDS = {"type", "required", "const", "enum", "dependencies"}


def make_validator(schema: Mapping, **kwargs: Any) -> Any:
    """A draft-07 validator for ``schema`` that also checks ``format`` (dates, e-mails...).

    Raises ``jsonschema.SchemaError`` if the schema itself is not valid draft-07;
    ``kwargs`` go to ``Draft7Validator`` (e.g. ``registry`` for ``$ref`` to other files).
    """
    import jsonschema

    jsonschema.Draft7Validator.check_schema(schema)
    kwargs.setdefault("format_checker", jsonschema.Draft7Validator.FORMAT_CHECKER)
    return jsonschema.Draft7Validator(schema, **kwargs)


def package_schema(schema: Any) -> Any:
    """Mark ``schema`` (returned as it is) as one of the package's own: valid draft-07, never changed.

    check_schema then answers for a document that fits it without checking the schema against the
    draft-07 meta-schema first (that check, for each kind of file, cost more than the documents).
    """
    _package[id(schema)] = schema
    return schema


def draft7_error(schema: Any) -> Exception | None:
    """None if ``schema`` is valid draft-07, else the ``jsonschema.SchemaError`` that ``Draft7Validator.check_schema`` raises.

    A schema that the draft-07 meta-schema's compiled predicate passes is answered without jsonschema
    (a workflow's payload schemas are checked so at each load); any other goes to check_schema itself.
    """
    predicate = _meta_predicate()
    try:
        if predicate is not None and predicate(schema):
            return None
    except RecursionError:  # pragma: no cover - the predicate answers False rather than raise
        pass
    import jsonschema

    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return exc
    return None


@functools.cache
def _meta_predicate() -> Predicate | None:
    """The draft-07 meta-schema (the copy jsonschema checks with, read without importing it) as a predicate."""
    from importlib.util import find_spec
    from pathlib import Path

    try:
        spec = find_spec("jsonschema_specifications")
        folders = list(spec.submodule_search_locations or ()) if spec is not None else []
        meta = json.loads((Path(folders[0]) / "schemas" / "draft7" / "metaschema.json").read_text(encoding="utf-8"))
    except (ImportError, IndexError, OSError, ValueError):
        return None
    # the only format the meta-schema's checker always knows; the others (uri...) send a schema to jsonschema
    return compile_predicate(meta, formats={"regex": is_regex})


def _cached(table: OrderedDict[int, tuple[Any, Any]], schema: Any, make: Any) -> Any:
    cached = table.get(id(schema))
    if cached is not None and cached[0] is schema:
        table.move_to_end(id(schema))
        return cached[1]
    made = make(schema)
    table[id(schema)] = (schema, made)
    while len(table) > _CACHE_SIZE:
        table.popitem(last=False)
    return made


def _validator_for(schema: Any) -> Any:
    if hasattr(schema, "iter_errors"):
        return schema
    return _cached(_validators, schema, make_validator)


def _fits(schema: Any, data: Any) -> bool:
    """True if ``data`` certainly has no error under ``schema`` (a mapping, valid draft-07): no need for jsonschema."""
    predicate = _cached(_predicates, schema, compile_predicate)
    return predicate is not None and predicate(data)


def check_schema(doc: Document, schema: Any, *, code_prefix: str = "schema") -> list[Problem]:
    """Every way ``doc.data`` breaks ``schema`` (a mapping or a prebuilt validator), sorted."""
    if not hasattr(schema, "iter_errors") and _package.get(id(schema)) is schema and _fits(schema, doc.data):
        return []
    import jsonschema
    from referencing.exceptions import Unresolvable

    try:
        validator = _validator_for(schema)  # for a schema not the package's: checks it against the meta-schema
        if validator is not schema and _fits(schema, doc.data):
            return []
        errors = list(validator.iter_errors(doc.data))
    except RecursionError:
        return [_problem(doc.location(()), code_prefix, "invalid", "the document is nested too deeply to check")]
    except jsonschema.exceptions.SchemaError as exc:
        return [_problem(doc.location(()), code_prefix, "invalid", f"the schema itself is invalid: {exc.message}")]
    except (jsonschema.exceptions.UnknownType, Unresolvable) as exc:
        return [_problem(doc.location(()), code_prefix, "invalid", f"the schema cannot be used: {exc}")]
    seen: set[Problem] = set()
    problems: list[Problem] = []
    for error in errors:
        for problem in _describe(doc, error, code_prefix):
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    problems.sort(key=lambda p: (p.sort_key(), p.message))
    return problems


# --------------------------------------------------------------------------- describing


def _problem(location: Location, prefix: str, suffix: str, message: str) -> Problem:
    return Problem(location, "error", f"{prefix}-{suffix}", message)


def _describe(doc: Document, error: ValidationError, prefix: str) -> Iterator[Problem]:
    path = tuple(error.absolute_path)
    keyword = error.validator
    # Any: the stubs allow an unset sentinel, which errors raised by validation never carry
    value: Any = error.validator_value
    instance: Any = error.instance
    where = doc.location(path)

    if keyword in ("oneOf", "anyOf"):
        yield from _describe_choice(doc, error, prefix)
        return

    if _about_property_name(error):
        # propertyNames checks each key as text; point at the key, not the mapping.
        name = instance
        key_where = doc.location(path + (name,), key=True)
        inner = _message(error)[1]
        shown = _show(name)
        if inner.startswith(shown):
            message = f"key {_quote(name)}{inner[len(shown):]}"
        else:
            message = f"key {_quote(name)}: {inner}"
        yield _problem(key_where, prefix, "invalid", message)
        return

    if keyword == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = [str(k) for k in schema.get("properties", {})]
        patterns = list(schema.get("patternProperties", {}))
        unknown = [
            key for key in instance
            if str(key) not in allowed and not any(_search(p, str(key)) for p in patterns)
        ]
        for key in unknown:
            yield _problem(
                doc.location(path + (key,), key=True), prefix, "unknown-key",
                f"unknown key {_quote(key)}{_suggest(str(key), allowed, list_them=True)}",
            )
        if not unknown:
            yield _problem(where, prefix, "unknown-key", error.message)
        return

    if keyword == "required" and isinstance(instance, dict):
        for name in value:
            if name not in instance:
                yield _problem(where, prefix, "required", f"missing required key {_quote(name)}")
        return

    if keyword == "dependencies" and isinstance(instance, dict):
        for name, needs in value.items():
            if name in instance and isinstance(needs, list):
                for need in needs:
                    if need not in instance:
                        yield _problem(
                            doc.location(path + (name,), key=True), prefix, "required",
                            f"key {_quote(name)} also needs key {_quote(need)}",
                        )
        if not any(isinstance(needs, list) for needs in value.values()):
            yield _problem(where, prefix, "invalid", error.message)
        return

    suffix, message = _message(error)
    yield _problem(where, prefix, suffix, message)


def _about_property_name(error: ValidationError) -> bool:
    """True when the error comes from checking a key under ``propertyNames``."""
    schema_path = list(error.relative_schema_path)
    parent = error.parent
    while parent is not None:  # inside oneOf branches the keyword is further up
        schema_path = list(parent.relative_schema_path) + schema_path
        parent = parent.parent
    return "propertyNames" in schema_path and isinstance(error.instance, str)


def _message(error: ValidationError) -> tuple[str, str]:
    """(code suffix, plain message) for one error that is not about keys."""
    keyword = error.validator
    # Any: the stubs allow an unset sentinel, which errors raised by validation never carry
    value: Any = error.validator_value
    instance: Any = error.instance
    if keyword == "type":
        return "type", f"expected {_expected(value)}, found {_found(instance)}"
    if keyword == "enum":
        options = list(value) if isinstance(value, (list, tuple)) else [value]
        shown = ", ".join(_plain(o) for o in options[:12]) + (", ..." if len(options) > 12 else "")
        hint = _suggest(str(instance), [str(o) for o in options]) if isinstance(instance, str) else ""
        named = error.schema.get("x-vocabulary") if isinstance(error.schema, Mapping) else None
        if isinstance(named, str):  # a list the rules define (engine/config/configschemas.py): say where to add a term
            hint += f" (the terms of vocabulary '{named}' in the rules: a new one is added there)"
        return "enum", f"{_show(instance)} is not one of: {shown}{hint}"
    if keyword == "const":
        return "enum", f"expected {_show(value)}, found {_show(instance)}"
    if keyword == "pattern":
        return "invalid", f"{_show(instance)} is not in the expected form (pattern {value})"
    if keyword == "format":
        return "invalid", f"{_show(instance)} is not a valid {value}"
    if keyword == "minimum":
        return "invalid", f"must be at least {value}, found {_show(instance)}"
    if keyword == "maximum":
        return "invalid", f"must be at most {value}, found {_show(instance)}"
    if keyword == "exclusiveMinimum":
        return "invalid", f"must be more than {value}, found {_show(instance)}"
    if keyword == "exclusiveMaximum":
        return "invalid", f"must be less than {value}, found {_show(instance)}"
    if keyword == "multipleOf":
        return "invalid", f"must be a multiple of {value}, found {_show(instance)}"
    if keyword == "minLength":
        if value == 1:
            return "invalid", "must not be empty text"
        return "invalid", f"must be at least {value} characters long"
    if keyword == "maxLength":
        return "invalid", f"must be at most {value} characters long"
    if keyword == "minItems":
        if value == 1:
            return "invalid", "must be a list with at least one item"
        return "invalid", f"must have at least {value} items, found {_count(instance)}"
    if keyword == "maxItems":
        return "invalid", f"must have at most {value} items, found {_count(instance)}"
    if keyword == "uniqueItems":
        return "invalid", f"items must not repeat{_first_repeat(instance)}"
    if keyword == "minProperties":
        if value == 1:
            return "invalid", "must not be an empty mapping"
        return "invalid", f"must have at least {value} keys, found {_count(instance)}"
    if keyword == "maxProperties":
        return "invalid", f"must have at most {value} keys, found {_count(instance)}"
    if keyword == "contains":
        return "invalid", "no item in this list is of the kind required here"
    if keyword == "not":
        return "invalid", f"{_show(instance)} is not allowed here"
    if keyword == "false" or error.schema is False:
        return "invalid", "nothing is allowed here"
    if keyword == "required":  # required on something that is not a mapping
        return "required", error.message
    return "invalid", error.message


# --------------------------------------------------------------------------- oneOf / anyOf


def _describe_choice(doc: Document, error: ValidationError, prefix: str) -> Iterator[Problem]:
    path = tuple(error.absolute_path)
    if not error.context:
        if error.validator == "oneOf":
            yield _problem(doc.location(path), prefix, "invalid",
                           f"{_show(error.instance)} matches more than one of the allowed forms")
        else:
            yield _problem(doc.location(path), prefix, "invalid", error.message)
        return
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branch = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        branches.setdefault(branch, []).append(sub)

    if all(_wrong_type(errs) for errs in branches.values()):
        # No branch fits the type of the value: say which types would have done.
        types = [_branch_type(error, key) for key in branches]
        if all(t is not None for t in types):
            flat: list[str] = []
            for t in types:
                for name in [t] if isinstance(t, str) else t:
                    if name not in flat:
                        flat.append(name)
            yield _problem(doc.location(path), prefix, "type",
                           f"expected {_expected(flat)}, found {_found(error.instance)}")
            return
    else:
        consts = [_branch_const(error, key) for key in branches]
        if all(c is not _NO_CONST for c in consts) and all(
            not e.relative_path for errs in branches.values() for e in errs
        ):
            shown = ", ".join(_plain(c) for c in consts)
            hint = _suggest(str(error.instance), [str(c) for c in consts]) if isinstance(error.instance, str) else ""
            yield _problem(doc.location(path), prefix, "enum",
                           f"{_show(error.instance)} is not one of: {shown}{hint}")
            return

    if all(len(errs) == 1 and errs[0].validator == "required" and not errs[0].relative_path for errs in branches.values()):
        # anyOf: [{required: [a]}, {required: [b]}]: one of the keys is needed
        instance: Any = error.instance
        needed = [name for errs in branches.values() for name in _value(errs[0]) if name not in instance]
        yield _problem(doc.location(path), prefix, "required",
                       "missing a required key: " + " or ".join(_quote(n) for n in dict.fromkeys(needed)))
        return

    best = min(branches.values(), key=_branch_cost)
    for sub in best:
        yield from _describe(doc, sub, prefix)


def _wrong_type(errors: list[ValidationError]) -> bool:
    return any(e.validator == "type" and not e.relative_path for e in errors)


def _branch_cost(errors: list[ValidationError]) -> tuple:
    """Lower is a better guess at the branch the author meant."""
    shape = 0
    for e in errors:
        depth = len(e.relative_path)
        if e.validator == "type" and depth == 0:
            shape += 100
        elif e.validator in _SHAPE_KEYWORDS and depth <= 1:
            shape += 10
    noise = 0
    for e in errors:
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            props = e.schema.get("properties", {}) if isinstance(e.schema, Mapping) else {}
            noise += sum(1 for key in e.instance if key not in props)
        else:
            noise += 1
    deepest = max((len(e.relative_path) for e in errors), default=0)
    return (shape, noise, -deepest)


def _value(error: ValidationError) -> Any:
    """The schema value the failed keyword had (the stubs allow an unset sentinel that validation never leaves)."""
    return error.validator_value


def _branch_schema(error: ValidationError, key: Any) -> Any:
    options = _value(error)
    try:
        return options[key]
    except (IndexError, KeyError, TypeError):
        return None


def _branch_type(error: ValidationError, key: Any) -> Any:
    schema = _branch_schema(error, key)
    if isinstance(schema, Mapping) and "type" in schema:
        return schema["type"]
    return None


_NO_CONST = object()


def _branch_const(error: ValidationError, key: Any) -> Any:
    schema = _branch_schema(error, key)
    if isinstance(schema, Mapping) and "const" in schema:
        return schema["const"]
    return _NO_CONST


# --------------------------------------------------------------------------- wording


def _expected(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    words = [_TYPE_NAMES.get(n, n) for n in names]
    if len(words) <= 1:
        return words[0] if words else "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _found(instance: Any) -> str:
    if instance is None:
        return "nothing"
    if isinstance(instance, bool):
        return f"true-or-false value {'true' if instance else 'false'}"
    if isinstance(instance, (int, float)):
        return f"number {instance}"
    if isinstance(instance, str):
        return f"text {_quote(instance)}"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, dict):
        return "a mapping"
    return type(instance).__name__


def _show(instance: Any) -> str:
    if isinstance(instance, str):
        return _quote(instance)
    if instance is None:
        return "nothing"
    if isinstance(instance, bool):
        return "true" if instance else "false"
    if isinstance(instance, (int, float)):
        return str(instance)
    return "a list" if isinstance(instance, list) else "a mapping" if isinstance(instance, dict) else repr(instance)


def _plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quote(value: Any, limit: int = 60) -> str:
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"'{text}'"


def _count(instance: Any) -> int:
    try:
        return len(instance)
    except TypeError:
        return 0


def _first_repeat(instance: Any) -> str:
    if not isinstance(instance, list):
        return ""
    seen: list[Any] = []
    for item in instance:
        if item in seen:
            return f" ({_show(item)} appears more than once)"
        seen.append(item)
    return ""


def _suggest(word: str, options: list[str], *, list_them: bool = False) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if list_them and 0 < len(options) <= 10:
        return " (expected one of: " + ", ".join(options) + ")"
    return ""


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False
