"""Request bodies and the documented shapes of responses (for the OpenAPI document).

Bodies and query strings never say who is asking or when: ``actor``, ``roles`` (and ``worker``) are
refused with 403 (the caller comes from the credentials), ``at`` and ``backdate_reason`` with 400 (an
event happens at the server's time). Responses are built from the engine's own ``to_dict()`` output;
the models here describe them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import UsageError
from .errors import Forbidden

#: Keys that would let a body or a query string say who is asking (a deliverer is named after its caller too).
IDENTITY_KEYS = frozenset({"actor", "roles", "role", "user", "on_behalf_of", "worker"})
#: Keys that would let a body or a query string say when something happened.
TIME_KEYS = frozenset({"at", "backdate_reason"})


def refuse_identity_and_time(keys: Iterable[str], where: str) -> None:
    """Forbidden (403) when ``keys`` would say who is asking, UsageError (400) when they would date the call."""
    given = set(keys)
    claimed = sorted(IDENTITY_KEYS & given)
    if claimed:
        raise Forbidden(
            f"the request {where} may not say who is asking ({', '.join(repr(k) for k in claimed)}): the server "
            f"takes the actor and roles from the credentials (bearer token or API key), never from the {where}",
            claimed=claimed,
        )
    dated = sorted(TIME_KEYS & given)
    if dated:
        raise UsageError(
            f"the request {where} may not date the event ({', '.join(repr(k) for k in dated)}): it happens at the "
            "server's time; record late events with the Python API or `qaflow fire --at ... --backdate-reason ...`"
        )


class Body(BaseModel):
    """A request body: no identity, no time, no unknown keys."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_identity_or_time(cls, value: Any) -> Any:
        if isinstance(value, dict):
            refuse_identity_and_time(value, "body")
        return value


class StartBody(Body):
    workflow: str = Field(description="The workflow to start, e.g. case_audit.", examples=["case_audit"])
    data: dict[str, Any] = Field(default_factory=dict, description="The instance's start data (the workflow's `data:` fields).")


class FireBody(Body):
    payload: dict[str, Any] | None = Field(default=None, description="The trigger's payload (checked against its JSON Schema).")


class ValidateBody(Body):
    files: dict[str, str | None] = Field(
        default_factory=dict,
        description="Proposed files, by path inside the configuration (`workflows/case_audit.yaml`), laid over the "
                    "server's configuration; null removes a file. Empty: check the configuration as it runs.",
    )
    against_store: bool = Field(default=True, description="Also check what the change would strand in the store.")


#: A name a caller may give the process that claims alerts: letters, digits, '.', '_' and '-' (never '/').
PROCESS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_PROCESS = Field(default=None, pattern=PROCESS_PATTERN, examples=["mailer-1"],
                 description="Names one of the caller's delivering processes: the worker becomes ACTOR/PROCESS "
                             "(ACTOR/default without it). The actor is always the caller's own.")


class ClaimBody(Body):
    limit: int = Field(default=10, ge=1, le=1000, description="At most this many alerts.")
    lease_seconds: float = Field(default=60, gt=0, le=3600,
                                 description="How long no other claim gets them, by the store's clock; an alert not "
                                             "acknowledged by then can be claimed again (by anyone).")
    process: str | None = _PROCESS


class AckBody(Body):
    process: str | None = _PROCESS


class ErrorOut(BaseModel):
    """Every error: the class name, its message, and whatever details the engine gives."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(examples=["RoleRefused"])
    message: str = Field(examples=["TM-02 may not fire 'submit_lead_audit' on case_audit-000001: it needs the role lead_auditor"])


class DeadlineOut(BaseModel):
    name: str
    status: str = Field(description="open, paused, breached, met or cancelled")
    due: str
    due_at: str
    anchor: str
    duration: str
    calendar: str
    late: bool
    started_at: str
    closed_at: str | None
    breached_at: str | None
    changes: list[dict[str, Any]]
    explanation: list[str]


class InstanceOut(BaseModel):
    id: str
    workflow: str
    version: int
    state: str
    terminal: bool
    rev: int = Field(description="1 when started, one more with every committed change")
    data: dict[str, Any]
    parent: str | None
    children: list[str]
    created_at: str
    updated_at: str
    deadlines: list[DeadlineOut]


class InstancePageOut(BaseModel):
    items: list[InstanceOut] = Field(description="Instances in id order, each as GET /instances/{id} shows it")
    next: str | None = Field(description="Pass as after= for the next page; null at the end")


class TriggerOut(BaseModel):
    name: str
    title: str


class WorkItemOut(BaseModel):
    id: str
    workflow: str
    state: str
    triggers: list[TriggerOut] = Field(description="What the caller may fire on it now, in the workflow's order")
    deadline: str | None = Field(description="The earliest deadline still awaited (running, or breached and not met)")
    due: str | None = Field(description="Its due date")


class WorklistOut(BaseModel):
    items: list[WorkItemOut] = Field(description="Instances in id order on which the caller may fire something now")
    next: str | None = Field(description="Pass as after= for the next page; null at the end. A page may be short, "
                                         "even empty, while next is set: follow it until it is null")


class RecipientOut(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    role: str | None = None
    person: str | None = None
    as_: str | None = Field(default=None, alias="as", description="The bound role that named the person")


class LeaseOut(BaseModel):
    worker: str = Field(description="Who holds the lease: ACTOR/PROCESS for HTTP callers")
    at: str | None = Field(description="The server's time of the claim")
    until: str = Field(description="When the lease ends, by the store's clock")
    claims: int = Field(description="How many times the alert has been claimed; above 1, an earlier claim may have sent it")


class AlertOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    at: str
    instance_id: str
    workflow: str
    name: str
    severity: str
    recipients: list[RecipientOut]
    message: str
    acknowledged_at: str | None
    acknowledged_by: str | None
    lease: LeaseOut | None = Field(default=None, description="On claimed alerts only")


class OutboxOut(BaseModel):
    items: list[AlertOut] = Field(description="Oldest first")


class ClaimOut(BaseModel):
    worker: str = Field(description="The name the lease is held under: the caller's actor and process")
    items: list[AlertOut] = Field(description="The alerts now leased to the worker, oldest first")


class TriggersOut(BaseModel):
    instance: str
    triggers: list[str] = Field(description="Triggers the caller may fire now")


class OccurrenceOut(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    at: str
    kind: str = Field(description="breach or start")
    instance: str
    workflow: str
    name: str
    from_: str | None = Field(alias="from")
    to: str


class AdvanceOut(BaseModel):
    to: str = Field(description="The server's time the clock was advanced to")
    fired: list[OccurrenceOut]


class ProblemOut(BaseModel):
    file: str
    line: int
    column: int
    severity: str
    code: str
    message: str


class ValidateOut(BaseModel):
    ok: bool
    problems: list[ProblemOut]


class IdentityOut(BaseModel):
    actor: str
    roles: list[str]
    via: str = Field(description="token, api_key or dev")
    name: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status documented with the error body."""
    words = {400: "Malformed call", 401: "Not authenticated", 403: "Not allowed", 404: "No such instance or alert",
             409: "Refused given the instance as it is now", 413: "Body too large", 422: "Invalid data, payload or request",
             503: "The store is unavailable"}
    return {s: {"model": ErrorOut, "description": words.get(s, "Error")} for s in (401, 403, *statuses, 503)}
