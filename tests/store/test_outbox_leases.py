"""Outbox leases on every store: deliverers claim alerts for a while, acknowledge them, and never share a live lease.

The concurrency tests run deliverers as threads (every store) and as processes (SQLite and PostgreSQL):
with long leases no alert may be claimed twice; with short leases that some deliverers let run out,
every alert is still delivered and the leases of one alert never overlap on the store's clock.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing
import random
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, StoreError, UnknownAlert, UsageError, load_config
from engine.store.base import Changes
from engine.store.open import open_store

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
AT = "2027-01-08T10:00"


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


def add_alerts(store: Any, count: int) -> list[str]:
    """``count`` alerts in the outbox, committed in one transaction, oldest first."""
    alerts = [{"id": store.next_id("alert"), "at": f"2027-01-07T00:00:{k % 60:02d}+00:00", "instance_id": f"review-{k:06d}",
               "workflow": "review", "name": "response_overdue", "severity": "info", "recipients": [{"role": "qa_team"}],
               "message": f"alert {k}", "acknowledged_at": None} for k in range(count)]
    store.commit(Changes(alerts=alerts))
    return [a["id"] for a in alerts]


def test_claims_take_the_oldest_free_alerts_and_acknowledged_ones_never_return(definitions, backend):
    eng = Engine(definitions, backend.open())
    ids = add_alerts(eng.store, 7)
    first = eng.claim_alerts("mailer-1", limit=3, at=AT)
    assert [a["id"] for a in first] == ids[:3]
    lease = first[0]["lease"]
    assert lease["worker"] == "mailer-1" and lease["claims"] == 1 and lease["at"] == "2027-01-08T10:00:00+00:00"
    until = dt.datetime.fromisoformat(lease["until"])
    assert dt.timedelta(0) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=60)  # by the store's clock, not from AT
    assert first[0]["message"] == "alert 0" and first[0]["acknowledged_at"] is None
    assert [a["id"] for a in eng.claim_alerts("mailer-2", limit=10, at=AT)] == ids[3:]
    assert eng.claim_alerts("mailer-3", at=AT) == []  # everything is under a live lease
    assert [a["id"] for a in eng.outbox()] == ids  # a lease hides an alert from claims, not from the outbox

    for alert in first:
        eng.acknowledge(alert["id"], at=AT, worker="mailer-1")
    eng.acknowledge(ids[0], at="2027-01-09", worker="mailer-9")  # twice: harmless, the first stands
    done = {a["id"]: a for a in eng.outbox(include_acknowledged=True)}
    assert done[ids[0]]["acknowledged_by"] == "mailer-1" and done[ids[0]]["acknowledged_at"] == "2027-01-08T10:00:00+00:00"
    assert done[ids[5]]["acknowledged_by"] is None
    assert [a["id"] for a in eng.outbox()] == ids[3:]


def test_an_unacknowledged_alert_returns_when_its_lease_runs_out(definitions, backend):
    eng = Engine(definitions, backend.open())
    ids = add_alerts(eng.store, 3)
    short = eng.claim_alerts("slow", limit=2, lease_seconds=0.01, at=AT)
    assert [a["id"] for a in short] == ids[:2]
    time.sleep(0.05)  # the lease is long gone
    again = eng.claim_alerts("fast", limit=5, at=AT)
    assert [(a["id"], a["lease"]["claims"], a["lease"]["worker"]) for a in again] == [
        (ids[0], 2, "fast"), (ids[1], 2, "fast"), (ids[2], 1, "fast")]
    # the slow worker delivered it after all: its acknowledgement stands (the delivery happened), and
    # the fast worker's acknowledgement after it changes nothing
    eng.acknowledge(ids[0], at=AT, worker="slow")
    eng.acknowledge(ids[0], at="2027-01-09", worker="fast")
    (first,) = [a for a in eng.outbox(include_acknowledged=True) if a["id"] == ids[0]]
    assert first["acknowledged_by"] == "slow"
    time.sleep(0.01)
    assert eng.claim_alerts("third", at=AT) == []  # fast's leases run for 60 s


def test_acknowledge_without_a_worker_or_a_claim_as_before(definitions, backend):
    eng = Engine(definitions, backend.open())
    (alert_id,) = add_alerts(eng.store, 1)
    eng.acknowledge(alert_id, at=AT)
    assert eng.outbox() == [] and eng.claim_alerts("w", at=AT) == []
    assert eng.outbox(include_acknowledged=True)[0]["acknowledged_by"] is None
    with pytest.raises(UnknownAlert, match="no alert 'alert-999999'") as info:
        eng.acknowledge("alert-999999", at=AT, worker="w")
    assert isinstance(info.value, UsageError) and info.value.to_dict()["alert"] == "alert-999999"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"worker": ""}, "the worker must not be empty"),
    ({"worker": "a\nb"}, "control character"),
    ({"worker": "w", "limit": 0}, "limit must be a whole number from 1 to 1000"),
    ({"worker": "w", "limit": 2.5}, "limit must be"),
    ({"worker": "w", "lease_seconds": 0}, "lease_seconds must be a positive number"),
    ({"worker": "w", "lease_seconds": float("inf")}, "lease_seconds must be"),
    ({"worker": "w", "lease_seconds": float("nan")}, "lease_seconds must be"),
    ({"worker": "w", "lease_seconds": True}, "lease_seconds must be"),
])
def test_malformed_claims_are_usage_errors(definitions, backend, kwargs, message):
    eng = Engine(definitions, backend.open())
    add_alerts(eng.store, 1)
    with pytest.raises(UsageError, match=message):
        eng.claim_alerts(at=AT, **kwargs)
    with pytest.raises(UsageError, match="the worker"):
        eng.acknowledge("alert-000001", at=AT, worker="")
    assert len(eng.outbox()) == 1


def test_a_read_only_store_claims_nothing(definitions, durable):
    add_alerts(durable.open(), 1)
    reader = open_store(durable.target, readonly=True)
    with pytest.raises(StoreError, match="read-only"):
        Engine(definitions, reader).claim_alerts("w", at=AT)
    reader.close()


def test_the_lease_is_without_the_engines_time(definitions, backend):
    # no at and no clock: the claim needs no engine time, and records none
    eng = Engine(definitions, backend.open())
    add_alerts(eng.store, 1)
    (alert,) = eng.claim_alerts("w")
    assert alert["lease"]["at"] is None and alert["lease"]["until"]


# ----------------------------------------------------------------------------- several deliverers

ALERTS = 120


def deliver(eng: Engine, name: str, *, lease: float, drop: float, seed: int) -> list[dict[str, Any]]:
    """Claim, "deliver" and acknowledge until the outbox is empty; some claims are dropped (the lease runs out)."""
    rng = random.Random(seed)
    log = []
    while True:
        claimed = eng.claim_alerts(name, limit=rng.randint(1, 7), lease_seconds=lease, at=AT)
        if not claimed:
            if not eng.outbox():
                return log
            time.sleep(0.002)
            continue
        for alert in claimed:
            time.sleep(0.001)  # delivering takes a moment: the other deliverers get their turns
            until = dt.datetime.fromisoformat(alert["lease"]["until"]).timestamp()
            log.append({"id": alert["id"], "worker": name, "from": until - lease, "until": until,
                        "claims": alert["lease"]["claims"], "acked": False})
            if rng.random() >= drop:
                eng.acknowledge(alert["id"], at=AT, worker=name)
                log[-1]["acked"] = True


def check_deliveries(log: list[dict[str, Any]], ids: list[str], *, exactly_once: bool) -> None:
    claims: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log:
        claims[entry["id"]].append(entry)
    assert set(claims) == set(ids)  # every alert was claimed
    for alert_id, held in claims.items():
        held.sort(key=lambda e: e["claims"])
        assert [e["claims"] for e in held] == list(range(1, len(held) + 1)), alert_id  # each claim counted once
        assert any(e["acked"] for e in held), alert_id  # and in the end delivered
        if exactly_once:
            assert len(held) == 1, f"{alert_id} was claimed by {[e['worker'] for e in held]} under live leases"
        for before, after in itertools.pairwise(held):  # leases of one alert never overlap on the store's clock
            assert after["from"] >= before["until"] - 1e-5, f"{alert_id}: {before['worker']} and {after['worker']} held it at once"


@pytest.mark.parametrize(("lease", "drop"), [(60.0, 0.0), (0.03, 0.3)], ids=["long-leases", "leases-run-out"])
def test_threads_sharing_one_engine_never_hold_one_alert_at_once(definitions, backend, lease, drop):
    eng = Engine(definitions, backend.open())
    ids = add_alerts(eng.store, ALERTS)
    logs: list[list[dict[str, Any]]] = [[] for _ in range(6)]
    barrier = threading.Barrier(6)

    def run(n: int) -> None:
        barrier.wait()
        logs[n] = deliver(eng, f"thread-{n}", lease=lease, drop=drop, seed=n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check_deliveries([e for log in logs for e in log], ids, exactly_once=drop == 0)
    assert eng.outbox() == []


def process_deliverer(target: str, definitions: Any, name: str, lease: float, drop: float, seed: int, out: str, barrier: Any) -> None:
    eng = Engine(definitions, open_store(target))  # opened after the fork
    barrier.wait()
    log = deliver(eng, name, lease=lease, drop=drop, seed=seed)
    Path(out).write_text(json.dumps(log))


@pytest.mark.parametrize(("lease", "drop"), [(60.0, 0.0), (0.05, 0.3)], ids=["long-leases", "leases-run-out"])
def test_four_processes_deliver_every_alert_and_never_share_a_live_lease(definitions, durable, tmp_path, lease, drop):
    setup = durable.open()
    ids = add_alerts(setup, ALERTS)
    setup.close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    outs = [str(tmp_path / f"deliverer{n}.json") for n in range(4)]
    procs = [ctx.Process(target=process_deliverer, args=(durable.target, definitions, f"proc-{n}", lease, drop, n, outs[n], barrier))
             for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"deliverer {p.name} failed (exit {p.exitcode})"
    log = [e for out in outs for e in json.loads(Path(out).read_text())]
    check_deliveries(log, ids, exactly_once=drop == 0)
    workers = Counter(e["worker"] for e in log)
    assert len(workers) >= 2, workers  # the work was shared, not done by one process alone
    assert Engine(definitions, durable.open()).outbox() == []
