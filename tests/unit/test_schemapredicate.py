"""The compiled schema predicate agrees with jsonschema: it never passes a document jsonschema finds an error in."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config.configschemas import schema_kinds, template
from engine.config.schemacheck import check_schema, make_validator
from engine.config.schemapredicate import compile_predicate
from engine.config.yamlsource import load_yaml, load_yaml_file

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"workflow": "workflows", "rules": "rules", "scenario": "scenarios", "report": "reports",
           "simulation": "simulation", "programme": "programmes"}


def _documents(kind: str) -> list[Any]:
    paths = sorted((ROOT / "config" / FOLDERS[kind]).glob("*.yaml"))
    paths += sorted(p for p in (ROOT / "tests").rglob("*.yaml") if p.parent.name == FOLDERS[kind])
    docs = []
    for path in paths:
        doc, _ = load_yaml_file(path)
        if doc is not None and doc.data is not None:
            docs.append(doc.data)
    return docs


@pytest.mark.parametrize("kind", sorted(FOLDERS))
def test_every_package_schema_compiles_and_agrees_on_every_file(kind: str) -> None:
    assert kind in schema_kinds()
    schema = template(kind)
    predicate = compile_predicate(schema)
    assert predicate is not None
    validator = jsonschema.Draft7Validator(schema)
    documents = _documents(kind)
    assert documents
    for data in documents:
        assert predicate(data) == validator.is_valid(data)


# --------------------------------------------------------------------------- bundled documents, changed at random

_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2, allow_nan=False),
                    st.sampled_from(["", "x", "open", "2026-11-02", "10 working days", "Bad Name", "a_b"]),
                    st.just([]), st.just({}), st.just(["x"]), st.just({"x": 1}))


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, prefix + (i,))
    return found


def _change(data: Any, path: tuple, how: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "remove":
        del parent[last]
    elif how == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = value
    elif how == "add" and isinstance(parent, list):
        parent.append(value)
    else:
        parent[last] = value
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(FOLDERS)), pick=st.integers(0, 10_000), where=st.integers(0, 10_000),
       how=st.sampled_from(["replace", "remove", "add"]), value=_VALUES)
def test_a_changed_document_is_judged_as_jsonschema_judges_it(kind: str, pick: int, where: int, how: str,
                                                               value: Any) -> None:
    documents = _DOCUMENTS.setdefault(kind, _documents(kind))
    data = documents[pick % len(documents)]
    paths = _paths(data)
    changed = _change(data, paths[where % len(paths)], how, value)
    schema = template(kind)
    predicate = compile_predicate(schema)
    assert predicate is not None
    assert predicate(changed) == jsonschema.Draft7Validator(schema).is_valid(changed)


_DOCUMENTS: dict[str, list[Any]] = {}


# --------------------------------------------------------------------------- small schemas, at random

_PATTERNS = ["^[a-z_]+$", "x", "^a", "[0-9]$", "^$"]
_LEAF = st.one_of(
    st.just({}), st.just(True), st.just(False),
    st.builds(lambda t: {"type": t}, st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array"])),
    st.builds(lambda ts: {"type": ts}, st.lists(st.sampled_from(["string", "integer", "null", "array"]), min_size=1,
                                                 max_size=3, unique=True)),
    st.builds(lambda v: {"enum": v}, st.lists(st.one_of(st.sampled_from(["a", "b", "x"]), st.integers(0, 2),
                                                        st.booleans(), st.none()), max_size=4)),
    st.builds(lambda v: {"const": v}, st.one_of(st.sampled_from(["a", "x"]), st.integers(0, 2), st.booleans(),
                                               st.none(), st.just([1]), st.just({"a": 1}))),
    st.builds(lambda p: {"pattern": p}, st.sampled_from(_PATTERNS)),
    st.builds(lambda n: {"minLength": n}, st.integers(0, 3)),
    st.builds(lambda n: {"maxLength": n}, st.integers(0, 3)),
    st.builds(lambda k, n: {k: n}, st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]),
              st.one_of(st.integers(-2, 2), st.floats(-2, 2, allow_nan=False))),
    st.builds(lambda k, n: {k: n}, st.sampled_from(["minItems", "maxItems", "minProperties", "maxProperties"]),
              st.integers(0, 2)),
    st.builds(lambda u: {"uniqueItems": u}, st.booleans()),
    st.builds(lambda r: {"required": r}, st.lists(st.sampled_from(["a", "b", "c"]), unique=True)),
)


def _extend(inner: st.SearchStrategy) -> st.SearchStrategy:
    names = st.sampled_from(["a", "b", "c"])
    return st.one_of(
        st.builds(lambda i: {"items": i}, inner),
        st.builds(lambda i: {"items": i}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda p, a: {"properties": p, "additionalProperties": a},
                  st.dictionaries(names, inner, max_size=3), st.one_of(st.booleans(), inner)),
        st.builds(lambda p, a: {"patternProperties": p, "additionalProperties": a},
                  st.dictionaries(st.sampled_from(_PATTERNS), inner, max_size=2), st.one_of(st.booleans(), inner)),
        st.builds(lambda i: {"propertyNames": i}, inner),
        st.builds(lambda d: {"dependencies": d},
                  st.dictionaries(names, st.one_of(st.lists(names, unique=True), inner), max_size=2)),
        st.builds(lambda k, i: {k: i}, st.sampled_from(["allOf", "anyOf", "oneOf"]), st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda i: {"not": i}, inner),
        st.builds(lambda c, t, e: {"if": c, "then": t, "else": e}, inner, inner, inner),
        st.builds(lambda c, t: {"if": c, "then": t}, inner, inner),
        st.builds(lambda one, two: {**one, **two} if isinstance(one, dict) and isinstance(two, dict) else one,
                  inner, inner),
    )


_SCHEMAS = st.recursive(_LEAF, _extend, max_leaves=8)
_INSTANCES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False),
              st.sampled_from(["", "a", "b", "x", "ab", "a_b", "A", "9", "aa"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c", "x", "9"]), inner,
                                                                         max_size=3)),
    max_leaves=8,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_SCHEMAS, instance=_INSTANCES)
def test_small_schemas_are_judged_as_jsonschema_judges_them(schema: Any, instance: Any) -> None:
    root = {"definitions": {"d": schema}, "$ref": "#/definitions/d"}
    for whole in (schema, root):
        jsonschema.Draft7Validator.check_schema(whole)
        predicate = compile_predicate(whole)
        assert predicate is not None
        assert predicate(instance) == jsonschema.Draft7Validator(whole).is_valid(instance)


def test_a_recursive_reference_is_followed() -> None:
    schema = {"definitions": {"tree": {"type": "object", "additionalProperties": False,
                                       "properties": {"name": {"type": "string"},
                                                      "children": {"type": "array", "items": {"$ref": "#/definitions/tree"}}}}},
              "$ref": "#/definitions/tree"}
    predicate = compile_predicate(schema)
    assert predicate is not None
    assert predicate({"name": "a", "children": [{"name": "b", "children": []}]})
    assert not predicate({"name": "a", "children": [{"name": 1}]})


@pytest.mark.parametrize("schema", [
    {"type": "string", "format": "date"},
    {"contains": {"type": "string"}},
    {"multipleOf": 2},
    {"items": [{"type": "string"}], "additionalItems": False},
    {"$ref": "other.json#/definitions/a"},
    {"properties": {"a": {"$id": "https://example.org/a", "type": "string"}}},
])
def test_keywords_not_compiled_are_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_predicate(schema) is None
    for text in ("a: 1\n", "a: x\n", "- 2026-13-01\n"):
        doc, _ = load_yaml(text, "x.yaml")
        assert doc is not None
        # a prebuilt validator is always asked directly: the same problems
        assert check_schema(doc, schema) == check_schema(doc, make_validator(schema))


def test_a_document_jsonschema_cannot_check_is_left_to_it() -> None:
    # jsonschema matches key patterns with re.search, which a number as a key makes fail
    schema = {"type": "object", "patternProperties": {"^a": {"type": "string"}}}
    predicate = compile_predicate(schema)
    assert predicate is not None
    assert predicate({"ab": "x"})
    assert not predicate({1: "x"})


def test_an_invalid_schema_of_ones_own_is_still_reported_for_a_document_that_fits_it() -> None:
    doc, _ = load_yaml("a: 1\n", "x.yaml")
    assert doc is not None
    problems = check_schema(doc, {"type": "object", "minProperties": -1})
    assert [p.code for p in problems] == ["schema-invalid"]
    assert "the schema itself is invalid" in problems[0].message


# --------------------------------------------------------------------------- the draft-07 meta-schema

_BAD = st.sampled_from([
    {"type": "nope"}, {"type": ["string", "string"]}, {"minLength": -1}, {"minItems": 1.5}, {"required": [1]},
    {"required": ["a", "a"]}, {"pattern": "(("}, {"pattern": 5}, {"enum": 5}, {"properties": {"a": 1}},
    {"items": []}, {"allOf": []}, {"additionalProperties": "no"}, {"patternProperties": {"((": {}}},
    {"propertyNames": {"format": "regex"}}, {"$id": 5}, {"$ref": "#/definitions/a"}, {"format": 1},
    {"dependencies": {"a": [1]}}, {"definitions": {"a": {"type": "nope"}}}, {"if": {"type": 1}},
])


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_SCHEMAS, bad=st.one_of(st.none(), _BAD), inside=st.booleans())
def test_a_schema_is_judged_valid_draft_07_as_jsonschema_judges_it(schema: Any, bad: Any, inside: bool) -> None:
    from engine.config.schemacheck import draft7_error

    if bad is not None:
        schema = {"properties": {"a": bad}, "allOf": [schema]} if inside else {**bad, "not": schema}
    try:
        jsonschema.Draft7Validator.check_schema(schema)
        expected = None
    except jsonschema.SchemaError as exc:
        expected = exc.message
    found = draft7_error(schema)
    assert (found.message if isinstance(found, jsonschema.SchemaError) else found) == expected


def test_every_bundled_payload_schema_is_judged_as_jsonschema_judges_it() -> None:
    from engine.config.schemacheck import draft7_error

    payloads = []
    for path in sorted((ROOT / "config" / "workflows").glob("*.yaml")) + sorted((ROOT / "tests").rglob("*.yaml")):
        doc, _ = load_yaml_file(path)
        triggers = doc.data.get("triggers") if doc is not None and isinstance(doc.data, dict) else None
        if isinstance(triggers, dict):
            payloads += [t["payload"] for t in triggers.values() if isinstance(t, dict) and "payload" in t]
    assert len(payloads) > 20
    for schema in payloads:
        try:
            jsonschema.Draft7Validator.check_schema(schema)
            valid = True
        except jsonschema.SchemaError:
            valid = False
        assert (draft7_error(schema) is None) == valid


def test_checking_a_clean_configuration_needs_no_jsonschema() -> None:
    import subprocess
    import sys

    code = ("import sys; from engine.config.validate import validate_paths; "
            "problems = validate_paths([sys.argv[1]]); "
            "print(len([p for p in problems if p.severity == 'error']), 'jsonschema' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "config")], capture_output=True, text=True, check=True,
                          env={**__import__("os").environ, "QAFLOW_CACHE": "0"})
    assert done.stdout.split() == ["0", "False"]


# --------------------------------------------------------------------------- payloads: RE2 patterns and every format

_PAYLOAD_LEAF = st.one_of(
    _LEAF,
    st.builds(lambda f: {"type": "string", "format": f}, st.sampled_from(["date", "regex", "email", "uuid"])),
    st.builds(lambda p: {"pattern": p}, st.sampled_from(["^x$", "\\d", "^[a-z]+$", "a\\b"])),
)
_PAYLOAD_SCHEMAS = st.recursive(_PAYLOAD_LEAF, _extend, max_leaves=6)
_PAYLOAD_TEXT = st.sampled_from(["", "x", "x\n", "2026-11-02", "2026-02-30", "2026-11-02\n", "٣", "a_b", "((", "a@b.c", "é"])
_PAYLOADS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 2), _PAYLOAD_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "x", "9"]), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_PAYLOAD_SCHEMAS, instance=_PAYLOADS)
def test_a_payload_fits_only_if_the_payload_validator_finds_no_error(schema: Any, instance: Any) -> None:
    from engine.patterns import payload_fits, payload_validator

    jsonschema.Draft7Validator.check_schema(schema)
    validator = payload_validator(schema)
    try:
        valid = validator.is_valid(instance)
    except jsonschema.SchemaError:  # a pattern RE2 refuses: validate reports it, no payload is checked against it
        return
    if payload_fits(schema, instance):
        assert valid
    elif "'email'" not in str(schema) and "'uuid'" not in str(schema):  # formats other than date and regex: not judged
        assert not valid
