"""The condition language: what it refuses (with positions), what it computes, and that it never leaks."""

from __future__ import annotations

import contextlib
import pickle
from datetime import UTC, date, datetime
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import EvaluationError, ExpressionError
from engine.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    Expression,
    Reference,
    Template,
    compile_expression,
    compile_template,
)

NAMES = {"data", "payload", "now", "today", "actor", "roles", "state", "deadlines", "parent"}

SAMPLE = (
    "data.lead.overall != data.peer.overall or "
    "any(data.lead.domains[d] != data.peer.domains[d] for d in data.peer.domains)"
)


def compiled(source: str, **kwargs: object) -> Expression:
    return compile_expression(source, names=NAMES, **kwargs)  # type: ignore[arg-type]


def refused(source: str, **kwargs: object) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source, names=NAMES, **kwargs)  # type: ignore[arg-type]
    return info.value


def value(source: str, env: dict[str, object] | None = None) -> object:
    return compiled(source).evaluate(env or {})


# --------------------------------------------------------------------------------------
# Refused at compile time, with a position
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "code", "line", "column", "words"),
    [
        ("__import__('os')", "forbidden", 1, 1, "'__import__' is not allowed"),
        ("().__class__", "forbidden", 1, 4, "'__class__'"),
        ("data.__class__", "forbidden", 1, 6, "'__class__'"),
        ("data.lead._private", "forbidden", 1, 11, "'_private'"),
        ("data.keys()", "forbidden", 1, 6, "calls are only allowed to listed functions"),
        ("data.x.upper()", "forbidden", 1, 8, "write upper(...)"),
        ('"x".join(data.items)', "forbidden", 1, 5, "calls are only allowed to listed functions"),
        ("(lambda: 1)()", "forbidden", 1, 2, "'lambda' is not allowed"),
        ("[x for x in data.items]", "forbidden", 1, 1, "list comprehensions are not allowed"),
        ("{x: 1 for x in data.items}", "forbidden", 1, 1, "dict comprehensions"),
        ("len(x for x in data.items)", "forbidden", 1, 4, "is only allowed as the only argument"),
        ("any(x for x in data.a for y in data.b)", "forbidden", 1, 27, "only one 'for'"),
        ("2 ** 100000", "forbidden", 1, 6, "huge exponent"),
        ("9 ** 9 ** 9", "forbidden", 1, 6, "huge exponent"),
        ("data.n ** data.m", "forbidden", 1, 11, "huge exponent"),
        ("x := 1", "forbidden", 1, 1, "':='"),
        ("(x := 1)", "forbidden", 1, 2, "':='"),
        ("open('f')", "unknown-function", 1, 1, "unknown function 'open'"),
        ("lenn(data.items)", "unknown-function", 1, 1, "did you mean 'len'?"),
        ('f"{data.x}"', "forbidden", 1, 1, "f-strings are not allowed"),
        ("data.lead == 1 and paylod.x", "unknown-name", 1, 20, "unknown name 'paylod'; did you mean 'payload'?"),
        ("any(dd == 1 for d in data.x)", "unknown-name", 1, 5, "did you mean 'd'?"),
        ("data.a & data.b", "forbidden", 1, 8, "use 'and'"),
        ("data.a | data.b", "forbidden", 1, 8, "use 'or'"),
        ("data.a ^ 2", "forbidden", 1, 8, "'**'"),
        ("~data.a", "forbidden", 1, 1, "use 'not'"),
        ("data.a << 2", "forbidden", 1, 8, "shift"),
        ("data.a is 3", "forbidden", 1, 8, "use '=='"),
        ("{1, 2}", "forbidden", 1, 1, "use a list"),
        ("{data.x: 1}", "forbidden", 1, 2, "quoted text"),
        ("len(data.x, 2)", "arguments", 1, 1, "len() takes 1 argument, not 2"),
        ("contains(data.x)", "arguments", 1, 1, "takes 2 arguments"),
        ("round(data.x, ndigits=2)", "forbidden", 1, 15, "named arguments"),
        ("len(*data.x)", "forbidden", 1, 5, "unpacking"),
        ("b'x' == data.x", "forbidden", 1, 1, "byte strings"),
        ("1j", "forbidden", 1, 1, "imaginary"),
        ("len", "forbidden", 1, 1, "call it"),
        ("data(1)", "unknown-function", 1, 1, "unknown function 'data'"),
        ("await data", "forbidden", 1, 1, "'await'"),
    ],
)
def test_refused_with_code_and_position(source: str, code: str, line: int, column: int, words: str) -> None:
    error = refused(source)
    assert (error.code, error.line, error.column) == (code, line, column), error.message
    assert words in error.message


