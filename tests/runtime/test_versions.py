"""Running instances keep the definition version they started on; migration is explicit and checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import Engine, MemoryStore, UsageError, load_config

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
