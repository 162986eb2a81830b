"""The Engine: start instances, fire triggers, advance the clock, read instances and the outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clock import Clock, as_time, iso_text
from ..definitions import Definitions, WorkflowDef, event_key
from ..errors import (
    ActionFailed,
    ConcurrencyConflict,
    DataInvalid,
    GuardFailed,
    OutOfOrder,
    PayloadInvalid,
    QaflowError,
    Refused,
    RoleRefused,
    StoreError,
    UnknownAlert,
    UnknownInstance,
    UnknownTrigger,
    UsageError,
)
from ..machine import fire_event
from ..store.base import RequestCall, Store
from ..store.memory import MemoryStore
from . import deadlines as clocks
from . import query as queries
from . import requests
from .changes import Listener, log, notify
from .context import Context
from .inputs import SYSTEM_ACTOR, check_actor, check_caller, check_id, check_key, json_problem
from .instance import REMINDER, Instance, clone_json
from .query import Page, WorkItem
from .tracing import traced, tracer
from .unit import UnitOfWork
from .view import InstanceView

SYSTEM_ROLES = frozenset({SYSTEM_ACTOR})
MAX_AUTO_STEPS = 100  # automatic transitions in a row before we call it a loop
MAX_QUEUED = 1000  # child starts and parent signals in one call
# An event dated up to this much before the instance's last one is taken as it is: the clocks of the
# hosts that share a store differ a little. Anything earlier needs a backdating reason.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Something ``advance`` fired: a deadline breach or a scheduled start."""

    at: dt.datetime
    kind: str  # "breach" | "start" | "reminder"
    instance_id: str
    workflow: str
    name: str  # deadline name or workflow started
    from_state: str | None
    to_state: str
    error: str | None = None
    set_aside: bool = False  # it could not be fired at all: see Engine.held() and Engine.release()

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "instance": self.instance_id,
            "workflow": self.workflow,
            "name": self.name,
            "from": self.from_state,
            "to": self.to_state,
            **({"error": self.error} if self.error else {}),
            **({"set_aside": True} if self.set_aside else {}),
        }


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "date": lambda v: isinstance(v, str) and _is_iso(v, dt.date),
    "datetime": lambda v: isinstance(v, str) and _is_iso(v, dt.datetime),
    "any": lambda v: True,
}


# Payload checks: the trigger schema compiled into a predicate (engine.patterns.payload_predicate), else
# jsonschema's is_valid; only when that says no are the errors collected. Keyed by the validator's id,
# holding the validator so that the id is not reused while the entry lives.
_FAST_CHECKS: dict[int, tuple[Any, Any]] = {}


def _payload_ok(trig: Any, body: Any) -> bool:
    validator = trig.validator
    entry = _FAST_CHECKS.get(id(validator))
    if entry is None or entry[0] is not validator:
        from ..patterns import payload_predicate

        check = payload_predicate(trig.payload_schema) if trig.payload_schema is not None else None
        entry = _FAST_CHECKS[id(validator)] = (validator, check or validator.is_valid)
    return bool(entry[1](body))


_AUTO_KEY = event_key("auto", "")

#: The alert group told when ``advance`` sets an item aside, and who is told when the rules have none.
ENGINE_ALERTS = "engine_alerts"
DEFAULT_ENGINE_ALERTS = ("qa_team",)


def _held_id(kind: str, key: str, name: str) -> str:
    """How people name a set-aside item: INSTANCE/DEADLINE for a breach, the schedule id for a start."""
    return f"{key}/{name}" if kind == "breach" else key


def _item_error(exc: BaseException) -> bool:
    """Whether ``exc`` belongs to the item being fired (set it aside) rather than to the store (stop)."""
    if isinstance(exc, StoreError):
        return False
    if isinstance(exc, QaflowError):
        return True
    module = type(exc).__module__
    return not (isinstance(exc, (OSError, MemoryError)) or module.startswith(("sqlite3", "psycopg")))


def _is_iso(text: str, kind: type[dt.date]) -> bool:
    try:
        kind.fromisoformat(text)
    except ValueError:
        return False
    return True