@pytest.mark.parametrize(
    ("source", "line", "column", "words"),
    [
        ("data.x = 1", 1, 8, "invalid syntax near '=' (use '==' to compare)"),
        ("data.x ==", 1, 10, "unexpected end of expression"),
        ("data.x == 1 and", 1, 16, "unexpected end of expression"),
        ("data.x && data.y", 1, 9, "use 'and'"),
        ("data.x || data.y", 1, 9, "use 'or'"),
        ("!data.x", 1, 1, "use 'not'"),
        ("import os", 1, 1, "'import' is not allowed"),
        ("(data.x", 1, 1, "'(' is never closed"),
        ("data.x)", 1, 7, "')' has no matching opening bracket"),
        ("data.x) + (data.y", 1, 7, "')' has no matching"),
        ("[data.x)", 1, 8, "does not match '['"),
        ("'abc", 1, 1, "quote mark is missing"),
        ("data.x if data.y", 1, 1, "needs an 'else'"),
        ("data.x data.y", 1, 1, "nothing between them"),
        ("1 +* 2", 1, 4, "near '*'"),
        ("", 1, 1, "empty"),
        ("   ", 1, 1, "empty"),
        ("data.x == 1 and\n  data.y ==", 2, 12, "unexpected end of expression"),
        ("data.x == 1 and\n  data.y = 2", 2, 10, "use '=='"),
        ("data.x => 2", 1, 8, "use '>='"),
        ("max(s for s in data.x, 1)", 1, 5, "the only thing inside the function's brackets"),
    ],
)
def test_syntax_errors_in_plain_english(source: str, line: int, column: int, words: str) -> None:
    error = refused(source)
    assert error.code == "syntax"
    assert (error.line, error.column) == (line, column), error.message
    assert words in error.message


def test_statements_and_yield_refused() -> None:
    for source in ["def f(): pass", "x = 1; y = 2", "yield data", "del data", "assert data", "return 1"]:
        assert refused(source).code in {"syntax", "forbidden"}


@pytest.mark.parametrize(
    "source",
    [
        "(" * 1000 + "1" + ")" * 1000,  # too long as well as too deep
        "(" * 300 + "1" + ")" * 300,
        "[" * 30 + "]" * 30,
        "not " * 1000 + "data.x",
        "not " * 400 + "data.x",
        "-" * 1500 + "1",
        "x" * 5000,
        " or ".join(f"data.f{i} == {i}" for i in range(150)),  # more than MAX_NODES nodes
        "+".join(["1"] * (MAX_DEPTH + 5)),
        "data" + ".a" * 40,
    ],
)
def test_too_complex(source: str) -> None:
    assert refused(source).code == "too-complex"


def test_limits_are_the_documented_ones() -> None:
    assert (MAX_LENGTH, MAX_NODES, MAX_DEPTH) == (2000, 400, 24)
    refused_long = refused("data.x == '" + "a" * MAX_LENGTH + "'")
    assert refused_long.code == "too-complex" and "2,000" in refused_long.message
    assert compiled("data.x == '" + "a" * (MAX_LENGTH - 13) + "'")  # just under the limit


def test_positions_are_in_characters_not_bytes() -> None:
    error = refused("data.nom == 'Zoé' and paylod.x")
    assert (error.line, error.column) == (1, 23)
    error = refused("data.x == 1 and\n   'é' & data.y")
    assert (error.line, error.column) == (2, 8)


def test_dunder_refused_even_when_names_allow_anything() -> None:
    for source in ["__builtins__", "data.__dict__", "data['__class__'].x.__init__", "_x", "a__b"]:
        with pytest.raises(ExpressionError) as info:
            compile_expression(source)
        assert info.value.code == "forbidden"


def test_dunder_keys_in_subscripts_are_plain_keys() -> None:
    # data["__class__"] is a key lookup on a mapping, never getattr: it is harmless
    assert compiled('data["__class__"]').evaluate({"data": {"__class__": 1}}) == 1
    assert compiled('data["__class__"]').evaluate({"data": {}}) is None


