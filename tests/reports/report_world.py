"""A small, hand-dated October 2026 driven through the real Engine with the bundled configuration.

Every number the report tests expect is worked out by hand in the comments below.

Audits (allocated Thu 1 Oct 2026; lead and peer due Thu 22 Oct; moderation due Wed 28 Oct):
  A1 assessment_1  lead TM-1 (Sat 10 Oct, on time)  peer P-1 (Mon 12 Oct, on time)  both Good -> final 12 Oct
  A2 assessment_1  lead TM-2 (Tue 20 Oct, on time)  peer P-1 (Mon 26 Oct, LATE)     Good vs RI -> moderated
                   by HOS-1 on Tue 27 Oct (on time) to Requires improvement -> final 27 Oct
  A3 assessment_2  lead TM-3 (Fri 23 Oct, LATE)     peer P-1 (Thu 15 Oct, on time)  both Inadequate -> final 23 Oct,
                   inadequate_review (Head of Service for assessment: HOS-02): oversight comment due Wed 28 Oct
                   (3 working days: Mon 26, Tue 27, Wed 28; given Mon 26 Oct, on time), 6-week review due Fri 4 Dec
                   (done Thu 10 Dec, LATE), re-audit due Sat 23 Jan 2027 -> Mon 25 Jan 2027 (done Wed 20 Jan 2027,
                   on time, improved: graded Requires improvement, one step up from Inadequate)
  A4 assessment_2  lead TM-4 (Mon 5 Oct, on time)   peer P-4 -> reallocated to P-5 on Wed 14 Oct, never submits (breached)
Complaints (Stage 1 counts from receipt, SI 2006/1738 reg 14):
  C1 received Thu 1 Oct (due Thu 15 Oct), Stage 1 begun Fri 2 Oct, extended on Sat 10 Oct to 20 working days
     (due Thu 29 Oct), answered Wed 28 Oct: on time, extended
  C2 received Mon 5 Oct, Stage 1 begun Mon 5 Oct (due Mon 19 Oct), answered Wed 21 Oct: LATE
  C3 received Wed 7 Oct (due Wed 21 Oct), resolved at the early resolution conversation on Thu 8 Oct: on time
Escalations:
  E1 IRO IRO-1 raised Thu 1 Oct, escalated to the team manager Mon 5 Oct (response due Mon 12 Oct), answered
     Thu 8 Oct, resolved Fri 9 Oct (resolved_team_manager, within 20 working days)
  E2 CP chair CPC-1 raised Fri 2 Oct, resolved informally Tue 6 Oct
  E3 IRO IRO-2 raised Mon 5 Oct, escalated straight to the service manager Tue 6 Oct (due Tue 13 Oct), no answer
     (breached), closed unresolved Tue 20 Oct
Surveys (sent Thu 1 / Fri 2 Oct):
  S1 parent, answered Mon 5 Oct rating 5;  S2 young person, answered Thu 8 Oct rating 2;
  S3 parent, no answer (closes after 20 working days);  S4 parent, declined Sat 3 Oct
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from engine import Engine

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
DOMAINS = ["voice_of_child", "assessments", "quality_of_plans", "management_oversight", "partnership_working", "embracing_diversity"]
OCT = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))


def grades(overall: str, **domains: str) -> dict:
    g = dict.fromkeys(DOMAINS, overall)
    g.update(domains)
    return {"overall": overall, "domains": g}


QA = {"actor": "QA-1", "roles": ["qa_team"]}


def _audit(eng, case, team, lead, peer, sw):
    return eng.start(
        "case_audit",
        {"case_id": case, "team": team, "service": "assessment", "lead_auditor": lead, "peer_auditor": peer, "social_worker": sw},
        at="2026-10-01T09:00",
        **QA,
    ).id


def _peer_ready(eng, aid, peer, day):
    eng.fire(aid, "record_worker_meeting", {"held_on": day}, actor=peer, at=f"{day}T09:00")
    eng.fire(aid, "record_views", {"child": {"obtained": False, "reason": "too young to say"},
                                   "parents_carers": {"obtained": False, "reason": "did not reply"}}, actor=peer, at=f"{day}T09:30")


def build_world(definitions, store=None) -> Engine:
    eng = Engine(definitions, store=store)
    a1 = _audit(eng, "C-0001", "assessment_1", "TM-1", "P-1", "SW-1")
    a2 = _audit(eng, "C-0002", "assessment_1", "TM-2", "P-1", "SW-2")
    a3 = _audit(eng, "C-0003", "assessment_2", "TM-3", "P-1", "SW-3")
    a4 = _audit(eng, "C-0004", "assessment_2", "TM-4", "P-4", "SW-4")
    eng.fire(a4, "submit_lead_audit", grades("good"), actor="TM-4", at="2026-10-05T10:00")
    eng.fire(a1, "submit_lead_audit", grades("good"), actor="TM-1", at="2026-10-10T10:00")
    _peer_ready(eng, a1, "P-1", "2026-10-12")
    eng.fire(a1, "submit_peer_audit", grades("good"), actor="P-1", at="2026-10-12T15:00")
    eng.fire(a1, "record_in_case_system", {"reference": "M-1", "findings": "Good work", "actions": []}, at="2026-10-14T10:00", **QA)
    eng.fire(a4, "change_auditor", {"which": "peer", "person": "P-5", "reason": "P-4 is on leave"}, at="2026-10-14T11:00", **QA)
    _peer_ready(eng, a3, "P-1", "2026-10-15")
    eng.fire(a3, "submit_peer_audit", grades("inadequate"), actor="P-1", at="2026-10-15T15:00")
    eng.fire(a2, "submit_lead_audit", grades("good"), actor="TM-2", at="2026-10-20T10:00")
    eng.fire(a3, "submit_lead_audit", grades("inadequate"), actor="TM-3", at="2026-10-23T10:00")
    _peer_ready(eng, a2, "P-1", "2026-10-26")
    eng.fire(a2, "submit_peer_audit", grades("requires_improvement", voice_of_child="requires_improvement"),
             actor="P-1", at="2026-10-26T15:00")
    (mod,) = [i.id for i in eng.instances("moderation")]
    eng.fire(mod, "allocate_moderator", {"moderator": "HOS-1", "moderator_role": "head_of_service"}, at="2026-10-26T16:00", **QA)
    eng.fire(mod, "record_moderation", {**grades("requires_improvement", voice_of_child="inadequate", assessments="good"),
                                        "action_plan": [{"action": "Update the plan", "owner": "TM-2", "due_by": "2026-11-30"}]},
             actor="HOS-1", roles=["head_of_service"], at="2026-10-27T12:00")

    # complaints
    c1 = eng.start("complaint", {"received_on": "2026-10-01", "case_id": "C-0101"}, at="2026-10-01T09:00", **QA).id
    eng.fire(c1, "begin_stage1", {"handler": "QA-2"}, at="2026-10-02T09:00", **QA)
    eng.fire(c1, "extend_stage1", {"reason": "an advocate is needed"}, at="2026-10-10T09:00", **QA)
    eng.fire(c1, "respond_stage1", {"outcome": "partly_upheld", "summary": "Apology and a new plan"}, at="2026-10-28T09:00", **QA)
    c2 = eng.start("complaint", {"received_on": "2026-10-05", "case_id": "C-0102"}, at="2026-10-05T09:00", **QA).id
    eng.fire(c2, "begin_stage1", {"handler": "QA-2"}, at="2026-10-05T10:00", **QA)
    eng.fire(c2, "respond_stage1", {"outcome": "upheld", "summary": "Visits were missed"}, at="2026-10-21T09:00", **QA)
    c3 = eng.start("complaint", {"received_on": "2026-10-07", "case_id": "C-0103"}, at="2026-10-07T09:00", **QA).id
    eng.fire(c3, "record_early_resolution", {"resolved": True}, at="2026-10-08T09:00", actor="TM-9", roles=["team_manager"])

    # escalations
    e1 = eng.start("iro_escalation", {"case_id": "C-0201", "raised_by": "IRO-1", "concern": "The care plan is late"},
                   at="2026-10-01T09:00", actor="IRO-1", roles=["iro_service"]).id
    eng.fire(e1, "escalate", {"to": "team_manager", "reason": "No reply from the worker"}, actor="IRO-1", at="2026-10-05T09:00")
    eng.fire(e1, "record_response", {"response": "Plan will be done this week"}, actor="TM-1", roles=["team_manager"], at="2026-10-08T09:00")
    eng.fire(e1, "resolve", {"resolution": "The plan is now in place"}, actor="IRO-1", at="2026-10-09T09:00")
    e2 = eng.start("cp_chair_escalation", {"case_id": "C-0202", "raised_by": "CPC-1", "concern": "Core group not held"},
                   at="2026-10-02T09:00", actor="CPC-1", roles=["cp_chair_service"]).id
    eng.fire(e2, "resolve", {"resolution": "Core group booked"}, actor="CPC-1", at="2026-10-06T09:00")
    e3 = eng.start("iro_escalation", {"case_id": "C-0203", "raised_by": "IRO-2", "concern": "Placement unstable"},
                   at="2026-10-05T09:00", actor="IRO-2", roles=["iro_service"]).id
    eng.fire(e3, "escalate", {"to": "service_manager", "reason": "Urgent: placement at risk"}, actor="IRO-2", at="2026-10-06T09:00")

    # surveys
    def survey(case, respondent, day):
        return eng.start("feedback_survey", {"case_id": case, "service": "assessment", "point": "assessment_completed",
                                             "respondent": respondent, "team": "assessment_1"}, at=f"{day}T09:00", **QA).id
    s1, s2 = survey("C-0301", "parent", "2026-10-01"), survey("C-0302", "young_person", "2026-10-01")
    survey("C-0303", "parent", "2026-10-02")  # S3: never answered
    s4 = survey("C-0304", "parent", "2026-10-02")
    eng.fire(s1, "record_response", {"rating": 5}, at="2026-10-05T09:00", **QA)
    eng.fire(s2, "record_response", {"rating": 2}, at="2026-10-08T09:00", **QA)
    eng.fire(s4, "decline", {}, at="2026-10-03T09:00", **QA)

    eng.advance("2026-10-20T08:00")
    eng.fire(e3, "close", {"outcome": "closed_unresolved", "reason": "The child moved placement"}, actor="IRO-2", at="2026-10-20T09:00")
    (review,) = [i.id for i in eng.instances("inadequate_review")]
    eng.fire(review, "record_oversight", {"comment": "Actions agreed with the team manager"}, actor="HOS-02", at="2026-10-26T09:00")
    eng.advance("2026-11-01T00:00")

    # Inadequate review of A3: 6-week review late, re-audit on time
    eng.advance("2026-12-10T08:00")
    eng.fire(review, "record_six_week_review", {"actions_progress": "on_track"}, actor="HOS-02", at="2026-12-10T09:00")
    eng.advance("2027-01-20T08:00")
    eng.fire(review, "record_re_audit", {"outcome": "improved", "actions_completed": True, **grades("requires_improvement")},
             actor="SM-1", roles=["senior_manager"], at="2027-01-20T09:00")
    eng.advance("2027-02-01T00:00")
    return eng
