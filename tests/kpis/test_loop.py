"""The loop: imported figures red for two months propose a targeted audit to the service manager, who accepts it,
and it starts in the next programme month; each step happens once however often it is run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import Engine, MemoryStore, load_config
from engine.cli import main
from engine.explain import explain_instance
from engine.kpis import import_kpi_values
from engine.kpis.watch import check_indicators
from engine.programmes import start_programme_month

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
RHI = "return_home_interviews_offered_in_72_hours"  # Get Safe, target 90%, tolerance 5: below 85% is red


@pytest.fixture(scope="module")
def definitions():
    return load_config(CONFIG)


def figures(month: str, numerator: int, denominator: int, kpi: str = RHI, service: str = "get_safe", **more):
    return {"kpi": kpi, "period": month, "level": "service", "level_id": service, "numerator": numerator, "denominator": denominator,
            **more}


def push(eng: Engine, at: str, *rows: dict):
    """What a host pushing figures does: store them, then apply the indicator rules to the KPIs it stored."""
    import_kpi_values(eng.store, eng.definitions, rows, origin="mosaic", at=at)
    return check_indicators(eng, at=at, kpis={r["kpi"] for r in rows})


def test_red_for_two_months_proposes_once_then_joins_the_next_programme_month(definitions):
    eng = Engine(definitions, store=MemoryStore())
    # September red (28 of 40 = 70%): no programme's quarter holds it (Q3 is Oct-Dec), and one month is not a run of two
    first = push(eng, "2026-10-05T09:00", figures("2026-09", 28, 40))
    assert first.checked == 0 and first.found == []
    # October red too (30 of 41 = 73.2%): the rule holds, and a thematic audit is proposed to the service manager
    second = push(eng, "2026-11-04T09:00", figures("2026-10", 30, 41))
    [proposal] = second.proposed
    assert (proposal.rule, proposal.months, proposal.figures) == ("red_two_months", ("2026-09", "2026-10"), (70.0, 73.2))
    audit = eng.get(proposal.instance_id)
    assert (audit.workflow, audit.state, audit.data["service"], audit.data["lead"]) == ("thematic_audit", "proposed", "get_safe", "SM-GS-01")
    assert audit.data["reason"] == ("Return home interviews offered within 72 hours (get_safe): red for 2 consecutive months: "
                                    "2026-09 70%, 2026-10 73.2% (target ≥ 90%).")
    assert audit.deadline("decision_due").due.isoformat() == "2026-11-18"  # 10 working days after Wed 4 Nov 2026
    [alert] = [a for a in eng.outbox() if a["instance_id"] == audit.id]
    assert alert["name"] == "targeted_audit_proposed" and {"person": "SM-GS-01", "as": "lead"} in alert["recipients"]
    assert "2026-10 73.2%" in alert["message"]
    # the same run checked again, and again a month later while it goes on: no second proposal
    assert [p.outcome for p in check_indicators(eng, at="2026-11-04T12:00").found] == ["already_proposed"]
    third = push(eng, "2026-12-03T09:00", figures("2026-11", 31, 42))
    assert [(p.outcome, p.instance_id, p.months) for p in third.found] == [
        ("already_proposed", audit.id, ("2026-09", "2026-10", "2026-11"))]
    assert len(eng.instances("thematic_audit")) == 1
    # qaflow explain says why it was proposed
    why = " ".join(e["text"] for e in explain_instance(eng, audit.id)["events"])
    assert "started thematic_audit-000001" in why and "red for 2 consecutive months" in why and "2026-10 73.2%" in why

    # accepted on Tue 10 Nov: November's programme month has begun, so it joins December
    eng.fire(audit.id, "accept_proposal", {"sample_size": 8}, actor="SM-GS-01", at="2026-11-10T10:00")
    november = start_programme_month(eng, "2026-11", at="2026-11-10T12:00")
    assert audit.id not in [i.item for i in november.items] and eng.get(audit.id).state == "accepted"
    december = start_programme_month(eng, "2026-12", at="2026-12-01T08:00")
    assert [(i.programme, i.outcome) for i in december.items if i.item == audit.id] == [("get_safe_2026_q3", "joined")]
    joined = eng.get(audit.id)
    assert (joined.state, joined.data["month"], joined.data["sample_size"]) == ("planned", "2026-12-01", 8)
    assert joined.deadline("fieldwork_complete").due.isoformat() == "2026-12-31"
    assert [(i.programme, i.item, i.outcome) for i in december.started] == [
        ("children_in_care_2026_q3", "cic_placement_stability", "started"), ("mash_2026_q3", "mash_domestic_abuse_notifications", "started"),
        ("", "briefing:2026-12", "started")]
    # run twice: nothing starts or joins again
    count = len(eng.instances())
    again = start_programme_month(eng, "2026-12", at="2026-12-01T09:00")
    assert again.started == [] and again.joined == [] and {i.outcome for i in again.items} == {"already_started"}
    assert len(eng.instances()) == count


def test_a_declined_run_stays_declined_and_a_new_run_proposes_again(definitions):
    eng = Engine(definitions, store=MemoryStore())
    first = push(eng, "2026-11-04T09:00", figures("2026-09", 28, 40), figures("2026-10", 29, 40)).proposed[0]
    eng.fire(first.instance_id, "decline_proposal", {"reason": "Return interviews are now commissioned out; the provider is reviewed"},
             actor="SM-GS-01", at="2026-11-06T10:00")
    assert eng.get(first.instance_id).state == "declined"
    # still red in November: the declined run is not proposed again
    assert [p.outcome for p in push(eng, "2026-12-03T09:00", figures("2026-11", 30, 41)).found] == ["already_proposed"]
    # behind statistical neighbours (a one-month rule) in October, not in November, again in December: two runs, two proposals
    icpc = {"kpi": "icpc_within_15_working_days", "service": "safeguarding"}
    october = push(eng, "2026-11-04T09:00", figures("2026-10", 20, 25, statistical_neighbours=90.0, **icpc)).proposed
    assert [p.months for p in october] == [("2026-10",)]
    assert push(eng, "2026-12-03T09:00", figures("2026-11", 24, 25, statistical_neighbours=90.0, **icpc)).found == []
    eng.fire(october[0].instance_id, "decline_proposal", {"reason": "Conference scheduling already under review"}, actor="SM-SG-01",
             at="2026-12-04T10:00")
    december = push(eng, "2027-01-05T09:00", figures("2026-12", 21, 25, statistical_neighbours=90.0, **icpc)).proposed
    assert [p.months for p in december] == [("2026-12",)] and december[0].instance_id != october[0].instance_id
    assert len(eng.instances("thematic_audit")) == 3


def test_worse_than_statistical_neighbours_by_more_than_5_points(definitions):
    eng = Engine(definitions, store=MemoryStore())
    icpc = "icpc_within_15_working_days"  # Safeguarding, target 90%
    # 88.0% is amber against the target but 7 points behind statistical neighbours (95.0%)
    found = push(eng, "2026-11-04T09:00", figures("2026-10", 22, 25, kpi=icpc, service="safeguarding", statistical_neighbours=95.0))
    [proposal] = found.proposed
    assert (proposal.rule, proposal.months, proposal.figures) == ("behind_statistical_neighbours", ("2026-10",), (88.0,))
    assert proposal.reason.endswith("2026-10 88% (target ≥ 90%; statistical neighbours: 2026-10 95%).")
    # 4 points behind is within the rule
    eng2 = Engine(definitions, store=MemoryStore())
    assert push(eng2, "2026-11-04T09:00", figures("2026-10", 22, 25, kpi=icpc, service="safeguarding", statistical_neighbours=92.0)).found == []


def run(*args: str):
    return CliRunner().invoke(main, ["--config", str(CONFIG), *args], catch_exceptions=False)


def test_command_line_import_check_accept_and_programme_start(tmp_path):
    db = str(tmp_path / "q.db")
    extract = tmp_path / "rhi.json"
    extract.write_text(json.dumps({"source": "Mosaic extract", "values": [
        figures("2026-09", 28, 40), figures("2026-10", 30, 41)]}), encoding="utf-8")
    imported = run("kpi", "import", str(extract), "--db", db, "--at", "2026-11-04T09:00")
    assert imported.exit_code == 0, imported.output
    assert imported.stdout.splitlines()[1:] == [
        "indicator rules: 1 programme KPI(s) read; 1 targeted audit(s) proposed",
        f"  get_safe_2026_q3 {RHI}: red_two_months (2026-09, 2026-10): proposed thematic_audit-000001"]
    checked = run("kpi", "check", "--db", db, "--at", "2026-11-05T09:00", "--format", "json")
    assert [f["outcome"] for f in json.loads(checked.stdout)["found"]] == ["already_proposed"]
    explained = run("explain", "thematic_audit-000001", "--db", db)
    assert "red for 2 consecutive months: 2026-09 70%, 2026-10 73.2%" in explained.stdout
    assert run("fire", "thematic_audit-000001", "accept_proposal", "--actor", "SM-GS-01", "--at", "2026-11-10T10:00", "--db", db).exit_code == 0
    december = run("programme", "start", "--month", "2026-12", "--db", db, "--at", "2026-12-01T08:00")
    assert december.exit_code == 0, december.output
    assert december.stdout.splitlines()[0] == "2026-12 (7 programme(s)): 3 planned item(s) started, 1 accepted proposal(s) joined"
    assert ("  get_safe_2026_q3  thematic_audit-000001  Return home interviews offered within 72 hours: joined this month "
            "(thematic_audit-000001)") in december.stdout.splitlines()
    again = run("programme", "start", "--month", "2026-12", "--db", db, "--at", "2026-12-01T09:00", "--format", "json")
    assert {i["outcome"] for i in json.loads(again.stdout)["items"]} == {"already_started"}
    bad = run("programme", "start", "--month", "December", "--db", db)
    assert bad.exit_code == 2 and "YYYY-MM" in bad.stderr


def test_the_quarterly_report_shows_planned_vs_delivered(definitions):
    import datetime as dt

    from engine.reports import compute_report, render

    eng = Engine(definitions, store=MemoryStore())
    proposal = push(eng, "2026-11-04T09:00", figures("2026-09", 28, 40), figures("2026-10", 30, 41)).proposed[0].instance_id
    eng.fire(proposal, "accept_proposal", {}, actor="SM-GS-01", at="2026-11-10T10:00")
    for month, day in (("2026-10", "2026-10-01"), ("2026-11", "2026-11-02"), ("2026-12", "2026-12-01")):
        start_programme_month(eng, month, at=f"{day}T08:00")
    # November's neglect audit is carried out and reported; October's assessment audit is cancelled before its fieldwork
    neglect = next(v for v in eng.instances("thematic_audit") if v.data["theme"] == "neglect").id
    eng.fire(neglect, "start_fieldwork", {"cases": ["C-1", "C-2"], "auditors": ["SM-SG-01"]}, actor="SM-SG-01", at="2026-11-03T09:00")
    eng.fire(neglect, "complete_fieldwork", {"cases_audited": 2}, actor="SM-SG-01", at="2026-11-27T09:00")
    eng.fire(neglect, "submit_report", {"findings": "Chronologies weak in both cases", "recommendations": ["Workshop"], "actions": []},
             actor="SM-SG-01", at="2026-12-10T09:00")
    analysis = next(v for v in eng.instances("thematic_audit") if v.data.get("programme") == "assessment_2026_q3").id
    eng.fire(analysis, "cancel", {"reason": "Staff shortage in October"}, actor="QA-01", roles=["qa_team"], at="2026-10-20T09:00")
    report = compute_report(eng.store, definitions, start=dt.date(2026, 10, 1), end=dt.date(2026, 12, 31))
    programmes = report["metrics"]["kpis"]["programmes"]
    safeguarding = programmes["safeguarding_2026_q3"]["delivery"]
    assert (safeguarding["planned"], safeguarding["started"], safeguarding["delivered"]) == (1, 1, 1)
    assessment = programmes["assessment_2026_q3"]["delivery"]["audits"]
    assert [(a["id"], a["state"], a["delivered"]) for a in assessment] == [("assessment_analysis", "cancelled", False)]
    get_safe = programmes["get_safe_2026_q3"]["delivery"]["audits"]
    assert [(a["title"], a["month"], a["from"], a["started_on"]) for a in get_safe] == [
        ("missing episodes and child criminal exploitation", "2026-11", "programme", "2026-11-02"),
        ("Return home interviews offered within 72 hours", "2026-12", "indicator: red for 2 consecutive months", "2026-12-01")]
    md = render(report, "markdown")
    table = md.split("## Programme delivery - planned vs delivered")[1].split("\n## ")[0]
    assert "Targeted audits: **8 planned for the period, 8 started, 1 with findings reported.**" in table
    assert "| Assessment | analysis and the child's lived experience in assessments | Thematic | programme | 2026-10 | 2026-10-01 | Cancelled | no |" in table
    assert "| Safeguarding | neglect | Thematic | programme | 2026-11 | 2026-11-02 | Actions in progress | yes |" in table
    assert ("| Get Safe | Return home interviews offered within 72 hours | Thematic | indicator: red for 2 consecutive months | 2026-12 "
            "| 2026-12-01 | Planned | no |") in table
    text = render(report, "text")
    assert "Planned vs delivered: targeted audits" in text and "Planned vs delivered: surveys" in text
    assert "Planned vs delivered: targeted audits" in render(report, "html")
    # the monthly briefing leaves it out of the text summary
    october = compute_report(eng.store, definitions, start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 31))
    assert "Planned vs delivered" not in render(october, "text")


def test_the_first_month_of_a_quarter_starts_each_programmes_report_cycle_and_every_month_a_briefing(definitions):
    eng = Engine(definitions, store=MemoryStore())
    october = start_programme_month(eng, "2026-10", at="2026-10-01T08:00")
    cycles = {i.programme: eng.get(i.instance_id) for i in october.started if i.workflow == "qa_report_cycle"}
    assert len(cycles) == 7
    cic = cycles["children_in_care_2026_q3"]
    # the Senior Leadership Team first, then the forums of the programme's report_to
    assert (cic.state, cic.data["due_on"], cic.data["report_to"], cic.data["quarter"]) == (
        "in_preparation", "2027-01-29", ["improvement_board"], "FY2026/27-Q3")
    assert cycles["assessment_2026_q3"].data["report_to"] == []
    [briefing] = [i for i in october.started if i.workflow == "managers_briefing"]
    assert eng.get(briefing.instance_id).deadline("produce_due").due.isoformat() == "2026-11-06"  # 5 working days after Sat 31 Oct
    again = start_programme_month(eng, "2026-10", at="2026-10-01T09:00")
    assert again.started == [] and len(eng.instances("qa_report_cycle")) == 7 and len(eng.instances("managers_briefing")) == 1
    # later months of the quarter start no second report cycle
    november = start_programme_month(eng, "2026-11", at="2026-11-02T08:00")
    assert {i.workflow for i in november.started} == {"thematic_audit", "multi_agency_audit", "managers_briefing"}


def test_a_programme_reporting_straight_to_the_improvement_board_is_refused(tmp_path):
    import shutil

    root = tmp_path / "config"
    shutil.copytree(CONFIG, root)
    path = root / "programmes" / "safeguarding.yaml"
    text = path.read_text(encoding="utf-8")
    assert "report_to: [senior_leadership_team, improvement_board]" in text
    path.write_text(text.replace("report_to: [senior_leadership_team, improvement_board]", "report_to: [improvement_board]"), encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(root), "validate"], catch_exceptions=False)
    assert result.exit_code == 1
    line = next(x for x in (result.stdout + result.stderr).splitlines() if "report-skips-slt" in x)
    assert line.startswith(f"{path}:") and "goes to the Senior Leadership Team before improvement_board" in line
