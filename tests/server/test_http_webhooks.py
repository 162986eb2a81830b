"""The outbox delivered to a webhook: signed as Standard Webhooks says, retried with growing waits while the
receiver fails, acknowledged once it answers 2xx, never dropped; several servers on one PostgreSQL database
deliver under outbox leases, never sending an alert twice while a lease holds."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from server_harness import DAY0, FIXTURE, ServeProcess, ThreadServer, write_settings

from engine import Engine, FixedClock, load_config
from engine.server import create_app, load_settings
from engine.server.settings import WebhookSettings, new_webhook_secret
from engine.server.webhooks import WebhookDeliverer, sign
from engine.store.open import open_store
from engine.store.sqlite import SQLiteStore


class Receiver:
    """A host's endpoint that answers 503 to the first ``failures`` requests, then 204 (after ``delay`` seconds);
    400 to alerts in ``refuse`` while it holds them; and holds the first request without an answer if ``hold``."""

    def __init__(self, failures: int, *, delay: float = 0.0, hold: bool = False) -> None:
        self.failures = failures
        self.delay = delay
        self.refuse: set[str] = set()
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.held = threading.Event()  # set when a request is being held
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append((time.monotonic(), headers, body))
                if hold and len(receiver.requests) == 1:
                    receiver.held.set()
                    receiver.release.wait(30)  # its sender is killed meanwhile; answering then finds nobody
                failing = len(receiver.requests) <= receiver.failures
                time.sleep(receiver.delay)
                status = 400 if headers["webhook-id"] in receiver.refuse else 503 if failing else 204
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass


            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/qaflow/alerts"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def ids(self) -> list[str]:
        return [headers["webhook-id"] for _, headers, _ in self.requests]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does, written from the Standard Webhooks spec rather than from qaflow's code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(f"v1,{expected}", sig) for sig in headers["webhook-signature"].split())


def wait_for(check: Any, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture
def webhook_server(tmp_path: Path, keys):
    """A server on the basic configuration whose outbox goes to a Receiver; yields (engine, receiver, secret, url)."""
    made: list[Any] = []

    def start(failures: int, **webhook: Any) -> tuple[Engine, Receiver, str, str]:
        receiver = Receiver(failures)
        secret = new_webhook_secret()
        path = write_settings(tmp_path / "server.toml", jwks_file=keys.jwks_file, server={"advance_every_seconds": 0},
                              webhook={"url": receiver.url, "backoff_seconds": 0.05, "max_backoff_seconds": 0.4,
                                       "poll_seconds": 0.05, "timeout_seconds": 2, **webhook})
        engine = Engine(load_config(FIXTURE), store=SQLiteStore(tmp_path / "q.db"), clock=FixedClock(DAY0))
        server = ThreadServer(create_app(engine, load_settings(path, environ={"QAFLOW_WEBHOOK_SECRET": secret})))
        server.__enter__()
        made.append((server, receiver, engine))
        return engine, receiver, secret, server.url

    yield start
    for server, receiver, engine in made:
        server.__exit__(None, None, None)
        receiver.close()
        engine.store.close()


def test_an_alert_is_retried_with_backoff_then_acknowledged(webhook_server, api_key):
    engine, receiver, secret, _ = webhook_server(failures=3)
    iid = engine.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", at=DAY0).id
    engine.advance("2027-01-20T09:00")  # the breach alerts oversight and the reviewer
    (alert,) = engine.outbox()
    wait_for(lambda: engine.outbox() == [])  # delivered on the 4th attempt, then acknowledged
    assert len(receiver.requests) == 4
    times = [t for t, _, _ in receiver.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05 and gaps[2] >= 0.1  # each wait at least half of 0.05 s doubled per attempt
    for _, headers, body in receiver.requests:
        assert headers["webhook-id"] == alert["id"]  # the same id on every retry: receivers drop duplicates by it
        assert headers["content-type"] == "application/json"
        assert verify(secret, headers, body)
        assert json.loads(body) == alert
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    acknowledged = engine.outbox(include_acknowledged=True)
    assert [a["id"] for a in acknowledged] == [alert["id"]] and acknowledged[0]["acknowledged_at"]
    assert alert["instance_id"] == iid and alert["name"] == "response_overdue"
    time.sleep(0.3)
    assert len(receiver.requests) == 4  # nothing sent again after the 2xx


def test_a_receiver_that_keeps_failing_keeps_the_alert_and_the_waits_stop_growing(webhook_server):
    engine, receiver, _secret, _ = webhook_server(failures=10**6)
    engine.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", at=DAY0)
    engine.advance("2027-01-20T09:00")
    wait_for(lambda: len(receiver.requests) >= 8)
    assert len(engine.outbox()) == 1  # never dropped
    times = [t for t, _, _ in receiver.requests]
    assert max(b - a for a, b in itertools.pairwise(times)) < 0.4 + 0.3  # capped at max_backoff (plus scheduling)


def test_a_receiver_that_was_down_gets_every_alert_once_when_it_is_back(webhook_server):
    engine, receiver, _, _ = webhook_server(failures=3)
    for k in range(5):
        engine.start("review", {"case_id": f"C-{k}", "reviewer": "R-01"}, actor="QA-01", at=DAY0)
    engine.advance("2027-01-20T09:00")
    alerts = {a["id"] for a in engine.outbox()}
    assert len(alerts) == 5
    wait_for(lambda: engine.outbox() == [])
    delivered = [headers["webhook-id"] for _, headers, _ in receiver.requests[3:]]
    assert sorted(delivered) == sorted(alerts)  # after the 3 failures (one alert at a time), each once
    assert len(receiver.requests) == 8


def test_alerts_from_requests_are_delivered_at_once(webhook_server, keys, tokens):
    engine, receiver, _secret, url = webhook_server(failures=0, poll_seconds=30)  # no polling: the listener wakes it
    iid = engine.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", at=DAY0).id
    engine.clock.set("2027-01-20T09:00")  # type: ignore[union-attr]  # FixedClock.set
    import httpx

    time.sleep(0.2)  # the deliverer is now asleep for up to 30 s
    fired = httpx.post(f"{url}/advance", headers={"Authorization": f"Bearer {tokens('QA-01', ['QA.Team'])}"})
    assert fired.json()["fired"][0]["instance"] == iid
    wait_for(lambda: len(receiver.requests) == 1, seconds=5)
    wait_for(lambda: engine.outbox() == [], seconds=5)


def test_an_alert_the_receiver_refuses_waits_while_the_others_go_through(webhook_server):
    engine, receiver, _, _ = webhook_server(failures=0)
    receiver.refuse = {"alert-000001"}  # a 400 for this one: the receiver is up, it will not take this alert
    for k in range(3):
        engine.start("review", {"case_id": f"C-{k}", "reviewer": "R-01"}, actor="QA-01", at=DAY0)
    engine.advance("2027-01-20T09:00")
    wait_for(lambda: [a["id"] for a in engine.outbox()] == ["alert-000001"])
    assert receiver.ids()[:3] == ["alert-000001", "alert-000002", "alert-000003"]  # the pass went on after the 400
    wait_for(lambda: receiver.ids().count("alert-000001") >= 4)
    times = [t for t, headers, _ in receiver.requests if headers["webhook-id"] == "alert-000001"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05 and gaps[2] >= 0.1  # its own waits grow
    receiver.refuse = set()
    wait_for(lambda: engine.outbox() == [])
    assert receiver.ids().count("alert-000002") == receiver.ids().count("alert-000003") == 1
    acknowledged = engine.outbox(include_acknowledged=True)
    assert len({a["acknowledged_by"] for a in acknowledged}) == 1
    assert acknowledged[0]["acknowledged_by"].startswith("qaflow-serve@")  # the server process holds the leases


def test_an_alert_acknowledged_elsewhere_while_it_waits_is_not_sent_again(webhook_server):
    engine, receiver, _, _ = webhook_server(failures=0)
    receiver.refuse = {"alert-000001"}
    engine.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", at=DAY0)
    engine.advance("2027-01-20T09:00")
    wait_for(lambda: len(receiver.requests) >= 2)
    engine.acknowledge("alert-000001", worker="someone-else")  # delivered by other means (POST /outbox/{id}/ack)
    time.sleep(0.2)
    sent = len(receiver.requests)
    time.sleep(1.0)  # several waits of at most 0.4 s
    assert len(receiver.requests) == sent
    assert engine.outbox(include_acknowledged=True)[0]["acknowledged_by"] == "someone-else"


# --------------------------------------------------------------------------- several servers, one PostgreSQL outbox


def serve_with_webhooks(tmp_path: Path, keys: Any, target: str, receiver: Receiver, secret: str, **webhook: Any) -> ServeProcess:
    settings = write_settings(tmp_path / "server.toml", jwks_file=keys.jwks_file,
                              webhook={"url": receiver.url, "backoff_seconds": 0.05, "max_backoff_seconds": 0.4,
                                       "poll_seconds": 0.05, "timeout_seconds": 2, **webhook})
    return ServeProcess(["--server-config", str(settings), "--db", target, "--advance-every", "0"], cwd=tmp_path,
                        env={"QAFLOW_WEBHOOK_SECRET": secret})


def breach_reviews(engine: Engine, count: int, first: int = 0, *, advance: bool = True) -> None:
    """``count`` reviews started in October 2026, their response deadline long past; advanced, one alert each."""
    for k in range(first, first + count):
        engine.start("review", {"case_id": f"C-{k}", "reviewer": "R-01"}, actor="QA-01", at=f"2026-10-{1 + k % 28:02d}T09:00")
    if advance:
        engine.advance("2026-12-01T09:00")


def test_two_servers_on_postgres_deliver_every_alert_once(tmp_path, keys, tokens, pg):
    receiver = Receiver(failures=0, delay=0.02)  # each delivery takes a moment, so that both servers take part
    secret = new_webhook_secret()
    store = open_store(pg.url)
    engine = Engine(load_config(FIXTURE), store=store)
    engine.outbox()  # the tables exist before both servers start
    servers = [serve_with_webhooks(tmp_path, keys, pg.url, receiver, secret) for _ in range(2)]
    try:
        breach_reviews(engine, 40)  # alerts the servers find by polling
        breach_reviews(engine, 20, first=40, advance=False)
        import httpx

        qa = {"Authorization": f"Bearer {tokens('QA-01', ['QA.Team'])}"}
        for server in servers:  # alerts raised by requests to either server, at once
            assert httpx.post(f"{server.url}/advance", headers=qa, timeout=30).status_code == 200
        alerts = [a["id"] for a in engine.outbox(include_acknowledged=True)]
        assert len(alerts) == 60
        wait_for(lambda: engine.outbox() == [], seconds=60)
        time.sleep(0.3)
    finally:
        for server in servers:
            server.stop()
        receiver.close()
    for server in servers:
        assert "Traceback" not in server.output(), server.output()
    sent = receiver.ids()
    assert sorted(sent) == sorted(alerts)  # every alert, and none twice
    for _, headers, body in receiver.requests:
        assert verify(secret, headers, body)
    by = {a["acknowledged_by"] for a in engine.outbox(include_acknowledged=True)}
    assert len(by) == 2 and all(w.startswith("qaflow-serve@") for w in by), by  # both servers delivered
    store.close()  # type: ignore[attr-defined]  # PostgresStore.close


def test_an_alert_is_sent_again_only_after_the_lease_of_a_server_that_died_ends(tmp_path, keys, pg):
    receiver = Receiver(failures=0, hold=True)  # holds the first request unanswered
    secret = new_webhook_secret()
    store = open_store(pg.url)
    engine = Engine(load_config(FIXTURE), store=store)
    engine.outbox()
    lease = 3.0  # three timeouts of 1 s
    first = serve_with_webhooks(tmp_path, keys, pg.url, receiver, secret, timeout_seconds=1, lease_seconds=lease)
    second = None
    try:
        breach_reviews(engine, 1)
        (alert,) = engine.outbox()
        assert receiver.held.wait(30)
        first.proc.kill()  # sent, but died before the answer: its lease stays until it ends
        first.proc.wait()
        second = serve_with_webhooks(tmp_path, keys, pg.url, receiver, secret, timeout_seconds=1, lease_seconds=lease)
        wait_for(lambda: engine.outbox() == [], seconds=30)
    finally:
        receiver.release.set()
        for server in (first, second):
            if server is not None:
                server.stop()
        receiver.close()
    assert second is not None and "Traceback" not in second.output(), second.output()
    assert receiver.ids() == [alert["id"], alert["id"]]  # at least once: sent again, by the other server...
    (held_at, _, _), (again_at, _, _) = receiver.requests
    assert again_at - held_at >= lease - 0.5  # ...only once the first server's lease had ended
    (done,) = engine.outbox(include_acknowledged=True)
    assert done["acknowledged_by"].startswith("qaflow-serve@")
    store.close()  # type: ignore[attr-defined]  # PostgresStore.close


def test_backoff_doubles_with_jitter_up_to_the_cap():
    deliverer = WebhookDeliverer(None, WebhookSettings(url="http://127.0.0.1/x", secret=b"s" * 32, backoff_seconds=2,
                                                       max_backoff_seconds=60))
    for attempts, full in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (20, 60)]:
        for _ in range(20):
            assert full / 2 <= deliverer.backoff(attempts) <= full


def test_a_lease_too_short_for_an_attempt_is_refused():
    from engine import UsageError

    with pytest.raises(UsageError, match="at least three timeouts"):
        WebhookDeliverer(None, WebhookSettings(url="http://127.0.0.1/x", secret=b"s" * 32, timeout_seconds=10, lease_seconds=20))


def test_the_signature_matches_the_standard_webhooks_example():
    # the worked example of the Standard Webhooks specification (its reference libraries' test vector)
    secret = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
