"""Deliver the outbox to a webhook: alerts claimed under a lease, POSTed as signed JSON, retried with backoff, acknowledged on 2xx.

Signed as Standard Webhooks (standardwebhooks.com) describes, so receivers can use its libraries:
``webhook-id`` (the alert id, the same on every retry: receivers drop duplicates by it),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``. Delivery is at least once: an alert stays in the outbox until a 2xx
answer, and nothing is ever dropped.

Several servers deliver one outbox. Each claims alerts (``Engine.claim_alerts``) under its own
worker name for ``lease_seconds``, and only the holder of a live lease sends an alert, so no alert is
sent by two servers while a lease holds. A server starts an attempt only while its lease has room for
it (two timeouts: connecting, then the answer); an alert it could not deliver in its lease is claimed
again when the lease ends, by any server. An alert can therefore be sent twice only after a lease ended
without an acknowledgement: its server died or lost the store after sending it, or the receiver
answered slower than the lease.

Retries: an alert the receiver refuses (4xx) waits ``backoff_seconds`` doubled per attempt (with
jitter) up to ``max_backoff_seconds`` while its lease lasts; attempts are counted from the alert's
claims, so its waits keep growing when another claim takes it up. A receiver that seems down (no
answer, 5xx, 429) stops the pass: nothing more is sent or claimed by this server until the same growing
wait has passed, and then the oldest alert is tried first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..errors import StoreError, UsageError
from .background import Worker
from .settings import WebhookSettings

log = logging.getLogger("qaflow.server")

BATCH = 10  # alerts claimed at once
REMEMBERED = 10_000  # alerts whose failed attempts are remembered after their lease was given up


def sign(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for one message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode("ascii")


def process_worker_name() -> str:
    """This server process's name as the holder of outbox leases: host, process id, and a token for this start."""
    host = socket.gethostname()[:100]
    if not host.isprintable() or not host.strip():
        host = "unknown-host"
    return f"qaflow-serve@{host}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Held:
    """An alert this server holds a lease on and has not delivered yet."""

    alert: dict[str, Any]
    lease_ends: float  # monotonic; no later than the store's end of the lease
    next_try: float = 0.0  # monotonic


