"""The boundary check on what callers hand the engine (engine/runtime/inputs.py), against an oracle."""

from __future__ import annotations

import json
import math
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import RoleRefused, UsageError
from engine.runtime.inputs import MAX_DEPTH, MAX_INT, check_actor, check_id, check_roles, json_problem

SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
    | st.text(alphabet=st.characters(codec=None), max_size=6)  # NUL, surrogates and all
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)


def _oracle(value: object, depth: int = 0) -> bool:
    """Whether every store can keep ``value`` as it is, written the slow, obvious way."""
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -MAX_INT - 1 <= value <= MAX_INT
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return depth < MAX_DEPTH and all(_oracle(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return depth < MAX_DEPTH and all(isinstance(k, str) and _oracle(k) and _oracle(v, depth + 1) for k, v in value.items())
    return False


@settings(max_examples=500)
@given(VALUES)
def test_accepted_exactly_when_every_store_keeps_it_unchanged(value):
    problem = json_problem({"v": value}, "payload")
    assert (problem is None) == _oracle({"v": value}), problem
    if problem is None:  # what a store writes and reads back is the same value
        text = json.dumps({"v": value}, allow_nan=False, ensure_ascii=False)
        assert json.loads(text.encode("utf-8").decode("utf-8")) == {"v": value}
    else:
        assert problem.startswith("payload")


def test_the_message_names_where_the_problem_is():
    assert json_problem({"a": [1, {"b": float("nan")}]}, "payload") == "payload.a[1].b is nan, which JSON cannot hold"
    assert json_problem({"k\x00": 1}, "data") == "data has a key that contains a NUL character"
    assert json_problem({"when": {1, 2}}, "data") == "data.when is a set, which JSON cannot hold"
    assert json_problem({1: "x"}, "data") == "data has a key 1 that is not text"
    deep: object = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    assert "is nested more than 64 levels deep" in json_problem({"d": deep}, "payload")


def test_size_limits():
    assert "100,000 values" in json_problem({"rows": [0] * 100_001}, "data")
    assert "1,000,000 characters" in json_problem({"t": "x" * 1_000_001}, "data")
    assert json_problem({"rows": [0] * 50_000, "t": "x" * 500_000}, "data") is None


def _shown_as_is(c: str) -> bool:
    """A character that prints as itself: not a control, format, surrogate, private or unassigned
    character, and no separator but the plain space."""
    category = unicodedata.category(c)
    return c == " " or not category.startswith(("C", "Z"))


@given(st.text(alphabet=st.characters(codec=None), max_size=40))
def test_ids_are_printable_text_of_at_most_200_characters(text):
    printable = text.strip() != "" and all(_shown_as_is(c) for c in text)
    if printable:
        assert check_id(text, "an id") == text
    else:
        with pytest.raises(UsageError):
            check_id(text, "an id")


def test_actors_and_roles():
    assert check_actor("QA-01") == "QA-01"
    for reserved in ("system", "system:moderation-000001"):
        with pytest.raises(UsageError, match="reserved for the engine"):
            check_actor(reserved)
    with pytest.raises(UsageError, match="a list of role names"):
        check_roles("qa_team", "QA-01")
    with pytest.raises(RoleRefused, match="reserved for the engine itself"):
        check_roles(["qa_team", "system"], "QA-01")
    assert check_roles(None, "QA-01") == frozenset()
    with pytest.raises(UsageError, match="must be text"):
        check_id(7, "an id")
    with pytest.raises(UsageError, match="at most 200"):
        check_id("x" * 201, "an id")