def test_expression_error_exit_code_and_details() -> None:
    error = refused("paylod.x")
    assert error.exit_code == 1
    assert error.to_dict()["code"] == "unknown-name"
    assert error.to_dict()["line"] == 1 and error.to_dict()["column"] == 1


def test_not_text() -> None:
    with pytest.raises(ExpressionError):
        compile_expression(True)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------

AUDIT = {
    "case_id": "C-1042",
    "received_on": "2024-05-01",
    "lead": {"overall": "good", "domains": {"voice": "good", "plan": "requires_improvement"}},
    "peer": {"overall": "good", "domains": {"voice": "good", "plan": "good"}},
    "tags": ["neglect", "missing"],
    "scores": [3, 1, 4, 1, 5],
    "nothing": None,
}


def test_nested_key_lookups_and_missing_keys_give_null() -> None:
    env = {"data": AUDIT}
    assert value("data.lead.overall", env) == "good"
    assert value("data['lead']['overall']", env) == "good"
    assert value("data.lead.missing", env) is None
    assert value("data.missing.deeper.still", env) is None
    assert value("data.nothing.x", env) is None
    assert value("data.lead.overall == null", {"data": {}}) is True
    assert value("parent.data.x", env) is None  # a root name the env does not supply is null
    assert value("data.scores[0]", env) == 3
    assert value("data.scores[-1]", env) == 5
    assert value("data.scores[99]", env) is None
    assert value("data.scores[1:3]", env) == [1, 4]
    assert value("data.case_id[0:2]", env) == "C-"


def test_lookup_on_text_or_number_is_an_evaluation_error() -> None:
    for source in ["data.case_id.x", "data.scores.first", "data.lead.overall.x", "data.scores['a']"]:
        with pytest.raises(EvaluationError) as info:
            compiled(source).evaluate({"data": AUDIT})
        assert "cannot look up" in info.value.message
        assert source in info.value.message


def test_sample_condition() -> None:
    condition = compiled(SAMPLE)
    assert condition.test({"data": AUDIT}) is True
    agreed = {**AUDIT, "lead": AUDIT["peer"]}
    assert condition.test({"data": agreed}) is False
    assert condition.test({"data": {}}) is False  # nothing submitted yet: null == null


def test_any_all_count_with_filters_over_dict_keys() -> None:
    env = {"data": AUDIT}
    assert value("any(data.lead.domains[d] != data.peer.domains[d] for d in data.lead.domains)", env) is True
    assert value("all(data.peer.domains[d] == 'good' for d in data.peer.domains)", env) is True
    assert value("count(data.lead.domains[d] == 'good' for d in data.lead.domains if d != 'plan')", env) == 1
    assert value("count(data.lead.domains[d] != 'good' for d in keys(data.lead.domains))", env) == 1
    assert value("any(v == 'inadequate' for v in values(data.lead.domains))", env) is False
    assert value("sum(s for s in data.scores if s > 1)", env) == 12
    assert value("min(s for s in data.scores)", env) == 1
    assert value("max(data.scores)", env) == 5
    assert value("count([true, false, 1, 0, 'x', ''])", env) == 3
    assert value("any(x for x in data.missing)", env) is False  # null loops over nothing
    assert value("all(x for x in data.missing)", env) is True
    # nested generators see the outer loop variable
    nested = "any(any(d == t for t in data.tags) for d in data.lead.domains)"
    assert value(nested, env) is False
    assert value(nested, {"data": {**AUDIT, "tags": ["plan"]}}) is True


def test_paths_in_loops_are_looked_up_lazily() -> None:
    # data.s.x is looked up once per evaluation inside the loop, but only when reached
    assert value("any(data.s.x == 1 for d in [])", {"data": {"s": "text"}}) is False
    with pytest.raises(EvaluationError):
        value("any(data.s.x == 1 for d in [1])", {"data": {"s": "text"}})
    condition = compiled("count(data.a.b[i] == i for i in [0, 1, 2])")
    assert condition.evaluate({"data": {"a": {"b": [0, 5, 2]}}}) == 2
    assert condition.evaluate({"data": {"a": {"b": [0, 1, 2]}}}) == 3  # no cache left over from the last call


def test_loop_variable_shadows_a_root_name() -> None:
    assert value("all(data > 0 for data in [1, 2])") is True


def test_tuple_loop_variables() -> None:
    assert value("any(a == b for a, b in [[1, 2], [3, 3]])") is True


