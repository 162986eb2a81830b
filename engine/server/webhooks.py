"""Deliver the outbox to a webhook: each alert POSTed as JSON, signed, retried with backoff, acknowledged on 2xx.

Signed as Standard Webhooks (standardwebhooks.com) describes, so receivers can use its libraries:
``webhook-id`` (the alert id, the same on every retry: receivers drop duplicates by it),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``. Delivery is at least once: an alert stays in the outbox until a 2xx
answer, and a failure waits ``backoff_seconds`` doubled per attempt (with jitter) up to
``max_backoff_seconds``, then keeps trying at that pace; nothing is ever dropped.

One process delivers: attempts are counted in memory, and two servers delivering one outbox would
send each alert twice. With several servers on one PostgreSQL database, give the [webhook] section to
one of them (or run the others with ``--no-webhooks``) until the outbox has leases.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
from typing import Any

from .. import __version__
from ..errors import UsageError
from .background import Worker
from .settings import WebhookSettings

log = logging.getLogger("qaflow.server")


def sign(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for one message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode("ascii")


class WebhookDeliverer(Worker):
    name = "qaflow-webhooks"

    def __init__(self, engine: Any, settings: WebhookSettings) -> None:
        super().__init__()
        self.engine = engine
        self.settings = settings
        self.attempts: dict[str, int] = {}  # alert id -> failed attempts so far
        self.next_try: dict[str, float] = {}  # alert id -> monotonic time of the next attempt
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

    def tick(self) -> float:
        """Deliver every alert that is due; the seconds until the next one is."""
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.settings.timeout_seconds, follow_redirects=False,
                                        headers={"user-agent": f"qaflow/{__version__}"})
        alerts = self.engine.outbox()
        waiting = {a["id"] for a in alerts}
        for gone in set(self.attempts) - waiting:  # acknowledged elsewhere (qaflow outbox --ack)
            self.attempts.pop(gone, None)
            self.next_try.pop(gone, None)
        for alert in alerts:
            if self.stopping:
                break
            if self.next_try.get(alert["id"], 0.0) > time.monotonic():
                continue
            if not self._deliver(alert):
                break  # the receiver is down or overloaded: try the rest when the next one is due, not all now
        now = time.monotonic()
        pending = [t - now for t in self.next_try.values()]
        return max(0.0, min([self.settings.poll_seconds, *pending]))

    def _deliver(self, alert: dict[str, Any]) -> bool:
        """POST one alert; False when the receiver seems unable to take any (no answer, 5xx, 429)."""
        import httpx

        alert_id = alert["id"]
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
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
            self.attempts.pop(alert_id, None)
            self.next_try.pop(alert_id, None)
            self.delivered += 1
            with contextlib.suppress(UsageError):  # acknowledged meanwhile by someone else (qaflow outbox --ack)
                self.engine.acknowledge(alert_id)
            return True
        failures = self.attempts[alert_id] = self.attempts.get(alert_id, 0) + 1
        wait = self.backoff(failures)
        self.next_try[alert_id] = time.monotonic() + wait
        log.warning("qaflow serve: webhook delivery of %s failed (%s, attempt %d); next try in %.1f s",
                    alert_id, outcome, failures, wait)
        return receiver_up
