"""The annual reports (financial year 2026/27): the complaints report and the IRO service's report, on a
small hand-dated world driven through the real Engine with the bundled configuration.

  K1  a child's complaint received Mon 2 Nov 2026 (delay, safeguarding_1). Advocate offered Tue 3 Nov, recorded
      Wed 4 Nov, accepted (due 5 working days after receipt: Mon 9 Nov, on time). Stage 1 begins Wed 4 Nov,
      answered Fri 13 Nov (due Mon 16 Nov: on time), upheld, one lesson with an action for SW-1.
  K2  a parent's complaint received Mon 11 Jan 2027 (communication, assessment), resolved early Wed 13 Jan.
  K3  received Tue 6 Apr 2027: the next financial year, not counted.
  A compliment received Mon 2 Nov 2026 about assessment, from a parent, shared Wed 4 Nov.
  A midway review: IRO-1's review Thu 1 Oct 2026, next Thu 1 Apr 2027 -> midway Thu 31 Dec 2026; drift
      recorded Tue 22 Dec (theme plan_progress); escalation (placement) started Wed 23 Dec, resolved
      informally Mon 4 Jan 2027 with themes plan_progress and smart_plans.
  The IRO service report for 2026 (2026/27): activity, themes, one recommendation; presented Thu 10 Jun 2027
      (counted in 2026/27 by the year it reports on).
"""

from __future__ import annotations

import datetime as dt

import pytest
from report_world import QA

from engine import Engine
from engine.reports import compute_report, render

FY = (dt.date(2026, 4, 1), dt.date(2027, 3, 31))
CM = {"actor": "CM-01", "roles": ["complaints_manager"]}


@pytest.fixture(scope="module")
def store(definitions):
    eng = Engine(definitions)
    k1 = eng.start("complaint", {"received_on": "2026-11-02", "complainant_type": "child", "case_id": "C-1",
                                 "subject_category": "delay", "service": "safeguarding", "team": "safeguarding_1"},
                   at="2026-11-02T10:00", **QA).id
    eng.fire(k1, "record_advocacy", {"offered_on": "2026-11-03", "accepted": True, "provider": "Advocacy-A"},
             at="2026-11-04T09:00", **QA)
    eng.fire(k1, "begin_stage1", {"handler": "QA-01"}, at="2026-11-04T10:00", **QA)
    eng.fire(k1, "respond_stage1", {"outcome": "upheld", "summary": "We were too slow",
                                    "learning": [{"lesson": "Assessments wait for a manager's sign-off",
                                                  "action": "Sign off assessments within 2 days", "owner": "SW-1",
                                                  "due_by": "2026-12-11"}]}, at="2026-11-13T10:00", **QA)
    k2 = eng.start("complaint", {"received_on": "2027-01-11", "complainant_type": "parent", "subject_category": "communication",
                                 "service": "assessment", "team": "assessment_1"}, at="2027-01-11T10:00", **QA).id
    eng.fire(k2, "record_early_resolution", {"resolved": True}, actor="TM-1", roles=["team_manager"], at="2027-01-13T10:00")
    eng.start("complaint", {"received_on": "2027-04-06", "complainant_type": "parent", "subject_category": "delay",
                            "service": "assessment", "team": "assessment_1"}, at="2027-04-06T10:00", **QA)
    c = eng.start("compliment", {"received_on": "2026-11-02", "service": "assessment", "team": "assessment_1",
                                 "from_whom": "parent", "summary": "Kind and clear"}, at="2026-11-02T11:00", **QA).id
    eng.fire(c, "share", {}, at="2026-11-04T10:00", **QA)

    m = eng.start("midway_review", {"case_id": "C-9", "reviewer_role": "iro", "reviewer": "IRO-1",
                                    "last_meeting_on": "2026-10-01", "next_meeting_on": "2027-04-01"},
                  actor="IRO-1", roles=["iro_service"], at="2026-10-01T15:00").id
    eng.fire(m, "record_check", {"outcome": "drift", "notes": "Placement plan not updated", "themes": ["plan_progress"]},
             actor="IRO-1", at="2026-12-22T10:00")
    eng.fire(m, "start_escalation", {"concern": "Placement plan not updated", "category": "placement"},
             actor="IRO-1", at="2026-12-23T10:00")
    (esc,) = eng.instances("iro_escalation")
    eng.fire(esc.id, "resolve", {"resolution": "Plan updated", "themes": ["plan_progress", "smart_plans"]},
             actor="IRO-1", at="2027-01-04T10:00")

    r = eng.start("iro_service_report", {"year": 2026}, actor="IROSM-01", roles=["iro_service_manager"], at="2027-04-06T10:00").id
    sm = {"actor": "IROSM-01", "roles": ["iro_service_manager"]}
    eng.fire(r, "record_activity", {"reviews_chaired": 410, "reviews_on_time": 380}, at="2027-04-07T10:00", **sm)
    eng.fire(r, "record_themes", {"themes": ["plan_progress"]}, at="2027-04-07T10:05", **sm)
    eng.fire(r, "add_recommendation", {"recommendation": "Review plans after every placement move", "for_whom": "children_in_care"},
             at="2027-04-07T10:10", **sm)
    eng.fire(r, "present", {"presented_on": "2027-06-10", "to": "corporate_parenting_board"}, at="2027-06-10T16:00", **sm)
    return eng.store


