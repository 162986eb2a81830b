"""`start` with `for_each`: one child per item of a list, the item named `item` in the child's data."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import ActionFailed, Engine, EvaluationFailed
from engine.config.loader import check_config

PARENT = """\
workflow: plan
version: 1
start: {roles: [qa]}
data:
  case_id: {type: string, required: true}
  team: {type: string}
roles:
  qa: {}
states:
  drafting: {initial: true}
  agreed: {terminal: true}
triggers:
  agree:
    roles: [qa]
    payload:
      type: object
      properties:
        actions: {}
transitions:
  - trigger: agree
    from: drafting
    to: agreed
    actions:
      - start:
          workflow: task
          for_each: payload.actions
          data:
            what: item.action
            owner: item.owner
            case_id: data.case_id
            team: coalesce(item.team, data.team)
"""

CHILD = """\
workflow: task
version: 1
start: {roles: [system]}
data:
  what: {type: string, required: true}
  owner: {type: string, required: true}
  case_id: {type: string}
  team: {type: string}
roles:
  owner: {from_data: owner}
states:
  open: {initial: true}
  done: {terminal: true}
triggers:
  finish: {roles: [owner]}
transitions:
  - {trigger: finish, from: open, to: done}
"""


def config(tmp_path: Path, parent: str = PARENT, child: str = CHILD) -> Path:
    (tmp_path / "workflows").mkdir(parents=True)
    (tmp_path / "workflows" / "plan.yaml").write_text(textwrap.dedent(parent))
    (tmp_path / "workflows" / "task.yaml").write_text(textwrap.dedent(child))
    return tmp_path


@pytest.fixture
def eng(tmp_path):
    definitions, problems = check_config(config(tmp_path))
    assert definitions is not None, "\n".join(map(str, problems))
    return Engine(definitions)


def start(eng):
    return eng.start("plan", {"case_id": "C-1", "team": "t1"}, actor="QA-1", roles=["qa"], at="2026-10-01T09:00")


def test_one_child_per_item_in_order_with_the_item_in_its_data(eng):
    plan = start(eng)
    actions = [
        {"action": "Update the chronology", "owner": "SW-1"},
        {"action": "Review the plan", "owner": "TM-1", "team": "t2"},
    ]
    after = eng.fire(plan.id, "agree", {"actions": actions}, actor="QA-1", roles=["qa"], at="2026-10-02T09:00")
    children = [eng.get(c) for c in after.children]
    assert [c.data["what"] for c in children] == ["Update the chronology", "Review the plan"]
    assert [c.data["owner"] for c in children] == ["SW-1", "TM-1"]
    assert [c.data["team"] for c in children] == ["t1", "t2"]
    assert all(c.parent_id == plan.id and c.data["case_id"] == "C-1" for c in children)
    starts = [a for a in eng.history(plan.id)[-1]["actions"] if a["action"] == "start"]
    assert [(a["child"], a["item"]) for a in starts] == [(children[0].id, 0), (children[1].id, 1)]
    # each child is its own instance: its owner acts on it
    eng.fire(children[1].id, "finish", actor="TM-1", at="2026-10-03T09:00")
    assert eng.get(children[1].id).state == "done" and eng.get(children[0].id).state == "open"


def test_an_empty_or_missing_list_starts_nothing(eng):
    for payload in ({"actions": []}, {}):
        plan = start(eng)
        after = eng.fire(plan.id, "agree", payload, actor="QA-1", roles=["qa"], at="2026-10-02T09:00")
        assert after.state == "agreed" and not after.children


def test_a_value_that_is_not_a_list_changes_nothing(eng):
    plan = start(eng)
    with pytest.raises(EvaluationFailed, match=r"for_each of start task: payload\.actions should give a list, found str"):
        eng.fire(plan.id, "agree", {"actions": "all of them"}, actor="QA-1", roles=["qa"], at="2026-10-02T09:00")
    assert eng.get(plan.id).state == "drafting" and len(eng.instances("task")) == 0


def test_a_child_the_item_cannot_start_rolls_back_every_child(eng):
    plan = start(eng)
    actions = [{"action": "Update the chronology", "owner": "SW-1"}, {"action": "Nobody owns this"}]
    with pytest.raises(ActionFailed, match="'owner' is required"):
        eng.fire(plan.id, "agree", {"actions": actions}, actor="QA-1", roles=["qa"], at="2026-10-02T09:00")
    assert eng.get(plan.id).state == "drafting" and len(eng.instances("task")) == 0


def test_item_outside_a_for_each_is_an_error_at_its_line_and_column(tmp_path):
    broken = PARENT.replace("          for_each: payload.actions\n", "")
    _, problems = check_config(config(tmp_path, broken))
    errors = [p for p in problems if p.severity == "error"]
    lines = broken.splitlines()
    where = [(n, lines[n - 1].index(text) + 1) for n in range(1, len(lines) + 1)
             for text in ("item.action", "item.owner", "item.team") if text in lines[n - 1]]
    assert where == [(27, 19), (28, 20), (30, 28)]  # what: item.action / owner: item.owner / team: coalesce(item.team, ...)
    assert [(p.location.line, p.location.column, p.code) for p in errors] == [(n, c, "expression-unknown-name") for n, c in where]
    assert "'item' is the item of a list in the data of a 'start' with 'for_each'" in errors[0].message


def test_for_each_must_compile_and_is_checked_like_any_expression(tmp_path):
    broken = PARENT.replace("for_each: payload.actions", "for_each: payload.actions +")
    _, problems = check_config(config(tmp_path, broken))
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1 and errors[0].location.line == 26 and errors[0].code.startswith("expression-")
    # and the lint reads the data with 'item' known: no warnings about it
    _, problems = check_config(config(tmp_path / "ok", PARENT))
    assert [p for p in problems if "item" in p.message] == []


def test_the_schema_refuses_an_unknown_key_next_to_for_each(tmp_path):
    broken = PARENT.replace("for_each: payload.actions", "for_each: payload.actions\n          each_as: x")
    _, problems = check_config(config(tmp_path, broken))
    assert any(p.severity == "error" and p.location.line == 27 for p in problems)
