"""Routes for instances: start, fire, show, history, explain, and the triggers the caller may fire now."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request

from ..errors import RequestIdReused
from ..explain import explain_instance
from ..runtime.view import InstanceView
from .auth import Identity
from .context import JSON, context
from .deps import Caller, IdempotencyKey, Reader
from .schemas import FireBody, InstanceOut, StartBody, TriggersOut, error_responses

router = APIRouter(tags=["instances"])


def instance_json(view: InstanceView) -> dict[str, Any]:
    out = view.to_dict(history=False)
    out["rev"] = view.rev
    return out


@contextmanager
def own_request_ids(who: Identity, key: str | None) -> Iterator[None]:
    """A key someone else used is refused without saying what they used it for."""
    try:
        yield
    except RequestIdReused as exc:
        first = exc.details.get("first") or {}
        if first.get("actor") != who.actor:
            raise RequestIdReused(f"the Idempotency-Key {key!r} was already used for another call: give each call its own key",
                                  request_id=key) from None
        raise


@router.post("/instances", status_code=201, response_model=None,
             responses={201: {"model": InstanceOut, "description": "The instance as started"}, **error_responses(400, 413, 422)})
def start_instance(request: Request, body: StartBody, who: Caller, key: IdempotencyKey = None) -> JSON:
    """Start an instance of a workflow as the caller (who must hold one of the workflow's start roles)."""
    engine = context(request).engine
    with own_request_ids(who, key):
        view = engine.start(body.workflow, body.data, actor=who.actor, roles=who.roles, request_id=key)
    return JSON(instance_json(view), status_code=201, headers={"Location": f"/instances/{view.id}"})


@router.post("/instances/{instance_id}/triggers/{trigger}", response_model=None,
             responses={200: {"model": InstanceOut, "description": "The instance after the trigger"},
                        **error_responses(400, 404, 409, 413, 422)})
def fire_trigger(request: Request, instance_id: str, trigger: str, who: Caller, key: IdempotencyKey = None,
                 body: FireBody | None = None) -> JSON:
    """Fire a trigger on an instance as the caller; refused (and nothing changed) unless their roles,
    the payload and the workflow's guards allow it."""
    engine = context(request).engine
    payload = body.payload if body is not None else None
    with own_request_ids(who, key):
        view = engine.fire(instance_id, trigger, payload, actor=who.actor, roles=who.roles, request_id=key)
    return JSON(instance_json(view))


@router.get("/instances/{instance_id}", response_model=None,
            responses={200: {"model": InstanceOut, "description": "The instance as last committed"}, **error_responses(404)})
def show_instance(request: Request, instance_id: str, who: Reader) -> JSON:
    """An instance: state, data, deadlines with the reasoning behind each due date, parent and children."""
    return JSON(instance_json(context(request).engine.get(instance_id)))


@router.get("/instances/{instance_id}/history", response_model=None,
            responses={200: {"description": "Every accepted change, oldest first: who, with which roles, when, "
                                             "the payload, the conditions checked and the actions taken"},
                       **error_responses(404)})
def instance_history(request: Request, instance_id: str, who: Reader) -> JSON:
    """The instance's history, oldest first."""
    return JSON(context(request).engine.history(instance_id))


@router.get("/instances/{instance_id}/explain", response_model=None,
            responses={200: {"description": "The history in plain English and how each deadline was worked out"},
                       **error_responses(404)})
def explain(request: Request, instance_id: str, who: Reader) -> JSON:
    """Why the instance is where it is: each event as a sentence, and each deadline's reasoning."""
    return JSON(explain_instance(context(request).engine, instance_id))


@router.get("/instances/{instance_id}/triggers", response_model=None,
            responses={200: {"model": TriggersOut, "description": "Triggers the caller may fire now"}, **error_responses(404)})
def available_triggers(request: Request, instance_id: str, who: Reader) -> JSON:
    """The triggers the caller may fire on the instance now (their roles, including roles bound through its data)."""
    found = context(request).engine.available_triggers(instance_id, actor=who.actor, roles=who.roles)
    return JSON({"instance": instance_id, "triggers": found})
