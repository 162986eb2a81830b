"""Payload-schema patterns (engine/patterns.py): RE2 on both payload paths, and the validate-time checks."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.patterns import (
    PatternError,
    compile_pattern,
    iter_pattern_problems,
    payload_predicate,
    payload_validator,
)


def test_search_semantics_are_json_schemas() -> None:
    assert compile_pattern("^[A-Z]{2}-\\d+$")("AB-12") is True
    assert compile_pattern("b")("abc") is True  # anywhere in the text, as JSON Schema's pattern
    assert compile_pattern("^a$")("a\n") is False  # Python's re would say yes
    assert compile_pattern("^\\d+$")("\u0663") is False  # ASCII digits only, as ECMA-262
    assert compile_pattern("^\\u00e9$")("\u00e9") is True  # ECMA-262's \uXXXX
    assert compile_pattern("^\\\\u00e9$")("\\u00e9") is True  # an escaped backslash is not an escape
    assert compile_pattern("x")("\ud800x") is True  # a lone surrogate does not break the check


@pytest.mark.parametrize("pattern", ["(?=a)b", "(?<=a)b", "(a)\\1", "a++"])
def test_patterns_that_need_backtracking_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)


def test_every_pattern_keyword_of_the_validator_uses_re2() -> None:
    schema = {
        "type": "object",
        "properties": {"ref": {"type": "string", "pattern": "^a$"}},
        "patternProperties": {"^x$": {"type": "integer"}},
        "additionalProperties": False,
    }
    validator = payload_validator(schema)
    assert validator.is_valid({"ref": "a", "x": 1})
    assert not validator.is_valid({"ref": "a\n"})  # pattern
    assert not validator.is_valid({"x": "1"})  # patternProperties
    assert [e.message for e in validator.iter_errors({"x\n": 1})] == ["'x\\n' does not match any of the regexes: '^x$'"]
    open_schema = {"patternProperties": {"^x$": {}}, "additionalProperties": {"type": "integer"}}
    assert not payload_validator(open_schema).is_valid({"x\n": "text"})  # additionalProperties applies to 'x\n'
    plain = {"properties": {"a": {}}, "additionalProperties": False}  # no pattern: jsonschema's own message
    assert [e.message for e in payload_validator(plain).iter_errors({"b": 1})] == [
        e.message for e in jsonschema.Draft7Validator(plain).iter_errors({"b": 1})
    ]


SCHEMAS = [
    {"type": "string", "pattern": "^(a+)+$"},
    {"type": "string", "pattern": "^[a-c]*\\d?$"},
    {"type": "object", "properties": {"r": {"type": "string", "pattern": "b$"}}},
]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SCHEMAS), st.text(alphabet="abc1!\n\u0663", max_size=40))
def test_the_fast_path_and_the_validator_agree(schema: dict, text: str) -> None:
    value = {"r": text} if schema["type"] == "object" else text
    check = payload_predicate(schema)
    assert check is not None
    assert check(value) == payload_validator(schema).is_valid(value)


def test_problems_are_found_wherever_a_schema_can_hold_a_pattern() -> None:
    schema = {
        "properties": {"a": {"items": {"pattern": "(x+)+"}}},
        "patternProperties": {"(?=k)": {"anyOf": [{"pattern": "ok"}, {"not": {"pattern": "(y*)*"}}]}},
        "definitions": {"d": {"pattern": "(a)\\1"}},
        "enum": [{"pattern": "(z+)+"}],  # a value, not a schema
    }
    found = sorted((path, is_key, code) for path, is_key, _, code, _ in iter_pattern_problems(schema))
    assert found == [
        (("definitions", "d", "pattern"), False, "payload-pattern"),
        (("patternProperties", "(?=k)"), True, "payload-pattern"),
        (("patternProperties", "(?=k)", "anyOf", 1, "not", "pattern"), False, "pattern-backtracking"),
        (("properties", "a", "items", "pattern"), False, "pattern-backtracking"),
    ]