class WebhookDeliverer(Worker):
    name = "qaflow-webhooks"

    def __init__(self, engine: Any, settings: WebhookSettings, worker: str | None = None) -> None:
        super().__init__()
        if settings.lease_seconds < 3 * settings.timeout_seconds:  # as load_settings checks: else nothing would be sent
            raise UsageError(f"[webhook] lease_seconds ({settings.lease_seconds:g}) must be at least three timeouts "
                             f"({3 * settings.timeout_seconds:g})")
        self.engine = engine
        self.settings = settings
        self.worker = worker or process_worker_name()
        self.held: dict[str, Held] = {}  # alert id -> the alert, oldest claimed first
        self.attempts: dict[str, int] = {}  # alert id -> failed attempts so far
        self.failures = 0  # attempts in a row the receiver could not take (no answer, 5xx, 429)
        self.resume_at = 0.0  # monotonic: while the receiver seems down, nothing is sent or claimed before
        self.unacknowledged: list[str] = []  # delivered, but the acknowledgement failed: acknowledge, never send again
        self.delivered = 0
        self._client: Any = None

    def on_change(self, change: Any) -> None:
        """An Engine listener: a change that put alerts in the outbox wakes the deliverer at once."""
        if change.alerts:
            self.wake()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        if self._client is not None:
            self._client.close()
            self._client = None

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failures: doubling from backoff_seconds, capped, half of it jittered."""
        delay = min(self.settings.max_backoff_seconds, self.settings.backoff_seconds * 2 ** (attempts - 1))
        return delay / 2 + random.uniform(0, delay / 2)  # jitter, not a secret

    @property
    def room(self) -> float:
        """The time an attempt may take: connecting, then waiting for the answer."""
        return 2 * self.settings.timeout_seconds

    def tick(self) -> float:
        """Deliver what is due: alerts held from before, then newly claimed ones; the seconds until the next is due."""
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.settings.timeout_seconds, follow_redirects=False,
                                        headers={"user-agent": f"qaflow/{__version__}"})
        while self.unacknowledged:
            self.engine.acknowledge(self.unacknowledged[0], worker=self.worker)  # a StoreError: try again next tick
            self.unacknowledged.pop(0)
        now = time.monotonic()
        for alert_id, held in list(self.held.items()):
            if held.lease_ends - self.room < now:  # no room left: the next claim after the lease takes it up
                del self.held[alert_id]
        if now >= self.resume_at and self._deliver_held(now):
            while not self.stopping:
                limit = 1 if self.failures else BATCH  # a receiver that was down is tried with one alert first
                claimed_at = time.monotonic()
                alerts = self.engine.claim_alerts(self.worker, limit=limit, lease_seconds=self.settings.lease_seconds)
                for alert in alerts:
                    self.held[alert["id"]] = Held(alert, claimed_at + self.settings.lease_seconds)
                    claims = alert.get("lease", {}).get("claims", 1)
                    if claims > 1 and alert["id"] not in self.attempts:
                        self.attempts[alert["id"]] = claims - 1  # earlier claims: take it up where they left it
                if not self._deliver_held(time.monotonic()) or len(alerts) < limit:
                    break
        now = time.monotonic()
        waits = [self.settings.poll_seconds, *(max(h.next_try, self.resume_at) - now for h in self.held.values())]
        if self.failures:
            waits.append(self.resume_at - now)
        return max(0.0, min(waits))

    def _deliver_held(self, now: float) -> bool:
        """Try each held alert that is due and whose lease has room, oldest first; False when the receiver seems down."""
        due = [h for h in self.held.values() if h.next_try <= now]
        if any(h.next_try for h in due):  # retries: drop any acknowledged meanwhile (POST /outbox/{id}/ack, qaflow outbox --ack)
            waiting = {a["id"] for a in self.engine.outbox()}
            for h in due:
                if h.alert["id"] not in waiting:
                    self.held.pop(h.alert["id"], None)
            due = [h for h in due if h.alert["id"] in waiting]
        for held in due:
            if self.stopping:
                return False
            if time.monotonic() + self.room > held.lease_ends:
                self.held.pop(held.alert["id"], None)
                continue
            if not self._deliver(held):
                return False
        return True

    def _deliver(self, held: Held) -> bool:
        """POST one alert; False when the receiver seems unable to take any (no answer, 5xx, 429)."""
        import httpx

        alert = held.alert
        alert_id = alert["id"]
        shown = {k: v for k, v in alert.items() if k != "lease"}  # the alert as the outbox holds it, the same on every retry
        body = json.dumps(shown, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        stamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": alert_id, "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(self.settings.secret, alert_id, stamp, body)}
        try:
            response = self._client.post(self.settings.url, content=body, headers=headers)
            outcome = f"HTTP {response.status_code}"
            ok = 200 <= response.status_code < 300
            receiver_up = response.status_code < 500 and response.status_code != 429
        except httpx.HTTPError as exc:
            outcome, ok, receiver_up = f"{type(exc).__name__}: {exc}", False, False
        if ok:
            del self.held[alert_id]
            self.attempts.pop(alert_id, None)
            self.failures = 0
            self.resume_at = 0.0
            self.delivered += 1
            try:
                self.engine.acknowledge(alert_id, worker=self.worker)
            except StoreError:
                self.unacknowledged.append(alert_id)  # delivered: acknowledge it later, never send it again from here
                raise
            return True
        failures = self.attempts[alert_id] = self.attempts.get(alert_id, 0) + 1
        while len(self.attempts) > REMEMBERED:
            del self.attempts[next(iter(self.attempts))]
        if receiver_up:
            wait = self.backoff(failures)
        else:
            self.failures += 1
            wait = self.backoff(max(failures, self.failures))
            self.resume_at = time.monotonic() + wait
        held.next_try = time.monotonic() + wait
        log.warning("qaflow serve: webhook delivery of %s failed (%s, attempt %d); next try in %.1f s",
                    alert_id, outcome, failures, wait)
        return receiver_up
