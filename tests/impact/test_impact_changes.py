"""engine.impact on the hand-dated October 2026 of tests/reports/report_world.py, under changed configurations.

What the world holds (report_world.py's docstring): A1 recorded on the case system by QA-1 on 14 Oct;
A2 moderated to Requires improvement; A3 graded Inadequate by both auditors, so an Inadequate review
starts, which HOS-02 comments on, reviews at 6 weeks and SM-1 re-audits; A4's peer audit, re-allocated
to P-5, is never submitted (breached); A2's peer audit by P-1 is late.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from impact_config import CONFIG
from report_world import build_world

from engine import Engine, load_config
from engine.impact import impact, render_html, render_text
from engine.store.open import open_store

CASE_AUDIT = "workflows/case_audit.yaml"


@pytest.fixture(scope="module")
def current():
    return load_config(CONFIG)


@pytest.fixture(scope="module")
def world(current):
    return build_world(current).store


def by_id(report):
    return {i.instance: i for i in report.instances}


def test_a_store_the_current_configuration_does_not_give_back_is_said_so(world, current):
    # the world's host ran `advance` only now and then: A2's peer audit was recorded late before its breach was
    # fired, so the store has no breach where the replay (clock advanced before every event) has one
    report = impact(world, current, current)
    assert not report.changed and report.totals["instances_changed"] == 0
    assert not report.reproduced
    assert any(m.startswith("case_audit-000002: history differs at entry 4: the store has record_worker_meeting")
               and "the replay (breach) peer_submission" in m for m in report.mismatches)
    assert "case_audit-000002: 0 'peer_audit_overdue' alert(s) in the store, 1 in the replay" in report.mismatches
    text = render_text(report)
    assert "does NOT reproduce the store" in text and "Nothing would have differed." in text


def test_alerts_that_would_go_to_other_people(world, current, changed_config):
    new = load_config(changed_config(("rules/alerts.yaml", "peer_audit_overdue: [qa_team, peer_manager, peer_auditor]",
                                      "peer_audit_overdue: [qa_team, peer_manager]")))
    report = impact(world, current, new)
    changes = {i.instance: i.alerts for i in report.instances}
    assert set(changes) == {"case_audit-000002", "case_audit-000004"}  # A2 late, A4 never submitted
    for iid, peer in (("case_audit-000002", "P-1"), ("case_audit-000004", "P-5")):
        (alert,) = changes[iid]
        assert alert.name == "peer_audit_overdue" and alert.kind == "recipients"
        assert set(alert.current["recipients"]) - set(alert.new["recipients"]) == {f"{peer} (peer_auditor)"}
        assert set(alert.new["recipients"]) < set(alert.current["recipients"])
    assert report.totals["alerts_other_recipients"] == 2 and report.totals["deadlines_moved"] == 0
    assert "alert peer_audit_overdue: to " in render_text(report)


def test_an_inadequate_review_that_would_now_start(world, current, changed_config):
    new = load_config(changed_config((CASE_AUDIT, 'data.final.overall == "inadequate"\n',
                                      'data.final.overall in ["inadequate", "requires_improvement"]\n')))
    report = impact(world, current, new)
    assert report.totals["instances_now_started"] == 1 and report.totals["by_workflow"]["now_started"] == {"inadequate_review": 1}
    (started,) = [i for i in report.instances if i.started == "new"]
    assert started.workflow == "inadequate_review" and started.parent == "case_audit-000002"  # A2, moderated to RI
    assert started.instance == "case_audit-000002/inadequate_review#1"  # no id in the store: named by its parent
    assert started.current_state is None and started.new_state is not None
    assert ("case_audit-000002/inadequate_review#1 (C-0002, assessment_1): inadequate_review, child of case_audit-000002, "
            "started only under the new configuration") in render_text(report)


def test_an_inadequate_review_that_would_not_start_and_the_events_recorded_on_it(world, current, changed_config):
    new = load_config(changed_config((CASE_AUDIT, 'data.final.overall == "inadequate"\n',
                                      'data.final.overall == "inadequate" and data.final.moderated\n')))
    report = impact(world, current, new)
    assert report.totals["by_workflow"]["no_longer_started"] == {"inadequate_review": 1}
    review = by_id(report)["inadequate_review-000001"]  # A3's, agreed Inadequate without moderation
    assert review.started == "current" and review.parent == "case_audit-000003"
    assert [(e.event.label(), e.event.actor, e.kind) for e in review.events] == [
        ("record_oversight", "HOS-02", "now_refused"), ("record_six_week_review", "HOS-02", "now_refused"),
        ("record_re_audit", "SM-1", "now_refused")]
    assert all(e.new.error_type == "NotStarted" and e.current.ok for e in review.events)
    assert report.totals["events_now_refused"] == 3


def test_an_event_the_new_roles_refuse_and_what_follows(world, current, changed_config):
    new = load_config(changed_config((CASE_AUDIT, 'any consequent actions."\n    roles: [qa_team]\n',
                                      'any consequent actions."\n    roles: [head_of_service]\n')))
    report = impact(world, current, new)
    a1 = by_id(report)["case_audit-000001"]
    (event,) = a1.events
    assert event.event.label() == "record_in_case_system" and event.event.actor == "QA-1" and event.kind == "now_refused"
    assert event.new.error_type == "RoleRefused" and "head_of_service" in event.new.error
    assert event.current.ok and event.current.from_state == "final"
    assert a1.new_state == "final" and a1.current_state != "final"  # never recorded, so it waits there
    assert a1.current_path and a1.new_path and a1.current_path[:-1] == a1.new_path[:len(a1.current_path) - 1]
    # the case system record was never made: its deadline now breaches
    (record,) = [d for d in a1.deadlines if d.deadline == "case_system_record"]
    assert record.now_late and record.current.status == "met" and record.new.status == "breached"
    assert report.totals["events_now_refused"] == 1


def test_a_kpi_whose_rag_status_changes(world, current, changed_config):
    source = "    source: \"framework document: submit 'within 3 weeks"
    local = "    # local default (not from the framework or statute)\n"
    new = load_config(changed_config(("rules/kpis.yaml", f"{local}    target: 90\n{source}", f"{local}    target: 50\n{source}")))
    report = impact(world, current, new, period=("2026-10-01", "2026-10-31"))
    (kpi,) = [k for k in report.kpis if k.name == "audits_completed_on_time"]
    assert kpi.rag_changed and kpi.current["value"] == kpi.new["value"] < 90
    assert kpi.current["status"] in ("amber", "red") and kpi.new["status"] == "green"
    assert report.totals["kpis_rag_changed"] >= 1 and report.instances == ()
    assert "audits_completed_on_time (Audits submitted within 3 weeks)" in render_text(report)
    assert "RAG CHANGES" in render_text(report)


def test_data_in_the_store_cannot_inject_markup_or_lines(current, changed_config):
    eng = Engine(current)
    case = "C-1<script>alert(1)</script>\nForged line"
    eng.start("case_audit", {"case_id": case, "team": "assessment_1", "service": "assessment", "lead_auditor": "TM-1",
                             "peer_auditor": "P-1", "social_worker": "SW-1"}, actor="QA-1", roles=["qa_team"], at="2026-11-01T09:00")
    eng.advance("2026-12-01")
    new = load_config(changed_config((CASE_AUDIT, "    timescale: audit_submission  # 3 weeks of allocation", "    due: 15 working days  #")))
    report = impact(eng.store, current, new)
    assert report.totals["deadlines_moved"] == 1
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_until_runs_the_clock_on_after_the_history(current, changed_config):
    """An audit allocated on Sun 1 Nov 2026 and not submitted: due Mon 23 Nov (3 weeks, next working day) or Fri 20 Nov
    (15 working days). The history ends with its start; only a clock run past Fri 20 Nov makes it late."""
    eng = Engine(current)
    eng.start("case_audit", {"case_id": "C-1", "team": "assessment_1", "service": "assessment", "lead_auditor": "TM-1",
                             "peer_auditor": "P-1", "social_worker": "SW-1"}, actor="QA-1", roles=["qa_team"], at="2026-11-01T09:00")
    new = load_config(changed_config((CASE_AUDIT, "    timescale: audit_submission  # 3 weeks of allocation", "    due: 15 working days  #")))
    at_start = impact(eng.store, current, new)
    (audit,) = at_start.instances
    (lead,) = audit.deadlines
    assert (lead.current.due, lead.new.due) == (dt.date(2026, 11, 23), dt.date(2026, 11, 20))
    assert lead.current.status == lead.new.status == "open" and not lead.now_late
    on_monday = impact(eng.store, current, new, until="2026-11-23T12:00")
    ((_, lead),) = on_monday.now_late()
    assert lead.new.status == "breached" and lead.current.status == "open"
    assert on_monday.reproduced  # the store's own deadline is still open: the replay agrees up to its last entry


def test_a_store_is_only_read(durable, current, changed_config):
    store = durable.open()
    build_world(current, store=store)
    store.close()

    def contents() -> tuple:
        reader = open_store(durable.target, readonly=True)
        try:
            return ({i.id: (i.state, i.rev, len(reader.history(i.id))) for i in reader.find()}, len(reader.outbox(True)),
                    hashlib.sha256(durable.path.read_bytes()).hexdigest() if durable.kind == "sqlite" else None)
        finally:
            reader.close()

    before = contents()
    new = load_config(changed_config(("rules/alerts.yaml", "peer_audit_overdue: [qa_team, peer_manager, peer_auditor]",
                                      "peer_audit_overdue: [qa_team]")))
    reader = open_store(durable.target, readonly=True)
    try:
        report = impact(reader, current, new)
    finally:
        reader.close()
    assert report.totals["alerts_other_recipients"] == 2
    # the same as from an in-memory copy of the same world
    assert report.to_dict()["instances"] == impact(build_world(current).store, current, new).to_dict()["instances"]
    assert contents() == before  # no breach fired in it, no alert added, not a byte written


def test_a_backdated_event_is_replayed_where_it_was_recorded_with_its_reason(current):
    """Each instance's events keep the order they were recorded in; across instances, time order."""
    from engine.impact import read_history

    eng = Engine(current)
    qa = {"actor": "QA-1", "roles": ["qa_team"]}
    c1 = eng.start("complaint", {"received_on": "2026-10-01", "case_id": "C-0101"}, at="2026-10-01T09:00", **qa).id
    eng.fire(c1, "begin_stage1", {"handler": "QA-2"}, at="2026-10-02T09:00", **qa)
    eng.fire(c1, "extend_stage1", {"reason": "an advocate is needed"}, at="2026-10-10T09:00", **qa)
    eng.fire(c1, "respond_stage1", {"outcome": "partly_upheld", "summary": "Apology"}, at="2026-10-09T09:00",
             backdate_reason="answered on the 9th, recorded on the 10th", **qa)
    c2 = eng.start("complaint", {"received_on": "2026-10-09", "case_id": "C-0102"}, at="2026-10-09T12:00", **qa).id
    order = [(e.instance, e.label(), e.backdate_reason) for e in read_history(eng.store).events]
    assert order == [(c1, "start", None), (c1, "begin_stage1", None), (c2, "start", None), (c1, "extend_stage1", None),
                     (c1, "respond_stage1", "answered on the 9th, recorded on the 10th")]
    report = impact(eng.store, current, current)
    assert report.reproduced and report.mismatches == ()
