"""A process firing events on a SQLite store is killed (SIGKILL) at random points, again and again.

After every kill: each call that returned is in the store, no instance is half-applied, and the run
goes on from where it was.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

from engine import Engine, Refused, load_config
from engine.runtime.instance import Instance
from engine.store.sqlite import SQLiteStore, time_key

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
KILLS = 15
DAY0 = dt.datetime(2026, 9, 7, 9, 0)


def run(db: str, log: str, round_no: int, definitions: Any, ready: Any, ops: int | None = None) -> None:
    """Start, fire, advance and acknowledge, appending a line to ``log`` (fsynced) after each call returns."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def done(*what: Any) -> None:
        os.write(fd, (json.dumps(what) + "\n").encode())
        os.fsync(fd)

    ready.set()  # the parent may kill us from here on, even while the store is being opened
    store = SQLiteStore(db)
    write = store._write

    def slow_write(changes: Any) -> Any:  # widen the window: most kills land inside an open transaction
        result = write(changes)
        time.sleep(0.003)
        return result

    store._write = slow_write  # type: ignore[method-assign]
    eng = Engine(definitions, store)
    rng = random.Random(round_no)
    ids = [i.id for i in eng.instances(workflow="review", state="open")]
    at = DAY0 + dt.timedelta(days=7 * round_no)
    children: list[str] = []
    k = 0
    while ops is None or k < ops:
        k += 1
        at += dt.timedelta(minutes=rng.choice([10, 30, 90]))
        roll, iid = rng.random(), None
        try:
            if roll < 0.2 or not ids:
                request = f"start-{round_no}-{k}"
                view = eng.start("review", {"case_id": f"C-{round_no}-{k}", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at=at, request_id=request)
                ids.append(view.id)
                done("start", view.id, request)
            elif roll < 0.5:
                iid, text = rng.choice(ids), f"note-{round_no}-{k}"
                eng.fire(iid, "note", {"text": text, "ok": True}, actor="R-01", at=at)
                done("note", iid, text)
            elif roll < 0.6:
                iid = rng.choice(ids)
                view = eng.fire(iid, "grade", {"grade": rng.choice(["good", "bad"])}, actor="R-01", at=at)
                ids.remove(iid)
                children += view.children
                done("grade", iid, view.children[0] if view.children else None)
            elif roll < 0.68 and children:  # the child's change and the signal to its parent: one commit
                child = children.pop(rng.randrange(len(children)))
                eng.fire(child, "record", {"result": f"r{k}"}, actor="CH", roles=["checker"], at=at)
                done("record", child, eng.get(child).parent_id)
            elif roll < 0.9:
                fired = eng.advance(at)
                done("advance", [(o.kind, o.instance_id, o.name) for o in fired])
            else:
                alerts = eng.outbox()
                if alerts:
                    eng.acknowledge(alerts[0]["id"], at=at)
                    done("ack", alerts[0]["id"])
        except Refused:  # a note or grade on an instance that has meanwhile breached and escalated
            if iid in ids and eng.get(iid).state != "open":
                ids.remove(iid)
    os.close(fd)


def check(db: str, log: str) -> int:
    """Every logged call is in the store and every instance is whole; returns the number of instances."""
    store = SQLiteStore(db)  # opening runs WAL recovery after the kill
    try:
        for line in Path(log).read_text().splitlines():
            kind, *args = json.loads(line)
            if kind == "start":
                iid, request = args
                assert store.load(iid) is not None, f"returned start {iid} is missing"
                assert store.request(request).instance_id == iid
            elif kind == "note":
                iid, text = args
                notes = [h for h in store.history(iid) if h["trigger"] == "note" and h["payload"]["text"] == text]
                assert len(notes) == 1, f"returned note {text} on {iid} is in the history {len(notes)} times"
                assert text in store.load(iid).data["notes"]
            elif kind == "grade":
                iid, child = args
                assert [h["trigger"] for h in store.history(iid)].count("grade") == 1
                assert child is None or store.load(child).parent_id == iid
            elif kind == "advance":
                for what, iid, name in args[0]:
                    if what == "breach":
                        assert [h["trigger"] for h in store.history(iid)].count(f"(breach) {name}") == 1
                    else:
                        assert store.load(iid) is not None
            elif kind == "record":
                child, parent = args
                assert store.load(child).state == "done"
                assert store.load(parent).state == "closed"
                assert [h["actor"] for h in store.history(parent)].count(f"system:{child}") == 1
            elif kind == "ack":
                (alert,) = [a for a in store.outbox(include_acknowledged=True) if a["id"] == args[0]]
                assert alert["acknowledged_at"] is not None
    finally:
        store.close()

    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        referenced: Counter[str] = Counter()
        rows = raw.execute("SELECT id, state, rev, hist, snapshot FROM instances").fetchall()
        for iid, state, rev, hist, snapshot in rows:
            snap = json.loads(snapshot)
            inst = Instance.from_dict(snap)
            history = [(seq, json.loads(e)) for seq, e in raw.execute("SELECT seq, entry FROM history WHERE instance_id = ? ORDER BY seq", (iid,))]
            assert [seq for seq, _ in history] == list(range(1, hist + 1)), f"{iid}: history seq not contiguous"
            assert snap["rev"] == rev and snap["state"] == state
            assert history[-1][1]["to"] == state, f"{iid}: snapshot and history disagree"
            index = {(n, s, k) for n, s, k in raw.execute("SELECT name, status, due_key FROM deadlines WHERE instance_id = ?", (iid,))}
            assert index == {(d.name, d.status, time_key(d.due_at)) for d in inst.deadlines.values()}, f"{iid}: deadline index"
            for _, entry in history:
                referenced.update(a["id"] for a in entry["actions"] if a.get("action") == "alert")
            for child in inst.children:
                assert raw.execute("SELECT 1 FROM instances WHERE id = ?", (child,)).fetchone(), f"{iid}: child {child} missing"
        outbox = Counter(r[0] for r in raw.execute("SELECT id FROM outbox"))
        assert outbox == referenced, "alerts and the history actions that raised them disagree"
        orphans = raw.execute("SELECT COUNT(*) FROM history WHERE instance_id NOT IN (SELECT id FROM instances)").fetchone()[0]
        assert orphans == 0
        return len(rows)
    finally:
        raw.close()


def _calls(log: str) -> int:
    """How many calls the child has returned so far (one fsynced line each)."""
    return len(Path(log).read_text().splitlines()) if os.path.exists(log) else 0


def test_killed_writer_leaves_a_whole_store_and_the_run_goes_on(tmp_path):
    definitions = load_config(FIXTURE)
    warm = Engine(definitions)  # fill lazy caches (calendars, validators) once, before forking
    view = warm.start("review", {"case_id": "C", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at=DAY0)
    warm.fire(view.id, "grade", {"grade": "bad"}, actor="R-01", at=DAY0)
    warm.advance(DAY0 + dt.timedelta(days=400))
    db, log = str(tmp_path / "crash.db"), str(tmp_path / "calls.log")
    ctx = multiprocessing.get_context("fork")  # fast: the child inherits the loaded configuration
    rng = random.Random(2024)
    lines = 0
    for round_no in range(KILLS):
        ready = ctx.Event()
        child = ctx.Process(target=run, args=(db, log, round_no, definitions, ready))
        child.start()
        assert ready.wait(60)
        # kill once the child has returned a random number of calls (0 kills it while it opens the
        # store), then a moment later: progress, not wall time, so a loaded machine changes nothing
        target = lines + rng.choice([0, rng.randint(1, 25)])
        while _calls(log) < target and child.is_alive():
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.004))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
        check(db, log)
        lines = _calls(log)
        assert lines >= target
    print(f"{lines} calls returned before {KILLS} kills")

    # and the run can go on to the end, untouched
    ready = ctx.Event()
    child = ctx.Process(target=run, args=(db, log, KILLS, definitions, ready, 150))
    child.start()
    child.join(300)
    assert child.exitcode == 0
    assert check(db, log) > 0
