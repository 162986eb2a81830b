"""due_after(): a duration counted on the configuration's calendars, in conditions and set: values."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from engine import Engine, EvaluationFailed
from engine.config.loader import check_config, expression_functions
from engine.errors import EvaluationError

WORKFLOW = """\
workflow: letters
version: 1
start: {roles: [qa]}
roles: {qa: {}}
data:
  sent_on: {type: date, required: true}
  received_on: {type: date}
states:
  open:
    initial: true
    on_enter:
      - set: {received_on: "due_after(ARGS)"}
      - start_deadline: reply_window
  done: {terminal: true}
triggers:
  close: {roles: [qa]}
transitions:
  - {trigger: close, from: open, to: done}
deadlines:
  reply_window:
    due: 20 working days
    from: data.received_on
    on_breach: [{alert: {to: [qa], message: "closed"}}]
"""

RULES = """\
calendars:
  england_local:
    base: england
    closures:
      - {date: "2026-12-29", reason: Council shutdown}
"""


def load(tmp_path: Path, args: str):
    (tmp_path / "workflows").mkdir()
    (tmp_path / "rules").mkdir()
    (tmp_path / "workflows" / "letters.yaml").write_text(textwrap.dedent(WORKFLOW).replace("ARGS", args))
    (tmp_path / "rules" / "calendars.yaml").write_text(RULES)
    return check_config(tmp_path)


def test_a_letter_sent_on_christmas_eve_is_deemed_received_two_working_days_later(tmp_path):
    definitions, problems = load(tmp_path, "'2 working days', data.sent_on")
    assert definitions is not None, problems
    view = Engine(definitions).start("letters", {"sent_on": "2026-12-24"}, actor="QA-1", roles=["qa"], at="2026-12-24T16:00")
    # Thu 24 Dec 2026 is day 0; Fri 25, Sat 26, Sun 27 and Mon 28 (Boxing Day, observed) are not
    # working days: Tue 29 Dec is the first working day, Wed 30 Dec the second.
    assert view.data["received_on"] == "2026-12-30"
    # 20 working days from Wed 30 Dec 2026: Thu 31 Dec (1), [Fri 1 Jan], Mon 4 - Fri 8 Jan (2-6),
    # 11-15 Jan (7-11), 18-22 Jan (12-16), Mon 25 - Thu 28 Jan (17-20)
    assert view.deadline("reply_window").due == dt.date(2027, 1, 28)


def test_a_named_calendar_counts_its_closure_days(tmp_path):
    definitions, problems = load(tmp_path, "'2 working days', data.sent_on, 'england_local'")
    assert definitions is not None, problems
    view = Engine(definitions).start("letters", {"sent_on": "2026-12-24"}, actor="QA-1", roles=["qa"], at="2026-12-24T16:00")
    # Tue 29 Dec 2026 is a council closure day in england_local: Wed 30 (1), Thu 31 Dec (2)
    assert view.data["received_on"] == "2026-12-31"


def test_without_the_configuration_s_calendars_england_is_still_known():
    assert expression_functions({})["due_after"]("2 working days", "2026-12-24") == dt.date(2026, 12, 30)


@pytest.mark.parametrize(("args", "says"), [
    (("two days", "2026-12-24"), "cannot read the duration 'two days'"),
    (("2 working days", "24/12/2026"), "could not read '24/12/2026' as a date"),
    (("2 working days", "2026-12-24", "wales"), "unknown calendar 'wales'"),
    ((2, "2026-12-24"), "needs a duration written as text"),
])
def test_what_due_after_cannot_work_out_is_an_evaluation_error(args, says):
    with pytest.raises(EvaluationError, match=says):
        expression_functions({})["due_after"](*args)


def test_an_empty_day_gives_null():
    assert expression_functions({})["due_after"]("2 working days", None) is None


def test_a_bad_duration_in_a_workflow_fails_the_call_not_the_caller(tmp_path):
    definitions, problems = load(tmp_path, "'fortnight', data.sent_on")
    assert definitions is not None, problems
    with pytest.raises(EvaluationFailed, match="cannot read the duration 'fortnight'"):
        Engine(definitions).start("letters", {"sent_on": "2026-12-24"}, actor="QA-1", roles=["qa"], at="2026-12-24T16:00")
