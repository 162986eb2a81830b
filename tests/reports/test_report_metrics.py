"""Each metric of the bundled QA report on the hand-dated October 2026 of conftest.py, with known answers."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from report_world import OCT, build_world

from engine import Engine, MemoryStore, UsageError
from engine.reports import compare_reports, compute_report, monthly_trend
from engine.reports.metrics import pct, rag


@pytest.fixture(scope="module")
def october(world, definitions):
    return compute_report(world.store, definitions, start=OCT[0], end=OCT[1], capacity={"P-1": 2})


def test_report_has_the_promised_shape(october):
    assert october["period"] == {"from": "2026-10-01", "to": "2026-10-31", "kind": "month", "label": "October 2026"}
    for key in ("audits_allocated", "audits_completed", "audits_on_time_pct", "moderation_rate_pct", "grade_distribution",
                "inadequate_audits", "complaints", "escalations", "surveys", "workload", "kpis"):
        assert key in october["metrics"], key
    assert october["warnings"] == []


def test_audit_counts_and_timeliness(october):
    m = october["metrics"]
    assert m["audits_allocated"] == 4
    assert m["audits_completed"] == 3  # A1 12 Oct, A2 27 Oct (moderated), A3 23 Oct
    assert m["audits_recorded"] == 1  # only A1 was recorded on the case system
    assert m["audits_withdrawn"] == 0
    # lead: A1, A2, A4 on time, A3 late; peer: A1, A3 on time, A2 late, A4 never (breached) -> 5 of 8
    assert m["audits_on_time_pct"] == 62.5
    lead = m["audit_deadlines"]["lead_submission"]
    assert (lead["due"], lead["met_on_time"], lead["met_late"], lead["breached"], lead["on_time_pct"]) == (4, 3, 1, 0, 75.0)
    peer = m["audit_deadlines"]["peer_submission"]
    assert (peer["due"], peer["met_on_time"], peer["met_late"], peer["breached"], peer["late"], peer["on_time_pct"]) == (4, 2, 1, 1, 2, 50.0)
    assert m["audit_deadlines"]["moderation_due"]["met_on_time"] == 1
    # A1 recorded 14 Oct (due 19 Oct); A3 final Fri 23 Oct, due Fri 30 Oct, never recorded; A2's falls due in November
    record = m["audit_deadlines"]["case_system_record"]
    assert (record["due"], record["met_on_time"], record["breached"]) == (2, 1, 1)


def test_deadline_breaches_by_team(october):
    by_team = october["metrics"]["deadline_breaches_by_team"]
    assert set(by_team) == {"assessment_1", "assessment_2"}
    # assessment_1: A1 lead, peer, record; A2 lead, peer (late), moderation -> 6 due, 1 met late
    assert (by_team["assessment_1"]["due"], by_team["assessment_1"]["met_late"], by_team["assessment_1"]["breached"]) == (6, 1, 0)
    # assessment_2: A3 lead (late), peer, record (breached), Inadequate oversight comment (Wed 28 Oct, on time);
    # A4 lead, peer (breached) -> 6 due
    assert (by_team["assessment_2"]["due"], by_team["assessment_2"]["met_late"], by_team["assessment_2"]["breached"]) == (6, 1, 2)


def test_moderation_rate_and_changes(october):
    m = october["metrics"]
    assert m["moderation_rate_pct"] == 33.3  # A1, A2, A3 had both submissions; A2 was moderated
    lead, peer = m["moderation_changes"]["lead"], m["moderation_changes"]["peer"]
    assert (lead["total"], lead["lowered"], lead["raised"], lead["unchanged"]) == (1, 1, 0, 0)
    assert lead["matrix"] == {"good": {"requires_improvement": 1}}
    assert (peer["total"], peer["unchanged"]) == (1, 1)


def test_grade_distribution_overall_and_per_domain(october):
    g = october["metrics"]["grade_distribution"]
    assert g["overall"]["counts"] == {"outstanding": 0, "good": 1, "requires_improvement": 1, "inadequate": 1}
    assert g["overall"]["total"] == 3
    assert g["overall"]["pct"]["good"] == 33.3
    assert g["overall"]["favourable_pct"] == 33.3
    assert set(g["domains"]) == {"voice_of_child", "assessments", "quality_of_plans", "management_oversight",
                                 "partnership_working", "embracing_diversity"}
    # the moderator set Voice of the Child to Inadequate and Assessments to Good on A2
    assert g["domains"]["voice_of_child"]["counts"] == {"outstanding": 0, "good": 1, "requires_improvement": 0, "inadequate": 2}
    assert g["domains"]["assessments"]["counts"]["good"] == 2
    assert g["domains"]["assessments"]["favourable_pct"] == 66.7


def test_inadequate_follow_up_due_done_late(world, definitions, october):
    assert october["metrics"]["inadequate_audits"]["graded_inadequate"] == 1
    assert october["metrics"]["inadequate_audits"]["follow_up"]["review_6_weeks"]["due"] == 0
    oversight = october["metrics"]["inadequate_audits"]["follow_up"]["oversight_comment"]
    assert (oversight["due"], oversight["met_on_time"]) == (1, 1)  # due Wed 28 Oct, given Mon 26 Oct
    dec = compute_report(world.store, definitions, start=dt.date(2026, 12, 1), end=dt.date(2026, 12, 31), trend=False)
    review = dec["metrics"]["inadequate_audits"]["follow_up"]["review_6_weeks"]
    assert (review["due"], review["done"], review["late"], review["met_late"]) == (1, 1, 1, 1)  # due Fri 4 Dec, done 10 Dec
    jan = compute_report(world.store, definitions, start=dt.date(2027, 1, 1), end=dt.date(2027, 1, 31), trend=False)
    re_audit = jan["metrics"]["inadequate_audits"]["follow_up"]["re_audit_3_months"]
    assert (re_audit["due"], re_audit["done"], re_audit["late"], re_audit["on_time_pct"]) == (1, 1, 0, 100.0)
    assert jan["metrics"]["inadequate_audits"]["re_audit_outcomes"]["outcome"]["counts"] == {"improved": 1}
    # the re-audit graded the case Requires improvement: one step up from the Inadequate audit
    change = jan["metrics"]["inadequate_audits"]["re_audit_grade_changes"]["audit"]
    assert (change["total"], change["raised"], change["lowered"], change["unchanged"]) == (1, 1, 0, 0)
    assert change["matrix"] == {"inadequate": {"requires_improvement": 1}}
    assert october["metrics"]["inadequate_audits"]["re_audit_grade_changes"]["audit"]["total"] == 0


def test_complaints_per_stage_with_timeliness_and_extensions(october):
    c = october["metrics"]["complaints"]
    assert c["received"] == 3
    assert c["furthest_stage"]["stage"]["counts"] == {"early resolution": 1, "stage 1": 2}
    stage1 = c["timeliness"]["stage1_response"]
    # C1 extended to 20 working days and answered in time; C2 answered two days late; C3 resolved at the
    # early resolution conversation, inside the Stage 1 time that runs from receipt (reg 14): on time
    assert (stage1["due"], stage1["met_on_time"], stage1["met_late"], stage1["extended"], stage1["on_time_pct"]) == (3, 2, 1, 1, 66.7)
    assert c["timeliness"]["early_resolution"]["met_on_time"] == 3
    assert c["stage1_outcomes"]["outcome"]["counts"] == {"partly_upheld": 1, "upheld": 1}
    assert c["corporate_received"] == 0


def test_escalations_per_stage_and_outcome(october):
    e = october["metrics"]["escalations"]
    assert e["raised"] == {"iro_escalation": 2, "cp_chair_escalation": 1}
    assert e["highest_stage"]["stage"]["counts"] == {"informal": 1, "1 team manager": 1, "2 service manager": 1}
    assert e["outcomes"]["outcome"]["counts"] == {"resolved_team_manager": 1, "resolved_informally": 1, "closed_unresolved": 1}
    assert e["resolved_within_20_working_days"] == {"numerator": 2, "denominator": 2, "pct": 100.0}
    assert e["stage_timeliness"]["stage1_response"]["met_on_time"] == 1
    # E3: no answer from the service manager; the clock stays breached after the escalation closed
    assert (e["stage_timeliness"]["stage2_response"]["breached"], e["stage_timeliness"]["stage2_response"]["on_time_pct"]) == (1, 0.0)


def test_survey_response_rates(october):
    s = october["metrics"]["surveys"]
    assert s["sent"] == 4
    assert s["response_rate"] == {"numerator": 2, "denominator": 4, "pct": 50.0}
    assert s["response_rate_by_respondent"]["parent"] == {"numerator": 1, "denominator": 3, "pct": 33.3}
    assert s["response_rate_by_respondent"]["young_person"]["pct"] == 100.0
    assert s["positive_pct"] == 50.0
    assert s["ratings"]["rating"]["counts"] == {"2": 1, "5": 1}


def test_workload_per_person_per_week_against_capacity(october):
    w = october["metrics"]["workload"]
    assert w["weeks"] == ["2026-09-28", "2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26"]
    assert w["capacity"] == 3.0
    p1 = w["people"]["P-1"]  # peer on A1 (to 12 Oct), A2 (to 26 Oct), A3 (to 15 Oct)
    assert p1["weeks"] == {"2026-09-28": 3, "2026-10-05": 3, "2026-10-12": 3, "2026-10-19": 1, "2026-10-26": 1}
    assert (p1["peak"], p1["average"], p1["capacity"], p1["weeks_over_capacity"]) == (3, 2.2, 2.0, 3)
    # A4's peer was reallocated from P-4 to P-5 on Wed 14 Oct: both had it that week
    assert w["people"]["P-4"]["weeks"] == {"2026-09-28": 1, "2026-10-05": 1, "2026-10-12": 1, "2026-10-19": 0, "2026-10-26": 0}
    assert w["people"]["P-5"]["weeks"] == {"2026-09-28": 0, "2026-10-05": 0, "2026-10-12": 1, "2026-10-19": 1, "2026-10-26": 1}
    assert w["people"]["TM-1"]["weeks"]["2026-10-12"] == 0  # submitted Sat 10 Oct
    assert w["people_over_capacity"] == 1 and w["peak"] == 3


def test_workload_capacity_for_everyone(world, definitions):
    r = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], capacity={"*": 1}, trend=False)
    w = r["metrics"]["workload"]
    assert w["capacity"] == 1.0
    assert w["people"]["P-1"]["weeks_over_capacity"] == 3
    assert w["people_over_capacity"] == 1


def test_kpis_with_rag_status(october):
    k = october["metrics"]["kpis"]["indicators"]
    assert (k["audits_completed_on_time"]["value"], k["audits_completed_on_time"]["status"]) == (62.5, "red")
    assert (k["moderation_rate"]["value"], k["moderation_rate"]["status"]) == (33.3, "amber")  # target 30, lower is better
    assert (k["survey_response_rate"]["value"], k["survey_response_rate"]["status"]) == (50.0, "green")
    assert (k["escalations_resolved_within_20_working_days"]["numerator"], k["escalations_resolved_within_20_working_days"]["denominator"]) == (2, 2)
    assert k["complaint_stage2_on_time"]["status"] == "no_data"
    assert k["share_inadequate"]["value"] == 33.3
    programmes = october["metrics"]["kpis"]["programmes"]
    assessment = programmes["assessment_2026_q3"]
    assert assessment["service"] == "assessment"
    assert assessment["kpis"]["moderation_rate"]["status"] == "amber"
    assert assessment["kpis"]["assessments_within_45_working_days"]["status"] == "not_imported"  # nothing imported into this store
    # care leavers had no audits: its rules KPI has no data
    assert programmes["care_leavers_2026_q3"]["kpis"]["survey_response_rate"]["status"] == "no_data"


@pytest.mark.parametrize(
    ("value", "target", "direction", "status"),
    [(90, 90, "higher_is_better", "green"), (85, 90, "higher_is_better", "amber"), (84.9, 90, "higher_is_better", "red"),
     (30, 30, "lower_is_better", "green"), (35, 30, "lower_is_better", "amber"), (35.1, 30, "lower_is_better", "red"),
     (None, 30, "lower_is_better", "no_data"), (10, None, "lower_is_better", "no_target")],
)
def test_rag(value, target, direction, status):
    assert rag(value, target, direction, 5) == status


def test_percentages_round_half_up_to_one_decimal():
    assert pct(2, 3) == 66.7 and pct(1, 3) == 33.3 and pct(1, 8) == 12.5 and pct(1, 16) == 6.3
    assert pct(0, 0) is None


def test_same_input_gives_identical_json(world, definitions):
    a = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], level="team")
    b = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], level="team")
    assert json.dumps(a) == json.dumps(b)
    again = compute_report(build_world(definitions).store, definitions, start=OCT[0], end=OCT[1], level="team")
    assert json.dumps(again) == json.dumps(a)
    assert list(a) == sorted(a)


def test_grouping_by_team_service_and_practitioner(world, definitions):
    team = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], level="team", trend=False)
    assert team["groups"] == ["assessment_1", "assessment_2", "unassigned"]
    t1, t2 = team["by_group"]["assessment_1"], team["by_group"]["assessment_2"]
    assert (t1["audits_allocated"], t1["audits_on_time_pct"], t1["moderation_rate_pct"]) == (2, 75.0, 50.0)
    assert (t2["audits_allocated"], t2["audits_on_time_pct"]) == (2, 50.0)
    assert team["by_group"]["unassigned"]["complaints"]["received"] == 3  # complaints carry no team
    assert "programmes" not in t1["kpis"]  # programme targets are for the department view
    service = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], level="service", trend=False)
    assert service["by_group"]["assessment"]["audits_allocated"] == 4
    worker = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], level="practitioner", trend=False)
    assert worker["by_group"]["SW-3"]["grade_distribution"]["overall"]["counts"]["inadequate"] == 1
    assert worker["by_group"]["IRO-1"]["escalations"]["raised"] == {"iro_escalation": 1}
    with pytest.raises(UsageError, match="unknown level"):
        compute_report(world.store, definitions, start=OCT[0], end=OCT[1], level="region")


def test_several_stores_add_up(definitions):
    one, two = build_world(definitions), build_world(definitions)
    both = compute_report([one.store, two.store], definitions, start=OCT[0], end=OCT[1], trend=False)
    assert both["metrics"]["audits_allocated"] == 8
    assert both["metrics"]["audits_on_time_pct"] == 62.5
    assert both["metrics"]["workload"]["people"]["P-1"]["peak"] == 6  # the same ids in both authorities
    assert both["source"]["stores"] == 2


def test_monthly_trend(world, definitions):
    trend = monthly_trend(world.store, definitions, start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 30), months_before=2)
    # the history starts in October: September, before any instance, is left out rather than shown as zeros
    assert min(i.created_at for i in world.store.find()).date() == dt.date(2026, 10, 1)
    assert trend["months"] == ["2026-10", "2026-11"]
    assert trend["in_period"] == [False, True]
    assert trend["series"]["audits_allocated"]["values"] == [4, 0]
    assert trend["series"]["audits_on_time_pct"]["values"] == [62.5, None]
    assert trend["series"]["audits_on_time_pct"]["target"] == 90.0
    assert trend["series"]["good_or_better_pct"]["values"][0] == 33.3
    q = compute_report(world.store, definitions, start=dt.date(2026, 10, 1), end=dt.date(2026, 12, 31))
    assert q["trend"]["months"] == ["2026-10", "2026-11", "2026-12"]
    assert q["trend"]["in_period"] == [True, True, True]
    later = compute_report(world.store, definitions, start=dt.date(2027, 1, 1), end=dt.date(2027, 3, 31))
    assert later["trend"]["months"][:4] == ["2026-10", "2026-11", "2026-12", "2027-01"]
    assert later["trend"]["in_period"][:4] == [False, False, False, True]


def test_compare_reports(world, definitions):
    empty = compute_report(MemoryStore(), definitions, start=OCT[0], end=OCT[1], trend=False)
    full = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], trend=False)
    diff = compare_reports(empty, full, labels=("before", "after"))
    assert diff["labels"] == {"a": "before", "b": "after"}
    assert diff["metrics"]["audits_allocated"] == {"a": 0, "b": 4, "difference": 4}
    assert diff["metrics"]["audits_on_time_pct"] == {"a": None, "b": 62.5, "difference": None}
    assert diff["metrics"]["kpis"]["indicators"]["moderation_rate"]["status"] == {"a": "no_data", "b": "amber", "same": False}
    assert "audits_allocated" in diff["changed"] and "audits_withdrawn" not in diff["changed"]
    assert compare_reports(full, full)["changed"] == []


def test_an_expression_that_fails_is_a_warning_not_a_crash(definitions, tmp_path):
    report = tmp_path / "r.yaml"
    report.write_text(
        "report: r\ntitle: R\nmetrics:\n"
        "  odd:\n    kind: count\n    workflow: complaint\n    period_by: data.received_on\n"
        "    where: data.received_on > 3\n",
        encoding="utf-8",
    )
    eng = Engine(definitions)
    eng.start("complaint", {"received_on": "2026-10-01"}, actor="QA-1", roles=["qa_team"], at="2026-10-01T09:00")
    r = compute_report(eng.store, definitions, start=OCT[0], end=OCT[1], report=report)
    assert r["metrics"]["odd"] == 0
    assert r["warnings"][0]["metric"] == "odd" and "compare" in r["warnings"][0]["message"]


def test_empty_store_gives_zeros_and_nulls(definitions):
    r = compute_report(MemoryStore(), definitions, start=OCT[0], end=OCT[1])
    assert r["metrics"]["audits_allocated"] == 0
    assert r["metrics"]["audits_on_time_pct"] is None
    assert r["metrics"]["workload"]["people"] == {}
    assert r["metrics"]["kpis"]["indicators"]["moderation_rate"]["status"] == "no_data"
