"""Learning from audit in the reports: themes by service and team, good practice, exemplars, the action
register and supervision, on a small hand-dated world driven through the real Engine.

Three audits allocated Thu 1 Oct 2026 (every date worked out by hand):
  L1 assessment_1  lead TM-1 Mon 5 Oct themes [chronology, direct_work], good practice; peer P-1 Mon 12 Oct
                   themes [chronology]; both Good -> final Mon 12 Oct. Recorded Wed 14 Oct with one action for
                   SW-1 due Fri 30 Oct, done Thu 29 Oct (on time). Supervision due 20 working days after Wed 14
                   Oct: Thu 15 (1), Fri 16 (2), 19-23 Oct (3-7), 26-30 Oct (8-12), 2-6 Nov (13-17), Mon 9 (18),
                   Tue 10 (19), Wed 11 Nov (20) -> Wed 11 Nov; recorded Mon 9 Nov (on time).
  L2 assessment_2  both Outstanding, lead themes [smart_plans], peer themes [smart_plans, chronology] -> final
                   Tue 13 Oct, an exemplar (Outstanding). Recorded Thu 15 Oct, no actions. Supervision due: Fri
                   16 (1), 19-23 Oct (2-6), 26-30 Oct (7-11), 2-6 Nov (12-16), 9-12 Nov (17-20) -> Thu 12 Nov;
                   recorded Mon 16 Nov (late).
  L3 mash_1        lead TM-3 Good, themes [information_sharing]; peer P-3 voice of the child Requires
                   improvement, themes [direct_work] -> moderated by HOS-9 on Tue 27 Oct: themes [direct_work,
                   family_network], good practice, one action for SW-3 due Fri 13 Nov (never done: overdue from
                   the end of Fri 13 Nov) and an organisational finding for HOS-9 timetabled Fri 18 Dec (done Thu
                   17 Dec, on time). Recorded Fri 30 Oct; the QA team closes it without a supervision discussion
                   on Fri 20 Nov.
Themes per audit (each once per audit): L1 {chronology, direct_work}; L2 {smart_plans, chronology};
L3 {information_sharing, direct_work, family_network} -> chronology 2, direct_work 2, the others 1, of 3 audits.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from report_world import QA, grades

from engine import Engine
from engine.reports import compute_report, render

OCT = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
NOV = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
Q3 = (dt.date(2026, 10, 1), dt.date(2026, 12, 31))


def _ready(eng, aid, peer, day):
    eng.fire(aid, "record_worker_meeting", {"held_on": day}, actor=peer, at=f"{day}T09:00")
    eng.fire(aid, "record_views", {"child": {"obtained": False, "reason": "too young to say"},
                                   "parents_carers": {"obtained": False, "reason": "did not reply"}}, actor=peer, at=f"{day}T09:30")


@pytest.fixture(scope="module")
def learning(definitions):
    eng = Engine(definitions)

    def audit(case, team, service, lead, peer, sw):
        return eng.start("case_audit", {"case_id": case, "team": team, "service": service, "lead_auditor": lead,
                                        "peer_auditor": peer, "social_worker": sw}, at="2026-10-01T09:00", **QA).id

    l1 = audit("C-1", "assessment_1", "assessment", "TM-1", "P-1", "SW-1")
    l2 = audit("C-2", "assessment_2", "assessment", "TM-2", "P-2", "SW-2")
    l3 = audit("C-3", "mash_1", "mash", "TM-3", "P-3", "SW-3")
    eng.fire(l1, "submit_lead_audit", {**grades("good"), "themes": ["chronology", "direct_work"],
                                       "good_practice": "Direct work with the child shaped the plan"}, actor="TM-1", at="2026-10-05T10:00")
    eng.fire(l2, "submit_lead_audit", {**grades("outstanding"), "themes": ["smart_plans"]}, actor="TM-2", at="2026-10-06T10:00")
    eng.fire(l3, "submit_lead_audit", {**grades("good"), "themes": ["information_sharing"]}, actor="TM-3", at="2026-10-07T10:00")
    _ready(eng, l1, "P-1", "2026-10-12")
    eng.fire(l1, "submit_peer_audit", {**grades("good"), "themes": ["chronology"]}, actor="P-1", at="2026-10-12T15:00")
    _ready(eng, l2, "P-2", "2026-10-13")
    eng.fire(l2, "submit_peer_audit", {**grades("outstanding"), "themes": ["smart_plans", "chronology"]}, actor="P-2",
             at="2026-10-13T15:00")
    eng.fire(l1, "record_in_case_system", {"reference": "M-1", "findings": "Good direct work",
                                           "actions": [{"action": "Share the direct work", "owner": "SW-1", "due_by": "2026-10-30"}]},
             at="2026-10-14T10:00", **QA)
    eng.fire(l2, "record_in_case_system", {"reference": "M-2", "findings": "Outstanding planning", "actions": []},
             at="2026-10-15T10:00", **QA)
    _ready(eng, l3, "P-3", "2026-10-19")
    eng.fire(l3, "submit_peer_audit", {**grades("good", voice_of_child="requires_improvement"), "themes": ["direct_work"]},
             actor="P-3", at="2026-10-19T15:00")
    (mod,) = [i.id for i in eng.instances("moderation")]
    eng.fire(mod, "record_moderation", {
        **grades("good", voice_of_child="requires_improvement"),
        "action_plan": [{"action": "Record the child's views in the plan", "owner": "SW-3", "due_by": "2026-11-13"}],
        "themes": ["direct_work", "family_network"],
        "good_practice": "Strong joint working with the school",
        "organisational_findings": [{"finding": "Strategy discussions are not minuted consistently", "owner": "HOS-9",
                                     "timetable": "2026-12-18"}],
    }, actor="HOS-9", roles=["head_of_service"], at="2026-10-27T12:00")
    (action_l1,) = [a.id for a in eng.instances("audit_action") if a.data["source"] == "case_audit"]
    eng.fire(action_l1, "complete", {"evidence": "Shared at the team meeting"}, actor="SW-1", at="2026-10-29T10:00")
    eng.fire(l3, "record_in_case_system", {"reference": "M-3", "findings": "Good joint work", "actions": []},
             at="2026-10-30T10:00", **QA)
    eng.advance("2026-11-09T08:00")
    eng.fire(l1, "record_supervision_discussion", {"held_on": "2026-11-09", "learning_needs": "Analysis of risk",
                                                   "support_agreed": "Risk workshop"}, actor="TM-1", at="2026-11-09T15:00")
    eng.advance("2026-11-16T08:00")
    eng.fire(l2, "record_supervision_discussion", {"held_on": "2026-11-16", "learning_needs": "none",
                                                   "support_agreed": "Present the plan at the practice forum"}, actor="TM-2",
             at="2026-11-16T15:00")
    eng.fire(l3, "close_without_supervision", {"reason": "The worker has left the council"}, at="2026-11-20T10:00", **QA)
    (finding,) = [a.id for a in eng.instances("audit_action") if a.data["source"] == "organisational_finding"]
    eng.advance("2026-12-17T08:00")
    eng.fire(finding, "complete", {"evidence": "A minute template agreed with the police"}, actor="HOS-9", at="2026-12-17T10:00")
    eng.advance("2027-01-05T00:00")
    return eng.store


def report(store, definitions, period, **kw):
    return compute_report(store, definitions, start=period[0], end=period[1], trend=False, **kw)


def test_themes_are_counted_once_per_audit_overall_by_service_and_by_team(learning, definitions):
    themes = report(learning, definitions, OCT)["metrics"]["audit_themes"]
    overall = themes["overall"]["theme"]
    assert overall["total"] == 3  # audits
    assert {k: n for k, n in overall["counts"].items() if n} == {"chronology": 2, "direct_work": 2, "smart_plans": 1,
                                                                 "information_sharing": 1, "family_network": 1}
    assert overall["counts"]["case_recording"] == 0  # every term of the vocabulary is listed
    assert overall["pct"]["chronology"] == 66.7
    by_service = {s: {k: n for k, n in d["theme"]["counts"].items() if n} for s, d in themes["by_service"].items()}
    assert by_service == {"assessment": {"chronology": 2, "direct_work": 1, "smart_plans": 1},
                          "mash": {"direct_work": 1, "family_network": 1, "information_sharing": 1}}
    by_team = {t: d["theme"]["total"] for t, d in themes["by_team"].items()}
    assert by_team == {"assessment_1": 1, "assessment_2": 1, "mash_1": 1}


def test_good_practice_and_exemplars_are_listed(learning, definitions):
    m = report(learning, definitions, OCT)["metrics"]
    examples = m["good_practice_examples"]
    assert examples["columns"] == ["Case", "Service", "Team", "Final grade", "From", "Good practice"]
    assert examples["rows"] == [
        ["C-1", "Assessment Teams", "assessment_1", "Good", "lead auditor", "Direct work with the child shaped the plan"],
        ["C-3", "MASH", "mash_1", "Good", "moderator", "Strong joint working with the school"],
    ]
    assert m["exemplars"]["rows"] == [["C-2", "Assessment Teams", "assessment_2", "SW-2", "Outstanding", "graded Outstanding", "", "2026-10-13"]]


def test_actions_raised_outstanding_and_overdue_by_service_and_team(learning, definitions):
    october = report(learning, definitions, OCT)["metrics"]["actions"]
    assert october["raised"] == {"case_audit": 1, "moderation": 1, "organisational_finding": 1}
    # at the end of October: L1's action done on 29 Oct; L3's two open, none past its date
    assert october["outstanding_by_service"] == {"mash": 2}
    assert october["outstanding_by_team"] == {"mash_1": 1, "unassigned": 1}  # the organisational finding has no team
    assert october["overdue_by_team"] == {}
    assert october["completed_on_time_pct"] == {"numerator": 1, "denominator": 1, "pct": 100.0}
    november = report(learning, definitions, NOV)["metrics"]["actions"]
    assert november["overdue_by_service"] == {"mash": 1} and november["overdue_by_team"] == {"mash_1": 1}
    assert november["completed_on_time_pct"] == {"numerator": 0, "denominator": 1, "pct": 0.0}
    quarter = report(learning, definitions, Q3)
    assert quarter["metrics"]["actions"]["completed_on_time_pct"]["pct"] == 66.7  # 2 of 3 on time
    kpi = quarter["metrics"]["kpis"]["indicators"]["audit_actions_on_time"]
    assert (kpi["numerator"], kpi["denominator"], kpi["value"], kpi["status"]) == (2, 3, 66.7, "red")


def test_supervision_recorded_on_time_and_what_was_agreed(learning, definitions):
    november = report(learning, definitions, NOV)["metrics"]
    assert november["supervision"]["on_time_pct"] == {"numerator": 1, "denominator": 2, "pct": 50.0}  # L3 closed without: left out
    kpi = november["kpis"]["indicators"]["supervision_recorded_on_time"]
    assert (kpi["numerator"], kpi["denominator"], kpi["value"]) == (1, 2, 50.0)
    timeliness = november["supervision"]["timeliness"]["supervision_discussion"]
    assert (timeliness["met_on_time"], timeliness["met_late"], timeliness["cancelled"]) == (1, 1, 1)
    assert november["supervision"]["records"]["rows"] == [
        ["C-1", "assessment_1", "SW-1", "2026-11-09", "Analysis of risk", "Risk workshop"],
        ["C-2", "assessment_2", "SW-2", "2026-11-16", "none", "Present the plan at the practice forum"],
    ]


def test_the_monthly_briefing_shows_the_themes_examples_exemplars_and_actions(learning, definitions):
    md = render(report(learning, definitions, OCT), "markdown")
    themes = md.split("\n## Audit themes\n")[1].split("\n## ")[0]
    assert "| Chronology up to date and used | 2 | 66.7% |" in themes
    assert "| Case recording timely and clear | 0 | 0.0% |" in themes
    assert "| Assessment | 2 | Chronology up to date and used 2; Direct work with the child 1; Plans specific, measurable and time-bound 1 |" in themes
    assert "| Mash 1 | 1 | Direct work with the child 1; Family network and relationships 1; Information shared with partners 1 |" in themes
    examples = md.split("## Good practice examples and exemplars")[1].split("\n## ")[0]
    assert "| C-3 | MASH | mash_1 | Good | moderator | Strong joint working with the school |" in examples
    assert "| C-2 | Assessment Teams | assessment_2 | SW-2 | Outstanding | graded Outstanding | - | 2026-10-13 |" in examples
    loop = md.split("## Closing the loop - actions and supervision")[1].split("\n## ")[0]
    assert "Actions done by their date (%): **100.0% (1 of 1)**" in loop
    assert "| Organisational finding | 1 |" in loop
    page = render(report(learning, definitions, OCT), "html")
    assert "Strong joint working with the school" in page and "Chronology up to date and used" in page


def test_an_unknown_vocabulary_or_column_in_a_report_is_an_error(definitions, tmp_path):
    from engine import ConfigError
    from engine.reports.definition import load_report

    bad = tmp_path / "bad.yaml"
    source = (Path(definitions.root) / "reports" / "qa_report.yaml").read_text(encoding="utf-8")
    bad.write_text(source.replace("    vocabulary: themes\n", "    vocabulary: theme\n", 1)
                   .replace("      From: item.by", "      From: itme.by"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_report(definitions, bad)
    messages = [(p.code, p.message) for p in caught.value.problems]
    assert any(code == "unknown-vocabulary" and message.startswith("no vocabulary 'theme' in config/rules; did you mean 'themes'? (known: ")
               and "themes)" in message for code, message in messages)
    assert any(code == "expression-unknown-name" and "itme" in message for code, message in messages)
