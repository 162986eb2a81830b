"""FIELD=TEXT and FIELD:=JSON filters, read once for the command line (--where) and the HTTP server (?where=)."""

from __future__ import annotations

import pytest

from engine import UsageError
from engine.runtime.query import where_from_text


def test_text_json_and_the_same_field_twice():
    assert where_from_text([]) is None
    assert where_from_text(["team=assessment_1"]) == {"team": "assessment_1"}
    assert where_from_text(["n:=1", "ok:=true", "gone:=null"]) == {"n": 1, "ok": True, "gone": None}
    assert where_from_text(["team=a", "team=b", "lead=TM-01"]) == {"team": ["a", "b"], "lead": "TM-01"}
    assert where_from_text(['team:=["a", "b"]', "team=c"]) == {"team": ["a", "b", "c"]}
    assert where_from_text(["note=a=b"]) == {"note": "a=b"}  # the first = ends the field name
    assert where_from_text(["n=1"]) == {"n": "1"}  # text unless written :=


@pytest.mark.parametrize(("text", "words"), [
    ("team", "write FIELD=TEXT"),
    ("=x", "write FIELD=TEXT"),
    (":=1", "write FIELD=TEXT"),
    ("n:=NaN", "is not a JSON value"),
    ("n:=[1,", "is not a JSON value"),
    ("n:=" + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_malformed_filters_are_usage_errors_naming_the_option(text, words):
    with pytest.raises(UsageError, match=words) as info:
        where_from_text([text], "where")
    assert info.value.message.startswith("where ") and len(info.value.message) < 300
