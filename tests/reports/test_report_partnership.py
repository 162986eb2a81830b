"""Serious incidents and rapid reviews, escalations between partner agencies and multi-agency audit
proposals in the quarterly report, on a small hand-dated world driven through the real Engine.

Every date worked out by hand on the England calendar (Christmas 2026: Fri 25, Mon 28 Dec):
  SI-A  aware Mon 2 Nov 2026: the Panel due Mon 9 Nov (5 working days), notified Thu 5 Nov (on time);
        rapid review due Mon 23 Nov (15), completed Fri 20 Nov (on time): an LCSPR, themes [neglect,
        information_sharing], one action for health due Fri 18 Dec, done Thu 17 Dec (on time). The LCSPR
        is still under way at the end of December.
  SI-B  aware Wed 16 Dec 2026: the Panel due Wed 23 Dec (Thu 17, Fri 18, Mon 21, Tue 22, Wed 23); notified
        Tue 29 Dec (late). Its rapid review is due Mon 11 Jan 2027, after the quarter.
  SI-C  aware Mon 2 Nov, not notifiable (Wed 4 Nov): both clocks cancelled.
  PE-1  health about children's social care, Mon 2 Nov, resolved between the practitioners Wed 4 Nov.
  PE-2  education about children's social care, Mon 2 Nov: stage 1 due Thu 5 Nov, escalated that day (on
        time); stage 2 due Tue 10 Nov, escalated Wed 11 Nov (late); stage 3 due Wed 18 Nov, escalated Tue 17
        Nov (on time); stage 4 due Tue 1 Dec, decided Mon 30 Nov (on time) by the Q&E chair, who proposes a
        multi-agency audit.
  PE-3  police about health, Mon 2 Nov, withdrawn Tue 3 Nov.
  MA-1  proposed by a safeguarding lead Mon 2 Nov, accepted (medium) at the meeting of Thu 10 Dec.
  MA-2  proposed by the business unit Mon 2 Nov, declined Tue 17 Nov.
  MA-3  proposed from PE-2 on Mon 30 Nov, no decision yet.
"""

from __future__ import annotations

import datetime as dt

import pytest

from engine import Engine
from engine.reports import compute_report, render

