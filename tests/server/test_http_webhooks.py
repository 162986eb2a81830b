"""The outbox delivered to a webhook: signed as Standard Webhooks says, retried with growing waits while the
receiver fails, acknowledged once it answers 2xx, never dropped."""

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
from server_harness import DAY0, FIXTURE, ThreadServer, write_settings

from engine import Engine, FixedClock, load_config
from engine.server import create_app, load_settings
from engine.server.settings import WebhookSettings, new_webhook_secret
from engine.server.webhooks import WebhookDeliverer, sign
from engine.store.sqlite import SQLiteStore


class Receiver:
    """A host's endpoint that answers 503 to the first ``failures`` requests, then 204."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append((time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body))
                failing = len(receiver.requests) <= receiver.failures
                self.send_response(503 if failing else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/qaflow/alerts"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
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


def test_backoff_doubles_with_jitter_up_to_the_cap():
    deliverer = WebhookDeliverer(None, WebhookSettings(url="http://127.0.0.1/x", secret=b"s" * 32, backoff_seconds=2,
                                                       max_backoff_seconds=60))
    for attempts, full in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (20, 60)]:
        for _ in range(20):
            assert full / 2 <= deliverer.backoff(attempts) <= full


def test_the_signature_matches_the_standard_webhooks_example():
    # the worked example of the Standard Webhooks specification (its reference libraries' test vector)
    secret = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
