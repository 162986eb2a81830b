"""The compiled payload check agrees with jsonschema on every bundled trigger schema (engine.patterns.payload_predicate)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.patterns import payload_predicate

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 8), st.floats(allow_nan=False, width=16),
                    st.sampled_from(["", "x", "good", "inadequate", "2026-10-01", "2026-02-30", "2026-10-01\n",
                                     "granted", "team_manager", "hello there", "20261001"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.sampled_from(["a", "b", "obtained", "summary"]), inner, max_size=3)),
                    max_leaves=10)


def _from_schema(schema, depth=0):
    """Values shaped like ``schema`` (mostly valid, sometimes not), for the keywords the payloads use."""
    if not isinstance(schema, dict) or depth > 5:
        return JSON
    options = []
    if "enum" in schema:
        options.append(st.sampled_from(list(schema["enum"])))
    if "const" in schema:
        options.append(st.just(schema["const"]))
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        fields = {k: _from_schema(v, depth + 1) for k, v in props.items()}
        keys = list(props) + ["unexpected"]
        options.append(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)).flatmap(
            lambda ks: st.fixed_dictionaries({k: fields.get(k, JSON) for k in ks})))
    if kind == "array" or "items" in schema:
        options.append(st.lists(_from_schema(schema.get("items", {}), depth + 1), max_size=4))
    if kind == "string":
        options.append(st.sampled_from(["", "abc", "a longer text", "2026-10-01", "2026-13-01"]))
    if kind in ("integer", "number"):
        options.append(st.integers(-2, 7))
    if kind == "boolean":
        options.append(st.booleans())
    options.append(JSON)
    return st.one_of(options)


def bundled_triggers():
    from pathlib import Path

    from engine import load_config

    definitions = load_config(Path(__file__).resolve().parents[2] / "config")
    out = []
    for wid, wf in sorted(definitions.workflows.items()):
        for name, trig in sorted(wf.triggers.items()):
            if trig.validator is not None:
                out.append(pytest.param(trig, id=f"{wid}.{name}"))
    return out


@pytest.mark.parametrize("trig", bundled_triggers())
def test_fast_check_agrees_with_jsonschema(trig):
    check = payload_predicate(trig.payload_schema)
    assert check is not None, "every bundled payload schema uses only the compiled keywords"

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_from_schema(trig.payload_schema))
    def agree(value):
        assert check(value) == trig.validator.is_valid(value), value

    agree()


def test_unsupported_keywords_fall_back():
    assert payload_predicate({"type": "array", "contains": {"type": "string"}}) is None
    assert payload_predicate({"type": "string", "format": "email"})("someone@example.org") is False  # the validator decides
    assert payload_predicate({"$ref": "#/definitions/x"}) is None
    assert payload_predicate({"type": "string", "format": "date"})("2026-10-01")
    assert not payload_predicate({"type": "string", "format": "date"})("2026-02-30")
    assert not payload_predicate({"enum": [1]})(True)  # true is not 1, as in jsonschema
