"""Routes for delivering hosts: list the outbox, claim alerts under a lease, acknowledge them once delivered.

Guarded by ``[access] outbox``, which is closed until the settings name its roles: whoever claims or
acknowledges an alert decides whether and when it is delivered. The worker a lease is held under is
always the caller's actor, with an optional process name of the caller's own (``ACTOR/PROCESS``), so
no caller can claim or acknowledge under another's name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from .auth import Identity
from .context import JSON, context
from .deps import refuse_unknown_query, require
from .schemas import AckBody, ClaimBody, ClaimOut, OutboxOut, error_responses

router = APIRouter(tags=["outbox"])

Deliverer = Annotated[Identity, Depends(require("outbox"))]


def worker_name(who: Identity, process: str | None) -> str:
    """``ACTOR/PROCESS``: the process name has no '/', so the actor is all before the last one, whoever asks."""
    return f"{who.actor}/{process or 'default'}"


@router.get("/outbox", response_model=None,
            responses={200: {"model": OutboxOut, "description": "Alerts, oldest first"}, **error_responses(422)})
def list_outbox(request: Request, who: Deliverer,
                include_acknowledged: Annotated[bool, Query(description="Include alerts already delivered.")] = False) -> JSON:
    """Alerts waiting to be delivered, leased ones included (a lease hides an alert from other claims, not from this list)."""
    refuse_unknown_query(request, ("include_acknowledged",))
    return JSON({"items": context(request).engine.outbox(include_acknowledged=include_acknowledged)})


@router.post("/outbox/claim", response_model=None,
             responses={200: {"model": ClaimOut, "description": "The alerts leased to the caller"}, **error_responses(400, 413, 422)})
def claim(request: Request, who: Deliverer, body: ClaimBody | None = None) -> JSON:
    """Lease up to `limit` of the oldest unacknowledged alerts no live lease holds to the caller for `lease_seconds`.

    While a lease runs no other claim gets the alert, through any server or the Python API. Deliver each, then
    `POST /outbox/{id}/ack`; an alert not acknowledged before its lease ends is claimed again, by anyone (at least
    once: `lease.claims` above 1 says an earlier claim may have sent it). A claim whose answer is lost leaves its
    alerts leased until the lease ends."""
    body = body or ClaimBody()
    worker = worker_name(who, body.process)
    alerts = context(request).engine.claim_alerts(worker, limit=body.limit, lease_seconds=body.lease_seconds)
    return JSON({"worker": worker, "items": alerts})


@router.post("/outbox/{alert_id}/ack", status_code=204, response_class=Response,
             responses={204: {"description": "Acknowledged (also when it was already)"}, **error_responses(400, 404, 413, 422)})
def acknowledge(request: Request, alert_id: str, who: Deliverer, body: AckBody | None = None) -> Response:
    """Record the alert as delivered, by the caller (`acknowledged_by` is ACTOR/PROCESS). Acknowledging twice is
    harmless: the first stands. It is taken also when the caller's lease ran out or another holds the alert: it was
    delivered, and refusing the record would only have it delivered again."""
    body = body or AckBody()
    context(request).engine.acknowledge(alert_id, worker=worker_name(who, body.process))
    return Response(status_code=204)
