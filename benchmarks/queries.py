"""What a host's questions cost on each store: pages of instances by data field and due date, and worklists.

Fills each store with N case audits of the bundled configuration (20 teams, 200 lead auditors, 100
peer auditors, allocated over ten months, so that some deadlines are met, some breached and some
running), then times, best of R rounds:

- a page of 50 by a common data value (team: 1 instance in 20 matches), the first page and one 400 matches in;
- a page of 50 by a rare one (lead_auditor: 1 in 200), which reads the whole store to fill the page;
- a data field with no match at all (the worst case: every row read, nothing returned);
- a page by due date (deadlines still awaited, due by a date);
- every page of one query (team), followed through its cursors;
- a lead auditor's worklist (bound role from the data), with and without where={"lead_auditor": ...};
- a QA team member's worklist (an organisational role: most instances have something to fire).

    python benchmarks/queries.py [--instances N] [--rounds R] [--pg-gin]

PostgreSQL is measured when $QAFLOW_TEST_PG holds a postgresql:// URL (tests/store/start_postgres.sh);
``--pg-gin`` also measures it with a GIN index on the data (``jsonb_path_ops``), which the store does
not create. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEAMS = [f"team_{k:02d}" for k in range(20)]
LEADS = [f"TM-{k:03d}" for k in range(200)]
PEERS = [f"IRO-{k:03d}" for k in range(100)]
SERVICES = ["assessment", "safeguarding", "children_in_care", "care_leavers"]
GOOD = {"overall": "good", "domains": dict.fromkeys(
    ("voice_of_child", "assessments", "quality_of_plans", "management_oversight", "partnership_working", "embracing_diversity"), "good")}


def populate(definitions: Any, n: int) -> Any:
    """N case audits on a memory store, some submitted, then the clock advanced: a store to copy."""
    from engine import Engine, MemoryStore

    eng = Engine(definitions, MemoryStore())
    rng = random.Random(7)
    day0 = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)  # UTC: no time falls in the spring gap
    for k in range(n):
        at = day0 + dt.timedelta(minutes=k * 43)  # ten months of allocations
        data = {"case_id": f"C-{k:06d}", "team": rng.choice(TEAMS), "service": rng.choice(SERVICES),
                "lead_auditor": rng.choice(LEADS), "peer_auditor": rng.choice(PEERS), "social_worker": f"SW-{k % 300:03d}"}
        view = eng.start("case_audit", data, actor="QA-01", roles=["qa_team"], at=at)
        if rng.random() < 0.3:
            eng.fire(view.id, "submit_lead_audit", GOOD, actor=data["lead_auditor"], at=at + dt.timedelta(days=3))
    eng.advance(day0 + dt.timedelta(days=300))
    return eng.store


def copy_into(source: Any, target: Any) -> None:
    """Every instance, its history, the outbox and the definitions, committed to ``target`` in one transaction."""
    from engine.store.base import Changes

    instances = {inst.id: inst for inst in source.find()}
    changes = Changes(instances=instances)
    for iid in instances:
        changes.history += source.history(iid)
    changes.alerts = source.outbox(include_acknowledged=True)
    for alert in changes.alerts:
        alert.pop("acknowledged_by", None)
    changes.definitions = list(source._definitions.values())
    target.commit(changes)


def timed(rounds: int, call: Callable[[], Any]) -> tuple[float, Any]:
    """Best time of ``rounds`` calls in milliseconds, and what the last call gave."""
    best, result = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - t0)
    return best * 1000, result


def all_pages(eng: Any, **filters: Any) -> int:
    page = eng.query(**filters, limit=50)
    count = len(page)
    while page.next:
        page = eng.query(**filters, limit=50, after=page.next)
        count += len(page)
    return count


def measure(name: str, definitions: Any, store: Any, rounds: int) -> list[tuple[str, str, float, str]]:
    from engine import Engine

    eng = Engine(definitions, store)
    lead = "TM-042"
    rows: list[tuple[str, str, float, str]] = []

    def row(what: str, call: Callable[[], Any], show: Callable[[Any], str]) -> None:
        ms, result = timed(rounds, call)
        rows.append((name, what, ms, show(result)))

    size = lambda page: f"{len(page)} items{', more' if page.next else ''}"  # noqa: E731 - a one-line formatter
    row("page of 50, team (1 in 20), first", lambda: eng.query(where={"team": "team_07"}, limit=50), size)
    deep = eng.query(where={"team": "team_07"}, limit=400)
    row("page of 50, team (1 in 20), after 400", lambda: eng.query(where={"team": "team_07"}, limit=50, after=deep.next), size)
    row("page of 50, lead_auditor (1 in 200)", lambda: eng.query(where={"lead_auditor": lead}, limit=50), size)
    row("page of 50, no match (every row read)", lambda: eng.query(where={"team": "nobody"}, limit=50), size)
    row("page of 50, workflow + state + team", lambda: eng.query("case_audit", "in_progress", where={"team": "team_07"}, limit=50), size)
    row("page of 50, due by a date", lambda: eng.query(due_before="2026-11-01", limit=50), size)
    row("every page of team (50 a page)", lambda: all_pages(eng, where={"team": "team_07"}), lambda n: f"{n} instances")
    row("worklist of a lead auditor, all instances", lambda: eng.worklist(lead, limit=50), size)
    row("worklist of a lead auditor, where lead_auditor", lambda: eng.worklist(lead, where={"lead_auditor": lead}, limit=50), size)
    row("worklist of the QA team, first page", lambda: eng.worklist("QA-01", ["qa_team"], limit=50), size)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pg-gin", action="store_true", help="also measure PostgreSQL with a GIN index on snapshot->'data'")
    args = parser.parse_args()

    from engine import load_config
    from engine.store.sqlite import SQLiteStore

    definitions = load_config()
    t0 = time.perf_counter()
    source = populate(definitions, args.instances)
    print(f"{args.instances} case audits made in {time.perf_counter() - t0:.1f} s; best of {args.rounds} rounds")
    rows = measure("memory", definitions, source, args.rounds)

    url = os.environ.get("QAFLOW_TEST_PG")
    schema = "bench_" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(dir=os.environ.get("QAFLOW_BENCH_DIR")) as tmp:
        sqlite = SQLiteStore(Path(tmp) / "queries.db", synchronous="NORMAL")
        copy_into(source, sqlite)
        pg = None
        if url:
            import psycopg

            from engine.store.postgres import PostgresStore

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            pg = PostgresStore(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
            copy_into(source, pg)
            pg._conn.execute("ANALYZE")
        # a host reading a SQL store does not hold every instance in memory: the copy source goes, so that
        # the garbage collector's passes over it do not count against the SQL stores
        del source
        gc.collect()
        try:
            rows += measure("sqlite", definitions, sqlite, args.rounds)
            sqlite.close()
            if pg is not None:
                rows += measure("postgresql", definitions, pg, args.rounds)
                pg.close()
                if args.pg_gin:  # on a new connection, which has prepared no statement before the index was there
                    pg = PostgresStore(pg.url)
                    pg._conn.execute("CREATE INDEX instances_data ON instances USING GIN ((snapshot->'data') jsonb_path_ops)")
                    pg._conn.execute("ANALYZE")
                    rows += measure("postgresql + GIN", definitions, pg, args.rounds)
                    pg.close()
            else:
                print("(PostgreSQL not measured: set QAFLOW_TEST_PG)")
        finally:
            if pg is not None:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    print(f"{'store':<18} {'question':<48} {'ms':>9}  result")
    for name, what, ms, shown in rows:
        print(f"{name:<18} {what:<48} {ms:>9.2f}  {shown}")


if __name__ == "__main__":
    main()
