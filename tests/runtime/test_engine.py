"""The Engine's behaviour as a host system sees it, on the small fixture workflows in tests/fixtures/basic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine import (
    DataInvalid,
    Engine,
    EvaluationFailed,
    FixedClock,
    GuardFailed,
    PayloadInvalid,
    Refused,
    RoleRefused,
    UnknownInstance,
    UnknownTrigger,
    UsageError,
    load_config,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


@pytest.fixture
def eng(definitions):
    return Engine(definitions)


def start_review(eng, at="2026-12-18T09:00", **data):
    return eng.start(
        "review",
        {"case_id": "C-0001", "reviewer": "R-01", **data},
        actor="QA-01",
        roles=["qa_team"],
        at=at,
    )


def snapshot(eng, iid):
    view = eng.get(iid)
    return (view.state, view.data, [d.to_dict() for d in view.deadlines], view.children, len(eng.history(iid)), view.rev)


# ----------------------------------------------------------------------------- starting


def test_start_enters_initial_state_and_starts_deadline_with_explanation(eng):
    review = start_review(eng)
    assert review.state == "open"
    (deadline,) = review.deadlines
    assert deadline.name == "response"
    assert deadline.due == dt.date(2027, 1, 6)  # 10 working days after Fri 18 Dec 2026
    text = "\n".join(deadline.explanation)
    for skipped in ("25 Dec", "28 Dec", "1 Jan"):
        assert skipped in deadline.explanation[0]
    assert "Boxing Day (observed)" in text
    assert deadline.due_at.isoformat() == "2027-01-07T00:00:00+00:00"  # end of the due day


def test_start_applies_defaults_and_refuses_bad_data(eng):
    assert start_review(eng).data["urgent"] is False
    with pytest.raises(DataInvalid, match="'reviewer' is required"):
        eng.start("review", {"case_id": "C-1"}, actor="QA-01", roles=["qa_team"], at="2026-12-18")
    with pytest.raises(DataInvalid, match="'urgent' should be boolean"):
        start_review(eng, urgent="yes")
    assert eng.instances() == [] or all(i.data.get("urgent") is False for i in eng.instances())


def test_unknown_workflow_gets_did_you_mean(eng):
    with pytest.raises(UsageError, match="did you mean 'review'"):
        eng.start("reveiw", {}, actor="x", at="2026-12-18")


def test_time_must_be_given_or_come_from_a_clock(definitions):
    eng = Engine(definitions)
    with pytest.raises(UsageError, match="no time given"):
        start_review(eng, at=None)
    clocked = Engine(definitions, clock=FixedClock("2026-12-18T09:00"))
    assert start_review(clocked, at=None).created_at.isoformat() == "2026-12-18T09:00:00+00:00"


# ----------------------------------------------------------------------------- firing


def test_bound_role_and_guarded_automatic_transitions_and_decision_table(eng):
    review = start_review(eng)
    after = eng.fire(review.id, "grade", {"grade": "good"}, actor="R-01", at="2026-12-21T10:00")
    assert after.state == "closed"  # graded -> closed automatically
    assert after.data["band"] == {"band": "green"}
    assert after.deadline("response").status == "met"
    assert after.deadline("response").late is False
    triggers = [h["trigger"] for h in eng.history(review.id)]
    assert triggers == ["(start)", "grade", "(auto)"]
    auto = eng.history(review.id)[-1]
    assert {"transition": 2, "when": 'data.grade == "good"', "result": True} in auto["conditions"]


def test_role_refused_names_the_role_and_changes_nothing(eng):
    review = start_review(eng)
    before = snapshot(eng, review.id)
    with pytest.raises(RoleRefused) as err:
        eng.fire(review.id, "grade", {"grade": "good"}, actor="R-99", at="2026-12-21")
    assert "data.reviewer" in err.value.message and "'R-01'" in err.value.message
    # an organisational role the caller asserts does not stand in for a bound one
    with pytest.raises(RoleRefused):
        eng.fire(review.id, "grade", {"grade": "good"}, actor="QA-01", roles=["qa_team", "manager"], at="2026-12-21")
    assert snapshot(eng, review.id) == before


def test_payload_refused_against_schema(eng):
    review = start_review(eng)
    before = snapshot(eng, review.id)
    with pytest.raises(PayloadInvalid, match="grade"):
        eng.fire(review.id, "grade", {"grade": "excellent"}, actor="R-01", at="2026-12-21")
    with pytest.raises(PayloadInvalid):
        eng.fire(review.id, "grade", {"grade": "good", "extra": 1}, actor="R-01", at="2026-12-21")
    assert snapshot(eng, review.id) == before


def test_guard_false_is_refused_with_the_condition(eng):
    review = start_review(eng)
    before = snapshot(eng, review.id)
    with pytest.raises(GuardFailed, match="a note must be marked ok before it is kept") as err:
        eng.fire(review.id, "note", {"text": "x", "ok": False}, actor="R-01", at="2026-12-21")
    assert err.value.details["conditions"] == [{"transition": 4, "when": "payload.ok == true", "result": False}]
    assert snapshot(eng, review.id) == before
    eng.fire(review.id, "note", {"text": "first", "ok": True}, actor="R-01", at="2026-12-21")
    eng.fire(review.id, "note", {"text": "second", "ok": True}, actor="MGR-1", roles=["manager"], at="2026-12-22")
    assert eng.get(review.id).data["notes"] == ["first", "second"]
    assert eng.get(review.id).state == "open"  # internal transitions stay


def test_unknown_trigger_and_trigger_not_available_in_state(eng):
    review = start_review(eng)
    with pytest.raises(UnknownTrigger, match="has no trigger 'grde'"):
        eng.fire(review.id, "grde", {}, actor="R-01", at="2026-12-21")
    with pytest.raises(UnknownTrigger, match="while it is in state 'open'"):
        eng.fire(review.id, "child_done", {"result": "x"}, actor="MGR-1", roles=["manager"], at="2026-12-21")
    with pytest.raises(UnknownInstance):
        eng.fire("review-999999", "grade", {}, actor="R-01", at="2026-12-21")


def test_failing_action_rolls_back_everything(eng):
    review = start_review(eng)
    before = snapshot(eng, review.id)
    outbox_before = eng.outbox()
    with pytest.raises(EvaluationFailed, match="set grade") as failed:  # the configuration is at fault, not the person
        eng.fire(review.id, "explode", {}, actor="MGR-1", roles=["manager"], at="2026-12-21")
    assert not isinstance(failed.value, Refused)
    assert snapshot(eng, review.id) == before
    assert eng.outbox() == outbox_before  # the alert raised before the failure is gone too


def test_available_triggers_depend_on_state_and_roles(eng):
    review = start_review(eng)
    assert set(eng.available_triggers(review.id, actor="R-01")) == {"grade", "note"}
    manager = set(eng.available_triggers(review.id, actor="MGR-1", roles=["manager"]))
    assert manager == {"note", "pause", "resume", "extend", "explode"}
    assert eng.available_triggers(review.id, actor="nobody") == []


def test_request_id_makes_a_retry_a_no_op(eng):
    review = start_review(eng)
    first = eng.fire(review.id, "note", {"text": "once", "ok": True}, actor="R-01", at="2026-12-21", request_id="req-1")
    again = eng.fire(review.id, "note", {"text": "once", "ok": True}, actor="R-01", at="2026-12-21", request_id="req-1")
    assert again.rev == first.rev
    assert eng.get(review.id).data["notes"] == ["once"]
    s1 = eng.start("review", {"case_id": "C-2", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at="2026-12-18", request_id="s-1")
    s2 = eng.start("review", {"case_id": "C-2", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at="2026-12-18", request_id="s-1")
    assert s1.id == s2.id
    assert len(eng.instances(workflow="review")) == 2


# ----------------------------------------------------------------------------- children and parents


def test_child_started_and_parent_signalled(eng):
    review = start_review(eng)
    graded = eng.fire(review.id, "grade", {"grade": "bad"}, actor="R-01", at="2026-12-21")
    assert graded.state == "checking"
    (child_id,) = graded.children
    child = eng.get(child_id)
    assert child.workflow == "check" and child.parent_id == review.id and child.data == {"case_id": "C-0001"}
    eng.fire(child_id, "record", {"result": "fine"}, actor="CH-1", roles=["checker"], at="2026-12-22")
    parent = eng.get(review.id)
    assert parent.state == "closed"
    assert parent.data["child_result"] == "fine"
    assert eng.history(review.id)[-1]["actor"] == f"system:{child_id}"


def test_people_cannot_fire_system_triggers(eng):
    review = start_review(eng)
    eng.fire(review.id, "grade", {"grade": "bad"}, actor="R-01", at="2026-12-21")
    with pytest.raises(RoleRefused):
        eng.fire(review.id, "child_done", {"result": "forged"}, actor="R-01", roles=["manager"], at="2026-12-22")


# ----------------------------------------------------------------------------- the clock


def test_breach_fires_once_with_alerts_and_breach_transition(eng):
    review = start_review(eng)
    assert eng.advance("2027-01-06T23:59") == []  # due by the end of 6 Jan
    fired = eng.advance("2027-01-08")
    assert [(o.kind, o.name, o.from_state, o.to_state) for o in fired] == [("breach", "response", "open", "escalated")]
    assert fired[0].at.isoformat() == "2027-01-07T00:00:00+00:00"
    assert eng.advance("2027-03-01") == []  # exactly once
    view = eng.get(review.id)
    assert view.state == "escalated" and view.deadline("response").status == "breached"
    (alert,) = eng.outbox()
    assert alert["name"] == "response_overdue"
    assert {"role": "qa_team"} in alert["recipients"] and {"role": "manager"} in alert["recipients"]
    assert {"person": "R-01", "as": "reviewer"} in alert["recipients"]
    assert "C-0001" in alert["message"] and "2027-01-06" in alert["message"]
    eng.acknowledge(alert["id"], at="2027-01-08")
    assert eng.outbox() == []
    assert len(eng.outbox(include_acknowledged=True)) == 1


def test_advance_fires_in_time_order_across_instances(eng):
    late = start_review(eng, at="2026-12-21T09:00")  # due Thu 7 Jan 2027
    early = start_review(eng, at="2026-12-18T09:00")  # due Wed 6 Jan 2027
    fired = eng.advance("2027-02-01")
    assert [o.instance_id for o in fired] == [early.id, late.id]
    assert fired[0].at < fired[1].at


def test_extension_recomputes_from_the_original_anchor_and_is_recorded(eng):
    review = start_review(eng)
    eng.fire(review.id, "extend", {"reason": "advocate needed"}, actor="MGR-1", roles=["manager"], at="2027-01-04")
    deadline = eng.get(review.id).deadline("response")
    assert deadline.due == dt.date(2027, 1, 20)  # 20 working days after Fri 18 Dec 2026
    assert deadline.changes[0]["reason"] == "advocate needed"
    assert deadline.changes[0]["from_due"] == "2027-01-06"
    assert any("extended on Mon 4 Jan 2027 to 20 working days" in line for line in deadline.explanation)
    assert eng.advance("2027-01-20T23:00") == []
    assert [o.name for o in eng.advance("2027-01-21T00:00")] == ["response"]


def test_extension_needs_a_reason(eng):
    review = start_review(eng)
    with pytest.raises(PayloadInvalid):
        eng.fire(review.id, "extend", {"reason": ""}, actor="MGR-1", roles=["manager"], at="2027-01-04")


def test_pause_stops_the_clock_and_resume_keeps_the_time_left(eng):
    review = start_review(eng, at="2026-10-01T09:00")  # Thu 1 Oct: due Thu 15 Oct
    assert eng.get(review.id).deadline("response").due == dt.date(2026, 10, 15)
    eng.fire(review.id, "pause", {}, actor="MGR-1", roles=["manager"], at="2026-10-08T12:00")  # 5 working days left
    assert eng.advance("2026-11-30") == []  # paused: nothing breaches
    eng.fire(review.id, "resume", {}, actor="MGR-1", roles=["manager"], at="2026-12-01T09:00")
    deadline = eng.get(review.id).deadline("response")
    assert deadline.status == "open"
    assert deadline.due == dt.date(2026, 12, 8)  # Tue 1 Dec + 5 working days
    assert [c["op"] for c in deadline.changes] == ["pause", "resume"]
    assert any("clock stopped on Thu 8 Oct 2026 with 5 working days left" in line for line in deadline.explanation)


def test_scheduled_start_fires_in_order_with_deadlines(eng):
    start_review(eng, at="2026-12-18T09:00")
    eng.schedule_start("review", {"case_id": "C-9", "reviewer": "R-02"}, at="2027-01-04T09:00", actor="QA-01", roles=["qa_team"])
    fired = eng.advance("2027-01-10")
    assert [(o.kind, o.at.date().isoformat()) for o in fired] == [("start", "2027-01-04"), ("breach", "2027-01-07")]
    started = eng.get(fired[0].instance_id)
    assert started.data["case_id"] == "C-9"
    assert eng.advance("2027-01-10") == []


def test_late_satisfaction_is_marked_late(eng):
    review = start_review(eng)
    after = eng.fire(review.id, "grade", {"grade": "good"}, actor="R-01", at="2027-01-12")
    assert after.deadline("response").status == "met" and after.deadline("response").late is True


def test_history_answers_why(eng):
    review = start_review(eng)
    eng.fire(review.id, "grade", {"grade": "bad"}, actor="R-01", at="2026-12-21T10:00")
    entry = next(h for h in eng.history(review.id) if h["trigger"] == "grade")
    assert entry["actor"] == "R-01" and entry["roles"] == ["reviewer"]
    assert entry["from"] == "open" and entry["to"] == "graded"
    assert entry["payload"] == {"grade": "bad"}
    assert entry["version"] == 1 and entry["workflow"] == "review"
    kinds = [a["action"] for a in entry["actions"]]
    assert kinds == ["set", "evaluate", "satisfy_deadline"]
    evaluate = entry["actions"][1]
    assert evaluate["inputs"] == {"grade": "bad", "urgent": False} and evaluate["result"] == {"band": "amber"}


# ----------------------------------------------------------------------------- memory


def test_events_leave_no_reference_cycles_behind():
    """Every call's working objects are freed as soon as it returns, without the cyclic garbage collector.

    A cycle through the Context (its conditions' ``parent`` pointing back at it) once kept each call's
    unit of work alive until the collector ran, which cost a third of a simulated year's time.
    """
    import gc

    from engine.runtime.context import Context
    from engine.runtime.instance import Instance
    from engine.runtime.unit import UnitOfWork
    from engine.scenarios import load_scenarios, run_scenarios

    root = Path(__file__).parent.parent.parent / "config"
    scenarios, problems = load_scenarios(root / "scenarios")
    assert not problems and scenarios
    definitions = load_config(root)
    engine_types = (Context, UnitOfWork, Instance)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        results = run_scenarios(scenarios, definitions)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, engine_types)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert all(r.passed for r in results)
    assert left == []