Q4 = (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
DCS = {"actor": "DCS-01", "roles": ["director"]}
SP = {"actor": "SP-01", "roles": ["safeguarding_partners"]}
QE = {"actor": "QE-01", "roles": ["q_and_e_subgroup"]}


@pytest.fixture(scope="module")
def partnership(definitions):
    eng = Engine(definitions)
    si_a = eng.start("serious_incident", {"incident_ref": "SI-A", "aware_on": "2026-11-02"}, at="2026-11-02T16:00", **DCS).id
    si_c = eng.start("serious_incident", {"incident_ref": "SI-C"}, at="2026-11-02T16:30", **DCS).id
    eng.fire(si_c, "record_not_notifiable", {"reason": "Accidental injury, no neglect suspected"}, at="2026-11-04T10:00", **DCS)
    eng.fire(si_a, "notify_panel", {"ofsted_notified": True, "partners_told": True}, at="2026-11-05T10:00", **DCS)

    def escalation(who, agency, with_agency, themes):
        return eng.start("partner_escalation", {"raised_by": who, "raised_by_agency": agency, "with_agency": with_agency,
                                                "concern": "A disagreement", "themes": themes},
                         actor=who, roles=["partner_practitioner"], at="2026-11-02T10:00").id

    pe1 = escalation("HV-01", "health", "childrens_social_care", ["threshold_decision"])
    pe2 = escalation("SCH-01", "education", "childrens_social_care", ["strategy_discussion", "information_sharing"])
    pe3 = escalation("PC-01", "police", "health", ["information_sharing"])
    ma1 = eng.start("multi_agency_audit", {"topic": "Children missing education"}, actor="DSL-07", roles=["safeguarding_lead"],
                    at="2026-11-02T11:00").id
    ma2 = eng.start("multi_agency_audit", {"topic": "Transitions"}, actor="HSCP-01", roles=["partnership_business_unit"],
                    at="2026-11-02T11:30").id
    eng.fire(pe3, "close", {"outcome": "withdrawn", "reason": "Records arrived"}, actor="PC-01", at="2026-11-03T10:00")
    eng.fire(pe1, "resolve", {"finding": "concern_accepted", "resolution": "Assessment opened"}, actor="HV-01", at="2026-11-04T10:00")
    eng.fire(pe2, "escalate", {"reason": "No reply", "to_person": "LM-01"}, actor="SCH-01", at="2026-11-05T10:00")
    eng.advance("2026-11-11T09:00")
    eng.fire(pe2, "escalate", {"reason": "Still no reply", "to_person": "DSL-01"}, actor="SCH-01", at="2026-11-11T10:00")
    eng.fire(pe2, "escalate", {"reason": "Leads disagree"}, actor="DSL-01", at="2026-11-17T10:00")
    eng.fire(ma2, "decline", {"reason": "Covered by the adult board's audit"}, at="2026-11-17T16:00", **QE)
    eng.fire(si_a, "complete_rapid_review", {
        "decision": "lcspr", "reason": "Learning for every agency", "themes": ["neglect", "information_sharing"],
        "actions": [{"agency": "health", "action": "Brief health visitors", "owner": "HEALTH-01", "due_by": "2026-12-18"}],
    }, at="2026-11-20T14:00", **SP)
    eng.fire(pe2, "resolve", {"finding": "original_decision_upheld", "resolution": "The decision stands",
                              "propose_audit_topic": "Schools in strategy discussions"},
             actor="QEC-01", roles=["q_and_e_chair"], at="2026-11-30T10:00")
    eng.fire(ma1, "accept", {"priority": "medium", "decided_on": "2026-12-10"}, at="2026-12-11T10:00", **QE)
    si_b = eng.start("serious_incident", {"incident_ref": "SI-B", "aware_on": "2026-12-16"}, at="2026-12-16T12:00", **DCS).id
    (action,) = [a.id for a in eng.instances("audit_action")]
    eng.fire(action, "complete", {"evidence": "Briefing held"}, actor="HEALTH-01", at="2026-12-17T10:00")
    eng.advance("2026-12-29T09:00")
    eng.fire(si_b, "notify_panel", {"ofsted_notified": True, "partners_told": True}, at="2026-12-29T10:00", **DCS)
    eng.advance("2027-01-04T00:00")
    return eng.store


@pytest.fixture(scope="module")
def quarter(partnership, definitions):
    return compute_report(partnership, definitions, start=Q4[0], end=Q4[1], trend=False)["metrics"]


def _counts(distribution):
    return {k: n for k, n in distribution["counts"].items() if n}


def test_rapid_reviews_in_the_quarter(quarter):
    m = quarter["rapid_reviews"]
    assert (m["notified"], m["not_notified"]) == (2, 1)
    assert m["completed"] == {"local child safeguarding practice review": 1}
    assert m["reviews_in_progress"] == {"local child safeguarding practice review": 1}
    assert m["reviews_concluded"] == {}
    notification, review = m["timeliness"]["panel_notification"], m["timeliness"]["rapid_review"]
    assert (notification["due"], notification["met_on_time"], notification["met_late"]) == (2, 1, 1)
    assert (review["due"], review["met_on_time"], review["open"]) == (1, 1, 0)  # SI-B's falls due in January
    assert _counts(m["themes"]["theme"]) == {"neglect": 1, "information_sharing": 1}
    assert m["themes"]["theme"]["counts"]["escalation"] == 0  # every term of the vocabulary is listed
    assert m["actions_raised"] == {"rapid_review": 1}
    assert m["actions_outstanding"] == {}  # done on Thu 17 Dec
    assert (m["actions_timeliness"]["due"], m["actions_timeliness"]["met_on_time"]) == (1, 1)


def test_escalations_between_partner_agencies_for_the_q_and_e_sub_group(quarter):
    m = quarter["partner_escalations"]
    assert m["raised"] == {"health": 1, "education": 1, "police": 1}
    assert m["with_agency"] == {"childrens_social_care": 2, "health": 1}
    assert _counts(m["highest_stage"]["stage"]) == {"1 practitioners": 2, "4 partnership": 1}
    assert _counts(m["outcomes"]["outcome"]) == {"resolved_practitioners": 1, "resolved_partnership": 1, "withdrawn": 1}
    assert _counts(m["findings"]["finding"]) == {"concern_accepted": 1, "original_decision_upheld": 1}
    assert _counts(m["themes"]["theme"]) == {"information_sharing": 2, "threshold_decision": 1, "strategy_discussion": 1}
    stages = m["stage_timeliness"]
    assert (stages["stage1"]["due"], stages["stage1"]["met_on_time"]) == (3, 3)
    assert (stages["stage2"]["due"], stages["stage2"]["met_late"]) == (1, 1)
    assert (stages["stage3"]["met_on_time"], stages["stage4"]["met_on_time"]) == (1, 1)


def test_multi_agency_proposals_and_decisions(quarter):
    m = quarter["multi_agency_audits"]
    assert m["proposed"] == 3  # two proposed directly, one from the partner escalation
    assert _counts(m["decisions"]["decision"]) == {"accepted, medium priority": 1, "declined": 1}
    assert m["selected"] == 1
    decision = m["timeliness"]["q_and_e_decision"]
    assert (decision["due"], decision["met_on_time"]) == (2, 2)  # MA-3's decision is due in January


def test_the_quarterly_report_has_the_sections(partnership, definitions):
    md = render(compute_report(partnership, definitions, start=Q4[0], end=Q4[1], trend=False), "markdown")
    reviews = md.split("\n## Rapid reviews and learning reviews\n")[1].split("\n## ")[0]
    assert "Serious incidents notified to the Panel: **2**" in reviews
    assert "| Recognising and responding to neglect | 1 | 100.0% |" in reviews
    partners = md.split("\n## Escalations from partner agencies (for the Q&E sub-group)\n")[1].split("\n## ")[0]
    assert "| Original decision upheld | 1 | 50.0% |" in partners
