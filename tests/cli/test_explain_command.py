"""qaflow explain: why an instance moved as it did, in plain English, from scenarios or a store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import Engine, load_config
from engine.cli import main
from engine.explain import explain_entry, explain_scenarios

BASIC = Path(__file__).resolve().parents[1] / "fixtures" / "basic"
SCENARIOS = BASIC / "scenarios" / "review.yaml"


def invoke(*args: str):
    return CliRunner().invoke(main, ["--config", str(BASIC), *args], catch_exceptions=False)


def test_a_scenario_file_is_run_and_every_instance_explained():
    result = invoke("explain", str(SCENARIOS), "--scenario", "a bad grade on an urgent case is checked by a child workflow")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Scenario 'a bad grade on an urgent case is checked by a child workflow' (")
    assert "): passed\n" in out
    assert ("  1. On Fri 18 Dec 2026 at 09:00 qa-1 (qa_team) started review-000001 (review) in state 'open' with "
            "case_id=C-0004, reviewer=R-1, urgent=true: started deadline response: 10 working days from "
            "Fri 18 Dec 2026, due Wed 6 Jan 2027.") in out
    assert ("  2. On Tue 22 Dec 2026 at 11:00 R-1 (reviewer) fired 'grade' with grade=bad: set grade = bad; "
            "looked up table 'band' with grade=bad, urgent=true, giving {\"band\": \"red\"}, kept in band; "
            "deadline response was met on time; review-000001 moved from open to graded.") in out
    assert ("  3. Then, on Tue 22 Dec 2026 at 11:00, an automatic transition was taken: condition "
            "`data.grade == \"bad\"` held; started child check-000001 (check) with case_id=C-0004; "
            "review-000001 moved from graded to checking.") in out
    assert "On Wed 23 Dec 2026 at 09:00 child check-000001 fired 'child_done' with result=confirmed" in out
    assert "check-000001 (check, version 1), now in state 'done' (finished)\n  started by review-000001" in out
    assert ("  How the deadlines were worked out:\n    response (Reviewer responds; timescale 'response_time' in the rules): "
            "met, due Wed 6 Jan 2027\n") in out
    assert "      skipped Fri 25 Dec 2026: Christmas Day\n" in out


def test_conditions_that_did_not_hold_are_named():
    result = invoke("explain", str(SCENARIOS), "--scenario", "a good grade closes the review on time")
    assert "condition `data.grade == \"bad\"` did not hold; condition `data.grade == \"good\"` held" in result.stdout


def test_extensions_and_pauses_are_explained_from_the_deadline_record():
    result = invoke("explain", str(SCENARIOS), "--format", "json")
    assert result.exit_code == 0
    reports = json.loads(result.stdout)["scenarios"]
    assert len(reports) == 6 and all(r["passed"] for r in reports)
    by_name = {r["scenario"]: r for r in reports}
    extended = by_name["extension to 20 working days moves the breach to 21 Jan"]["instances"][0]
    (deadline,) = extended["deadlines"]
    assert deadline["status"] == "breached" and deadline["due"] == "2027-01-20"
    assert "extended on Mon 21 Dec 2026 to 20 working days from the same start (reason: family on holiday):" in deadline["explanation"]
    paused = by_name["pausing the clock keeps the working days left"]["instances"][0]
    texts = [e["text"] for e in paused["events"]]
    assert "stopped the clock of deadline response (reason: waiting for the family)" in texts[1]
    assert "restarted the clock of deadline response: now due Fri 15 Jan 2027" in texts[2]
    assert any(line.startswith("clock stopped on Mon 21 Dec 2026 with 9 working days left") for line in paused["deadlines"][0]["explanation"])
    breach = by_name["reviewer does not respond, review is escalated"]["instances"][0]["events"][1]
    assert breach["text"].startswith("On Thu 7 Jan 2027 at 00:00 deadline 'response' passed unmet: "
                                     "sent alert 'response_overdue' to qa_team, manager and R-1 (reviewer)")


def test_a_failing_scenario_is_still_explained_with_its_failures():
    failing = Path(__file__).resolve().parents[1] / "fixtures" / "failing_scenarios" / "failing.yaml"
    result = invoke("explain", str(failing))
    assert result.exit_code == 0, result.output
    assert "): FAILED\n" in result.stdout
    assert re.search(r"^  \S+failing\.yaml:\d+:\d+: scenario '.+' step \d+: expected .+, found .+$", result.stdout, re.M)


def test_an_instance_in_a_sqlite_store(tmp_path: Path):
    from engine.store.open import open_store

    db = tmp_path / "qa.db"
    store = open_store(str(db))
    try:
        engine = Engine(load_config(BASIC), store=store)
        view = engine.start("review", {"case_id": "C-9", "reviewer": "R-1"}, actor="qa-1", roles=["qa_team"], at="2026-10-01T09:00")
        engine.fire(view.id, "grade", {"grade": "good"}, actor="R-1", at="2026-10-05T10:30")
    finally:
        getattr(store, "close", lambda: None)()
    result = invoke("explain", view.id, "--db", str(db))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{view.id} (review, version 1), now in state 'closed' (finished)\n")
    assert "On Mon 5 Oct 2026 at 10:30 R-1 (reviewer) fired 'grade' with grade=good" in result.stdout
    assert "due Thu 15 Oct 2026: 10 working days after Thu 1 Oct 2026" in result.stdout  # BST: still the same day
    as_json = json.loads(invoke("explain", view.id, "--db", str(db), "--format", "json").stdout)
    assert as_json["state"] == "closed" and as_json["events"][0]["trigger"] == "(start)"
    missing = invoke("explain", "review-999999", "--db", str(db))
    assert missing.exit_code == 1 and "no instance 'review-999999'" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "nope.yaml"], "does not exist"),
        (["explain", "review-000001", "--db", "/nonexistent/qa.db"], "no store at"),
        (["explain", str(SCENARIOS), "--scenario", "a good grade closes the review"], "did you mean"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_entries_with_unknown_shapes_still_read():
    assert explain_entry({"trigger": "x", "at": "not a time", "actions": [{"action": "new_kind", "a": 1}]}) == (
        "On not a time someone fired 'x': new_kind a=1; the instance stayed in None."
    )


def test_explain_scenarios_returns_load_problems_for_broken_files(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [{name: x}]\n")
    reports, problems = explain_scenarios(bad, load_config(BASIC))
    assert reports == [] and problems and all(p.severity == "error" for p in problems)
    result = invoke("explain", str(bad))
    assert result.exit_code == 1 and "bad.yaml:1:" in result.stderr


def test_a_deadline_that_names_a_timescale_says_where_to_change_it():
    bundled = Path(__file__).resolve().parents[2] / "config"
    result = CliRunner().invoke(main, ["--config", str(bundled), "--format", "json", "explain",
                                       str(bundled / "scenarios" / "iro_escalation.yaml"),
                                       "--scenario", "resolved informally with the social worker and team manager"])
    assert result.exit_code == 0, result.output
    (instance,) = json.loads(result.stdout)["scenarios"][0]["instances"]
    assert {d["name"]: d["timescale"] for d in instance["deadlines"]} == {"informal_resolution": "drp_informal"}
    text = CliRunner().invoke(main, ["--config", str(bundled), "explain", str(bundled / "scenarios" / "iro_escalation.yaml"),
                                     "--scenario", "resolved informally with the social worker and team manager"]).stdout
    assert "    informal_resolution (Resolve informally; timescale 'drp_informal' in the rules): met, due Mon 9 Nov 2026\n" in text