def test_dates() -> None:
    env = {"data": AUDIT, "today": date(2024, 6, 1), "now": datetime(2024, 6, 1, 9, tzinfo=UTC)}
    assert value("date(data.received_on) < today", env) is True
    assert value("days_between(data.received_on, today)", env) == 31
    assert value("days_between(date('2024-06-03'), now)", env) == -2
    assert value("datetime('2024-06-01T09:30') < now", env) is True  # 09:30 in London is 08:30 UTC
    assert value("date('2024-06-01T23:30:00+00:00')", env) == date(2024, 6, 2)  # 00:30 in London
    assert value("date(null)", env) is None
    with pytest.raises(EvaluationError) as info:
        value("date(data.received_on) < data.case_id", env)
    assert "cannot compare a date with text using '<'" in info.value.message
    with pytest.raises(EvaluationError):
        value("date('31/05/2024')", env)


def test_datetime_naive_text_is_london_time() -> None:
    result = value("datetime('2024-06-01T09:30')")
    assert isinstance(result, datetime)
    assert result.utcoffset() is not None and result.utcoffset().total_seconds() == 3600


def test_in_on_lists_dicts_text_and_null() -> None:
    env = {"data": AUDIT}
    assert value("'neglect' in data.tags", env) is True
    assert value("'voice' in data.lead.domains", env) is True
    assert value("'overall' not in data.lead", env) is False
    assert value("'C-' in data.case_id", env) is True
    assert value("'x' in data.missing", env) is False
    assert value("'x' not in data.missing", env) is True
    assert value("data.lead.overall in ['good', 'outstanding']", env) is True


def test_operators() -> None:
    env = {"data": AUDIT}
    assert value("1 < 2 <= 2 < 3", env) is True
    assert value("3 > 2 > 2", env) is False
    assert value("data.scores[0] * 2 + 1", env) == 7
    assert value("7 // 2 + 7 % 2 - 7 / 2", env) == 0.5
    assert value("2 ** 10", env) == 1024
    assert value("-data.scores[0]", env) == -3
    assert value("'yes' if data.lead.overall == 'good' else 'no'", env) == "yes"
    assert value("not data.missing and true", env) is True
    assert value("null == None and true == True and false == False", env) is True
    assert value("data.missing is null and data.case_id is not None", env) is True
    assert value("'ab' * 3 + '!'", env) == "ababab!"
    assert value("[1] * 3 + [2]", env) == [1, 1, 1, 2]
    assert value("{'a': [1, 2], 'b': (3,)}['a'][1]", env) == 2


def test_functions() -> None:
    env = {"data": AUDIT}
    assert value("len(data.tags) + len(data.case_id) + len(data.missing) + len(data.lead)", env) == 2 + 6 + 0 + 2
    assert value("abs(-2.5)", env) == 2.5
    assert value("round(2.5)", env) == 3 and value("round(-2.5)", env) == -3
    assert value("round(66.666, 1)", env) == 66.7
    assert value("lower('ABC') + upper('d') + trim('  e  ')", env) == "abcDe"
    assert value("lower(data.missing)", env) is None
    assert value("contains(data.tags, 'missing') and contains(data.case_id, '104')", env) is True
    assert value("contains(data.missing, 'x')", env) is False
    assert value("startswith(data.case_id, 'C-')", env) is True
    assert value("coalesce(data.missing, data.nothing, 'fallback')", env) == "fallback"
    assert value("is_null(data.missing) and not is_null(data.case_id)", env) is True
    assert value("str(12) + str(null) + str(true) + str(date('2024-01-02'))", env) == "12true2024-01-02"
    assert value("int('42') + int(2.9) + float('0.5')", env) == 44.5
    assert value("keys(data.lead.domains)", env) == ["voice", "plan"]
    assert value("values(data.peer.domains)", env) == ["good", "good"]


def test_functions_table_is_read_only_and_complete() -> None:
    assert isinstance(FUNCTIONS, MappingProxyType)
    expected = {
        "len", "any", "all", "sum", "count", "min", "max", "abs", "round", "lower", "upper", "trim",
        "contains", "startswith", "date", "datetime", "days_between", "add_days", "add_months", "keys",
        "values", "coalesce", "is_null", "str", "int", "float",
    }
    assert set(FUNCTIONS) == expected
    assert "now" not in FUNCTIONS and "today" not in FUNCTIONS
    with pytest.raises(TypeError):
        FUNCTIONS["open"] = open  # type: ignore[index]


