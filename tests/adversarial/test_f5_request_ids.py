"""F5: a request id names one call; a retry returns its first result, another call is refused.

Replays the review's attacks on every store: an id reused on another instance, trigger, payload or actor;
a retry after the instance moved on; and 8 processes sending the same id at once, on SQLite and
PostgreSQL, where every copy must get the same answer and the call must happen exactly once.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, PayloadInvalid, RequestIdReused, UsageError, load_config
from engine.cli import main

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
NOTE = {"text": "once", "ok": True}


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


@pytest.fixture
def eng(definitions, backend):
    return Engine(definitions, backend.open())


def start_review(eng: Engine, case_id: str = "C-1", **options: Any):
    return eng.start("review", {"case_id": case_id, "reviewer": "R-01"}, actor="QA-01", roles=["qa_team"], at="2026-12-18T09:00", **options)


def note(eng: Engine, iid: str, payload: dict[str, Any] = NOTE, actor: str = "R-01", **options: Any):
    return eng.fire(iid, "note", payload, actor=actor, at="2026-12-21T10:00", **options)


# ----------------------------------------------------------------------------- reuse for another call


def test_the_same_id_on_another_instance_is_refused_and_changes_nothing(eng):
    a, b = start_review(eng, "C-1"), start_review(eng, "C-2")
    note(eng, a.id, request_id="form-42")
    before = eng.history(b.id)
    with pytest.raises(RequestIdReused) as refused:
        note(eng, b.id, {"text": "other", "ok": True}, request_id="form-42")  # the review: returned A's view
    assert f"already used to fire 'note' on {a.id} (as R-01)" in refused.value.message
    assert f"would fire 'note' on {b.id}" in refused.value.message
    assert refused.value.details["first"]["target"] == a.id and refused.value.exit_code == 1
    assert eng.history(b.id) == before and eng.get(b.id).rev == 1


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda eng, iid: eng.fire(iid, "pause", {}, actor="R-01", roles=["manager"], at="2026-12-22", request_id="r"), "would fire 'pause'"),
        (lambda eng, iid: note(eng, iid, {"text": "twice", "ok": True}, request_id="r"), "has a different payload"),
        (lambda eng, iid: note(eng, iid, actor="MGR-1", roles=["manager"], request_id="r"), "is made by MGR-1, not R-01"),
        (lambda eng, iid: start_review(eng, "C-9", request_id="r"), "would start review"),
    ],
    ids=["other-trigger", "other-payload", "other-actor", "a-start"],
)
def test_the_same_id_for_a_different_call_on_the_same_instance_is_refused(eng, call, says):
    review = start_review(eng)
    first = note(eng, review.id, request_id="r")
    with pytest.raises(RequestIdReused, match=says):
        call(eng, review.id)
    assert eng.get(review.id).rev == first.rev and len(eng.instances()) == 1


def test_a_start_id_reused_with_other_data_or_another_workflow_is_refused(eng):
    first = start_review(eng, "C-1", request_id="s")
    with pytest.raises(RequestIdReused, match="has different data"):
        start_review(eng, "C-2", request_id="s")
    with pytest.raises(RequestIdReused, match="would start check"):
        eng.start("check", {"case_id": "C-1"}, actor="QA-01", at="2026-12-18T09:00", request_id="s")
    with pytest.raises(RequestIdReused, match="already used to start review"):
        note(eng, first.id, request_id="s")
    assert [i.id for i in eng.instances()] == [first.id]


def test_data_given_in_another_key_order_is_the_same_call(eng):
    first = eng.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", at="2026-12-18T09:00", request_id="s")
    again = eng.start("review", {"reviewer": "R-01", "case_id": "C-1"}, actor="QA-01", at="2026-12-18T09:05", request_id="s")
    assert again.id == first.id and len(eng.instances()) == 1


# ----------------------------------------------------------------------------- what a retry returns


def test_a_retry_returns_the_first_result_even_after_the_instance_moved_on(eng):
    review = start_review(eng)
    first = note(eng, review.id, request_id="n-1")
    assert (first.state, first.rev, first.data["notes"]) == ("open", 2, ["once"])
    eng.fire(review.id, "grade", {"grade": "good"}, actor="R-01", at="2026-12-22")  # moves on to closed
    history = eng.history(review.id)

    # later, with other roles and another time: neither is part of the call
    again = eng.fire(review.id, "note", NOTE, actor="R-01", roles=["manager"], at="2027-01-05", request_id="n-1")
    assert (again.id, again.state, again.rev, again.data["notes"]) == (review.id, "open", 2, ["once"])
    assert again.deadline("response").status == "open"  # as the first call left it
    assert eng.get(review.id).state == "closed" and eng.history(review.id) == history  # nothing done again
    assert [h.get("request_id") for h in history].count("n-1") == 1


def test_a_retried_start_returns_the_instance_as_it_was_started(eng):
    first = start_review(eng, request_id="s-1")
    eng.fire(first.id, "grade", {"grade": "bad"}, actor="R-01", at="2026-12-22")  # starts a child too
    again = start_review(eng, request_id="s-1")
    assert (again.id, again.state, again.rev, again.children) == (first.id, "open", 1, ())
    assert len(eng.instances(workflow="review")) == 1


def test_a_refused_call_records_nothing_so_its_id_may_be_used_again(eng):
    review = start_review(eng)
    with pytest.raises(PayloadInvalid):
        note(eng, review.id, {"text": "no ok flag"}, request_id="r-2")
    assert eng.store.request("r-2") is None
    assert note(eng, review.id, request_id="r-2").data["notes"] == ["once"]


@pytest.mark.parametrize("bad", ["x" * 201, "a\x00b", 42])
def test_an_unusable_request_id_is_a_usage_error(eng, bad):
    review = start_review(eng)
    with pytest.raises(UsageError, match="request_id"):
        note(eng, review.id, request_id=bad)
    assert eng.get(review.id).rev == 1


def test_the_cli_refuses_a_reused_id_with_exit_1(tmp_path):
    from click.testing import CliRunner

    db = str(tmp_path / "f5.db")
    data = '{"case_id": "C-1", "team": "t1", "service": "assessment", "lead_auditor": "TM-01", "peer_auditor": "IRO-02"}'
    run = lambda *args: CliRunner().invoke(main, [*args, "--db", db, "--at", "2026-10-01T09:00"])  # noqa: E731
    assert run("start", "case_audit", "--actor", "QA-01", "--role", "qa_team", "--data", data).exit_code == 0
    assert run("start", "case_audit", "--actor", "QA-01", "--role", "qa_team", "--data", data.replace("C-1", "C-2")).exit_code == 0
    first = run("fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--payload", '{"notes": "x"}', "--request-id", "form-42")
    assert first.exit_code == 0, first.output
    again = run("fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--payload", '{"notes": "x"}', "--request-id", "form-42")
    assert again.exit_code == 0 and again.stdout == first.stdout
    other = run("fire", "case_audit-000002", "record_consent", "--actor", "QA-01", "--role", "qa_team",
                "--payload", '{"decision": "declined"}', "--request-id", "form-42")
    assert other.exit_code == 1 and "already used to fire 'record_file_review' on case_audit-000001" in other.stderr


# ----------------------------------------------------------------------------- records from before schema 2


def test_a_record_from_schema_1_still_protects_its_instance(definitions, durable):
    eng = Engine(definitions, durable.open())
    a, b = start_review(eng, "C-1"), start_review(eng, "C-2")
    note(eng, a.id, request_id="old")
    forget = "UPDATE requests SET operation = NULL, target = NULL, trigger = NULL, actor = NULL, digest = NULL, snapshot = NULL"
    if durable.kind == "sqlite":
        with sqlite3.connect(durable.path) as raw:
            raw.execute(forget)
    else:
        eng.store._conn.execute(forget)
    eng = Engine(definitions, durable.open())
    assert eng.store.request("old").call is None
    assert note(eng, a.id, request_id="old").id == a.id  # the old behaviour: the instance as it is now
    with pytest.raises(RequestIdReused, match=f"already used for {a.id}"):
        note(eng, b.id, request_id="old")


def test_migration_2_keeps_the_request_ids_of_a_schema_1_sqlite_file(definitions, tmp_path):
    from engine.store import sqlite as module

    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as raw:
        for sql in module.MIGRATIONS[0]:
            raw.execute(sql)
        raw.execute("PRAGMA user_version = 1")
        raw.execute("INSERT INTO requests (request_id, result) VALUES ('form-1', '{\"id\": \"review-000001\", \"state\": \"open\"}')")
    store = module.SQLiteStore(path)
    assert store.schema_version == len(module.MIGRATIONS)
    record = store.request("form-1")
    assert (record.instance_id, record.state, record.call, record.snapshot) == ("review-000001", "open", None, None)


# ----------------------------------------------------------------------------- duplicates at the same moment

WORKERS = 8
ROUNDS = 20


def _duplicate_worker(kind: str, target: str, number: int, iid: str, definitions: Any, out: str, barrier: Any) -> None:
    """Every worker sends the same call with the same request id, at the same moment, round after round."""
    from engine.store.open import open_store

    eng = Engine(definitions, open_store(target))
    results: list[Any] = []
    for r in range(ROUNDS):
        barrier.wait()
        try:
            if r % 2 == 0:
                view = eng.start("review", {"case_id": f"C-{r}", "reviewer": "R-01"}, actor="QA-01", at="2026-12-18T09:00", request_id=f"start-{r}")
            else:
                view = eng.fire(iid, "note", {"text": f"n{r}", "ok": True}, actor="R-01", at="2026-12-21T10:00", request_id=f"note-{r}")
            results.append([view.id, view.state, view.rev, view.data.get("notes")])
        except Exception as exc:  # every copy must get the first result: anything else is a failure
            results.append(["error", type(exc).__name__, str(exc)])
    Path(out).write_text(json.dumps(results))


def test_concurrent_duplicates_all_get_the_first_result_and_it_happens_once(definitions, durable, tmp_path):
    setup = Engine(definitions, durable.open())
    iid = start_review(setup, "TARGET").id
    for store in durable._opened:
        store.close()  # nothing open across the fork
    durable._opened.clear()

    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(WORKERS)
    outs = [str(tmp_path / f"w{n}.json") for n in range(WORKERS)]
    procs = [ctx.Process(target=_duplicate_worker, args=(durable.kind, durable.target, n, iid, definitions, outs[n], barrier)) for n in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0, f"worker {p.name} failed (exit {p.exitcode})"
    results = [json.loads(Path(o).read_text()) for o in outs]

    errors = [r for worker in results for r in worker if r[0] == "error"]
    assert errors == [], f"{len(errors)} of {WORKERS * ROUNDS} calls did not get the first result: {errors[:3]}"
    eng = Engine(definitions, durable.open())
    for r in range(ROUNDS):
        answers = {json.dumps(worker[r]) for worker in results}
        assert len(answers) == 1, f"round {r}: the copies got different answers {answers}"
        (answer,) = answers
        record = eng.store.request(f"start-{r}" if r % 2 == 0 else f"note-{r}")
        assert json.loads(answer)[0] == record.instance_id
    started = [v for v in eng.instances(workflow="review") if v.data["case_id"] != "TARGET"]
    assert sorted(v.data["case_id"] for v in started) == sorted(f"C-{r}" for r in range(0, ROUNDS, 2))  # each once
    notes = eng.get(iid).data["notes"]
    assert notes == [f"n{r}" for r in range(1, ROUNDS, 2)]  # each once, in order
    assert [h.get("request_id") for h in eng.history(iid)][1:] == [f"note-{r}" for r in range(1, ROUNDS, 2)]
