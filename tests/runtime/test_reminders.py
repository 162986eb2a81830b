"""Reminders: alerts that advance sends before a deadline's due date (or after its start), once each,
while the clock is open. They are not breaches: the deadline's status does not change."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import Engine
from engine.config.loader import check_config

WORKFLOW = """\
workflow: survey
version: 1
start: {roles: [qa]}
data:
  case_id: {type: string, required: true}
  worker: {type: string, required: true}
roles:
  qa: {}
  worker: {from_data: worker}
states:
  sent: {initial: true, on_enter: [{start_deadline: reply}]}
  answered: {terminal: true}
  late: {terminal: true}
triggers:
  answer: {roles: [worker]}
  extend: {roles: [qa]}
  hold: {roles: [qa]}
  go_on: {roles: [qa]}
transitions:
  - {trigger: answer, from: sent, to: answered, actions: [{satisfy_deadline: reply}]}
  - {trigger: extend, from: sent, actions: [{extend_deadline: {deadline: reply, by: 5 working days, reason: "'asked'"}}]}
  - {trigger: hold, from: sent, actions: [{pause_deadline: {deadline: reply, reason: "'away'"}}]}
  - {trigger: go_on, from: sent, actions: [{resume_deadline: reply}]}
  - {breach: reply, from: sent, to: late}
deadlines:
  reply:
    due: 10 working days
    remind:
      - before: 5 working days
        to: [worker]
        message: "Case {data.case_id}: the reply is due {deadlines.reply.due} ({deadlines.reply.status})"
      - name: nudge
        after: 2 days
        to: [qa]
        message: "Case {data.case_id} was sent two days ago"
"""


@pytest.fixture(scope="module")
def definitions(tmp_path_factory):
    root = tmp_path_factory.mktemp("reminders")
    (root / "workflows").mkdir()
    (root / "workflows" / "survey.yaml").write_text(WORKFLOW)
    definitions, problems = check_config(root)
    assert definitions is not None, problems
    return definitions


def start(eng: Engine):
    # Fri 18 Dec 2026: 10 working days -> Wed 6 Jan 2027 (25, 28 Dec and 1 Jan are bank holidays);
    # 5 working days before that -> Tue 29 Dec 2026; 2 days after the start -> Sun 20 Dec 2026
    return eng.start("survey", {"case_id": "C-1", "worker": "SW-01"}, actor="QA-01", roles=["qa"], at="2026-12-18T10:00")


def test_reminders_go_once_at_their_time_and_leave_the_deadline_open(definitions, backend):
    eng = Engine(definitions, backend.open())
    survey = start(eng)
    assert [(r["name"], r["at"]) for r in survey.deadline("reply").reminders] == [
        ("nudge", "2026-12-20T00:00:00+00:00"), ("reply_reminder", "2026-12-29T00:00:00+00:00")]

    fired = eng.advance("2027-01-05")
    assert [(o.kind, o.name, o.at.date().isoformat()) for o in fired] == [
        ("reminder", "nudge", "2026-12-20"), ("reminder", "reply_reminder", "2026-12-29")]
    assert eng.advance("2027-01-05") == []  # each goes once
    view = eng.get(survey.id)
    assert view.state == "sent" and view.deadline("reply").status == "open"  # a reminder is not a breach
    reminders = [a for a in eng.outbox() if a["name"] in ("nudge", "reply_reminder")]
    assert [(a["name"], a["recipients"]) for a in reminders] == [
        ("nudge", [{"role": "qa"}]), ("reply_reminder", [{"person": "SW-01", "as": "worker"}])]
    assert reminders[1]["message"] == "Case C-1: the reply is due 2027-01-06 (open)"
    assert [h["trigger"] for h in eng.history(survey.id)][-2:] == ["(reminder) reply", "(reminder) reply"]
    assert "reminder reply_reminder on Tue 29 Dec 2026 (5 working days before the due date): sent" in view.deadline("reply").explanation

    (breach,) = eng.advance("2027-01-08")
    assert breach.kind == "breach" and eng.get(survey.id).state == "late"


def test_no_reminder_once_the_clock_is_closed(definitions, backend):
    eng = Engine(definitions, backend.open())
    survey = start(eng)
    eng.fire(survey.id, "answer", actor="SW-01", at="2026-12-21T09:00")
    assert eng.advance("2027-02-01") == []  # no reminder and no breach: the clock was met
    explanation = eng.get(survey.id).deadline("reply").explanation
    assert "reminder reply_reminder on Tue 29 Dec 2026 (5 working days before the due date): not sent: the clock closed first" in explanation


def test_a_moved_due_date_moves_the_reminders_that_count_back_from_it(definitions, backend):
    eng = Engine(definitions, backend.open())
    survey = start(eng)
    eng.advance("2026-12-21")  # the nudge has gone
    # extended by 5 working days: due Wed 13 Jan 2027, so the reminder goes Wed 6 Jan
    eng.fire(survey.id, "extend", actor="QA-01", roles=["qa"], at="2026-12-22T09:00")
    planned = eng.get(survey.id).deadline("reply").reminders
    assert [(r["name"], r["at"][:10], r["sent"]) for r in planned] == [("nudge", "2026-12-20", True), ("reply_reminder", "2027-01-06", False)]
    assert [(o.name, o.at.date().isoformat()) for o in eng.advance("2027-01-10")] == [("reply_reminder", "2027-01-06")]


def test_a_paused_clock_sends_no_reminder_until_it_runs_again(definitions, backend):
    eng = Engine(definitions, backend.open())
    survey = start(eng)
    eng.fire(survey.id, "hold", actor="QA-01", roles=["qa"], at="2026-12-19T09:00")
    assert eng.advance("2027-02-01") == []
    eng.fire(survey.id, "go_on", actor="QA-01", roles=["qa"], at="2027-02-01T09:00")
    names = [o.name for o in eng.advance("2027-03-01") if o.kind == "reminder"]
    assert names == ["reply_reminder"]  # the nudge's day had passed when the clock ran again


def test_a_reminder_that_cannot_count_back_is_refused_with_its_position(tmp_path: Path):
    (tmp_path / "workflows").mkdir()
    text = textwrap.dedent(WORKFLOW).replace("before: 5 working days", "before: end of week 4")
    (tmp_path / "workflows" / "survey.yaml").write_text(text)
    definitions, problems = check_config(tmp_path)
    assert definitions is None
    (problem,) = [p for p in problems if p.severity == "error"]
    assert problem.code == "bad-reminder-time" and (problem.location.line, problem.location.column) == (29, 17)


def test_a_reminder_is_not_a_deadline_to_queries_that_ask_what_falls_due(definitions, backend):
    eng = Engine(definitions, backend.open())
    survey = start(eng)  # reminders on 20 and 29 Dec, the deadline itself on 6 Jan 2027
    assert [v.id for v in eng.query(due_before="2027-01-01").items] == []
    assert [v.id for v in eng.query(due_before="2027-01-07").items] == [survey.id]
