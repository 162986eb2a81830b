"""Several processes fire on the same instances and advance the clock together: no lost update, each breach once.

Runs on a SQLite file, and on PostgreSQL when $QAFLOW_TEST_PG is set (skipped without it, failing in CI).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine import ConcurrencyConflict, Engine, Refused, load_config

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
WORKERS = 4
ROUNDS = 22  # days of clock: every deadline falls due while the workers are firing
FIRES_PER_ROUND = 8
INSTANCES = 12
DAY0 = dt.datetime(2027, 1, 4, 9, 0)


def pg_url_or_skip() -> str:
    url = os.environ.get("QAFLOW_TEST_PG")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI is set but QAFLOW_TEST_PG is not: start PostgreSQL with tests/store/start_postgres.sh", pytrace=False)
        pytest.skip("no PostgreSQL: set QAFLOW_TEST_PG=postgresql://... (tests/store/start_postgres.sh prints one)")
    return url


def open_target(kind: str, target: str) -> Any:
    if kind == "sqlite":
        from engine.store.sqlite import SQLiteStore

        return SQLiteStore(target)
    from engine.store.postgres import PostgresStore

    return PostgresStore(target)


def worker(kind: str, target: str, number: int, ids: list[str], definitions: Any, out: str, barrier: Any) -> None:
    """Fire notes on random instances and advance the clock a day at a time, like every other worker."""
    import random

    eng = Engine(definitions, open_target(kind, target))
    rng = random.Random(number)
    accepted: list[tuple[str, str]] = []
    fired: list[tuple[str, str, str]] = []
    conflicts = refused = 0
    barrier.wait()
    for day in range(ROUNDS):
        at = DAY0 + dt.timedelta(days=day)  # one clock: events are recorded in time order
        for k in range(FIRES_PER_ROUND):
            iid, text = rng.choice(ids), f"w{number}-d{day}-{k}"
            for _ in range(200):
                try:
                    eng.fire(iid, "note", {"text": text, "ok": True}, actor="R-01", at=at)
                except ConcurrencyConflict:
                    conflicts += 1
                    continue
                except Refused:  # breached and escalated meanwhile: notes are no longer taken
                    refused += 1
                    break
                accepted.append((iid, text))
                break
            else:
                raise AssertionError("200 conflicts in a row")
        for _ in range(50):
            try:
                fired += [(o.kind, o.instance_id, o.name) for o in eng.advance(at)]
                break
            except ConcurrencyConflict:  # pragma: no cover - advance retries conflicts itself
                continue
    Path(out).write_text(json.dumps({"accepted": accepted, "fired": fired, "conflicts": conflicts, "refused": refused}))


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path):
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "race.db")
        return
    import psycopg

    base = pg_url_or_skip()
    schema = "r_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield "postgres", f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_racing_workers_lose_no_update_and_fire_each_breach_once(target, tmp_path):
    kind, where = target
    definitions = load_config(FIXTURE)
    setup = open_target(kind, where)
    eng = Engine(definitions, setup)
    ids = [
        eng.start("review", {"case_id": f"C-{k}", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at=DAY0 - dt.timedelta(days=k % 5)).id
        for k in range(INSTANCES)
    ]
    schedules = 6
    for k in range(schedules):
        eng.schedule_start("review", {"case_id": f"S-{k}", "reviewer": "R-02"}, at=DAY0 + dt.timedelta(days=2 * k, hours=3), actor="QA", roles=["qa_team"])
    setup.close()

    ctx = multiprocessing.get_context("fork")  # the workers inherit the loaded definitions
    barrier = ctx.Barrier(WORKERS)
    outs = [str(tmp_path / f"worker{n}.json") for n in range(WORKERS)]
    procs = [ctx.Process(target=worker, args=(kind, where, n, ids, definitions, outs[n], barrier)) for n in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"worker {p.name} failed (exit {p.exitcode})"

    eng = Engine(definitions, open_target(kind, where))
    late = eng.advance(DAY0 + dt.timedelta(days=90))  # anything the workers left is fired now, still once
    results = [json.loads(Path(o).read_text()) for o in outs]
    fired = [tuple(f) for r in results for f in r["fired"]] + [(o.kind, o.instance_id, o.name) for o in late]
    breaches = Counter(iid for kind, iid, _ in fired if kind == "breach")
    assert set(breaches.values()) == {1}  # no two workers both report the same breach
    assert len([f for f in fired if f[0] == "start"]) == schedules
    accepted: dict[str, Counter[str]] = {iid: Counter() for iid in ids}
    for r in results:
        for iid, text in r["accepted"]:
            accepted[iid][text] += 1
    print({"accepted": sum(len(r["accepted"]) for r in results), "conflicts": sum(r["conflicts"] for r in results)})

    for iid in ids:
        history = eng.history(iid)
        notes = [h["payload"]["text"] for h in history if h["trigger"] == "note"]
        assert Counter(notes) == accepted[iid], f"{iid}: history and accepted fires differ"
        assert eng.get(iid).data.get("notes", []) == notes  # no update lost from the snapshot either
        assert [h["trigger"] for h in history].count("(breach) response") == 1
        assert eng.get(iid).state == "escalated"
    alerts = Counter(a["instance_id"] for a in eng.outbox())
    started = [i for i in eng.instances(workflow="review") if i.data["case_id"].startswith("S-")]
    assert sorted(i.data["case_id"] for i in started) == [f"S-{k}" for k in range(schedules)]  # each started once
    for inst in started:
        assert [h["trigger"] for h in eng.history(inst.id)].count("(breach) response") == 1
    assert alerts == Counter(dict.fromkeys(ids + [i.id for i in started], 1))  # one overdue alert each
