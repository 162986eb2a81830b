"""The attacks of review finding F8, replayed: each is refused clearly, at validate time where it can be.

No timings are asserted (machines are noisy): a refusal by a limit is what shows the work was bounded,
and each test's run is bounded by those same limits.
"""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine, EvaluationFailed, PayloadInvalid, load_config
from engine.config.loader import check_config
from engine.config.validate import validate_paths
from engine.errors import EvaluationError, ExpressionError
from engine.expressions import (
    MAX_REPEAT,
    MAX_STEPS,
    compile_expression,
    compile_template,
)
from engine.patterns import payload_predicate

WORKFLOW = """\
workflow: amp
version: 1
start: {roles: [qa_team]}
data:
  rows: {type: array}
  ref: {type: string}
roles:
  qa_team: {}
states:
  open: {initial: true}
  closed: {terminal: true}
triggers:
  close:
    roles: [qa_team]
    payload:
      type: object
      properties:
        ref: {type: string, pattern: '^(a+)+$'}
transitions:
  - trigger: close
    from: open
    to: closed
    when: >-
      WHEN
"""

STEPS = f"{MAX_STEPS:,}"


def write_workflow(root: Path, when: str) -> Path:
    (root / "workflows").mkdir(parents=True)
    (root / "workflows" / "amp.yaml").write_text(textwrap.dedent(WORKFLOW).replace("WHEN", when))
    return root


def fire(root: Path, data: dict, payload: dict | None = None) -> str:
    eng = Engine(load_config(root))
    iid = eng.start("amp", data, actor="QA-01", roles=["qa_team"], at="2026-10-01T09:00").id
    return eng.fire(iid, "close", payload or {}, actor="QA-01", roles=["qa_team"], at="2026-10-01T10:00").state


# ----------------------------------------------------------------------------- sizes of repeated values


def test_three_levels_of_repetition_are_refused_by_validate_with_a_position(tmp_path: Path) -> None:
    # F8: `qaflow validate` said "no problems", then one fire never finished
    root = write_workflow(tmp_path, "len(str([[[0] * 10000] * 10000] * 10000)) > 0")
    problems = [p for p in validate_paths([root]) if p.severity == "error"]
    assert [(p.code, p.location.line, p.location.column) for p in problems] == [("expression-too-large", 24, 30)]
    assert f"more than {MAX_REPEAT:,} items" in problems[0].message
    assert problems[0].location.file.endswith("amp.yaml")


def test_two_levels_of_repetition_are_refused_when_compiled() -> None:
    # F8: [[0]*10000]*10000 was 10,000 references to one list; str() of it expanded 10^8 items
    with pytest.raises(ExpressionError) as info:
        compile_expression("len(str([[0] * 10000] * 10000))")
    assert info.value.code == "too-large" and (info.value.line, info.value.column) == (1, 23)


def test_repetition_of_data_is_counted_through_nesting_at_run_time(tmp_path: Path) -> None:
    root = write_workflow(tmp_path, "len(str(data.rows * 10000)) > 0")
    with pytest.raises(EvaluationFailed) as info:
        fire(root, {"rows": [[0] * 10000]})
    message = info.value.message
    assert "condition of transition 1" in message and f"more than {MAX_REPEAT:,} items" in message


def test_str_of_shared_references_from_the_host_is_bounded_by_the_budget() -> None:
    # the host (not the language) built the 10^8-item value: str() stops at the budget
    row = [0] * 10_000
    with pytest.raises(EvaluationError) as info:
        compile_expression("len(str(data.rows)) > 0").evaluate({"data": {"rows": [row] * 10_000}})
    assert f"budget of {STEPS} steps" in info.value.message


# ----------------------------------------------------------------------------- the evaluation budget


def test_triple_nested_loops_are_stopped_by_the_budget_with_the_transition_named(tmp_path: Path) -> None:
    # F8: 2.1 s with 300 items, hours with 10,000
    when = "count(count(count(1 for c in data.rows) for b in data.rows) for a in data.rows) > 0"
    root = write_workflow(tmp_path, when)
    assert not [p for p in validate_paths([root]) if p.severity == "error"]
    with pytest.raises(EvaluationFailed) as info:
        fire(root, {"rows": list(range(300))})
    message = info.value.message
    assert message.startswith("the condition of transition 1 could not be evaluated")
    assert f"the evaluation budget of {STEPS} steps is used up" in message


@pytest.mark.parametrize(
    "source",
    [
        "count(x in data.rows for x in data.rows)",  # 'in' walks the list again for every item
        "count(data.rows == data.copy for x in data.rows)",
        "count(contains(data.rows, x) for x in data.rows)",
        "count(len(data.rows + data.rows) > 0 for x in data.rows)",
        "count(len(data.rows[1:]) > 0 for x in data.rows)",
        "count(len(str(data.rows)) > 0 for x in data.rows)",
        "count(sum(data.rows) > 0 for x in data.rows)",
    ],
)
def test_work_repeated_for_every_item_of_a_loop_is_charged(source: str) -> None:
    rows = list(range(5000))  # 5,000 x 5,000 = 25 million: over the budget
    with pytest.raises(EvaluationError) as info:
        compile_expression(source).evaluate({"data": {"rows": rows, "copy": list(rows)}})
    assert f"budget of {STEPS} steps" in info.value.message


def test_one_pass_over_large_data_is_not_charged() -> None:
    rows = list(range(MAX_STEPS + 10))
    assert compile_expression("count(x >= 0 for x in data.rows)").evaluate({"data": {"rows": rows}}) == len(rows)
    assert compile_expression("len(data.rows) > 0 and 5 in data.rows").evaluate({"data": {"rows": rows}}) is True