def test_extra_functions_from_the_engine() -> None:
    scale = {"inadequate": 1, "requires_improvement": 2, "good": 3, "outstanding": 4}

    def rank(grade: str) -> int:
        return scale[grade]

    condition = compiled("rank(data.lead.overall) < rank('good')", functions={"rank": rank})
    assert condition.test({"data": {"lead": {"overall": "inadequate"}}}) is True
    assert refused("rank(1, 2)", functions={"rank": rank}).code == "arguments"
    assert refused("rnak(1)", functions={"rank": rank}).message.endswith("did you mean 'rank'?")
    # a host function's own failure is still an EvaluationError
    with pytest.raises(EvaluationError) as info:
        condition.evaluate({"data": {"lead": {"overall": "awful"}}})
    assert "KeyError" in info.value.message
    for bad, why in (({"_secret": rank}, "not starting with '_'"), ({"len": rank}, "already in the fixed table"),
                     ({"null": rank}, "is a literal"), ({"rank": 3}, "is not callable")):
        with pytest.raises(ValueError, match=why):
            compiled("1", functions=bad)  # type: ignore[arg-type]


def test_evaluation_errors_are_never_raw_python_errors() -> None:
    cases = {
        "data.x < 3": {"x": "a"},
        "data.x * 100000": {"x": "a"},
        "data.x * 20000": {"x": [0]},
        "data.x * 10001": {"x": "ab"},
        "1 / 0": {},
        "data.x + 1": {"x": "a"},
        "null < 3": {},
        "len(3)": {},
        "min(data.x)": {"x": []},
        "'%s' % data.x": {"x": 1},
        "((data.x ** 64) ** 64) ** 64": {"x": 9},
        "1e308 ** 2": {},
        "any(x for x in 3)": {},
        "data.x in 3": {},
        "data[[1]]": {},
        "int('1' * 5000)": {},
        "data.x[1:2]": {"x": 5},
        "data.x[0:2:0]": {"x": [1]},
        "date(data.x) < data.y": {"x": "2024-01-01", "y": "2024-01-02"},
        "sum(data.x)": {"x": [1, None]},
        "upper(3)": {},
    }
    for source, data in cases.items():
        with pytest.raises(EvaluationError) as info:
            compiled(source).evaluate({"data": data})
        assert source in info.value.message
        assert info.value.details["expression"] == source


def test_readable_comparison_messages() -> None:
    with pytest.raises(EvaluationError) as info:
        compiled("data.x < 3").evaluate({"data": {"x": "a"}})
    assert info.value.message == "cannot evaluate 'data.x < 3': cannot compare text with a number using '<'"
    with pytest.raises(EvaluationError) as info:
        compiled("data.x * 100000").evaluate({"data": {"x": "a"}})
    assert "more than 10,000" in info.value.message


@pytest.mark.parametrize(
    ("source", "column"),
    [("'a' * 100000", 5), ("[0] * 20000", 5), ("((9 ** 64) ** 64) ** 64", 19), ("data.x or [[0] * 100] * 101", 23)],
)
def test_constant_values_over_a_limit_are_refused_at_compile_time(source: str, column: int) -> None:
    error = refused(source)
    assert error.code == "too-large" and (error.line, error.column) == (1, column)


def test_env_not_a_mapping() -> None:
    with pytest.raises(EvaluationError):
        compiled("data.x").evaluate(None)  # type: ignore[arg-type]


def test_names_none_allows_any_root_name() -> None:
    expression = compile_expression("widget.size > 2")
    assert expression.evaluate({"widget": {"size": 3}}) is True
    assert expression.references == (Reference(("widget", "size"), 1, 1),)


# --------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------


def test_references_stop_at_the_first_non_constant_subscript() -> None:
    refs = compiled(SAMPLE).references
    assert refs == (
        Reference(("data", "lead", "overall"), 1, 1),
        Reference(("data", "peer", "overall"), 1, 22),
        Reference(("data", "lead", "domains"), 1, 47),
        Reference(("data", "peer", "domains"), 1, 71),
        Reference(("data", "peer", "domains"), 1, 101),
    )
    assert compiled("data['lead'].x[0].y").references == (Reference(("data", "lead", "x"), 1, 1),)
    assert compiled("today").references == (Reference(("today",), 1, 1),)
    assert compiled("any(d.x for d in data.items)").references == (Reference(("data", "items"), 1, 18),)
    assert compiled("deadlines.review.status == 'breached'").references[0].path == ("deadlines", "review", "status")
    multi = compiled("data.a == 1 and\n    payload.b == 2").references
    assert multi[1] == Reference(("payload", "b"), 2, 5)


