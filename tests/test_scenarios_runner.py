"""Scenario tests: loading with positions, running on a fresh engine, failures at their YAML line, coverage, CLI."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import load_config
from engine.cli import main
from engine.config.loader import KINDS, schema_for
from engine.scenarios import Failure, Scenario, coverage, load_scenarios, run_scenario, run_scenarios

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASIC = FIXTURES / "basic"
FAILING = FIXTURES / "failing_scenarios"
BAD = FIXTURES / "bad_scenarios"

FAILURE_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): scenario '(?P<name>[^']+)' step (?P<step>\d+): expected .+, found .+$")


@pytest.fixture(scope="module")
def definitions():
    return load_config(BASIC)


@pytest.fixture(scope="module")
def passing(definitions):
    scenarios, problems = load_scenarios(BASIC)
    assert problems == []
    return scenarios


@pytest.fixture(scope="module")
def failing(definitions):
    scenarios, problems = load_scenarios(FAILING)
    assert problems == []
    return {r.scenario.name: r for r in run_scenarios(scenarios, definitions)}


def where(failure: Failure) -> tuple[int, int, int]:
    return failure.line, failure.column, failure.step_index


# --------------------------------------------------------------------------- loading


def test_the_kind_is_registered_and_its_schema_is_draft_07():
    assert KINDS["scenario"] == ("scenarios", "scenario.schema.json")
    schema = schema_for("scenario")
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False


def _every_key_described(schema, path="$"):
    for name, sub in (schema.get("properties") or {}).items():
        assert "description" in sub, f"{path}.{name} has no description"
        yield from _every_key_described(sub, f"{path}.{name}")
    for name, sub in (schema.get("definitions") or {}).items():
        yield from _every_key_described(sub, f"{path}#{name}")
    yield path


def test_every_key_in_the_schema_has_a_description():
    assert list(_every_key_described(schema_for("scenario")))


def test_scenarios_know_their_file_line_and_name(passing):
    first = passing[0]
    assert isinstance(first, Scenario)
    assert first.file.endswith("basic/scenarios/review.yaml")
    assert (first.line, first.column) == (5, 5)
    assert first.name == "reviewer does not respond, review is escalated"
    assert first.workflow == "review"
    assert len(passing) == 6
    assert len({s.name for s in passing}) == 6


def test_explicit_files_and_folders_load_the_same_scenarios(passing):
    by_file, problems = load_scenarios([BASIC / "scenarios" / "review.yaml"])
    by_folder, _ = load_scenarios(BASIC / "scenarios")
    twice, _ = load_scenarios([BASIC, BASIC / "scenarios" / "review.yaml"])
    assert problems == []
    assert [s.name for s in by_file] == [s.name for s in by_folder] == [s.name for s in twice] == [s.name for s in passing]


def test_schema_problems_are_reported_at_their_line():
    scenarios, problems = load_scenarios(BAD)
    assert scenarios == []
    found = [(p.location.line, p.location.column, p.code) for p in problems]
    assert found == [(7, 9, "schema-invalid"), (10, 11, "schema-unknown-key"), (11, 9, "schema-required")]
    assert "this one has fire and advance" in problems[0].message
    assert "did you mean 'state'?" in problems[1].message
    assert "'actor' also needs key 'fire'" in problems[2].message


def test_a_missing_path_is_a_problem_not_an_exception(tmp_path):
    scenarios, problems = load_scenarios([tmp_path / "nope.yaml"])
    assert scenarios == []
    assert [p.code for p in problems] == ["no-such-file"]


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_dates_that_do_not_exist_are_refused_at_load(tmp_path):
    path = write(
        tmp_path,
        """\
        scenarios:
          - name: impossible dates
            workflow: review
            given: {at: 2026-02-30T09:00}
            steps:
              - advance: 2027-13-01
              - then:
                  deadlines:
                    response: {due: 2027-02-29}
        """,
    )
    scenarios, problems = load_scenarios([path])
    assert scenarios == []
    assert [(p.location.line, p.code) for p in problems] == [(4, "scenario-time"), (6, "scenario-time"), (9, "scenario-time")]


def test_duplicate_names_are_a_warning(tmp_path):
    path = write(
        tmp_path,
        """\
        scenarios:
          - {name: same, workflow: review, given: {at: 2026-12-18}}
          - {name: same, workflow: review, given: {at: 2026-12-18}}
        """,
    )
    scenarios, problems = load_scenarios([path])
    assert len(scenarios) == 2
    assert [(p.severity, p.code, p.location.line) for p in problems] == [("warning", "duplicate-scenario", 3)]


def test_an_empty_file_is_a_problem(tmp_path):
    path = write(tmp_path, "# nothing yet\n")
    scenarios, problems = load_scenarios([path])
    assert scenarios == [] and [p.code for p in problems] == ["empty-file"]


# --------------------------------------------------------------------------- running


@pytest.mark.parametrize("index", range(6))
def test_the_fixture_scenarios_pass(passing, definitions, index):
    result = run_scenario(passing[index], definitions)
    assert result.failures == [], "\n".join(map(str, result.failures))
    assert result.passed
    assert result.steps_run == len(passing[index].steps)


def test_each_scenario_runs_on_a_fresh_engine(passing, definitions):
    first = run_scenario(passing[0], definitions)
    again = run_scenario(passing[0], definitions)
    assert first.instance_id == again.instance_id == "review-000001"
    assert list(first.histories) == ["review-000001"]
    assert [a["name"] for a in first.alerts] == ["response_overdue"]


def test_wrong_expectations_fail_at_their_keys(failing):
    result = failing["wrong state and due date"]
    assert [where(f) for f in result.failures] == [(10, 11, 1), (11, 18, 1), (13, 24, 1), (13, 41, 1)]
    state, data, due, late = result.failures
    assert (state.expected, state.found) == ("state 'graded'", "state 'open'")
    assert (data.expected, data.found) == ("data.grade = 'good'", "data.grade absent")
    assert due.expected == "deadline 'response' due 2027-01-05"
    assert due.found.startswith("due 2027-01-06 (due Wed 6 Jan 2027: 10 working days after Fri 18 Dec 2026")
    assert late.expected == "deadline 'response' late: true"
    assert result.steps_run == 2  # a failed check does not stop the scenario


def test_a_refusal_that_was_not_expected_fails_with_the_error_message(failing):
    result = failing["refusal not expected"]
    (failure,) = result.failures
    assert where(failure) == (23, 9, 1)
    assert failure.expected == "'grade' to be accepted"
    assert failure.found.startswith("RoleRefused: R-2 may not fire 'grade'")
    assert failure.message.startswith("R-2 may not fire 'grade' on review-000001")
    assert result.steps_run == 0  # the rest would depend on it


def test_an_expected_refusal_that_did_not_happen_fails(failing):
    (failure,) = failing["expected refusal did not happen"].failures
    assert where(failure) == (38, 9, 1)
    assert failure.expected == "'grade' to be refused with RoleRefused"
    assert failure.found == "it was accepted (review-000001 is now in state 'closed')"


def test_the_wrong_kind_of_refusal_fails_and_the_scenario_goes_on(failing):
    result = failing["wrong kind of refusal"]
    (failure,) = result.failures
    assert where(failure) == (49, 9, 1)
    assert failure.expected == "'grade' to be refused with PayloadInvalid"
    assert failure.found.startswith("RoleRefused: ")
    assert result.steps_run == 2


def test_alert_history_children_and_unknown_deadline_failures(failing):
    result = failing["alerts and history"]
    assert [where(f) for f in result.failures] == [(62, 15, 2), (63, 23, 2), (64, 42, 2), (65, 22, 2), (67, 13, 2)]
    alert, no_alert, history, children, deadline = result.failures
    assert alert.expected == "an alert 'response_overdue' to head_of_service"
    assert alert.found == "alerts 'response_overdue' to qa_team, manager, R-1: \"Review of C-5 is overdue (was due 2027-01-06)\""
    assert no_alert.expected == "no alert 'response_overdue'"
    assert history.expected == "'(start)' in the history after '(breach) response'"
    assert history.found == "history (start) -> (breach) response"
    assert (children.expected, children.found) == ("1 check child(ren)", "0")
    assert deadline.found == "workflow 'review' has no deadline 'missing'"


def test_acting_on_a_child_that_does_not_exist_fails(failing):
    (failure,) = failing["no such child"].failures
    assert where(failure) == (76, 11, 1)
    assert (failure.expected, failure.found) == ("a child of workflow 'check'", "review-000001 has no children")


def test_start_problems_fail_at_step_0(failing):
    (unknown,) = failing["unknown workflow"].failures
    assert where(unknown) == (80, 5, 0)
    assert "did you mean 'review'?" in unknown.found
    (invalid,) = failing["start data invalid"].failures
    assert where(invalid) == (89, 7, 0)
    assert invalid.message == "cannot start review: 'reviewer' is required"


def test_failures_print_as_file_line_col(failing):
    for result in failing.values():
        for failure in result.failures:
            match = FAILURE_LINE.match(str(failure))
            assert match, str(failure)
            assert match["file"].endswith("failing.yaml")
            assert int(match["line"]) == failure.line
            assert failure.to_dict()["step"] == failure.step_index


def test_an_unexpected_exception_becomes_a_failure(passing, definitions, monkeypatch):
    from engine.runtime.engine import Engine

    def broken(self, *args, **kwargs):
        raise RuntimeError("the store fell over")

    monkeypatch.setattr(Engine, "fire", broken)
    scenario = next(s for s in passing if s.name.startswith("a good grade"))
    result = run_scenario(scenario, definitions)
    (failure,) = result.failures
    assert failure.step_index == 1
    assert failure.found == "RuntimeError: the store fell over"
    assert failure.line == 77  # the 'fire' key of step 1


def test_scenario_keys_on_child_and_parent(tmp_path, definitions):
    path = write(
        tmp_path,
        """\
        scenarios:
          - name: parent of a top-level instance
            workflow: review
            given: {at: 2026-12-18, data: {case_id: C-9, reviewer: R-1}}
            steps:
              - then: {on: parent, state: open}
        """,
    )
    (scenario,), _ = load_scenarios([path])
    (failure,) = run_scenario(scenario, definitions).failures
    assert (failure.line, failure.expected, failure.found) == (6, "the instance to have a parent", "review-000001 has none")


# --------------------------------------------------------------------------- coverage


def test_coverage_counts_transitions_deadlines_and_breaches(passing, definitions):
    report = coverage(run_scenarios(passing, definitions), definitions)
    review, check = report["review"], report["check"]
    assert review["transitions"]["total"] == 10
    assert review["transitions"]["exercised"] == 9
    assert review["not_exercised"]["transitions"] == [
        {"index": 8, "label": "open -> open on explode", "location": review["transitions"]["items"][8]["location"]}
    ]
    counts = {t["label"]: t["count"] for t in review["transitions"]["items"]}
    assert counts["open -> graded on grade"] == 2
    assert counts["graded -> checking automatically"] == 1
    assert counts["graded -> closed automatically"] == 1
    assert counts["open -> escalated on breach of response"] == 2
    assert review["deadlines"]["items"][0]["name"] == "response"
    assert review["deadlines"]["items"][0]["started"] == 6
    assert review["deadlines"]["items"][0]["breached"] == 2
    assert review["not_exercised"]["deadlines_not_started"] == []
    assert review["not_exercised"]["breaches"] == []
    assert check["transitions"]["exercised"] == 1 and check["not_exercised"]["transitions"] == []
    assert review["instances"] == 6 and check["instances"] == 1


def test_coverage_lists_what_no_scenario_exercised(passing, definitions):
    only_good = [s for s in passing if s.name.startswith("a good grade")]
    report = coverage(run_scenarios(only_good, definitions), definitions)
    missing = report["review"]["not_exercised"]
    assert [t["label"] for t in missing["transitions"]] == [
        "graded -> checking automatically",
        "checking -> closed on child_done",
        "open -> open on note",
        "open -> open on pause",
        "open -> open on resume",
        "open -> open on extend",
        "open -> open on explode",
        "open -> escalated on breach of response",
    ]
    assert missing["breaches"] == ["response"]
    assert missing["deadlines_not_started"] == []
    assert report["check"]["not_exercised"]["transitions"][0]["label"] == "pending -> done on record"


def test_coverage_of_nothing_lists_everything(definitions):
    report = coverage([], definitions)
    assert report["review"]["transitions"]["exercised"] == 0
    assert report["review"]["not_exercised"]["deadlines_not_started"] == ["response"]


# --------------------------------------------------------------------------- CLI


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(main, list(args), **kwargs)


def test_cli_passes_with_exit_0_and_the_closing_line():
    result = invoke("--config", str(BASIC), "test")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "6 passed, 0 failed"
    assert "coverage:" in lines
    assert "  review: 9/10 transitions, 1/1 deadlines started, 1/1 breached" in lines
    assert any(line.strip().startswith("not exercised:") and line.endswith("transition open -> open on explode") for line in lines)
    assert "  check: 1/1 transitions" in lines


def test_cli_failures_exit_1_with_file_line_col():
    result = invoke("--config", str(BASIC), "test", str(FAILING))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == "0 passed, 8 failed"
    failures = [line for line in lines if FAILURE_LINE.match(line)]
    assert len(failures) == 15
    assert failures[0].endswith("failing.yaml:10:11: scenario 'wrong state and due date' step 1: expected state 'graded', found state 'open'")


def test_cli_options_may_follow_the_command():
    result = invoke("test", "--config", str(BASIC), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["passed"] == 6


def test_cli_json_shape():
    result = invoke("--config", str(BASIC), "--format", "json", "test", str(BASIC), str(FAILING))
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert {"passed", "failed", "failures", "coverage"} <= set(out)
    assert (out["passed"], out["failed"]) == (6, 8)
    assert set(out["failures"][0]) == {"file", "line", "column", "scenario", "step", "expected", "found", "message"}
    assert out["coverage"]["review"]["transitions"]["exercised"] == 9
    assert [t["label"] for t in out["coverage"]["review"]["not_exercised"]["transitions"]] == ["open -> open on explode"]


def test_cli_scenario_file_errors_exit_1_with_positions():
    result = invoke("--config", str(BASIC), "test", str(BAD))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if "warning:" not in line]
    assert lines[0].endswith("bad.yaml:7:9: error: a step has exactly one of fire, advance or then; "
                             "this one has fire and advance (split it into separate steps) [schema-invalid]")
    assert re.match(r"^.+bad\.yaml:10:11: error: unknown key 'stat' \(did you mean 'state'\?\) \[schema-unknown-key\]$", lines[1])
    assert "passed" not in result.stdout


def test_cli_config_errors_exit_1(tmp_path):
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "w.yaml").write_text("workflow: w\nversion: 1\nstates: {}\ntransitions: []\nbogus: 1\n")
    result = invoke("--config", str(tmp_path), "test")
    assert result.exit_code == 1
    assert re.search(r"w\.yaml:5:1: error: unknown key 'bogus'.* \[schema-unknown-key\]", result.stderr)
    missing = invoke("--config", str(tmp_path / "nowhere"), "test")
    assert missing.exit_code == 1
    assert "does not exist [no-config]" in missing.stderr
    as_json = invoke("--config", str(tmp_path / "nowhere"), "--format", "json", "test")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"] == "ConfigError"


def test_cli_usage_errors_exit_2():
    assert invoke("test", "--no-such-option").exit_code == 2
    assert invoke("--format", "xml", "test").exit_code == 2
    assert invoke("no-such-command").exit_code == 2


def test_cli_internal_errors_exit_3_without_a_traceback(monkeypatch):
    import engine.scenarios

    def broken(*args, **kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(engine.scenarios, "run_scenarios", broken)
    result = invoke("--config", str(BASIC), "test")
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert "internal error: ZeroDivisionError: oops" in result.stderr


def test_cli_colour(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    args = ("--config", str(BASIC), "test", str(FAILING))
    assert "\x1b[" in invoke("--color", "always", *args).stdout
    assert "\x1b[" not in invoke("--color", "never", *args, color=True).stdout
    assert "\x1b[" in invoke(*args, color=True).stdout  # auto, on a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in invoke(*args, color=True).stdout
    assert "\x1b[" in invoke("--color", "always", *args).stdout  # an explicit choice wins


def test_cli_defaults_to_the_config_scenarios_folder_and_lists_with_verbose():
    result = invoke("--config", str(BASIC), "test", "-v")
    assert result.exit_code == 0
    passes = [line for line in result.stdout.splitlines() if line.startswith("PASS ")]
    assert len(passes) == 6
    assert passes[0].endswith("review.yaml:5 reviewer does not respond, review is escalated")


def test_cli_with_no_scenarios_says_so(tmp_path):
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "check.yaml").write_text((BASIC / "workflows" / "check.yaml").read_text())
    result = invoke("--config", str(tmp_path), "test")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "0 passed, 0 failed"
    assert "no scenarios found" in result.stderr