def test_message_placeholders_share_one_budget(tmp_path: Path) -> None:
    rows = list(range(4000))
    one = "{count(count(1 for b in data.rows) for a in data.rows[:200])}"  # 800,000 steps
    assert compile_template(one).render({"data": {"rows": rows}}) == "200"
    with pytest.raises(EvaluationError) as info:
        compile_template(one + " and " + one).render({"data": {"rows": rows}})
    assert f"budget of {STEPS} steps" in info.value.message
    with pytest.raises(EvaluationError) as info:  # writing a value out is charged too
        compile_template("{data.rows}").render({"data": {"rows": [rows] * 1000}})
    assert f"budget of {STEPS} steps" in info.value.message


def test_an_alert_message_over_the_budget_fails_the_action_with_its_location(tmp_path: Path) -> None:
    root = write_workflow(tmp_path, "true")
    path = root / "workflows" / "amp.yaml"
    message = "{count(count(1 for b in data.rows) for a in data.rows)}"  # 2,000 x 2,000 steps
    path.write_text(path.read_text() + f'    actions:\n      - alert: {{to: [qa_team], message: "{message}"}}\n')
    with pytest.raises(EvaluationFailed) as info:
        fire(root, {"rows": list(range(2_000))})
    assert "alert" in info.value.message and f"budget of {STEPS} steps" in info.value.message


# ----------------------------------------------------------------------------- unclear messages


def test_round_of_a_huge_number_works() -> None:
    # F8: "InvalidOperation: [<class 'decimal.InvalidOperation'>]"
    assert compile_expression("round(1e308, 12)").evaluate({}) == 1e308
    assert compile_expression("round(123456789012345678901234567890.5, 2)").evaluate({}) == 123456789012345678901234567890.5


def test_a_date_outside_the_calendar_in_uk_time_says_so() -> None:
    # F8: "a number became too large"
    with pytest.raises(EvaluationError) as info:
        compile_expression("date(datetime('0001-01-01T00:00+05:00'))").evaluate({})
    assert "outside the calendar (years 1 to 9999)" in info.value.message
    assert "number became too large" not in info.value.message


# ----------------------------------------------------------------------------- ReDoS through a payload pattern


def test_a_catastrophic_pattern_is_reported_by_validate_with_a_position(tmp_path: Path) -> None:
    root = write_workflow(tmp_path, "true")
    problems = validate_paths([root])
    assert [(p.code, p.severity, p.location.line, p.location.column) for p in problems] == [
        ("pattern-backtracking", "warning", 18, 38)
    ]
    assert "'^(a+)+$'" in problems[0].message


def test_the_29_byte_payload_is_refused_on_both_payload_paths(tmp_path: Path) -> None:
    # F8: 20 s at 28 a's, doubling with each one more; RE2 does not backtrack
    root = write_workflow(tmp_path, "true")
    definitions, _ = check_config(root)
    assert definitions is not None
    trigger = definitions.workflows["amp"].triggers["close"]
    attack = {"ref": "a" * 28 + "!"}
    check = payload_predicate(trigger.payload_schema)
    assert check is not None and check(attack) is False  # the compiled fast path
    assert trigger.validator.is_valid(attack) is False  # jsonschema's path
    with pytest.raises(PayloadInvalid, match="does not match"):
        fire(root, {}, {"ref": "a" * 10_000 + "!"})
    assert fire(root, {}, {"ref": "a" * 10_000}) == "closed"


def test_patterns_no_engine_can_run_in_linear_time_are_errors(tmp_path: Path) -> None:
    root = write_workflow(tmp_path, "true")
    path = root / "workflows" / "amp.yaml"
    path.write_text(path.read_text().replace("pattern: '^(a+)+$'", "pattern: '^(a)\\1$'"))
    definitions, problems = check_config(root)
    assert definitions is None
    assert [(p.code, p.location.line, p.location.column) for p in problems] == [("payload-pattern", 18, 38)]


# ----------------------------------------------------------------------------- random expressions


LEAF = st.sampled_from(["data.rows", "data.n", "data.t", "0", "3", "'ab'", "[1, 2]", "null", "x", "y"])


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(["*", "+", "==", "<", "in", "and", "or", "-", "%", "//"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["count", "any", "all", "sum", "min", "max"]), inner, st.sampled_from(["x", "y"]),
                  inner).map(lambda t: f"{t[0]}({t[1]} for {t[2]} in {t[3]})"),
        st.tuples(st.sampled_from(["len", "str", "keys", "values", "round", "abs", "upper"]), inner).map(
            lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
        st.tuples(inner, st.integers(0, 20_000)).map(lambda t: f"({t[0]} * {t[1]})"),
        inner.map(lambda s: f"{s}[1:]"),
    )


EXPRESSIONS = st.recursive(LEAF, _grow, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, st.integers(0, 300))
def test_random_expressions_evaluate_or_raise_evaluation_error(source: str, n: int) -> None:
    try:
        expression = compile_expression(source, names={"data", "x", "y"})
    except ExpressionError as error:
        refused = error
    else:
        env = {"data": {"rows": list(range(n)), "n": n, "t": "t" * n}, "x": [0] * n, "y": "y"}
        with contextlib.suppress(EvaluationError):  # any other exception fails the test
            expression.evaluate(env)
        return
    assert refused.code in {"too-large", "unknown-name", "syntax", "forbidden", "too-complex", "arguments"}
