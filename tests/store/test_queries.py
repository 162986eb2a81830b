"""Instance queries and worklists on every store: filters, keyset pages, cursors, and the same answers everywhere.

The property tests compare each store with a model written here in plain Python: for random filters
and page sizes, the pages followed through their cursors are exactly the filtered instances in id
order, and a worklist is exactly the instances on which ``available_triggers`` lists something.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine, Page, RoleRefused, UsageError, WorkItem, load_config
from engine.clock import as_time

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"

# A workflow whose bound role is a list (any of the panel's members), with a guard on the data and an
# organisational role: what a worklist must judge exactly as available_triggers does.
PANEL = """
workflow: panel
version: 1
data:
  case_id: {type: string, required: true}
  members: {type: array}
  chair: {type: string}
  locked: {type: boolean, default: false}
  votes: {type: array}
roles:
  member: {from_data: members}
  chair: {from_data: chair}
  qa_team: {}
  manager: {}
states:
  open: {initial: true}
  deciding: {}
  decided: {terminal: true}
triggers:
  vote: {roles: [member], title: Cast a vote}
  lock: {roles: [qa_team, chair], title: Lock the panel}
  call: {roles: [chair], title: Call the decision}
  decide: {roles: [chair, manager], title: Record the decision}
transitions:
  - trigger: vote
    from: open
    when: data.locked != true
    actions:
      - set: {votes: "coalesce(data.votes, []) + [1]"}
  - trigger: lock
    from: open
    when: data.locked != true
    actions:
      - set: {locked: "true"}
  - trigger: call
    from: open
    to: deciding
  - trigger: decide
    from: deciding
    to: decided
start:
  roles: [qa_team]
