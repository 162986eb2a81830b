"""`qaflow serve` in its own process, driven by concurrent HTTP clients: SQLite with one server, PostgreSQL
with two servers on one database. Afterwards, through the API: no lost update, each request id applied
once (duplicates sent at the same time, through different servers), each deadline breached once."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import ServeProcess, Tokens, service_key_entry, write_settings

from engine import Engine, load_config
from engine.store.open import open_store

from server_harness import FIXTURE  # isort: skip

PAIRS = 4  # pairs of client threads; both threads of a pair send the same requests with the same keys
OPS = 30  # requests per thread
NOTED = 4  # instances every thread writes notes on, so that writes collide
DUE = 24  # instances seeded with deadlines already due by the servers' clock


def seed(target: str) -> list[str]:
    """Reviews started in October 2026 (their 10-working-day response deadline long past) straight into the store."""
    store = open_store(target)
    engine = Engine(load_config(FIXTURE), store=store)
    ids = [engine.start("review", {"case_id": f"D-{k}", "reviewer": "R-01"}, actor="QA-01",
                        at=f"2026-10-{1 + k % 28:02d}T09:00").id for k in range(DUE)]
    close = getattr(store, "close", None)
    if close is not None:
        close()
    return ids


@dataclass
class Outcome:
    notes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # key -> (instance, first response body)
    starts: dict[str, str] = field(default_factory=dict)  # key -> instance id
    breached: list[str] = field(default_factory=list)  # instances in /advance answers
    retries: int = 0


def send(http: httpx.Client, method: str, path: str, outcome: Outcome, **kwargs: Any) -> httpx.Response:
    """One request, sent again (same key) while another request changed the instance first or the store was busy."""
    while True:
        response = http.request(method, path, **kwargs)
        if (response.status_code == 409 and response.json()["error"] == "ConcurrencyConflict") or response.status_code == 503:
            outcome.retries += 1
            continue
        return response


def client_pair(urls: list[str], headers: dict[str, str], pair: int, noted: list[str], barrier: threading.Barrier) -> list[Outcome]:
    """Two threads, each on its own server where there are two, sending the same requests with the same keys."""
    rng = random.Random(pair)
    plan: list[tuple[str, ...]] = []
    for k in range(OPS):
        if k % 10 == 3:
            plan.append(("start", f"start-{pair}-{k}"))
        elif k % 6 == 5:
            plan.append(("advance",))
        else:
            plan.append(("note", rng.choice(noted), f"note-{pair}-{k}"))

    def run(side: int) -> Outcome:
        outcome = Outcome()
        with httpx.Client(base_url=urls[side % len(urls)], headers=headers, timeout=60) as http:
            barrier.wait()
            for step in plan:
                if step[0] == "start":
                    key = step[1]
                    body = {"workflow": "review", "data": {"case_id": key, "reviewer": "R-01"}}
                    response = send(http, "POST", "/instances", outcome, json=body, headers={"Idempotency-Key": key})
                    assert response.status_code == 201, response.text
                    outcome.starts[key] = response.json()["id"]
                elif step[0] == "advance":
                    response = send(http, "POST", "/advance", outcome)
                    assert response.status_code == 200, response.text
                    outcome.breached += [o["instance"] for o in response.json()["fired"]]
                else:
                    _, iid, key = step
                    response = send(http, "POST", f"/instances/{iid}/triggers/note", outcome,
                                    json={"payload": {"text": key, "ok": True}}, headers={"Idempotency-Key": key})
                    assert response.status_code == 200, response.text
                    outcome.notes[key] = (iid, response.json())
        return outcome

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(run, (0, 1)))


def hammer_and_check(urls: list[str], tokens: Tokens, api_key: str, due: list[str], *, tickers: bool) -> None:
    reviewer = {"Authorization": f"Bearer {tokens('R-01', ['QA.Team'])}"}
    service = {"X-API-Key": api_key}  # svc-case, a manager: may write notes too
    with httpx.Client(base_url=urls[0], headers=reviewer, timeout=60) as http:
        noted = [http.post("/instances", json={"workflow": "review", "data": {"case_id": f"N-{k}", "reviewer": "R-01"}}).json()["id"]
                 for k in range(NOTED)]
    barrier = threading.Barrier(2 * PAIRS)
    with ThreadPoolExecutor(PAIRS) as pool:
        results = list(pool.map(lambda p: client_pair(urls, reviewer if p % 2 else service, p, noted, barrier), range(PAIRS)))
    outcomes = [o for pair in results for o in pair]

    # both sides of a pair got the same answers: one instance per start key, and for each note key the instance
    # with that note. (The side that carried the call out answers with the instance as read just after its commit,
    # which may already hold a later note from another thread; the other side gets the snapshot of the commit.)
    for a, b in results:
        assert a.starts == b.starts
        assert a.notes.keys() == b.notes.keys()
        for key, (iid, body) in a.notes.items():
            other = b.notes[key][1]
            assert b.notes[key][0] == iid
            assert key in body["data"]["notes"] and key in other["data"]["notes"]
            if body["rev"] == other["rev"]:
                assert body == other, key

    with httpx.Client(base_url=urls[-1], headers=reviewer, timeout=60) as http:
        # each request id applied once, no lost update
        expected: dict[str, Counter[str]] = {iid: Counter() for iid in noted}
        for a, _ in results:
            for key, (iid, _) in a.notes.items():
                expected[iid][key] += 1
        for iid in noted:
            shown = http.get(f"/instances/{iid}").json()
            assert Counter(shown["data"].get("notes", [])) == expected[iid], iid
            history = http.get(f"/instances/{iid}/history").json()
            keys = [h["request_id"] for h in history if h["trigger"] == "note"]
            assert sorted(keys) == sorted(expected[iid]) and len(set(keys)) == len(keys)
            assert shown["rev"] == 1 + len(keys)
        # each start key started one instance
        started = {key: iid for a, _ in results for key, iid in a.starts.items()}
        assert len(set(started.values())) == len(started) == PAIRS * len([k for k in range(OPS) if k % 10 == 3])
        for key, iid in started.items():
            assert http.get(f"/instances/{iid}").json()["data"]["case_id"] == key
        # each deadline breached once, whichever server (or timer) fired it
        answered = Counter(iid for o in outcomes for iid in o.breached)
        assert set(answered) <= set(due) and all(n == 1 for n in answered.values()), answered
        if not tickers:
            assert sorted(answered) == sorted(due)
        assert http.post("/advance").json()["fired"] == []
        for iid in due:
            history = http.get(f"/instances/{iid}/history").json()
            assert [h["trigger"] for h in history].count("(breach) response") == 1, iid
            assert http.get(f"/instances/{iid}").json()["state"] == "escalated"
    print({"retries": sum(o.retries for o in outcomes)})


def settings_file(tmp_path: Path, keys: Any, api_key: tuple[str, str]) -> Path:
    return write_settings(tmp_path / "server.toml", jwks_file=keys.jwks_file, api_keys=[service_key_entry(api_key)])


def outbox_alerts(target: str) -> Counter[str]:
    store = open_store(target, readonly=True)
    try:
        return Counter(a["instance_id"] for a in Engine(load_config(FIXTURE), store=store).outbox() if a["name"] == "response_overdue")
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


def test_concurrent_clients_on_one_sqlite_server(tmp_path, keys, tokens, api_key):
    db = str(tmp_path / "qaflow.db")
    due = seed(db)
    server = ServeProcess(["--server-config", str(settings_file(tmp_path, keys, api_key)), "--db", db, "--advance-every", "0"],
                          cwd=tmp_path)
    try:
        hammer_and_check([server.url], tokens, api_key[0], due, tickers=False)
    finally:
        server.stop()
    assert "Traceback" not in server.output(), server.output()
    assert outbox_alerts(db) == Counter(due)  # one alert per breach


@pytest.mark.parametrize("tickers", [False, True], ids=["clients-advance", "clients-and-timers-advance"])
def test_concurrent_clients_on_two_postgres_servers(tmp_path, keys, tokens, api_key, pg, tickers):
    due = seed(pg.url)
    settings = settings_file(tmp_path, keys, api_key)
    every = "0.2" if tickers else "0"
    servers = [ServeProcess(["--server-config", str(settings), "--db", pg.url, "--advance-every", every], cwd=tmp_path)
               for _ in range(2)]
    try:
        hammer_and_check([s.url for s in servers], tokens, api_key[0], due, tickers=tickers)
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.output(), server.output()
    assert outbox_alerts(pg.url) == Counter(due)