# --------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------


def test_expression_is_immutable_and_picklable() -> None:
    expression = compiled("data.x == 1")
    with pytest.raises(AttributeError):
        expression.source = "1"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del expression.references
    copy = pickle.loads(pickle.dumps(expression))
    assert copy.source == expression.source and copy.references == expression.references
    assert copy.test({"data": {"x": 1}}) is True
    assert repr(expression) == "Expression('data.x == 1')"
    with pytest.raises(AttributeError):
        Reference(("a",), 1, 1).line = 2  # type: ignore[misc]


def test_multi_line_and_indented_expressions() -> None:
    source = "\n  data.lead.overall == 'inadequate'\n  or payload.escalate\n"
    assert compiled(source).test({"payload": {"escalate": True}}) is True
    assert compiled("  data.x  ").evaluate({"data": {"x": 1}}) == 1
    assert compiled("data.x == 1  # a comment").test({"data": {"x": 1}}) is True


# --------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------


def test_template_rendering() -> None:
    template = compile_template("Audit of case {data.case_id} is overdue {{since}} {today}", names=NAMES)
    assert isinstance(template, Template)
    env = {"data": AUDIT, "today": date(2024, 6, 1)}
    assert template.render(env) == "Audit of case C-1042 is overdue {since} 2024-06-01"
    assert template.references == (Reference(("data", "case_id"), 1, 16), Reference(("today",), 1, 52))
    assert compile_template("{data.tags}|{data.missing}|{true}|{1 + 1}|{ {'a': 1}['a'] }").render(env) == (
        "neglect, missing||true|2|1"
    )
    assert compile_template("no placeholders }} {{").render({}) == "no placeholders } {"
    assert compile_template("{'}' + data.case_id}").render(env) == "}C-1042"


@pytest.mark.parametrize(
    ("source", "code", "line", "column"),
    [
        ("Case {paylod.x} overdue", "unknown-name", 1, 7),
        ("Case } overdue", "syntax", 1, 6),
        ("Case {data.x overdue", "syntax", 1, 6),
        ("Case {} overdue", "syntax", 1, 6),
        ("Line one\nCase {data.x.__class__}", "forbidden", 2, 14),
        ("Line one\nCase {data.x +\n * 2}", "syntax", 3, 2),
    ],
)
def test_template_errors_are_located_in_the_template(source: str, code: str, line: int, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_template(source, names=NAMES)
    assert (info.value.code, info.value.line, info.value.column) == (code, line, column), info.value.message


def test_template_evaluation_error() -> None:
    template = compile_template("Score {data.x * 2000}", names=NAMES)
    with pytest.raises(EvaluationError):
        template.render({"data": {"x": "abcdef"}})


def test_every_function_is_documented_with_an_example_that_compiles() -> None:
    import re
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "conditions.md").read_text(encoding="utf-8")
    section = page.split("## Functions", 1)[1].split("\n## ", 1)[0]
    documented: set[str] = set()
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        documented.update(re.findall(r"`(\w+)\(", cells[0]))
        for example in re.findall(r"`([^`]+)`", cells[2]):
            compiled(example)
    assert documented == set(FUNCTIONS)


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

TOKENS = [
    "(", ")", "data", ".", "__class__", "lambda", "**", "9", "for", "in", "[", "]", ",", "and", "not",
    "'s'", "1e308", "x", "any", "(", "if", "else", ":", "=", "==", "<", "*", "-", "null", "{", "}",
    "'a'", "len", "keys", "d", "0", "64", "%", "/", "is", "count", "\n", "\\", '"', "#", "ü", ":=",
]

DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3) | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "x", "s"]), children, max_size=3),
    max_leaves=8,
)