def rows(listing):
    return [dict(zip(listing["columns"], row, strict=True)) for row in listing["rows"]]


def annual(store, definitions, name):
    return compute_report(store, definitions, start=FY[0], end=FY[1], report=name, trend=False)


def test_the_complaints_report_counts_the_year_by_stage_subject_outcome_advocacy_and_learning(store, definitions):
    m = annual(store, definitions, "complaints_annual")["metrics"]
    assert m["received"] == 2  # K3 belongs to 2027/28
    assert (m["by_stage"]["resolved_early"], m["by_stage"]["stage1"], m["by_stage"]["stage2"]) == (1, 1, 0)
    subjects = m["by_subject"]["subject"]["counts"]
    assert (subjects["delay"], subjects["communication"], subjects["finance"]) == (1, 1, 0)
    assert m["by_service"] == {"assessment": 1, "safeguarding": 1}
    assert m["upheld"]["stage1"] == {"numerator": 1, "denominator": 1, "pct": 100.0}
    assert m["advocacy"]["offered"] == {"numerator": 1, "denominator": 1, "pct": 100.0}
    assert m["advocacy"]["providers"]["provider"]["counts"] == {"Advocacy-A": 1}
    assert m["timeliness"]["stage1_response"]["met_on_time"] == 2  # K1 answered, K2 resolved early
    assert [(row["Action"], row["Service"]) for row in rows(m["lessons"])] == [("Sign off assessments within 2 days", "safeguarding")]
    assert m["actions"]["raised"] == {"safeguarding": 1}
    assert m["compliments"]["received"] == {"assessment": 1}


def test_the_iro_report_counts_escalations_midway_reviews_themes_and_the_managers_recommendations(store, definitions):
    report = annual(store, definitions, "iro_annual_report")
    m = report["metrics"]
    esc = m["escalations"]
    assert esc["raised"] == {"iro_escalation": 1}
    assert esc["from_midway_reviews"] == {"iro_escalation": 1}
    assert esc["iro_by_category"]["category"]["counts"]["placement"] == 1
    assert esc["resolved_within_20_working_days"]["pct"] == 100.0
    assert m["midway_reviews"]["outcomes"]["outcome"]["counts"] == {"drift": 1}
    assert m["midway_reviews"]["after_drift"]["decision"]["counts"] == {"escalation started": 1}
    assert m["themes"]["from_escalations"]["theme"]["counts"]["smart_plans"] == 1
    assert m["themes"]["from_midway_reviews"]["theme"]["counts"]["plan_progress"] == 1
    assert [row["Recommendation"] for row in rows(m["recommendations"])] == ["Review plans after every placement move"]
    report["period"] = {"from": "2026-04-01", "to": "2027-03-31", "kind": "year", "label": "Financial year 2026/27"}
    page = render(report, "markdown")
    assert page.startswith("# IRO and CP chair service annual report")  # the 'annual' layout
    assert "Review plans after every placement move" in page
