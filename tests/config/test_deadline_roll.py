"""A deadline's roll: a due date on a weekend, bank holiday or closure moves forward, back, or stays."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import Engine
from engine.config.loader import check_config

WORKFLOW = """\
workflow: monthly
version: 1
start: {roles: [qa]}
roles: {qa: {}}
states:
  open: {initial: true, on_enter: [{start_deadline: moderation}]}
  done: {terminal: true}
triggers:
  close: {roles: [qa]}
transitions:
  - {trigger: close, from: open, to: done}
deadlines:
  moderation:
    due: end of week 4
    roll: ROLL
"""


def load(tmp_path: Path, roll: str):
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "monthly.yaml").write_text(textwrap.dedent(WORKFLOW).replace("ROLL", roll))
    return check_config(tmp_path)


@pytest.mark.parametrize(("roll", "due", "says"), [
    ("previous_working_day", "2026-12-24", "rolled back to the previous working day"),
    ("next_working_day", "2026-12-29", "rolled forward to the next working day"),
    ("none", "2026-12-28", None),
])
def test_the_end_of_week_4_of_december_2026_rolls_as_the_deadline_says(tmp_path, roll, due, says):
    definitions, problems = load(tmp_path, roll)
    assert definitions is not None, problems
    view = Engine(definitions).start("monthly", {}, actor="QA-01", roles=["qa"], at="2026-12-01T09:00")
    deadline = view.deadline("moderation")
    assert deadline.due.isoformat() == due
    if says:
        assert says in deadline.explanation[0] and "Boxing Day" in " ".join(deadline.explanation)
    else:
        assert "rolled" not in " ".join(deadline.explanation)


def test_an_unknown_roll_is_reported_with_its_position(tmp_path):
    definitions, problems = load(tmp_path, "backwards")
    assert definitions is None
    (problem,) = [p for p in problems if p.severity == "error"]
    assert (problem.location.line, problem.location.column) == (15, 11)  # the value of roll:
    assert "next_working_day" in problem.message
