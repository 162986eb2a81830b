"""One Engine shared by a pool of threads, on every store: no lost update, no error but a clean conflict.

Before, 7 of 8 calls on a shared SQLite store failed with sqlite3.ProgrammingError (a connection
belongs to the thread that opened it) and threads sharing the memory store lost updates.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine import ConcurrencyConflict, Engine, load_config

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
THREADS = 8
FIRES = 40  # per thread
INSTANCES = 4  # few, so that threads collide on them
DAY0 = dt.datetime(2027, 1, 4, 9, 0)


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


@pytest.fixture(autouse=True)
def switch_often():
    """Switch threads every microsecond, not every 5 ms, so that a check and its write get interleaved."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_threads_sharing_one_engine_lose_no_update(definitions, backend):
    eng = Engine(definitions, backend.open())
    ids = [eng.start("review", {"case_id": f"C-{k}", "reviewer": "R-01"}, actor="QA", at=DAY0).id for k in range(INSTANCES)]
    barrier = threading.Barrier(THREADS)

    def work(number: int) -> tuple[list[tuple[str, str]], int, list[str]]:
        rng = random.Random(number)
        accepted, conflicts, started = [], 0, []
        barrier.wait()
        for k in range(FIRES):
            if k % 10 == 0:  # new instances from every thread at once: ids never collide
                started.append(eng.start("review", {"case_id": f"T-{number}-{k}", "reviewer": "R-02"}, actor="QA", at=DAY0).id)
            iid, text = rng.choice(ids), f"t{number}-{k}"
            while True:
                try:
                    eng.fire(iid, "note", {"text": text, "ok": True}, actor="R-01", at=DAY0 + dt.timedelta(hours=1))
                except ConcurrencyConflict:
                    conflicts += 1
                    continue
                accepted.append((iid, text))
                break
        return accepted, conflicts, started

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))  # any other exception is raised here

    started = [iid for _, _, s in results for iid in s]
    assert len(set(started)) == len(started) == THREADS * FIRES // 10
    accepted: dict[str, Counter[str]] = {iid: Counter() for iid in ids}
    for done, _, _ in results:
        for iid, text in done:
            accepted[iid][text] += 1
    for iid in ids:
        notes = eng.get(iid).data.get("notes", [])
        assert Counter(notes) == accepted[iid], f"{iid}: an accepted note is missing or doubled"
        assert [h["payload"]["text"] for h in eng.history(iid) if h["trigger"] == "note"] == notes
        assert eng.get(iid).rev == 1 + len(notes)
    print({"conflicts": sum(c for _, c, _ in results)})


def test_threads_advancing_one_engine_fire_each_breach_once(definitions, backend):
    eng = Engine(definitions, backend.open())
    ids = [eng.start("review", {"case_id": f"C-{k}", "reviewer": "R-01"}, actor="QA", at=DAY0 + dt.timedelta(hours=7 * k)).id for k in range(40)]
    barrier = threading.Barrier(THREADS)

    def advance(_: int) -> list[str]:
        barrier.wait()
        return [o.instance_id for o in eng.advance("2027-03-01")]

    with ThreadPoolExecutor(THREADS) as pool:
        fired = [iid for batch in pool.map(advance, range(THREADS)) for iid in batch]
    assert sorted(fired) == sorted(ids)  # every breach, once
    for iid in ids:
        assert [h["trigger"] for h in eng.history(iid)].count("(breach) response") == 1
    assert len(eng.outbox()) == len(ids)


def test_a_thread_per_call_does_not_pile_up_connections(definitions, durable):
    """A host that starts a thread per request: each thread's connection closes when the thread ends."""
    import gc

    store = durable.open()
    eng = Engine(definitions, store)
    review = eng.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA", at=DAY0)
    for k in range(30):
        thread = threading.Thread(target=eng.fire, args=(review.id, "note", {"text": f"n{k}", "ok": True}),
                                  kwargs={"actor": "R-01", "at": DAY0})
        thread.start()
        thread.join()
    gc.collect()
    live = store._connections if durable.kind == "sqlite" else store._sessions
    assert len(live) == 1  # the main thread's
    assert eng.get(review.id).data["notes"] == [f"n{k}" for k in range(30)]