"""

PEOPLE = ["R-01", "R-02", "R-03", "P-1", "P-2", "P-3", "nobody"]
ROLES = ["manager", "qa_team", "checker", "reviewer", "member", "chair"]


@pytest.fixture(scope="module")
def definitions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config")
    shutil.copytree(FIXTURE, folder, dirs_exist_ok=True)
    (folder / "workflows" / "panel.yaml").write_text(PANEL, encoding="utf-8")
    return load_config(folder)


def populate(eng: Engine) -> None:
    """About fifty instances in every state, with deadlines running, met, breached and paused, and data of every JSON kind."""
    at = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    for k in range(30):
        when = at + dt.timedelta(hours=19 * k)
        data = {"case_id": f"C-{k % 7}", "reviewer": PEOPLE[k % 4], "urgent": k % 3 == 0, "priority": [1, 2, 3, True, 1.0, None][k % 6]}
        view = eng.start("review", data, actor="QA-01", roles=["qa_team"], at=when)
        later = when + dt.timedelta(days=1)
        if k % 5 == 1:
            eng.fire(view.id, "grade", {"grade": "good"}, actor=data["reviewer"], at=later)  # closed, deadline met
        elif k % 5 == 2:
            eng.fire(view.id, "grade", {"grade": "bad"}, actor=data["reviewer"], at=later)  # checking, with a child check
        elif k % 5 == 3:
            eng.fire(view.id, "pause", {}, actor="M-1", roles=["manager"], at=later)  # deadline paused
        elif k % 5 == 4:
            eng.fire(view.id, "note", {"text": "x", "ok": True}, actor=data["reviewer"], at=later)  # notes: a list
    for k in range(12):
        members = [["P-1", "P-2"], ["P-3"], [], ["P-2", "nobody"]][k % 4]
        view = eng.start("panel", {"case_id": f"X-{k}", "members": members, "chair": ["P-1", "P-3", "R-01"][k % 3]},
                         actor="QA-01", roles=["qa_team"], at=at + dt.timedelta(days=k))
        if k % 4 in (1, 3):
            eng.fire(view.id, "lock", {}, actor="QA-01", roles=["qa_team"], at=at + dt.timedelta(days=k, hours=1))
        if k % 6 == 5:
            eng.fire(view.id, "call", {}, actor=view.data["chair"], at=at + dt.timedelta(days=k, hours=2))
    eng.advance("2027-01-12")  # the responses due by 6-11 Jan breach; later ones keep running


@pytest.fixture
def world(definitions, backend):
    eng = Engine(definitions, backend.open())
    populate(eng)
    return eng


# ----------------------------------------------------------------------------- the model


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


def model_match(view: Any, workflow: str | None, state: str | None, where: dict[str, Any], due_before: str | None) -> bool:
    if workflow is not None and view.workflow != workflow:
        return False
    if state is not None and view.state != state:
        return False
    data = view.data
    for field, wanted in where.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        stored = data.get(field)
        if not any(_kind(stored) == _kind(v) and _kind(v) != "other" and stored == v for v in values):
            return False
    if due_before is not None:
        until = as_time(due_before)
        return any(d.status in ("open", "breached") and d.due_at <= until for d in view.deadlines)
    return True


def followed(fetch: Any, limit: int) -> tuple[list[Any], int]:
    """Every item of every page, following ``next``; and how many pages it took."""
    items: list[Any] = []
    after, pages = None, 0
    while True:
        page = fetch(limit=limit, after=after)
        assert isinstance(page, Page) and len(page) <= limit
        items += page.items
        pages += 1
        if page.next is None:
            return items, pages
        after = page.next
        assert pages < 500, "pages never end"


values = st.sampled_from(["R-01", "R-02", "R-03", "nobody", "C-1", "C-3", "x", 1, 2, 3, 1.0, True, False, None, ""])
where_st = st.dictionaries(
    st.sampled_from(["reviewer", "urgent", "priority", "case_id", "grade", "notes", "locked", "chair", "missing"]),
    st.one_of(values, st.lists(values, min_size=0, max_size=3)),
    max_size=2,
)
filters_st = st.fixed_dictionaries({
    "workflow": st.sampled_from([None, None, "review", "panel", "check", "nope"]),
    "state": st.sampled_from([None, None, "open", "closed", "checking", "escalated", "deciding", "pending"]),
    "where": where_st,
    "due_before": st.sampled_from([None, None, "2026-12-20", "2027-01-07", "2027-01-07T00:00", "2027-01-10", "2027-02-15"]),
})
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ----------------------------------------------------------------------------- queries


@SETTINGS
@given(filters=filters_st, limit=st.integers(1, 9))
def test_pages_followed_through_their_cursors_are_the_filtered_instances_in_id_order(world, filters, limit):
    expected = [v.id for v in world.instances() if model_match(v, **filters)]
    found, pages = followed(lambda **page: world.query(filters["workflow"], filters["state"], where=filters["where"],
                                                       due_before=filters["due_before"], **page), limit)
    assert [v.id for v in found] == expected
    assert pages == max(1, -(-len(expected) // limit))  # next is None exactly at the end: no empty last page


def test_where_compares_as_json_does(world):
    ids = lambda **where: [v.id for v in followed(lambda **page: world.query(where=where, **page), 50)[0]]  # noqa: E731
    by_priority = {repr(v): ids(priority=v) for v in (1, 1.0, True, None, 2)}
    assert by_priority["1"] == by_priority["1.0"] and by_priority["1"]  # a number equals the same number
    assert not set(by_priority["1"]) & set(by_priority["True"])  # True is not 1
    assert ids(priority=None) == ids(priority=[None])
    assert set(ids(grade=None)) == {v.id for v in world.instances() if v.data.get("grade") is None}  # not set, or null
    assert ids(notes="x") == []  # a list holding "x" is not "x"
    assert ids(reviewer=["R-01", "R-02"]) == sorted(ids(reviewer="R-01") + ids(reviewer="R-02"))
    assert ids(reviewer=[]) == []  # any of nothing


def test_due_before_keeps_awaited_deadlines_due_by_then(world):
    awaited = [(d.due, v.id) for v in world.instances() for d in v.deadlines if d.status in ("open", "breached")]
    due, iid = min(awaited)
    # a deadline due on a day falls due at the end of it: found from midnight after, not at 23:59 that day
    end_of_day = dt.datetime.combine(due, dt.time(23, 59))
    assert iid not in [v.id for v in world.query(due_before=end_of_day, limit=1000)]
    assert iid in [v.id for v in world.query(due_before=due + dt.timedelta(days=1), limit=1000)]
    paused = [v.id for v in world.instances() if any(d.status == "paused" for d in v.deadlines)]
    assert paused and not {v.id for v in world.query(due_before="2027-12-31", limit=1000)} & set(paused)
    breached = [v.id for v in world.instances() if any(d.status == "breached" for d in v.deadlines)]
    assert breached and set(breached) <= {v.id for v in world.query(due_before="2027-12-31", limit=1000)}


def test_keyset_pages_skip_nothing_and_repeat_nothing_while_instances_are_added(world):
    seen, after = [], None
    before = [v.id for v in world.query("review", limit=1000)]
    for k in range(100):
        page = world.query("review", limit=4, after=after)
        seen += [v.id for v in page]
        world.start("review", {"case_id": f"N-{k}", "reviewer": "R-01"}, actor="QA-01", roles=["qa_team"], at="2027-01-20T09:00")
        if page.next is None:
            break
        after = page.next
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)  # every instance there when paging began is on some page


def test_instances_is_unchanged_and_query_returns_views(world):
    everything = world.instances()
    assert [v.id for v in everything] == sorted(v.id for v in everything)
    assert [v.id for v in world.instances("review", "closed")] == [v.id for v in world.query("review", "closed", limit=1000)]
    page = world.query(limit=3)
    assert len(page.items) == 3 and page.items[0].data == everything[0].data and list(page) == list(page.items)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"limit": 0}, "limit must be a whole number from 1 to 1000"),
    ({"limit": 1001}, "limit must be"),
    ({"limit": True}, "limit must be"),
    ({"after": "not a cursor"}, "is not a cursor"),
    ({"after": "aTE6"}, "is not a cursor"),  # a cursor with no instance id in it
    ({"after": 12}, "is not a cursor"),
    ({"where": {"a.b": 1}}, "is not a data field name"),
    ({"where": {"data": {"x": 1}}}, "can be compared with text, numbers"),
    ({"where": {"x": [[1]]}}, "can be compared with text, numbers"),
    ({"where": {"x": float("nan")}}, "cannot be compared with nan"),
    ({"where": {"x": "a\x00b"}}, "contains a NUL character"),
    ({"where": {"x": 2**70}}, "too large"),
    ({"where": {"x": list(range(1001))}}, "at most 1000"),
    ({"where": ["x"]}, "where must be a mapping"),
    ({"due_before": "soon"}, "is not an ISO 8601 date"),
    ({"workflow": ""}, "the workflow must not be empty"),
])
def test_malformed_queries_are_usage_errors(world, kwargs, message):
    with pytest.raises(UsageError, match=message):
        world.query(**kwargs)
    with pytest.raises(UsageError, match=message):
        world.worklist("R-01", **kwargs)


def test_a_cursor_is_opaque_text_that_resumes_after_the_last_instance(world):
    first = world.query(limit=2)
    assert isinstance(first.next, str) and first.items[-1].id not in first.next
    second = world.query(limit=2, after=first.next)
    assert second.items[0].id > first.items[-1].id
    # a cursor is a place in id order: it may be used with other filters
    assert all(v.id > first.items[-1].id for v in world.query("panel", limit=50, after=first.next))


# ----------------------------------------------------------------------------- worklists

actors_st = st.tuples(st.sampled_from([*PEOPLE, "M-1", "QA-01"]), st.lists(st.sampled_from(ROLES), max_size=2, unique=True))


@SETTINGS
@given(caller=actors_st, filters=filters_st, limit=st.integers(1, 7))
def test_worklist_is_what_available_triggers_lists_on_each_matching_instance(world, caller, filters, limit):
    actor, roles = caller
    expected = []
    for view in world.instances():
        if model_match(view, **filters):
            names = world.available_triggers(view.id, actor=actor, roles=roles)
            if names:
                expected.append((view.id, names))
    items, _ = followed(lambda **page: world.worklist(actor, roles, workflow=filters["workflow"], state=filters["state"],
                                                      where=filters["where"], due_before=filters["due_before"], **page), limit)
    assert [(item.instance_id, [name for name, _ in item.triggers]) for item in items] == expected
    for item in items:
        assert isinstance(item, WorkItem)
        view = world.get(item.instance_id)
        awaited = sorted((d.due, d.name) for d in view.deadlines if d.status in ("open", "breached"))
        assert (item.due, item.deadline) == (awaited[0] if awaited else (None, None))
        assert (item.workflow, item.state) == (view.workflow, view.state)


def test_worklist_items_for_bound_roles_in_lists_and_guards(world):
    # P-2 is a member of the panels whose member list holds them; a locked panel takes no vote
    items = followed(lambda **page: world.worklist("P-2", workflow="panel", **page), 50)[0]
    assert items
    for item in items:
        view = world.get(item.instance_id)
        assert "P-2" in view.data["members"] or view.data["chair"] == "P-2"
        assert ("vote", "Cast a vote") in item.triggers or view.data["locked"] or view.state != "open"
    locked = [v.id for v in world.instances("panel") if v.data["locked"] and "P-2" in v.data["members"] and v.data["chair"] != "P-2"]
    assert locked and not {i.instance_id for i in items} & set(locked)


def test_asserting_a_bound_role_gains_nothing_and_system_is_refused(world):
    assert world.worklist("nobody", ["reviewer", "member", "chair"], workflow="review").items == ()
    with pytest.raises(RoleRefused, match="reserved for the engine"):
        world.worklist("QA-01", ["qa_team", "system"])
    with pytest.raises(UsageError, match="reserved for the engine's own entries"):
        world.worklist("system")


def test_a_worklist_page_may_be_short_while_more_follow(world):
    # R-03 reviews one review in four; pages of 2 over review instances only R-01 can act on hold up to 2
    page = world.worklist("R-01", limit=2)
    assert len(page) == 2 and page.next is not None
    rest = world.worklist("R-01", limit=1000, after=page.next)
    assert rest.next is None
    assert {i.instance_id for i in page}.isdisjoint(i.instance_id for i in rest)
