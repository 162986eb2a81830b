"""One behaviour suite for every store: memory, SQLite and PostgreSQL behave alike through the Engine.

The ``backend`` and ``durable`` fixtures (tests/conftest.py) open each store; PostgreSQL runs against
the server in $QAFLOW_TEST_PG (tests/store/start_postgres.sh starts one); without it those cases are
skipped, unless $CI is set, when they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import ConcurrencyConflict, Engine, MemoryStore, UsageError, load_config
from engine.clock import as_time
from engine.runtime.unit import UnitOfWork
from engine.store.base import Changes
from engine.store.open import open_store
from engine.store.sqlite import SQLiteStore

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


@pytest.fixture
def eng(definitions, backend):
    return Engine(definitions, backend.open())


def start_review(eng: Engine, at: str = "2026-12-18T09:00", **data: Any):
    return eng.start("review", {"case_id": "C-0001", "reviewer": "R-01", **data}, actor="QA-01", roles=["qa_team"], at=at)


def transcript(eng: Engine) -> dict[str, Any]:
    """Everything a host can read back: instances with history, and the whole outbox."""
    return {
        "instances": [v.to_dict(history=True) for v in eng.instances()],
        "outbox": eng.outbox(include_acknowledged=True),
    }


# ----------------------------------------------------------------------------- the engine's behaviour on every store


def test_start_fire_history_and_revisions(eng):
    review = start_review(eng)
    assert review.state == "open" and review.rev == 1
    assert review.deadline("response").due == dt.date(2027, 1, 6)
    after = eng.fire(review.id, "grade", {"grade": "good"}, actor="R-01", at="2026-12-21T10:00")
    assert after.state == "closed" and after.rev == 2
    assert after.data["band"] == {"band": "green"}
    assert after.deadline("response").status == "met"
    history = eng.history(review.id)
    assert [h["trigger"] for h in history] == ["(start)", "grade", "(auto)"]
    assert history[1]["payload"] == {"grade": "good"} and history[1]["actor"] == "R-01"
    assert history[-1]["to"] == "closed"
    assert eng.instances(state="closed")[0].id == review.id
    assert eng.instances(workflow="check") == []


def test_refused_call_leaves_store_untouched(eng):
    review = start_review(eng)
    before = transcript(eng)
    with pytest.raises(Exception, match="set grade"):
        eng.fire(review.id, "explode", {}, actor="MGR-1", roles=["manager"], at="2026-12-21")
    assert transcript(eng) == before


def test_breach_alert_outbox_and_acknowledge(eng):
    review = start_review(eng)
    assert eng.advance("2027-01-06T23:59") == []
    fired = eng.advance("2027-01-08")
    assert [(o.kind, o.name, o.to_state) for o in fired] == [("breach", "response", "escalated")]
    assert fired[0].at.isoformat() == "2027-01-07T00:00:00+00:00"
    assert eng.advance("2027-03-01") == []
    (alert,) = eng.outbox()
    assert alert["name"] == "response_overdue" and alert["acknowledged_at"] is None
    breach = eng.history(review.id)[-1]
    assert breach["trigger"] == "(breach) response"
    assert any(a.get("id") == alert["id"] for a in breach["actions"])
    eng.acknowledge(alert["id"], at="2027-01-08T10:00")
    eng.acknowledge(alert["id"], at="2027-01-09T10:00")  # again: the first time stands
    assert eng.outbox() == []
    (done,) = eng.outbox(include_acknowledged=True)
    assert done["acknowledged_at"] == as_time("2027-01-08T10:00").isoformat()
    with pytest.raises(UsageError):
        eng.acknowledge("alert-999999", at="2027-01-08")


def test_request_id_makes_a_retry_a_no_op(eng):
    review = start_review(eng)
    first = eng.fire(review.id, "note", {"text": "once", "ok": True}, actor="R-01", at="2026-12-21", request_id="req-1")
    again = eng.fire(review.id, "note", {"text": "once", "ok": True}, actor="R-01", at="2026-12-21", request_id="req-1")
    assert again.rev == first.rev and eng.get(review.id).data["notes"] == ["once"]
    s1 = eng.start("review", {"case_id": "C-2", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at="2026-12-18", request_id="s-1")
    s2 = eng.start("review", {"case_id": "C-2", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at="2026-12-18", request_id="s-1")
    assert s1.id == s2.id and len(eng.instances(workflow="review")) == 2
    record = eng.store.request("s-1")
    assert (record.instance_id, record.state, record.snapshot.rev) == (s1.id, "open", 1)
    assert (record.call.operation, record.call.target, record.call.trigger, record.call.actor) == ("start", "review", None, "QA")
    assert eng.store.request("nope") is None


def test_children_and_signals(eng):
    review = start_review(eng)
    graded = eng.fire(review.id, "grade", {"grade": "bad"}, actor="R-01", at="2026-12-21")
    (child_id,) = graded.children
    child = eng.get(child_id)
    assert child.parent_id == review.id and child.data == {"case_id": "C-0001"} and child.rev == 1
    eng.fire(child_id, "record", {"result": "fine"}, actor="CH-1", roles=["checker"], at="2026-12-22")
    parent = eng.get(review.id)
    assert parent.state == "closed" and parent.data["child_result"] == "fine"
    assert eng.history(review.id)[-1]["actor"] == f"system:{child_id}"
    assert [i.id for i in eng.instances()] == sorted([review.id, child_id])


def test_extension_moves_the_deadline_index(eng):
    review = start_review(eng)
    eng.fire(review.id, "extend", {"reason": "advocate needed"}, actor="MGR-1", roles=["manager"], at="2027-01-04")
    assert eng.get(review.id).deadline("response").due == dt.date(2027, 1, 20)
    assert eng.advance("2027-01-20T23:00") == []
    assert [o.name for o in eng.advance("2027-01-21T00:00")] == ["response"]


def test_pause_takes_the_deadline_out_of_the_index_and_resume_puts_it_back(eng):
    review = start_review(eng, at="2026-10-01T09:00")
    eng.fire(review.id, "pause", {}, actor="MGR-1", roles=["manager"], at="2026-10-08T12:00")
    assert eng.advance("2026-11-30") == []
    eng.fire(review.id, "resume", {}, actor="MGR-1", roles=["manager"], at="2026-12-01T09:00")
    assert eng.get(review.id).deadline("response").due == dt.date(2026, 12, 8)
    (breach,) = eng.advance("2026-12-31")
    assert breach.at == as_time("2026-12-09T00:00")


def test_summer_time_deadlines_come_back_in_london_time(eng):
    review = start_review(eng, at="2026-06-01T09:00")
    due_at = eng.get(review.id).deadline("response").due_at
    (breach,) = eng.advance("2026-07-01")
    assert breach.at == due_at and breach.at.isoformat().endswith("+01:00")
    assert eng.history(review.id)[-1]["at"] == due_at.isoformat()


def test_scheduled_starts_fire_in_order_with_breaches_once(eng):
    start_review(eng, at="2026-12-18T09:00")
    sid = eng.schedule_start("review", {"case_id": "C-9", "reviewer": "R-02"}, at="2027-01-04T09:00", actor="QA-01", roles=["qa_team"])
    assert eng.store.schedule(sid)["at"] == as_time("2027-01-04T09:00")
    fired = eng.advance("2027-01-10")
    assert [(o.kind, o.at.date().isoformat()) for o in fired] == [("start", "2027-01-04"), ("breach", "2027-01-07")]
    assert eng.store.schedule(sid) is None
    assert eng.get(fired[0].instance_id).data["case_id"] == "C-9"
    assert eng.advance("2027-01-10") == []


def test_same_instant_orders_breach_before_start_then_by_id(eng):
    a = start_review(eng, at="2026-12-18T09:00")
    b = start_review(eng, at="2026-12-18T10:00")  # same due day: 2027-01-07T00:00
    eng.schedule_start("review", {"case_id": "C-9", "reviewer": "R-02"}, at="2027-01-07T00:00", actor="QA-01", roles=["qa_team"])
    fired = eng.advance("2027-01-07T00:00")
    assert [(o.kind, o.instance_id if o.kind == "breach" else "") for o in fired] == [
        ("breach", a.id), ("breach", b.id), ("start", ""),
    ]


def test_every_store_gives_the_memory_store_transcript(definitions, backend):
    """A mixed run gives exactly what the reference (memory) store gives."""

    def run(eng: Engine) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rng = random.Random(7)
        fired: list[dict[str, Any]] = []
        ids = []
        day = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # UTC: adding hours never lands in a clock change
        for k in range(40):
            day += dt.timedelta(hours=rng.choice([3, 7, 20, 26]))
            if k % 4 == 0:
                ids.append(start_review(eng, at=day, case_id=f"C-{k:04d}").id)
            elif k % 9 == 0:
                eng.schedule_start("review", {"case_id": f"S-{k}", "reviewer": "R-03"}, at=day + dt.timedelta(days=3), actor="QA", roles=["qa_team"])
            else:
                iid = rng.choice(ids)
                op = rng.choice(["note", "grade", "pause", "resume", "extend", "ack"])
                try:
                    if op == "note":
                        eng.fire(iid, "note", {"text": f"n{k}", "ok": True}, actor="R-01", at=day)
                    elif op == "grade":
                        eng.fire(iid, "grade", {"grade": rng.choice(["good", "bad"])}, actor="R-01", at=day)
                    elif op == "ack":
                        for alert in eng.outbox()[:1]:
                            eng.acknowledge(alert["id"], at=day)
                    elif op == "extend":
                        eng.fire(iid, "extend", {"reason": "why"}, actor="M", roles=["manager"], at=day)
                    else:
                        eng.fire(iid, op, {}, actor="M", roles=["manager"], at=day)
                except Exception as exc:  # refusals are part of the transcript
                    fired.append({"refused": type(exc).__name__})
            fired += [o.to_dict() for o in eng.advance(day)]
        fired += [o.to_dict() for o in eng.advance(day + dt.timedelta(days=60))]
        return fired, transcript(eng)

    expected = run(Engine(definitions, MemoryStore()))
    assert run(Engine(definitions, backend.open())) == expected


# ----------------------------------------------------------------------------- durability and concurrency


def test_data_survives_reopening(definitions, durable):
    first = Engine(definitions, durable.open())
    review = start_review(first)
    first.fire(review.id, "note", {"text": "kept", "ok": True}, actor="R-01", at="2026-12-21", request_id="r-1")
    sid = first.schedule_start("review", {"case_id": "C-9", "reviewer": "R-02"}, at="2027-03-01", actor="QA", roles=["qa_team"])
    first.advance("2027-01-08")
    before = transcript(first)
    ids_before = {first.store.next_id("alert") for _ in range(3)}

    again = Engine(definitions, durable.open())
    assert transcript(again) == before
    assert again.get(review.id).data["notes"] == ["kept"]
    assert (again.store.request("r-1").instance_id, again.store.request("r-1").state) == (review.id, "open")
    assert again.store.schedule(sid)["workflow"] == "review"
    assert again.store.next_id("alert") not in ids_before | {a["id"] for a in before["outbox"]}
    assert [o.kind for o in again.advance("2027-03-02")] == ["start"]
    assert again.store.definition("review", 1) == first.store.definition("review", 1)
    assert again.store.definition("review", 1)["digest"] == definitions.workflows["review"].digest
    assert again.store.definition("review", 2) is None


def test_next_due_hands_each_item_to_one_store_until_it_is_fired(definitions, durable):
    a, b = durable.open(), durable.open()
    review = start_review(Engine(definitions, a))
    item = a.next_due(as_time("2027-02-01"))
    assert (item.kind, item.key, item.name) == ("breach", review.id, "response")
    assert a.next_due(as_time("2027-02-01")) == item  # still ours: asking again gives it again
    assert b.next_due(as_time("2027-02-01")) is None  # held by a live store: not handed out twice
    assert Engine(definitions, a).advance("2027-02-01")[0].instance_id == review.id
    assert b.next_due(as_time("2027-02-01")) is None and a.next_due(as_time("2027-02-01")) is None


def test_a_claim_lapses_after_its_lease(definitions, durable):
    import time

    a, b = durable.open(lease_seconds=0.2), durable.open()
    review = start_review(Engine(definitions, a))
    assert a.next_due(as_time("2027-02-01")).key == review.id  # a claims it, then (say) hangs
    assert b.next_due(as_time("2027-02-01")) is None
    time.sleep(0.3)
    assert [o.instance_id for o in Engine(definitions, b).advance("2027-02-01")] == [review.id]


def test_sqlite_claim_of_a_dead_process_lapses_at_once(definitions, tmp_path):
    import multiprocessing

    path = tmp_path / "dead.db"
    with SQLiteStore(path) as setup:  # closed before forking: a connection must not cross a fork
        review = start_review(Engine(definitions, setup))

    def claim_and_die() -> None:
        SQLiteStore(path).next_due(as_time("2027-02-01"))
        os._exit(0)  # killed before firing what it claimed

    child = multiprocessing.get_context("fork").Process(target=claim_and_die)
    child.start()
    child.join()
    claimed = sqlite3.connect(path).execute("SELECT claimed_by FROM deadlines").fetchone()[0]
    assert claimed.startswith(f"{child.pid}:")
    assert [o.instance_id for o in Engine(definitions, SQLiteStore(path)).advance("2027-02-01")] == [review.id]


class CommitHook:
    """A store that runs ``before`` just before its next commit (to interleave two writers)."""

    def __init__(self, inner: Any, before: Callable[[], Any]) -> None:
        self._inner = inner
        self._before: Callable[[], Any] | None = before

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def commit(self, changes: Changes) -> None:
        hook, self._before = self._before, None
        if hook is not None:
            hook()
        self._inner.commit(changes)


def test_concurrent_update_loser_gets_conflict_and_winner_stands(definitions, backend):
    winner = Engine(definitions, backend.open())
    review = start_review(winner)
    def win() -> None:
        winner.fire(review.id, "note", {"text": "A", "ok": True}, actor="R-01", at="2026-12-21T10:00")

    loser = Engine(definitions, CommitHook(backend.open(), win))
    loser.get(review.id)  # the loser has read (and, for SQLite, cached) the instance too
    with pytest.raises(ConcurrencyConflict, match=f"instance {review.id} was changed by someone else"):
        loser.fire(review.id, "note", {"text": "B", "ok": True}, actor="R-01", at="2026-12-21T10:01")
    for eng in (winner, loser, Engine(definitions, backend.open())):
        view = eng.get(review.id)
        assert view.data["notes"] == ["A"] and view.rev == 2
        assert [h["trigger"] for h in eng.history(review.id)] == ["(start)", "note"]
    # the loser reloads and tries again
    assert loser.fire(review.id, "note", {"text": "B", "ok": True}, actor="R-01", at="2026-12-21T10:01").data["notes"] == ["A", "B"]


def test_conflicting_commits_are_rolled_back_whole(definitions, backend):
    eng = Engine(definitions, backend.open())
    review = start_review(eng)
    sid = eng.schedule_start("review", {"case_id": "C-9", "reviewer": "R-02"}, at="2027-03-01", actor="QA", roles=["qa_team"])
    eng.fire(review.id, "note", {"text": "x", "ok": True}, actor="R-01", at="2026-12-21", request_id="done")
    store = backend.open()
    before = transcript(eng)

    def attempt(**extra: Any) -> None:
        uow = UnitOfWork(store)
        inst = uow.get(review.id)
        inst.data["notes"] = ["overwritten"]
        uow.record({"instance_id": review.id, "trigger": "t", "to": inst.state})
        uow.changes.alerts.append({"id": store.next_id("alert"), "message": "must not survive", "acknowledged_at": None})
        for key, value in extra.items():
            setattr(uow.changes, key, value)
        with pytest.raises(ConcurrencyConflict):
            uow.commit()

    attempt(schedules_done=[sid, "schedule-999999"])  # a schedule already done elsewhere
    attempt(request=("done", eng.store.request("done").call, review.id))  # a request id already carried out
    attempt(base_revs={review.id: 99})  # read at a revision that is not the stored one
    new = eng.store.load(review.id).clone()
    uow = UnitOfWork(store)
    uow.add(new)  # "new" instance whose id exists
    with pytest.raises(ConcurrencyConflict, match="already exists"):
        uow.commit()
    assert transcript(Engine(definitions, backend.open())) == before
    assert store.schedule(sid) is not None


def test_next_id_is_unique_and_never_reused(durable):
    a, b = durable.open(), durable.open()
    ids = [s.next_id("case") for _ in range(20) for s in (a, b)]
    assert len(set(ids)) == 40 and ids[0] == "case-000001"
    assert durable.open().next_id("case") == "case-000041"
    assert a.next_id("other") == "other-000001"


# ----------------------------------------------------------------------------- schema migrations


def test_migrations_on_a_fresh_database_and_idempotent_on_an_existing_one(definitions, durable, monkeypatch):
    module = __import__("engine.store.sqlite" if durable.kind == "sqlite" else "engine.store.postgres", fromlist=["MIGRATIONS"])
    shipped = len(module.MIGRATIONS)
    first = durable.open()
    assert first.schema_version == shipped >= 3
    review = start_review(Engine(definitions, first))
    assert durable.open().schema_version == shipped  # opening again applies nothing twice

    # a later release adds a step: it is applied once, in order, and the data stays
    step = ["CREATE TABLE extra_notes (id TEXT PRIMARY KEY)", "INSERT INTO extra_notes VALUES ('seeded')"]
    monkeypatch.setattr(module, "MIGRATIONS", [*module.MIGRATIONS, step])
    upgraded = durable.open()
    assert upgraded.schema_version == shipped + 1
    again = durable.open()  # would fail on "table exists" if the step ran twice
    assert again.schema_version == shipped + 1
    assert Engine(definitions, again).get(review.id).state == "open"
    if durable.kind == "sqlite":
        rows = sqlite3.connect(durable.path).execute("SELECT id FROM extra_notes").fetchall()
    else:
        rows = again._conn.execute("SELECT id FROM extra_notes").fetchall()
    assert rows == [("seeded",)]

    # an older qaflow refuses a newer database rather than guessing
    monkeypatch.setattr(module, "MIGRATIONS", module.MIGRATIONS[:shipped])
    with pytest.raises(UsageError, match="newer than this qaflow knows"):
        durable.open()


def test_sqlite_file_is_in_wal_mode_with_the_expected_tables(tmp_path):
    store = SQLiteStore(tmp_path / "x.db")
    db = sqlite3.connect(tmp_path / "x.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"instances", "history", "deadlines", "schedules", "outbox", "requests", "counters"} <= tables
    plan = " ".join(
        str(r) for r in db.execute("EXPLAIN QUERY PLAN SELECT due_key FROM deadlines WHERE status = 'open' AND due_key <= 5 ORDER BY due_key LIMIT 1")
    )
    assert "deadlines_open_due" in plan  # next_due is an index lookup, not a scan
    store.close()


def test_open_store_picks_the_store_from_the_target(tmp_path, monkeypatch):
    assert isinstance(open_store(":memory:"), MemoryStore)
    assert isinstance(open_store(tmp_path / "a.db"), SQLiteStore)
    monkeypatch.setenv("QAFLOW_DB", str(tmp_path / "env.db"))
    assert open_store(None).path == str(tmp_path / "env.db")
    monkeypatch.delenv("QAFLOW_DB")
    monkeypatch.chdir(tmp_path)
    assert open_store(None).path == "qaflow.db" and (tmp_path / "qaflow.db").exists()


# ----------------------------------------------------------------------------- downtime


def test_a_month_of_downtime_fires_every_missed_deadline_once_in_time_order(definitions, backend):
    eng = Engine(definitions, backend.open())
    rng = random.Random(3)
    at = dt.datetime(2027, 2, 1, 9, 0)
    ids = []
    for k in range(30):  # staggered starts: deadlines fall due all through March
        ids.append(start_review(eng, at=at + dt.timedelta(hours=17 * k), case_id=f"C-{k}").id)
    for k in range(5):
        eng.schedule_start("review", {"case_id": f"S-{k}", "reviewer": "R-02"}, at=dt.datetime(2027, 3, 1 + 5 * k, 8), actor="QA", roles=["qa_team"])
    for iid in rng.sample(ids, 8):  # some are answered in time and must not breach
        eng.fire(iid, "grade", {"grade": "good"}, actor="R-01", at=eng.get(iid).updated_at + dt.timedelta(days=2))
    graded = {i.id for i in eng.instances(state="closed")}

    fired = eng.advance("2027-04-30")  # the host was down for the whole of March and April

    assert [o.at for o in fired] == sorted(o.at for o in fired)
    breaches = [o.instance_id for o in fired if o.kind == "breach"]
    started = [o.instance_id for o in fired if o.kind == "start"]
    assert len(started) == 5
    assert sorted(breaches) == sorted(set(ids) - graded | set(started))  # every missed one, once
    for iid in breaches:
        assert [h["trigger"] for h in eng.history(iid)].count("(breach) response") == 1
        assert eng.history(iid)[-1]["at"] == eng.get(iid).deadline("response").due_at.isoformat()
    assert len(eng.outbox()) == len(breaches)
    assert eng.advance("2027-06-30") == []
