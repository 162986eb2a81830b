"""Request ids: a request id names one call; a retry of that call returns its first result, another call is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import Refused, RequestIdReused
from ..store.base import RequestCall, RequestRecord
from .inputs import check_key
from .view import InstanceView

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine


def _digest_default(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:
        return isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


def digest(body: Any) -> str:
    """sha256 of ``body`` as canonical JSON (keys sorted, no spaces, ASCII escapes).

    Data that is not JSON cannot be stored either: the call is refused further on, so any fixed
    digest will do for it.
    """
    try:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_digest_default)
    except (TypeError, ValueError, RecursionError):
        return "not-json"
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def call(operation: str, target: str, trigger: str | None, body: Any, actor: str | None) -> RequestCall:
    """The call a request id is bound to. The time (``at``) and the roles are not part of it: a retry
    may be sent later, and a host may derive the roles afresh."""
    return RequestCall(operation, target, trigger, actor, digest(body if body is not None else {}))


def start(engine: Engine, workflow: str, data: Any, *, actor: Any, roles: Any, at: Any, request_id: Any) -> InstanceView:
    """``Engine.start`` with a request id. (Kept out of the Engine so that its plain path builds no closure.)"""
    this = call("start", workflow, None, data, actor)
    run = lambda: engine.start(workflow, data, actor=actor, roles=roles, at=at, request_id=request_id, _call=this)  # noqa: E731
    return once(engine, check_key(request_id, "request_id"), this, run)


def fire(engine: Engine, instance_id: str, trigger: str, payload: Any, *, actor: Any, roles: Any, at: Any, request_id: Any,
         backdate_reason: str | None = None) -> InstanceView:
    """``Engine.fire`` with a request id."""
    this = call("fire", instance_id, trigger, payload, actor)
    run = lambda: engine.fire(instance_id, trigger, payload, actor=actor, roles=roles, at=at, request_id=request_id,  # noqa: E731
                              backdate_reason=backdate_reason, _call=this)
    return once(engine, check_key(request_id, "request_id"), this, run)


def once(engine: Engine, request_id: str, this: RequestCall, run: Callable[[], InstanceView]) -> InstanceView:
    """Carry out ``run`` once for ``request_id``, or return what the call that used it first committed.

    A duplicate sent while the first is still running (another thread, process or worker) loses the
    race at commit, or is refused because the instance moved on: either way it then finds the
    winner's record and returns that result, so every copy of one call gets the same answer.
    """
    store = engine.store
    first = store.request(request_id)
    if first is not None:
        return replay(engine, first, this)
    try:
        return run()
    except Refused:
        first = store.request(request_id)
        if first is None:
            raise
    return replay(engine, first, this)


def replay(engine: Engine, first: RequestRecord, this: RequestCall) -> InstanceView:
    """The first result again: the instance exactly as the first call committed it (its state, data,
    deadlines and ``rev``), even if it has moved on since. ``history`` on the view reads today's."""
    used = first.call
    if used is None:  # recorded before request ids were bound to calls: check what the record says
        same = first.instance_id == this.target if this.operation == "fire" else first.instance_id.startswith(f"{this.target}-")
        if not same:
            raise RequestIdReused(
                f"request id {first.request_id!r} was already used for {first.instance_id}; it cannot be used for "
                f"{_describe(this)}: give each call its own request id",
                request_id=first.request_id,
                first={"instance": first.instance_id},
            )
    elif used != this:
        raise RequestIdReused(
            f"request id {first.request_id!r} was already used to {_describe(used)}; "
            f"this call {_differs(used, this)}: give each call its own request id",
            request_id=first.request_id,
            first={"operation": used.operation, "target": used.target, "trigger": used.trigger, "actor": used.actor, "instance": first.instance_id},
        )
    if first.snapshot is not None:
        return InstanceView(engine, first.snapshot)
    return engine.get(first.instance_id)


def _describe(c: RequestCall) -> str:
    if c.operation == "start":
        return f"start {c.target} (as {c.actor})"
    return f"fire '{c.trigger}' on {c.target} (as {c.actor})"


def _differs(used: RequestCall, this: RequestCall) -> str:
    if (used.operation, used.target, used.trigger) != (this.operation, this.target, this.trigger):
        return f"would {_describe(this)}"
    if used.actor != this.actor:
        return f"is made by {this.actor}, not {used.actor}"
    return "has different data" if this.operation == "start" else "has a different payload"