class Engine:
    """Runs instances of the workflows in ``definitions`` against ``store``.

    Every call that changes something takes ``at`` (or reads the injected ``clock``) and is all or
    nothing: a refused or failing call raises a ``Refused`` subclass and leaves every instance as it was.
    """

    def __init__(self, definitions: Definitions, store: Store | None = None, clock: Clock | None = None,
                 listeners: Iterable[Listener] = ()) -> None:
        """``listeners`` are called with a ``Change`` after every accepted call is committed (history
        entries, alerts, deadlines), so a host need not poll; one that raises is logged, not raised."""
        self.definitions = definitions
        self.store: Store = store if store is not None else MemoryStore()
        self.clock = clock
        self.listeners: list[Listener] = list(listeners)
        spans = tracer()  # OpenTelemetry, if the host has it: a span around each start, fire and advance
        if spans is not None:
            self.start = traced("qaflow.start", self.start, spans)  # type: ignore[method-assign]
            self.fire = traced("qaflow.fire", self.fire, spans)  # type: ignore[method-assign]
            self.advance = traced("qaflow.advance", self.advance, spans)  # type: ignore[method-assign]
        # (workflow, version) -> its definition, filled on first use: a configuration loaded from the cache
        # compiles a workflow only when something asks for it (``qaflow show`` needs one of ten)
        self._versions: dict[tuple[str, int], WorkflowDef] = {}
        self._recorded: set[tuple[str, int]] = set()

    @classmethod
    def from_config(cls, config: str | Path | None = None, *, store: Store | None = None, clock: Clock | None = None,
                    listeners: Iterable[Listener] = ()) -> Engine:
        """Load a configuration folder (default: ./config, else the bundled one) into an Engine."""
        from ..config.loader import load_config

        return cls(load_config(config), store=store, clock=clock, listeners=listeners)

    def _commit(self, uow: UnitOfWork) -> None:
        uow.commit()
        if self.listeners:
            notify(self.listeners, uow.changes)

    # ------------------------------------------------------------------ helpers
    def _time(self, at: Any) -> dt.datetime:
        if at is not None:
            return as_time(at)
        if self.clock is None:
            raise UsageError("no time given: pass at=... or give the Engine a clock")
        return as_time(self.clock.now())

    def _wf(self, inst: Instance) -> WorkflowDef:
        """The definition the instance runs on: today's, or the older version it started on."""
        key = (inst.workflow, inst.version)
        wf = self._versions.get(key)
        if wf is not None:
            return wf
        current = self.definitions.workflows.get(inst.workflow)
        if current is not None and current.version == inst.version:
            self._versions[key] = current
            return current
        stored = self.store.definition(inst.workflow, inst.version)
        if stored is None:
            raise UsageError(
                f"instance {inst.id} runs {inst.workflow} version {inst.version}, which neither this configuration "
                f"(version {current.version if current else 'none'}) nor the store has",
                instance=inst.id,
            )
        from ..config.loader import compile_stored_workflow

        wf = compile_stored_workflow(stored["source"], self.definitions, label=f"{inst.workflow} version {inst.version}")
        self._versions[key] = wf
        return wf

    def _record_definition(self, uow: UnitOfWork, wf: WorkflowDef) -> None:
        """Keep the text of every definition version instances start on, once; refuse a silent edit."""
        key = (wf.id, wf.version)
        if key in self._recorded:
            return
        stored = self.store.definition(wf.id, wf.version)
        if stored is None:
            uow.changes.definitions.append({"workflow": wf.id, "version": wf.version, "digest": wf.digest, "source": wf.source})
        elif stored["digest"] != wf.digest:
            raise UsageError(
                f"{wf.file} changed but its version is still {wf.version}, and instances already run on the old "
                f"version {wf.version}: raise 'version' so running instances keep theirs"
            )
        self._recorded.add(key)

    @staticmethod
    def effective_roles(wf: WorkflowDef, data: dict[str, Any], actor: str, roles: Iterable[str]) -> frozenset[str]:
        """The roles asserted by the caller plus the roles bound to ``actor`` through the instance's data.

        A bound role is held only through the data: a caller asserting its name gains nothing.
        """
        held = frozenset(roles)  # the same object when it is one already
        bound = wf.bound_roles
        if not bound:
            return held
        held = held.difference(bound)
        if not actor:  # nobody: an empty field must not make them its holder
            return held
        named_here = [name for name, field in bound.items()
                      if (named := data.get(field)) == actor or (isinstance(named, list) and actor in named)]
        return held.union(named_here) if named_here else held

    def _entry(self, inst: Instance, wf: WorkflowDef, ctx: Context, *, trigger: str, from_state: str | None, payload: Any,
               request_id: str | None = None) -> dict[str, Any]:
        entry = {
            "instance_id": inst.id,
            "at": iso_text(ctx.at),
            "actor": ctx.actor,
            "roles": sorted(ctx.roles),
            "trigger": trigger,
            "from": from_state,
            "to": inst.state,
            "payload": payload,
            "conditions": ctx.conditions,
            "actions": ctx.actions,
            "workflow": wf.id,
            "version": wf.version,
        }
        if request_id:
            entry["request_id"] = request_id
        return entry

    # ------------------------------------------------------------------ start
    def start(
        self,
        workflow: str,
        data: dict[str, Any] | None = None,
        *,
        actor: str,
        roles: Iterable[str] = (),
        at: Any = None,
        request_id: str | None = None,
        _call: RequestCall | None = None,
    ) -> InstanceView:
        """Start an instance of ``workflow`` with ``data``; returns the new instance.

        Refused (``RoleRefused``) unless ``roles`` holds one of the workflow's start roles, and
        (``DataInvalid``) when ``data`` gives a field the workflow owns or is not JSON. ``request_id``
        names this call (see ``fire``): a retry returns the instance as this call started it, without
        starting another; the same id for another call is ``RequestIdReused``.
        """
        if request_id and _call is None:  # carried out by requests.start, which calls back with _call
            return requests.start(self, workflow, data, actor=actor, roles=roles, at=at, request_id=request_id)
        held = check_caller(actor, roles)
        check_id(workflow, "the workflow")
        data = self._input(data, "data", DataInvalid)
        when = self._time(at)
        wf = self.definitions.workflow(workflow)
        self._may_start(wf, actor, held, data)
        return self._start(wf, data, actor=actor, roles=held, at=when, request_id=request_id, call=_call)

    def _start(self, wf: WorkflowDef, data: dict[str, Any], *, actor: str, roles: frozenset[str], at: dt.datetime,
               request_id: str | None = None, call: RequestCall | None = None) -> InstanceView:
        uow = UnitOfWork(self.store)
        iid = self.store.next_id(wf.id)
        self._create(uow, wf, iid, data, at=at, actor=actor, roles=roles, parent_id=None, request_id=request_id)
        self._drain(uow)
        if request_id and call is not None:
            uow.changes.request = (request_id, call, iid)
        self._commit(uow)
        return InstanceView(self, uow.working[iid])  # as committed: what a retry of this call returns too

    def _check_data(self, wf: WorkflowDef, data: dict[str, Any]) -> None:
        problems = []
        for name, field in wf.fields.items():
            if name not in data or data[name] is None:
                if field.default is not None:
                    data[name] = field.default
                elif field.required:
                    problems.append(f"'{name}' is required")
                continue
            value = data[name]
            if not _TYPE_CHECKS[field.type](value):
                problems.append(f"'{name}' should be {field.type}, found {value!r}")
            elif field.enum is not None and field.type == "array":  # a list of terms: each item is one of them
                wrong = [item for item in value if item not in field.enum]
                if wrong:
                    problems.append(f"each item of '{name}' should be one of {', '.join(map(str, field.enum))}, found {wrong[0]!r}")
            elif field.enum is not None and value not in field.enum:
                problems.append(f"'{name}' should be one of {', '.join(map(str, field.enum))}, found {value!r}")
        if problems:
            raise DataInvalid(f"cannot start {wf.id}: " + "; ".join(problems), problems=problems)

    @staticmethod
    def _input(value: Any, what: str, error: type[Refused], **details: Any) -> dict[str, Any]:
        """Start data or a payload as the caller gave it: a JSON object every store can keep, or refused."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise error(f"{what} must be an object (a dict), not {type(value).__name__}", **details)
        problem = json_problem(value, what)
        if problem:
            raise error(f"{what} cannot be accepted: {problem}", **details)
        return value

    @staticmethod
    def _may_start(wf: WorkflowDef, actor: str, roles: frozenset[str], data: dict[str, Any]) -> None:
        """A caller's start: one of the workflow's start roles, and no field the workflow owns."""
        if wf.start_roles is not None and not (wf.start_roles & roles):
            needed = " or ".join(sorted(wf.start_roles - SYSTEM_ROLES)) or "none a caller can hold (only the engine starts it)"
            raise RoleRefused(f"{actor} may not start {wf.id}: it needs the role {needed}", workflow=wf.id)
        owned = sorted(name for name in data if name in wf.fields and wf.fields[name].owned)
        if owned:
            fields = ", ".join(f"'{n}'" for n in owned)
            raise DataInvalid(
                f"cannot start {wf.id}: {fields} {'is' if len(owned) == 1 else 'are'} set by the workflow itself, "
                "not given at the start",
                problems=[f"'{n}' is set by the workflow" for n in owned],
            )

    def _create(self, uow: UnitOfWork, wf: WorkflowDef, iid: str, data: dict[str, Any], *, at: dt.datetime, actor: str,
                roles: frozenset[str], parent_id: str | None, request_id: str | None = None) -> Instance:
        given = clone_json(data)  # what the starter gave, before defaults and on_enter change it
        data = dict(data)
        self._check_data(wf, data)
        self._record_definition(uow, wf)
        inst = Instance(iid, wf.id, wf.version, wf.initial, data, created_at=at, parent_id=parent_id)
        uow.add(inst)
        ctx = Context(self, uow, inst, wf, at=at, actor=actor, roles=roles, payload=None)
        ctx.run_actions(wf.states[wf.initial].on_enter, f"on_enter {wf.initial}")
        uow.record(self._entry(inst, wf, ctx, trigger="(start)", from_state=None, payload=given, request_id=request_id))
        self._settle(uow, inst, wf, at)
        return inst

    # ------------------------------------------------------------------ fire
    def fire(
        self,
        instance_id: str,
        trigger: str,
        payload: dict[str, Any] | None = None,
        *,
        actor: str,
        roles: Iterable[str] = (),
        at: Any = None,
        request_id: str | None = None,
        backdate_reason: str | None = None,
        _call: RequestCall | None = None,
    ) -> InstanceView:
        """Fire ``trigger`` on an instance as ``actor`` holding ``roles``; returns the instance after it.

        ``at`` may not be earlier than the instance's last recorded event unless ``backdate_reason``
        says why (it is kept in the history entry).

        ``request_id`` names this call: the instance, the trigger, the payload and the actor. The first
        call with it is carried out and recorded with the instance as it committed; a retry of the same
        call (also one sent while the first is still running) carries out nothing and returns that
        first result again: the instance exactly as the first call left it, even if it has moved on
        since. The same id for a different call raises ``RequestIdReused`` and changes nothing. The
        time and the roles are not part of the call: a retry may come later.
        """
        if request_id and _call is None:  # carried out by requests.fire, which calls back with _call
            return requests.fire(self, instance_id, trigger, payload, actor=actor, roles=roles, at=at, request_id=request_id,
                                 backdate_reason=backdate_reason)
        roles = check_caller(actor, roles)
        check_key(instance_id, "the instance id")
        check_id(trigger, "the trigger")
        if payload is not None:
            payload = self._input(payload, "payload", PayloadInvalid, instance=instance_id, trigger=trigger)
        when = self._time(at)
        uow = UnitOfWork(self.store)
        inst = uow.get(instance_id)
        backdated = self._backdating(inst, when, backdate_reason) if when < inst.updated_at else None
        wf = self._wf(inst)
        trig = wf.triggers.get(trigger)
        if trig is None:
            raise UnknownTrigger(
                f"workflow '{wf.id}' has no trigger '{trigger}' (it has: {', '.join(sorted(wf.triggers)) or 'none'})",
                instance=instance_id,
                trigger=trigger,
            )
        candidates = wf.by_event.get((trigger, inst.state))
        if not candidates:
            allowed = sorted({t for (t, s) in wf.by_event if s == inst.state and not t.startswith("(")})
            raise UnknownTrigger(
                f"'{trigger}' cannot be fired on {instance_id} while it is in state '{inst.state}'"
                f" (available now: {', '.join(allowed) or 'nothing'})",
                instance=instance_id,
                trigger=trigger,
                state=inst.state,
            )
        held = self.effective_roles(wf, inst.data, actor, roles)
        if not (trig.roles & held):
            raise RoleRefused(self._role_message(wf, inst, trig.name, trig.roles, actor), instance=instance_id, trigger=trigger)
        body = payload if payload is not None else {}
        if trig.validator is not None and not _payload_ok(trig, body):
            errors = sorted(trig.validator.iter_errors(body), key=lambda e: list(e.absolute_path))
            if errors:
                msgs = [f"{'/'.join(map(str, e.absolute_path)) or 'payload'}: {e.message}" for e in errors[:10]]
                raise PayloadInvalid(f"invalid payload for '{trigger}': " + "; ".join(msgs), instance=instance_id, trigger=trigger, problems=msgs)
        from_state = inst.state
        ctx = Context(self, uow, inst, wf, at=when, actor=actor, roles=held, payload=body)
        if not fire_event(wf.machine, inst, trigger, ctx):
            reasons = {t.index: t.because for t in candidates}
            failed = "; ".join(
                reasons.get(c["transition"]) or f"'{c['when']}' was false" for c in ctx.conditions if "transition" in c
            )
            raise GuardFailed(
                f"'{trigger}' was refused on {instance_id} in state '{from_state}': {failed or 'no condition held'}",
                instance=instance_id,
                trigger=trigger,
                conditions=ctx.conditions,
            )
        entry = self._entry(inst, wf, ctx, trigger=trigger, from_state=from_state, payload=payload, request_id=request_id)
        if backdated is not None:
            entry["backdated"] = backdated
        elif when > inst.updated_at:  # the instance's clock never goes back
            inst.updated_at = when
        uow.record(entry)
        self._settle(uow, inst, wf, when)
        self._drain(uow)
        if request_id and _call is not None:
            uow.changes.request = (request_id, _call, instance_id)
        self._commit(uow)
        return InstanceView(self, inst)  # as committed, not as read again (another writer may be next)

    @staticmethod
    def _backdating(inst: Instance, when: dt.datetime, reason: str | None) -> dict[str, str] | None:
        """An event dated before the instance's last one needs a reason; what the history keeps of it."""
        last = inst.updated_at
        if when >= last:
            return None
        if reason is None and last - when <= CLOCK_SKEW:
            return None  # hosts' clocks differ a little: not a backdated event
        if reason is None or not str(reason).strip():
            raise OutOfOrder(
                f"{when.isoformat()} is before the last event recorded on {inst.id} ({last.isoformat()}): "
                "events are recorded in time order; to record one late, give the reason it is backdated "
                "(backdate_reason=..., or --backdate-reason on the command line)",
                instance=inst.id,
            )
        problem = json_problem(reason, "backdate_reason") if isinstance(reason, str) else "backdate_reason must be text"
        if problem:
            raise UsageError(problem, instance=inst.id)
        return {"reason": reason, "last_event": last.isoformat()}

    def _role_message(self, wf: WorkflowDef, inst: Instance, trigger: str, needed: frozenset[str], actor: str) -> str:
        parts = []
        for role in sorted(needed):
            field = wf.bound_roles.get(role)
            if field:
                parts.append(f"{role} (the person named in data.{field}, here {inst.data.get(field)!r})")
            else:
                parts.append(role)
        return f"{actor} may not fire '{trigger}' on {inst.id}: it needs the role " + " or ".join(parts)

    # ------------------------------------------------------------------ automatic transitions, queue
    def _settle(self, uow: UnitOfWork, inst: Instance, wf: WorkflowDef, at: dt.datetime) -> None:
        """Take automatic transitions while their conditions hold."""
        key = _AUTO_KEY
        for _ in range(MAX_AUTO_STEPS):
            candidates = wf.by_event.get((key, inst.state))
            if not candidates:
                return
            from_state = inst.state
            ctx = Context(self, uow, inst, wf, at=at, actor=SYSTEM_ACTOR, roles=SYSTEM_ROLES, payload=None)
            if not fire_event(wf.machine, inst, key, ctx):
                # keep the record of why it did not move on with the change that was just made
                if uow.changes.history and uow.changes.history[-1]["instance_id"] == inst.id:
                    uow.changes.history[-1]["conditions"] = uow.changes.history[-1]["conditions"] + ctx.conditions
                return
            inst.updated_at = max(inst.updated_at, at)
            uow.record(self._entry(inst, wf, ctx, trigger="(auto)", from_state=from_state, payload=None))
        raise ActionFailed(f"automatic transitions of {inst.id} did not settle after {MAX_AUTO_STEPS} steps (a loop?)")

    def _drain(self, uow: UnitOfWork) -> None:
        """Start queued children and deliver queued signals to parents, in order."""
        done = 0
        while uow.queue:
            done += 1
            if done > MAX_QUEUED:
                raise ActionFailed(f"more than {MAX_QUEUED} child starts and signals in one call (a loop?)")
            op = uow.queue.popleft()
            if op[0] == "start":
                _, child_id, workflow, data, parent_id, at, actor = op
                wf = self.definitions.workflows.get(workflow)
                if wf is None:
                    raise ActionFailed(f"cannot start unknown workflow '{workflow}'")
                try:
                    self._create(uow, wf, child_id, data, at=at, actor=actor, roles=SYSTEM_ROLES, parent_id=parent_id)
                except DataInvalid as exc:
                    raise ActionFailed(f"starting child {workflow}: {exc.message}") from None
            else:
                _, parent_id, trigger, payload, at, source = op
                parent = uow.get(parent_id)
                wf = self._wf(parent)
                from_state = parent.state
                trig = wf.triggers.get(trigger)
                if trig is None or (trigger, parent.state) not in wf.by_event:
                    raise ActionFailed(
                        f"{source} signalled '{trigger}' to its parent {parent_id}, which cannot take it in state '{parent.state}'"
                    )
                if trig.validator is not None and not _payload_ok(trig, payload):
                    errors = list(trig.validator.iter_errors(payload))
                    if errors:
                        raise ActionFailed(f"{source} signalled '{trigger}' with an invalid payload: {errors[0].message}")
                ctx = Context(self, uow, parent, wf, at=at, actor=f"{SYSTEM_ACTOR}:{source}", roles=SYSTEM_ROLES, payload=payload)
                if not fire_event(wf.machine, parent, trigger, ctx):
                    raise ActionFailed(f"{source} signalled '{trigger}' to {parent_id}, but no condition held")
                parent.updated_at = at
                uow.record(self._entry(parent, wf, ctx, trigger=trigger, from_state=from_state, payload=payload))
                self._settle(uow, parent, wf, at)

    # ------------------------------------------------------------------ clock
    def schedule_start(self, workflow: str, data: dict[str, Any] | None = None, *, at: Any, actor: str, roles: Iterable[str] = ()) -> str:
        """Start ``workflow`` when the clock reaches ``at`` (fired by ``advance``); returns the schedule id.

        Checked now as ``start`` would be: the caller's start roles, and the data.
        """
        held = check_caller(actor, roles)
        check_id(workflow, "the workflow")
        data = self._input(data, "data", DataInvalid)
        when = self._time(at)
        wf = self.definitions.workflow(workflow)
        self._may_start(wf, actor, held, data)
        self._check_data(wf, dict(data))
        uow = UnitOfWork(self.store)
        sid = self.store.next_id("schedule")
        uow.changes.schedules_added.append(
            {"id": sid, "at": when, "workflow": wf.id, "data": clone_json(data), "actor": actor, "roles": sorted(held)}
        )
        self._commit(uow)
        return sid

    def advance(self, to: Any) -> list[Occurrence]:
        """Fire every deadline breach and scheduled start due up to ``to``, in time order, each once.

        An item that cannot be fired at all (its instance's definition no longer compiles, its workflow
        was removed) is set aside with its error and alerted (alert group ``engine_alerts``), and the
        rest go on firing: see ``held()`` and ``release()``.
        """
        until = self._time(to)
        fired: list[Occurrence] = []
        while (item := self.store.next_due(until)) is not None:
            try:
                if item.kind == "start":
                    fired.append(self._scheduled_start(item))
                else:
                    fired.append(self._breach(item))
            except ConcurrencyConflict:
                continue  # another worker fired it first (or changed the instance): look again
            except Exception as exc:
                if not _item_error(exc):
                    raise  # the store itself failed: nothing can be fired, so say so
                try:
                    fired.append(self._set_aside(item, exc, until))
                except ConcurrencyConflict:
                    continue
        return fired

    def _set_aside(self, item: Any, exc: BaseException, now: dt.datetime) -> Occurrence:
        message = exc.message if isinstance(exc, QaflowError) else f"{type(exc).__name__}: {exc}"
        if item.kind == "start":
            workflow, what = item.name, f"The scheduled start {item.key} of {item.name} due {item.at.isoformat()}"
        else:
            inst = self.store.load(item.key)
            workflow = inst.workflow if inst is not None else ""
            what = f"Deadline {item.name} of {item.key} due {item.at.isoformat()}"
        uow = UnitOfWork(self.store)
        uow.changes.held.append(
            {"kind": item.kind, "key": item.key, "name": item.name, "at": item.at, "error": message, "held_at": now.isoformat()}
        )
        groups = self.definitions.alert_groups
        recipients = [{"role": r} for r in groups.get(ENGINE_ALERTS, DEFAULT_ENGINE_ALERTS)]
        uow.changes.alerts.append({
            "id": self.store.next_id("alert"),
            "at": now.isoformat(),
            "instance_id": item.key,
            "workflow": workflow,
            "name": "set_aside",
            "severity": "error",
            "recipients": recipients,
            "message": f"{what} could not be fired and was set aside: {message}. Everything else goes on firing. "
                       "Fix the configuration, then release it (qaflow held --release).",
            "acknowledged_at": None,
        })
        self._commit(uow)
        log.warning("qaflow advance: %s could not be fired and was set aside: %s", what, message)
        return Occurrence(item.at, item.kind, item.key if item.kind == "breach" else "", workflow, item.name, None, "",
                          message, set_aside=True)

    def held(self) -> list[dict[str, Any]]:
        """Due items ``advance`` set aside, each with ``id`` (for ``release``), kind, due time and error."""
        return [{"id": _held_id(h["kind"], h["key"], h["name"]), **h} for h in self.store.held()]

    def release(self, item_id: str) -> bool:
        """Put a set-aside item back (by the ``id`` that ``held`` gives), to be tried by the next ``advance``."""
        for h in self.store.held():
            if _held_id(h["kind"], h["key"], h["name"]) == item_id:
                return self.store.release(h["kind"], h["key"], h["name"])
        return False

    def _scheduled_start(self, item: Any) -> Occurrence:
        sched = self.store.schedule(item.key)
        if sched is None:
            raise ConcurrencyConflict(f"schedule {item.key} was already started by another worker")
        wf = self.definitions.workflow(sched["workflow"])
        uow = UnitOfWork(self.store)
        iid = self.store.next_id(wf.id)
        error = None
        try:
            inst = self._create(uow, wf, iid, dict(sched["data"]), at=item.at, actor=sched["actor"], roles=frozenset(sched["roles"]), parent_id=None)
            self._drain(uow)
            state = inst.state
        except Refused as exc:
            uow = UnitOfWork(self.store)
            error, state, iid = exc.message, "", ""
        uow.changes.schedules_done.append(item.key)
        self._commit(uow)
        return Occurrence(item.at, "start", iid, wf.id, wf.id, None, state, error)

    def _breach(self, item: Any) -> Occurrence:
        if REMINDER in item.name:
            return self._remind(item)
        uow = UnitOfWork(self.store)
        inst = uow.get(item.key)
        ds = inst.deadlines.get(item.name)
        if ds is None or ds.status != "open" or ds.due_at != item.at:
            # another worker breached it, or the clock was met, extended or paused meanwhile
            raise ConcurrencyConflict(f"deadline {item.name} of {item.key} is no longer due at {item.at.isoformat()}")
        wf = self._wf(inst)
        from_state = inst.state
        try:
            self._apply_breach(uow, inst, wf, item)
            self._drain(uow)
        except Refused as exc:
            # The breach still happens; what it should have done failed, and the history says so.
            uow = UnitOfWork(self.store)
            inst = uow.get(item.key)
            clocks.breach(inst.deadline_for_change(item.name), item.at)
            ctx = Context(self, uow, inst, wf, at=item.at, actor=SYSTEM_ACTOR, roles=SYSTEM_ROLES, payload=None)
            entry = self._entry(inst, wf, ctx, trigger=f"(breach) {item.name}", from_state=from_state, payload=None)
            entry["error"] = exc.message
            uow.record(entry)
            self._commit(uow)
            return Occurrence(item.at, "breach", inst.id, wf.id, item.name, from_state, inst.state, exc.message)
        self._commit(uow)
        return Occurrence(item.at, "breach", inst.id, wf.id, item.name, from_state, inst.state)

    def _remind(self, item: Any) -> Occurrence:
        """Send a reminder of an open deadline: its alert, and a history entry; the clock is untouched."""
        uow = UnitOfWork(self.store)
        inst = uow.get(item.key)
        if inst.clock(item.name) != ("open", item.at):
            raise ConcurrencyConflict(f"reminder {item.name} of {item.key} is no longer due at {item.at.isoformat()}")
        deadline, _, name = item.name.partition(REMINDER)
        wf = self._wf(inst)
        defn = wf.deadlines.get(deadline)
        reminder = next((r for r in defn.reminders if r.name == name), None) if defn is not None else None
        if reminder is None:
            raise UsageError(f"{wf.id} version {wf.version} has no reminder '{name}' on deadline '{deadline}' any more")
        ds = inst.deadline_for_change(deadline)
        assert ds is not None  # inst.clock found it
        for r in ds.reminders:
            if r["name"] == name:
                r["sent"] = True
        ctx = Context(self, uow, inst, wf, at=item.at, actor=SYSTEM_ACTOR, roles=SYSTEM_ROLES, payload=None)
        ctx.run_actions((reminder.alert,), f"reminder {name}")
        uow.record(self._entry(inst, wf, ctx, trigger=f"(reminder) {deadline}", from_state=inst.state, payload={"reminder": name}))
        self._commit(uow)
        return Occurrence(item.at, "reminder", inst.id, wf.id, name, inst.state, inst.state)

    def _apply_breach(self, uow: UnitOfWork, inst: Instance, wf: WorkflowDef, item: Any) -> None:
        clocks.breach(inst.deadline_for_change(item.name), item.at)
        from_state = inst.state
        ctx = Context(self, uow, inst, wf, at=item.at, actor=SYSTEM_ACTOR, roles=SYSTEM_ROLES, payload=None)
        defn = wf.deadlines.get(item.name)
        if defn is not None:
            ctx.run_actions(defn.on_breach, f"on_breach {item.name}")
        key = event_key("breach", item.name)
        if (key, inst.state) in wf.by_event:
            fire_event(wf.machine, inst, key, ctx)
        inst.updated_at = item.at
        uow.record(self._entry(inst, wf, ctx, trigger=key, from_state=from_state, payload=None))
        self._settle(uow, inst, wf, item.at)

    # ------------------------------------------------------------------ definition versions
    def outdated(self) -> list[InstanceView]:
        """Unfinished instances running on an older version than the configuration's."""
        result = []
        for inst in self.store.find():
            current = self.definitions.workflows.get(inst.workflow)
            if current is None or current.version == inst.version:
                continue
            try:
                finished = self._wf(inst).states[inst.state].terminal
            except UsageError:  # its version no longer compiles: certainly not finished with
                finished = False
            if not finished:
                result.append(InstanceView(self, inst))
        return result

    def migrate(self, instance_id: str, *, actor: str, at: Any = None, dry_run: bool = True) -> dict[str, Any]:
        """Move an instance to the configuration's version of its workflow (a dry run unless told otherwise).

        Refused when its current state, or a running deadline, no longer exists in the new version.
        """
        check_actor(actor)
        check_key(instance_id, "the instance id")
        when = self._time(at)
        uow = UnitOfWork(self.store)
        inst = uow.get(instance_id)
        target = self.definitions.workflow(inst.workflow)
        plan: dict[str, Any] = {
            "id": inst.id,
            "workflow": inst.workflow,
            "from_version": inst.version,
            "to_version": target.version,
            "state": inst.state,
            "problems": [],
        }
        if inst.version == target.version:
            plan["problems"].append(f"already on version {target.version}")
        if inst.state not in target.states:
            plan["problems"].append(f"state '{inst.state}' does not exist in version {target.version}")
        for ds in inst.deadlines.values():
            if ds.status in ("open", "paused", "breached") and ds.name not in target.deadlines:
                plan["problems"].append(f"running deadline '{ds.name}' does not exist in version {target.version}")
        plan["ok"] = not plan["problems"]
        plan["applied"] = False
        if dry_run or not plan["ok"]:
            return plan
        self._record_definition(uow, target)
        old = inst.version
        inst.version = target.version
        inst.updated_at = when
        ctx = Context(self, uow, inst, target, at=when, actor=actor, roles=frozenset(), payload=None)
        entry = self._entry(inst, target, ctx, trigger="(migrate)", from_state=inst.state, payload={"from_version": old})
        uow.record(entry)
        self._commit(uow)
        plan["applied"] = True
        return plan

    # ------------------------------------------------------------------ reading
    def get(self, instance_id: str) -> InstanceView:
        """The instance as last committed."""
        inst = self.store.load(instance_id)
        if inst is None:
            raise UnknownInstance(f"no instance '{instance_id}'", instance=instance_id)
        return InstanceView(self, inst)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """Every accepted change to the instance, oldest first."""
        if self.store.load(instance_id) is None:
            raise UnknownInstance(f"no instance '{instance_id}'", instance=instance_id)
        return self.store.history(instance_id)

    def instances(self, workflow: str | None = None, state: str | None = None) -> list[InstanceView]:
        """Every instance, optionally of one workflow and in one state, in id order (``query`` gives pages)."""
        return [InstanceView(self, inst) for inst in self.store.find(workflow, state)]

    def query(self, workflow: str | None = None, state: str | None = None, *, where: dict[str, Any] | None = None,
              due_before: Any = None, limit: int = 50, after: str | None = None) -> Page[InstanceView]:
        """A page of instances that match every filter given, in id order.

        ``where`` compares top-level data fields: ``{"team": "assessment_1", "lead_auditor": "TM-01"}``;
        a list means any of its values (``{"team": ["assessment_1", "assessment_2"]}``) and ``None``
        matches a field that is null or not set. Values are JSON scalars and compare as JSON does: a
        number equals the same number (``1 == 1.0``), ``True`` is not ``1``, text compares exactly.
        ``due_before`` (a time, date or ISO text) keeps instances with a deadline still awaited (running,
        or breached and not yet met; not paused) that falls due at or before it: a deadline due on
        22 Oct falls due at the end of that day, so ``due_before="2026-10-23"`` finds it.

        ``limit`` (1 to 1000) instances at most; ``page.next`` is an opaque cursor to pass as ``after``
        for the next page, None at the end. Each page goes on in id order from the last id of the page
        before (keyset pagination, not an offset): an instance is never on two pages, one that was
        there when paging began is not skipped because others were started meanwhile, and each page
        shows instances as they are when it is read (one started meanwhile is on a later page if its
        id sorts after the cursor).
        """
        return queries.page_of(self, queries.instance_query(workflow, state, where=where, due_before=due_before, limit=limit, after=after))

    def worklist(self, actor: str, roles: Iterable[str] = (), *, workflow: str | None = None, state: str | None = None,
                 where: dict[str, Any] | None = None, due_before: Any = None, limit: int = 50,
                 after: str | None = None) -> Page[WorkItem]:
        """What ``actor``, holding ``roles``, may fire now: a page of WorkItems, one per instance with anything to fire.

        The instances are those ``query`` finds with the same filters, in id order; the triggers on each
        are exactly those ``available_triggers`` lists (a role held, bound roles from the instance's
        data, a guard that can hold), checked as ``fire`` checks the caller: the role ``system`` is
        refused (``RoleRefused``). Instances with nothing to fire are passed over, so a page may hold
        fewer than ``limit`` items, even none, while ``next`` is set: follow ``next`` until it is None.
        The store is read in batches, never all at once.
        """
        held = check_caller(actor, roles)
        query = queries.instance_query(workflow, state, where=where, due_before=due_before, limit=limit, after=after)
        return queries.worklist(self, actor, held, query)

    def available_triggers(self, instance_id: str, *, actor: str, roles: Iterable[str] = ()) -> list[str]:
        """Triggers ``actor`` may fire now: allowed in the current state, a role held, and a guard that can hold.

        Guards that read the payload cannot be judged before it is given, so such triggers are listed.
        """
        roles = check_caller(actor, roles)
        inst = self.store.load(instance_id)
        if inst is None:
            raise UnknownInstance(f"no instance '{instance_id}'", instance=instance_id)
        return self._available(inst, self._wf(inst), actor, roles)

    def _available(self, inst: Instance, wf: WorkflowDef, actor: str, roles: frozenset[str]) -> list[str]:
        """``available_triggers`` for an instance already read, and a caller already checked."""
        held = self.effective_roles(wf, inst.data, actor, roles)
        result = []
        for name, trig in wf.triggers.items():
            candidates = wf.by_event.get((name, inst.state))
            if not candidates or not (trig.roles & held):
                continue
            ctx = Context(self, UnitOfWork(self.store), inst, wf, at=inst.updated_at, actor=actor, roles=held, payload={})
            for t in candidates:
                if t.guard is None or any(r.path[0] == "payload" for r in t.guard.references):
                    result.append(name)
                    break
                try:
                    if t.guard.test(ctx.env):
                        result.append(name)
                        break
                except Exception:  # a guard that cannot be judged yet: let the person try
                    result.append(name)
                    break
        return result

    def outbox(self, *, include_acknowledged: bool = False) -> list[dict[str, Any]]:
        """Alerts waiting to be delivered (at-least-once: they stay until acknowledged), oldest first.

        Alerts under a deliverer's lease (``claim_alerts``) are listed too: a lease hides an alert
        from other claims, not from this list.
        """
        return self.store.outbox(include_acknowledged)

    def claim_alerts(self, worker: str, *, limit: int = 10, lease_seconds: float = 60, at: Any = None) -> list[dict[str, Any]]:
        """Lease up to ``limit`` alerts to ``worker`` for ``lease_seconds``: for several deliverers sharing one outbox.

        Claims the oldest unacknowledged alerts that no live lease holds. While a lease runs, no other
        claim gets that alert, from any thread, process or machine sharing the store. Deliver each
        alert, then ``acknowledge(alert["id"], worker=worker)``; an alert not acknowledged before its
        lease ends can be claimed again (by any worker): delivery is at least once, and
        ``alert["lease"]["claims"]`` above 1 says an earlier claim may have sent it already.

        The lease runs on the store's own clock (the wall clock of this machine for SQLite and the
        memory store, the server's ``now()`` for PostgreSQL), not on the engine's time: ``at`` (default:
        the Engine's clock, if it has one) is only recorded with the claim as ``lease["at"]``, as
        ``acknowledge`` records its ``at``. Each alert carries ``lease``: {worker, at, until (ISO 8601,
        by the store's clock), claims}.
        """
        check_id(worker, "the worker")
        count, seconds = queries.claim_limits(limit, lease_seconds)
        when = None if at is None and self.clock is None else self._time(at).isoformat()
        return self.store.claim_alerts(worker, count, seconds, when)

    def acknowledge(self, alert_id: str, *, at: Any = None, worker: str | None = None) -> None:
        """Mark an alert as delivered, by ``worker`` if named (kept as ``acknowledged_by``).

        Acknowledging twice is harmless: the first acknowledgement stands. An acknowledgement is always
        taken, also from a worker whose lease ran out and passed to another: the alert was delivered,
        and refusing to record that would only make the next worker deliver it again (the one now
        holding it may deliver it once more: at-least-once delivery, never lost). ``UnknownAlert`` (a
        ``UsageError``) when no alert has that id.
        """
        if worker is not None:
            check_id(worker, "the worker")
        when = self._time(at)
        found = self.store.acknowledge(alert_id, when) if worker is None else self.store.acknowledge(alert_id, when, worker)
        if not found:
            raise UnknownAlert(f"no alert '{alert_id}'", alert=alert_id)


