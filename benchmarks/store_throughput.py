"""Accepted fires per second on each store, beside bare single-row INSERT transactions on the same database.

The floor is what the database itself costs per transaction: one ``INSERT`` of one small row, committed
on its own, with the same settings (WAL and ``synchronous``) as the store. The ratio says how many floor
transactions one fire costs. Target: SQLite within 3x of its floor. Prints figures; asserts nothing.

Under synchronous=FULL (the store's default: every commit is fsynced, durable against a power cut) the
floor is the disk's. Under NORMAL (durable against a killed process, not a power cut) the floor
transaction does no fsync and costs about what the engine's own Python costs per fire on the memory
store, so the ratio there mostly measures the engine.

    python benchmarks/store_throughput.py [--instances N] [--rounds R]

PostgreSQL is measured when $QAFLOW_TEST_PG holds a postgresql:// URL (tests/store/start_postgres.sh).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
STEPS = 8  # the nine-state workflow takes eight "next" fires from start to end


def fires_per_second(definitions: Any, store: Any, n: int, tag: str) -> float:
    from engine import Engine

    eng = Engine(definitions, store)
    ids = [
        eng.start("nine_state", {"case_id": f"{tag}-{i}", "lead_auditor": "TM-01"}, actor="QA", roles=["qa_team"], at="2026-10-01T09:00").id
        for i in range(n)
    ]
    t0 = time.perf_counter()
    for _ in range(STEPS):
        for iid in ids:
            eng.fire(iid, "next", actor="QA", roles=["qa_team"], at="2026-10-02T09:00")
    elapsed = time.perf_counter() - t0
    assert eng.get(ids[-1]).state == "closed"
    return n * STEPS / elapsed


def sqlite_floor(path: str, synchronous: str, count: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER PRIMARY KEY, v TEXT)")
    t0 = time.perf_counter()
    for _ in range(count):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO bench_floor (v) VALUES ('x')")
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return count / elapsed


def postgres_floor(url: str, count: int) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id BIGSERIAL PRIMARY KEY, v TEXT)")
        t0 = time.perf_counter()
        for _ in range(count):
            conn.execute("INSERT INTO bench_floor (v) VALUES ('x')")  # autocommit: one transaction each
        return count / (time.perf_counter() - t0)


def best(rounds: int, measure: Callable[[int], float]) -> float:
    return max(measure(r) for r in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n, rounds = args.instances, args.rounds

    from engine import MemoryStore, load_config
    from engine.store.sqlite import SQLiteStore

    definitions = load_config(HERE / "config")
    rows: list[tuple[str, float, float | None]] = []
    rows.append(("memory", best(rounds, lambda r: fires_per_second(definitions, MemoryStore(), n, f"m{r}")), None))

    with tempfile.TemporaryDirectory(dir=os.environ.get("QAFLOW_BENCH_DIR")) as tmp:
        for sync in ("NORMAL", "FULL"):
            path = str(Path(tmp) / f"bench-{sync.lower()}.db")
            engine_rate = floor_rate = 0.0
            for r in range(rounds):  # interleaved, so that noise from other processes hits both alike
                store = SQLiteStore(path, synchronous=sync)
                engine_rate = max(engine_rate, fires_per_second(definitions, store, n, f"s{r}"))
                store.close()
                floor_rate = max(floor_rate, sqlite_floor(path, sync, n * STEPS))
            rows.append((f"sqlite synchronous={sync}", engine_rate, floor_rate))

    url = os.environ.get("QAFLOW_TEST_PG")
    if url:
        import psycopg

        from engine.store.postgres import PostgresStore

        schema = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        try:
            engine_rate = floor_rate = 0.0
            for r in range(rounds):
                store = PostgresStore(scoped)
                engine_rate = max(engine_rate, fires_per_second(definitions, store, n, f"p{r}"))
                store.close()
                floor_rate = max(floor_rate, postgres_floor(scoped, n * STEPS))
            rows.append(("postgresql", engine_rate, floor_rate))
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    else:
        rows.append(("postgresql (set QAFLOW_TEST_PG to measure)", float("nan"), None))

    print(f"{n} instances x {STEPS} fires each, best of {rounds} rounds")
    print(f"{'store':<34} {'fires/s':>10} {'floor tx/s':>11} {'fire cost in floor tx':>22}")
    for name, rate, floor in rows:
        ratio = f"{floor / rate:.2f}x" if floor else "-"
        print(f"{name:<34} {rate:>10.0f} {floor if floor else float('nan'):>11.0f} {ratio:>22}")
    print("target: SQLite within 3x of its floor")


if __name__ == "__main__":
    main()
