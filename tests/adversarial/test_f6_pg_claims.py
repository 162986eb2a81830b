"""F6: on PostgreSQL a dead worker's claim must not hide a due breach.

The review's c4_lease demo, made deterministic: a child process claims the earliest breach and is
SIGKILLed before firing it. Once the server has ended the child's connection, a fresh ``advance``
fires that breach first, in time order, without waiting for the 60 s lease. No timing is asserted:
the only wait is for the server to notice the closed connection, which it does as soon as it reads
from the socket.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from engine import Engine, StoreError, load_config
from engine.clock import as_time
from engine.store.postgres import PostgresStore

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
UNTIL = "2027-03-01"


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


def start_three(eng: Engine) -> list[str]:
    """Three reviews whose response deadlines fall due one after another."""
    return [
        eng.start("review", {"case_id": f"C-{k}", "reviewer": "R-01"}, actor="QA-01", at=f"2026-12-{18 + k}T09:00").id
        for k in range(3)
    ]


def backend_gone(pg, pid: int) -> None:
    """Wait until the server has ended backend ``pid`` (it does so once it sees the connection closed)."""
    import psycopg

    with psycopg.connect(pg._base, autocommit=True) as conn:
        for _ in range(600):
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 0:
                return
            time.sleep(0.05)
    pytest.fail(f"the server kept backend {pid} of a killed client for 30 s")


def claim(pg, instance_id: str) -> tuple[int | None, bool]:
    """Who holds the claim on the instance's response deadline, and whether its lease still runs."""
    with PostgresStore(pg.url) as store:
        return store._conn.execute(
            "SELECT claimed_pid, claimed_until > now() FROM deadlines WHERE instance_id = %s AND name = 'response'", (instance_id,)
        ).fetchone()


def _claim_and_hang(url: str, conn) -> None:
    store = PostgresStore(url)
    item = store.next_due(as_time(UNTIL))
    conn.send((store._conn.info.backend_pid, item.key, item.name))
    time.sleep(600)  # killed here, between the claim and the commit that would fire it


def test_a_killed_workers_claim_is_void_at_once_and_the_breach_fires_first(definitions, pg):
    first, second, third = start_three(Engine(definitions, pg.open()))
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_claim_and_hang, args=(pg.url, theirs))
    child.start()
    assert ours.poll(60), "the child did not claim anything"
    backend, key, name = ours.recv()
    assert (key, name) == (first, "response")
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    backend_gone(pg, backend)
    assert claim(pg, first) == (backend, True)  # the claim is still recorded, and its lease has not run out

    fired = Engine(definitions, pg.open()).advance(UNTIL)

    assert [(o.instance_id, o.name) for o in fired] == [(first, "response"), (second, "response"), (third, "response")]
    assert [o.at for o in fired] == sorted(o.at for o in fired)


def test_a_claim_ends_with_a_store_closed_before_it_fired(definitions, pg):
    first, *_ = start_three(Engine(definitions, pg.open()))
    quitter = PostgresStore(pg.url)
    assert quitter.next_due(as_time(UNTIL)).key == first
    backend = quitter._conn.info.backend_pid
    quitter.close()
    backend_gone(pg, backend)
    assert Engine(definitions, pg.open()).advance(UNTIL)[0].instance_id == first


def test_a_live_workers_claim_still_holds_for_everyone_else(definitions, pg):
    first, second, third = start_three(Engine(definitions, pg.open()))
    holder = pg.open()
    assert holder.next_due(as_time(UNTIL)).key == first
    fired = Engine(definitions, pg.open()).advance(UNTIL)  # skips the held one: its worker is alive
    assert [o.instance_id for o in fired] == [second, third]
    assert [o.instance_id for o in Engine(definitions, holder).advance(UNTIL)] == [first]  # the holder fires it, once


def test_a_worker_whose_connection_was_cut_reconnects_and_its_old_claim_is_void(definitions, pg):
    import psycopg

    first, second, third = start_three(Engine(definitions, pg.open()))
    worker = pg.open()
    assert worker.next_due(as_time(UNTIL)).key == first
    backend = worker._conn.info.backend_pid
    with psycopg.connect(pg._base, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    backend_gone(pg, backend)
    eng = Engine(definitions, worker)
    with pytest.raises(StoreError, match="lost the connection to the PostgreSQL store") as lost:
        eng.advance(UNTIL)
    assert lost.value.retry and lost.value.exit_code == 2
    fired = eng.advance(UNTIL)  # the next call connects again; the claim of the ended connection is void
    assert [o.instance_id for o in fired] == [first, second, third]
    assert worker._conn.info.backend_pid != backend
