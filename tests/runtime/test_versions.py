"""Running instances keep the definition version they started on; migration is explicit and checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import DataInvalid, Engine, MemoryStore, PayloadInvalid, Refused, UnknownTrigger, UsageError, load_config
from engine.runtime.engine import start_as_engine

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"


def edited_config(tmp_path: Path, edit) -> Path:
    root = tmp_path / "config"
    shutil.copytree(FIXTURE, root)
    review = root / "workflows" / "review.yaml"
    review.write_text(edit(review.read_text()))
    return root


def start(eng):
    return eng.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at="2026-10-01T09:00")


def test_running_instance_keeps_its_version_after_the_config_changes(tmp_path):
    store = MemoryStore()
    old = start(Engine(load_config(FIXTURE), store=store))
    # version 2 renames the state 'graded' and shortens the deadline
    v2 = edited_config(
        tmp_path,
        lambda t: t.replace("version: 1", "version: 2").replace("graded", "assessed").replace("timescale: response_time", "due: 5 working days"),
    )
    eng = Engine(load_config(v2), store=store)
    new = start(eng)
    assert (old.version, new.version) == (1, 2)
    assert eng.get(old.id).deadline("response").due.isoformat() == "2026-10-15"  # 10 working days, as started
    assert eng.get(new.id).deadline("response").due.isoformat() == "2026-10-08"  # 5 working days
    # the old instance still runs on version 1: its 'grade' trigger goes through 'graded'
    eng.fire(old.id, "grade", {"grade": "good"}, actor="R-01", at="2026-10-02")
    assert [h["to"] for h in eng.history(old.id)][-2:] == ["graded", "closed"]
    assert {h["version"] for h in eng.history(old.id)} == {1}
    eng.fire(new.id, "grade", {"grade": "good"}, actor="R-01", at="2026-10-02")
    assert "assessed" in [h["to"] for h in eng.history(new.id)]


def test_outdated_and_migration_with_dry_run(tmp_path):
    store = MemoryStore()
    first = start(Engine(load_config(FIXTURE), store=store))
    second = start(Engine(load_config(FIXTURE), store=store))
    v2 = edited_config(tmp_path, lambda t: t.replace("version: 1", "version: 2").replace("title: A small", "title: A"))
    eng = Engine(load_config(v2), store=store)
    assert {v.id for v in eng.outdated()} == {first.id, second.id}
    plan = eng.migrate(first.id, actor="QA", at="2026-10-02")
    assert plan["ok"] and not plan["applied"] and eng.get(first.id).version == 1  # a dry run changes nothing
    plan = eng.migrate(first.id, actor="QA", at="2026-10-02", dry_run=False)
    assert plan["applied"] and eng.get(first.id).version == 2
    assert eng.history(first.id)[-1]["trigger"] == "(migrate)"
    assert {v.id for v in eng.outdated()} == {second.id}


def test_migration_refused_when_the_state_no_longer_exists(tmp_path):
    store = MemoryStore()
    inst = start(Engine(load_config(FIXTURE), store=store))
    v2 = edited_config(tmp_path, lambda t: t.replace("version: 1", "version: 2").replace("open", "waiting"))
    eng = Engine(load_config(v2), store=store)
    plan = eng.migrate(inst.id, actor="QA", at="2026-10-02", dry_run=False)
    assert not plan["ok"] and not plan["applied"]
    assert "state 'open' does not exist in version 2" in plan["problems"]
    assert eng.get(inst.id).version == 1


def test_a_changed_file_under_the_same_version_is_refused(tmp_path):
    store = MemoryStore()
    start(Engine(load_config(FIXTURE), store=store))
    same_version = edited_config(tmp_path, lambda t: t.replace("timescale: response_time", "due: 15 working days"))
    eng = Engine(load_config(same_version), store=store)
    with pytest.raises(UsageError, match="raise 'version'"):
        start(eng)


def test_comments_and_layout_do_not_count_as_a_change(tmp_path):
    store = MemoryStore()
    start(Engine(load_config(FIXTURE), store=store))
    reformatted = edited_config(tmp_path, lambda t: "# a new comment at the top\n" + t.replace("states:\n", "states:   # the states\n"))
    assert start(Engine(load_config(reformatted), store=store)).version == 1


def test_a_changed_timescale_in_the_rules_needs_no_new_version_and_leaves_running_clocks_alone(tmp_path):
    store = MemoryStore()
    old = start(Engine(load_config(FIXTURE), store=store))
    changed = tmp_path / "changed"
    shutil.copytree(FIXTURE, changed)
    rules = changed / "rules" / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("{due: 10 working days", "{due: 5 working days"), encoding="utf-8")
    eng = Engine(load_config(changed), store=store)
    new = start(eng)  # the workflow file is unchanged: same version, no refusal
    assert (old.version, new.version) == (1, 1)
    assert eng.get(old.id).deadline("response").due.isoformat() == "2026-10-15"  # 10 working days, as started
    assert eng.get(new.id).deadline("response").due.isoformat() == "2026-10-08"  # 5 working days


# --------------------------------------------------------------------------- bundled workflows
# The bundled configuration changes too. An instance started on the version before a change
# keeps that version's rules to the end, while new instances take the new ones.

BUNDLED = Path(__file__).parent.parent.parent / "config"
PREVIOUS = Path(__file__).parent.parent / "fixtures" / "previous"


def bundled_with(tmp_path: Path, workflow: str, previous: str) -> Path:
    root = tmp_path / "previous_config"
    shutil.copytree(BUNDLED, root)
    (root / "workflows" / f"{workflow}.yaml").write_text((PREVIOUS / previous).read_text(encoding="utf-8"), encoding="utf-8")
    return root


QA = {"actor": "QA-01", "roles": ["qa_team"]}


def test_a_complaint_started_on_version_3_keeps_its_stage_1_clock_from_the_start_of_stage_1(tmp_path):
    store = MemoryStore()
    old_engine = Engine(load_config(bundled_with(tmp_path, "complaint", "complaint.v3.yaml")), store=store)
    old = old_engine.start("complaint", {"received_on": "2026-12-18"}, at="2026-12-18T09:00", **QA)
    old_engine.fire(old.id, "begin_stage1", {}, at="2026-12-29T10:00", **QA)
    # version 3 counted Stage 1 from the day it began: Tue 29 Dec 2026 + 10 working days = Wed 13 Jan 2027
    assert old_engine.get(old.id).deadline("stage1_response").due.isoformat() == "2027-01-13"

    eng = Engine(load_config(BUNDLED), store=store)
    new = eng.start("complaint", {"received_on": "2026-12-18"}, at="2026-12-18T09:00", **QA)
    eng.fire(new.id, "begin_stage1", {}, at="2026-12-29T10:00", **QA)
    assert (eng.get(old.id).version, eng.get(new.id).version) == (3, 7)
    # version 4 and later count from receipt (reg 14): Fri 18 Dec 2026 + 10 working days = Wed 6 Jan 2027
    assert eng.get(new.id).deadline("stage1_response").due.isoformat() == "2027-01-06"

    # the old complaint finishes on version 3: on time on Tue 12 Jan, a Stage 2 request without a received date
    eng.fire(old.id, "respond_stage1", {"outcome": "upheld", "summary": "Apology given"}, at="2027-01-12T10:00", **QA)
    assert eng.get(old.id).deadline("stage1_response").late is False
    eng.fire(old.id, "request_stage2", {}, actor="CM-01", roles=["complaints_manager"], at="2027-01-14T10:00")
    eng.fire(old.id, "withdraw", {"reason": "Resolved by a meeting"}, at="2027-01-15T10:00", **QA)
    assert eng.get(old.id).state == "withdrawn"
    assert {h["version"] for h in eng.history(old.id)} == {3}


def test_a_child_complaint_started_on_version_6_finishes_without_an_advocacy_clock(tmp_path):
    store = MemoryStore()
    child = {"received_on": "2026-11-02", "complainant_type": "child", "case_id": "C-1"}
    old_engine = Engine(load_config(bundled_with(tmp_path, "complaint", "complaint.v6.yaml")), store=store)
    old = old_engine.start("complaint", child, at="2026-11-02T09:00", **QA)

    eng = Engine(load_config(BUNDLED), store=store)
    new = eng.start("complaint", child, at="2026-11-02T09:00", **QA)
    assert (eng.get(old.id).version, eng.get(new.id).version) == (6, 7)
    # version 7 offers a child an advocate within 5 working days of receipt (Mon 9 Nov 2026) and asks
    # for the missing subject category, service and team; version 6 did neither
    assert eng.get(new.id).deadline("advocacy_offer").due.isoformat() == "2026-11-09"
    assert "advocacy_offer" not in [d.name for d in eng.get(old.id).deadlines]
    def alerts(instance_id: str) -> list[str]:
        return [a["name"] for a in eng.outbox() if a["instance_id"] == instance_id]

    assert "complaint_intake_incomplete" in alerts(new.id)
    assert "complaint_intake_incomplete" not in alerts(old.id)
    # the old complaint runs to its end on version 6: advocacy cannot be recorded on it, and no breach comes
    with pytest.raises(UnknownTrigger):
        eng.fire(old.id, "record_advocacy", {"offered_on": "2026-11-03", "accepted": False}, at="2026-11-03T10:00", **QA)
    eng.advance("2026-11-10T09:00")
    assert "advocacy_offer_overdue" in alerts(new.id) and "advocacy_offer_overdue" not in alerts(old.id)
    eng.fire(old.id, "record_early_resolution", {"resolved": True}, actor="TM-01", roles=["team_manager"], at="2026-11-10T10:00")
    assert eng.get(old.id).state == "resolved_early"
    assert {h["version"] for h in eng.history(old.id)} == {6}


def test_an_inadequate_review_started_on_version_2_finishes_with_an_ungraded_re_audit(tmp_path):
    store = MemoryStore()
    data = {"case_id": "C-1", "final_on": "2026-10-27", "overall": "inadequate", "service": "assessment"}
    old_engine = Engine(load_config(bundled_with(tmp_path, "inadequate_review", "inadequate_review.v2.yaml")), store=store)
    old = start_as_engine(old_engine, "inadequate_review", data, at="2026-10-27T15:00")  # as case_audit starts it

    eng = Engine(load_config(BUNDLED), store=store)
    assert [v.id for v in eng.outdated()] == [old.id]
    # version 2: no oversight clock, any Head of Service comments, and an ungraded re-audit before the
    # 6-week review closes it as improved
    assert "oversight_comment" not in [d.name for d in eng.get(old.id).deadlines]
    eng.fire(old.id, "record_oversight", {"comment": "Seen and agreed"}, actor="HOS-09", roles=["head_of_service"],
             at="2026-10-28T09:00")
    eng.fire(old.id, "record_re_audit", {"outcome": "improved", "actions_completed": True}, actor="SNR-01",
             roles=["senior_manager"], at="2026-11-02T09:00")
    assert eng.get(old.id).state == "improved"
    assert {h["version"] for h in eng.history(old.id)} == {2}


DOMAINS = dict.fromkeys(["voice_of_child", "assessments", "quality_of_plans", "management_oversight",
                         "partnership_working", "embracing_diversity"], "good")


def _graded_audit(eng: Engine, case: str, peer_assessments: str = "good") -> str:
    """A case audit allocated on Sun 1 Nov 2026, both grades submitted on Fri 20 Nov; the peer grades assessments so."""
    audit = eng.start("case_audit", {"case_id": case, "team": "mash_1", "service": "mash", "lead_auditor": "TM-01",
                                     "peer_auditor": "QAP-01"}, at="2026-11-01T09:00", **QA).id
    eng.fire(audit, "submit_lead_audit", {"overall": "good", "domains": DOMAINS}, actor="TM-01", at="2026-11-20T10:00")
    eng.fire(audit, "record_worker_meeting", {"held_on": "2026-11-20"}, actor="QAP-01", at="2026-11-20T11:00")
    eng.fire(audit, "record_views", {"child": {"obtained": False, "reason": "not asked"},
                                     "parents_carers": {"obtained": False, "reason": "not asked"}}, actor="QAP-01", at="2026-11-20T11:30")
    eng.fire(audit, "submit_peer_audit", {"overall": "good", "domains": {**DOMAINS, "assessments": peer_assessments}},
             actor="QAP-01", at="2026-11-20T12:00")
    return audit


def _audit_in_moderation(eng: Engine, case: str) -> tuple[str, str]:
    """The grades differ: (audit, moderation)."""
    audit = _graded_audit(eng, case, peer_assessments="requires_improvement")
    (moderation,) = eng.get(audit).children
    return audit, moderation


def test_a_moderation_started_on_version_2_takes_a_moderator_without_a_role(tmp_path):
    store = MemoryStore()
    old_engine = Engine(load_config(bundled_with(tmp_path, "moderation", "moderation.v2.yaml")), store=store)
    old_audit, old = _audit_in_moderation(old_engine, "C-1")
    # version 2: the end of week 4 was not rolled (Sat 28 Nov 2026)
    assert old_engine.get(old).deadline("moderation_due").due.isoformat() == "2026-11-28"

    eng = Engine(load_config(BUNDLED), store=store)
    _, new = _audit_in_moderation(eng, "C-2")
    assert (eng.get(old).version, eng.get(new).version) == (2, 4)
    assert eng.get(new).deadline("moderation_due").due.isoformat() == "2026-11-27"  # rolled back to Fri 27 Nov
    with pytest.raises(PayloadInvalid, match="moderator_role"):
        eng.fire(new, "allocate_moderator", {"moderator": "SW-99"}, at="2026-11-24T09:00", **QA)
    # the old moderation finishes on version 2: no role named, and the bound moderator records
    eng.fire(old, "allocate_moderator", {"moderator": "SW-99"}, at="2026-11-24T09:00", **QA)
    eng.fire(old, "record_moderation", {"overall": "good", "domains": DOMAINS,
                                        "action_plan": [{"action": "Share", "owner": "TM-01", "due_by": "2026-12-18"}]},
             actor="SW-99", at="2026-11-27T10:00")
    assert eng.get(old).state == "moderated" and eng.get(old_audit).state == "final"
    assert {h["version"] for h in eng.history(old)} == {2}


def _audit_graded_alike(eng: Engine, case: str) -> str:
    """The grades agree: final on Fri 20 Nov."""
    audit = _graded_audit(eng, case)
    assert eng.get(audit).state == "final"
    return audit


def test_a_case_audit_started_on_version_3_completes_without_a_supervision_record(tmp_path):
    store = MemoryStore()
    old = _audit_graded_alike(Engine(load_config(bundled_with(tmp_path, "case_audit", "case_audit.v3.yaml")), store=store), "C-1")

    eng = Engine(load_config(BUNDLED), store=store)
    new = _audit_graded_alike(eng, "C-2")
    assert (eng.get(old).version, eng.get(new).version) == (3, 5)
    # version 3: actions are text, and recording on the case system completes the audit
    eng.fire(old, "record_in_case_system", {"reference": "DOC-1", "findings": "Good work throughout", "actions": ["Share"]},
             at="2026-11-23T10:00", **QA)
    assert eng.get(old).state == "completed" and not eng.get(old).children
    assert {h["version"] for h in eng.history(old)} == {3}
    # version 4 and later: each action joins the register, and the audit waits for the supervision discussion
    eng.fire(new, "record_in_case_system", {"reference": "DOC-2", "findings": "Good work throughout",
                                            "actions": [{"action": "Share", "owner": "SW-01", "due_by": "2026-12-18"}]},
             at="2026-11-23T10:00", **QA)
    assert eng.get(new).state == "recorded"
    assert [eng.get(c).workflow for c in eng.get(new).children] == ["audit_action"]
    assert eng.get(new).deadline("supervision_discussion").due.isoformat() == "2026-12-21"  # 20 working days after Mon 23 Nov


def test_a_case_audit_started_on_version_4_runs_on_while_new_audits_take_the_service_areas_of_the_rules(tmp_path):
    store = MemoryStore()
    old = _audit_graded_alike(Engine(load_config(bundled_with(tmp_path, "case_audit", "case_audit.v4.yaml")), store=store), "C-1")
    # version 5 lists no service areas of its own: a term added to the rules' vocabulary is a service
    today = tmp_path / "today"
    shutil.copytree(BUNDLED, today)
    vocabularies = today / "rules" / "vocabularies.yaml"
    vocabularies.write_text(vocabularies.read_text(encoding="utf-8").replace(
        "    - {key: care_leavers, label: Care Leavers Service}\n",
        "    - {key: care_leavers, label: Care Leavers Service}\n    - {key: fostering, label: Fostering}\n"), encoding="utf-8")
    eng = Engine(load_config(today), store=store)
    new = eng.start("case_audit", {"case_id": "C-2", "team": "fostering_1", "service": "fostering", "lead_auditor": "TM-01",
                                   "peer_auditor": "QAP-01"}, at="2026-11-01T09:00", **QA).id
    assert (eng.get(old).version, eng.get(new).version) == (4, 5)
    eng.fire(old, "record_in_case_system", {"reference": "DOC-1", "findings": "Good work throughout",
                                            "actions": [{"action": "Share", "owner": "SW-01", "due_by": "2026-12-18"}]},
             at="2026-11-23T10:00", **QA)
    assert eng.get(old).state == "recorded"
    assert {h["version"] for h in eng.history(old)} == {4}


def _thematic(eng: Engine, lead: str) -> str:
    """A November 2026 thematic audit, planned on Tue 20 Oct and in fieldwork from Mon 2 Nov."""
    audit = eng.start("thematic_audit", {"theme": "neglect", "service": "safeguarding", "lead": lead, "month": "2026-11-01"},
                      actor=lead, roles=["service_manager"], at="2026-10-20T09:00").id
    eng.fire(audit, "start_fieldwork", {"cases": ["C-1"], "auditors": [lead]}, actor=lead, at="2026-11-02T09:00")
    return audit


def test_a_thematic_audit_started_on_version_3_finishes_on_it_and_only_version_4_takes_proposals(tmp_path):
    store = MemoryStore()
    old = _thematic(Engine(load_config(bundled_with(tmp_path, "thematic_audit", "thematic_audit.v3.yaml")), store=store), "SM-01")
    eng = Engine(load_config(BUNDLED), store=store)
    proposal = {"rule": "red_two_months", "kpi": "k", "months": ["2026-11", "2026-12"], "figures": [70.0, 71.0]}
    new = start_as_engine(eng, "thematic_audit", {"theme": "neglect", "service": "safeguarding", "lead": "SM-02", "month": "2027-02-01",
                                                  "proposal": proposal}, at="2027-01-05T09:00")
    assert (eng.get(old).version, new.version, new.state) == (3, 4, "proposed")
    # the old audit goes on to its report and review on version 3
    eng.fire(old, "complete_fieldwork", {"cases_audited": 1}, actor="SM-01", at="2026-11-27T10:00")
    eng.fire(old, "submit_report", {"findings": "Chronologies weak throughout", "recommendations": ["Workshop"], "actions": []},
             actor="SM-01", at="2026-12-18T10:00")
    eng.fire(old, "review_actions", {"all_completed": True}, actor="SM-01", at="2027-03-15T10:00")
    assert eng.get(old).state == "closed" and {h["version"] for h in eng.history(old)} == {3}
    assert eng.available_triggers(old, actor="SM-01") == []


def test_an_action_raised_on_version_2_finishes_on_it_and_version_3_takes_actions_from_a_qa_report(tmp_path):
    store = MemoryStore()
    old_engine = Engine(load_config(bundled_with(tmp_path, "audit_action", "audit_action.v2.yaml")), store=store)
    action = {"action": "Chronology workshop", "owner": "QAP-01", "due_by": "2027-01-29", "source": "managers_meeting"}
    old = old_engine.start("audit_action", action, at="2026-12-15T10:00", **QA).id
    with pytest.raises(DataInvalid, match="qa_report"):
        old_engine.start("audit_action", {**action, "source": "qa_report"}, at="2026-12-15T10:00", **QA)
    eng = Engine(load_config(BUNDLED), store=store)
    new = eng.start("audit_action", {**action, "source": "qa_report"}, at="2026-12-15T10:00", **QA)
    assert (eng.get(old).version, new.version) == (2, 3)
    eng.fire(old, "complete", {"evidence": "Workshop held on 20 January"}, actor="QAP-01", at="2027-01-20T16:00")
    assert eng.get(old).state == "done" and {h["version"] for h in eng.history(old)} == {2}


def test_a_multi_agency_audit_started_on_version_3_is_selected_without_a_proposal(tmp_path):
    store = MemoryStore()
    qe = {"actor": "QE-01", "roles": ["q_and_e_subgroup"]}
    old_engine = Engine(load_config(bundled_with(tmp_path, "multi_agency_audit", "multi_agency_audit.v3.yaml")), store=store)
    old = old_engine.start("multi_agency_audit", {"topic": "Neglect", "selected_on": "2026-11-04"}, at="2026-11-04T14:00", **qe).id

    eng = Engine(load_config(BUNDLED), store=store)
    new = eng.start("multi_agency_audit", {"topic": "Neglect"}, at="2026-11-04T14:00", **qe).id
    assert (eng.get(old).version, eng.get(new).version) == (3, 5)
    # version 4 and later wait for the Q&E sub-group's decision: nothing to nominate yet
    assert eng.get(new).state == "proposed"
    with pytest.raises(Refused):
        eng.fire(new, "nominate_leads", {"lead_officers": ["LO-01"]}, at="2026-11-10T10:00", **qe)
    # version 3 began selected: the old audit runs to its end without a decision
    assert eng.get(old).state == "selected" and eng.get(old).data.get("decision") is None
    eng.fire(old, "nominate_leads", {"lead_officers": ["LO-01"]}, at="2026-11-10T10:00", **qe)
    eng.fire(old, "start_audit", {"agencies": ["health", "police"], "cases": ["C-1"]}, actor="LO-01", at="2026-11-17T10:00")
    eng.fire(old, "submit_findings", {"summary": "Health not invited", "learning": ["Invite health"]}, actor="LO-01",
             at="2027-01-07T10:00")
    eng.fire(old, "agree_actions", {"actions": []}, at="2027-01-20T10:00", **qe)
    assert eng.get(old).state == "closed"
    assert {h["version"] for h in eng.history(old)} == {3}