def _compile_and_run(source: str, data: object) -> None:
    try:
        expression = compile_expression(source, names={"data", "x", "d"})
    except ExpressionError as error:
        refused = error
    else:
        with contextlib.suppress(EvaluationError):  # any other exception fails the test
            expression.evaluate({"data": data, "x": data})
        return
    assert refused.code in {"syntax", "forbidden", "unknown-name", "unknown-function", "arguments", "too-complex", "too-large"}
    assert refused.line >= 1 and refused.column >= 1


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60), DATA)
def test_random_text_never_leaks_other_errors(source: str, data: object) -> None:
    _compile_and_run(source, data)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40), DATA)
def test_random_ascii_never_leaks_other_errors(source: str, data: object) -> None:
    _compile_and_run(source, data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25), DATA)
def test_token_soup_never_leaks_other_errors(tokens: list[str], data: object) -> None:
    _compile_and_run(" ".join(tokens), data)
    _compile_and_run("".join(tokens), data)


KEYS = st.sampled_from(["a", "b", "c"])
NESTED = st.recursive(st.integers() | st.none() | st.text(max_size=2),
                      lambda children: st.dictionaries(KEYS, children, max_size=3), max_leaves=10)


@given(st.dictionaries(KEYS, NESTED, max_size=3))
def test_dotted_path_equals_dict_lookup(data: dict[str, object]) -> None:
    expected: object
    inner = data.get("a")
    if inner is None:
        expected = None
    elif isinstance(inner, dict):
        expected = inner.get("b")
    else:
        with pytest.raises(EvaluationError):
            compiled("data.a.b").evaluate({"data": data})
        return
    assert compiled("data.a.b").evaluate({"data": data}) == expected
    assert compiled("data['a']['b']").evaluate({"data": data}) == expected


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_arithmetic_agrees_with_python(a: int, b: int) -> None:
    env = {"data": {"a": a, "b": b}}
    assert compiled("data.a + data.b * 2 - data.a").evaluate(env) == a + b * 2 - a
    assert compiled("data.a < data.b").evaluate(env) == (a < b)
    if b:
        assert compiled("data.a // data.b + data.a % data.b").evaluate(env) == a // b + a % b


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('add_months("2027-01-31", 1)', date(2027, 2, 28)),
        ('add_months("2028-01-31", 1)', date(2028, 2, 29)),  # leap year
        ('add_months("2026-11-30", 3)', date(2027, 2, 28)),
        ('add_months("2026-03-15", -3)', date(2025, 12, 15)),
        ('add_months("2025-04-20", 12)', date(2026, 4, 20)),
        ('add_days("2026-12-18", 14)', date(2027, 1, 1)),
        ('add_days("2026-12-18", -18)', date(2026, 11, 30)),
        ("add_days(null, 3)", None),
        ("add_months(null, 3)", None),
    ],
)
def test_date_arithmetic(source: str, expected: object) -> None:
    assert compile_expression(source).evaluate({}) == expected


@pytest.mark.parametrize("source", ['add_days("2026-12-18", "x")', 'add_months("2026-12-18", 1.5)', 'add_months("2026-12-18", 100000)'])
def test_date_arithmetic_refuses_bad_counts(source: str) -> None:
    with pytest.raises(EvaluationError):
        compile_expression(source).evaluate({})


def test_an_expression_compiled_to_be_built_later_evaluates_as_any_other() -> None:
    from engine.expressions import building_later, compile_template

    source = "count(x for x in data.items if x > limit) + (2 ** 3)"
    env = {"data": {"items": [1, 5, 9]}, "limit": 2}
    with building_later():
        later = compile_expression(source + " + 0", names=["data", "limit"])
        template = compile_template("{data.items[0]} of {len(data.items)}", names=["data"])
        with pytest.raises(ExpressionError):  # checked as always
            compile_expression("data.__class__", names=["data"])
    now = compile_expression(source + " + 0", names=["data", "limit"])
    assert later.evaluate(env) == now.evaluate(env) == 10
    assert later.evaluate({"data": {"items": []}, "limit": 0}) == 8  # the second call uses the built code
    assert template.render(env) == "1 of 3"


def test_within_building_later_a_text_is_parsed_once_for_every_reader() -> None:
    from engine.expressions import building_later, parse_wrapped

    with building_later():
        first = parse_wrapped("(\ndata.a == 'x'\n)")
        assert parse_wrapped("(\ndata.a == 'x'\n)") is first
    assert parse_wrapped("(\ndata.a == 'x'\n)") is not first  # outside, each reader parses
    with pytest.raises(SyntaxError):
        parse_wrapped("(\ndata.a ==\n)")