def start_as_engine(engine: Engine, workflow: str, data: dict[str, Any], *, at: Any, request_id: str | None = None) -> InstanceView:
    """Start ``workflow`` the way the engine starts a child or a scheduled start: no start roles, and the
    data may give fields the workflow owns. For planned work the engine starts itself (a programme's month,
    an indicator's proposed audit) and scenario tests of workflows only the engine starts; never expose it
    to the people a host serves.

    ``request_id`` names the start as ``Engine.start``'s does: a second call with it returns the instance
    the first started, without starting another (``RequestIdReused`` if the data differ).
    """
    data = engine._input(data, "data", DataInvalid)
    wf = engine.definitions.workflow(workflow)
    when = engine._time(at)
    if request_id is None:
        return engine._start(wf, data, actor=SYSTEM_ACTOR, roles=SYSTEM_ROLES, at=when)
    this = requests.call("start", workflow, None, data, SYSTEM_ACTOR)
    run = lambda: engine._start(wf, data, actor=SYSTEM_ACTOR, roles=SYSTEM_ROLES, at=when, request_id=request_id, call=this)  # noqa: E731
    return requests.once(engine, check_key(request_id, "request_id"), this, run)


def fire_as_engine(engine: Engine, instance_id: str, trigger: str, payload: dict[str, Any] | None = None, *, at: Any) -> InstanceView:
    """Fire ``trigger`` as the engine (actor and role ``system``), as a deadline or a child's signal does: for a
    trigger whose roles include ``system``, such as a proposed audit joining its programme month. Refused
    (``RoleRefused``) for a trigger the engine may not fire; otherwise checked and recorded as ``Engine.fire``."""
    check_key(instance_id, "the instance id")
    check_id(trigger, "the trigger")
    body = engine._input(payload, "payload", PayloadInvalid, instance=instance_id, trigger=trigger)
    when = engine._time(at)
    uow = UnitOfWork(engine.store)
    inst = uow.get(instance_id)
    engine._backdating(inst, when, None)  # the engine records nothing earlier than what is already there
    wf = engine._wf(inst)
    trig = wf.triggers.get(trigger)
    if trig is None or not wf.by_event.get((trigger, inst.state)):
        raise UnknownTrigger(f"'{trigger}' cannot be fired on {instance_id} while it is in state '{inst.state}'",
                             instance=instance_id, trigger=trigger, state=inst.state)
    if SYSTEM_ACTOR not in trig.roles:
        raise RoleRefused(f"the engine may not fire '{trigger}' on {instance_id}: its roles do not include system",
                          instance=instance_id, trigger=trigger)
    if trig.validator is not None and not _payload_ok(trig, body):
        errors = sorted(trig.validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        msgs = [f"{'/'.join(map(str, e.absolute_path)) or 'payload'}: {e.message}" for e in errors[:10]]
        raise PayloadInvalid(f"invalid payload for '{trigger}': " + "; ".join(msgs), instance=instance_id, trigger=trigger, problems=msgs)
    from_state = inst.state
    ctx = Context(engine, uow, inst, wf, at=when, actor=SYSTEM_ACTOR, roles=SYSTEM_ROLES, payload=body)
    if not fire_event(wf.machine, inst, trigger, ctx):
        raise GuardFailed(f"'{trigger}' was refused on {instance_id} in state '{from_state}': no condition held",
                          instance=instance_id, trigger=trigger, conditions=ctx.conditions)
    inst.updated_at = max(inst.updated_at, when)
    uow.record(engine._entry(inst, wf, ctx, trigger=trigger, from_state=from_state, payload=body))
    engine._settle(uow, inst, wf, when)
    engine._drain(uow)
    engine._commit(uow)
    return InstanceView(engine, inst)
