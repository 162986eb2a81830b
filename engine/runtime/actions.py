"""What each action does to the instance being changed (inside a unit of work, so failures roll back)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..definitions import ITEM_NAME, Alert, DeadlineAction, Evaluate, SetData, SignalParent, StartChild
from ..errors import ActionFailed, EvaluationError, EvaluationFailed
from ..rules import evaluate_table
from . import deadlines as clocks

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from .context import Context


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_json(value: Any) -> Any:
    """Data stays JSON-shaped: dates become ISO text, tuples lists."""
    if type(value) in _PLAIN:  # most values: nothing to convert (the isinstance chain below showed in profiles)
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    # plain members are taken as they are without a call (a payload object is mostly plain values)
    if isinstance(value, dict):
        return {str(k): v if type(v) in _PLAIN else to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _PLAIN else to_json(v) for v in value]
    return value


def assign(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = data
    for part in path[:-1]:
        nxt = target.get(part)
        # copied, not changed in place: it may be shared with the committed snapshot (Instance.clone)
        nxt = target[part] = dict(nxt) if isinstance(nxt, dict) else {}
        target = nxt
    target[path[-1]] = value


def apply_action(ctx: Context, action: Any) -> None:
    handler = _HANDLERS[type(action)]
    handler(ctx, action)


def _set(ctx: Context, action: SetData) -> None:
    for path, expr in action.assignments:
        field = ".".join(path)
        value = to_json(ctx.evaluate(expr, "set " + field))
        assign(ctx.inst.data, path, value)
        ctx.actions.append({"action": "set", "field": field, "value": value})


def _evaluate(ctx: Context, action: Evaluate) -> None:
    table = ctx.engine.definitions.tables[action.rule]
    inputs = {name: ctx.evaluate(expr, f"input {name} of table {action.rule}") for name, expr in action.inputs}
    try:
        result = to_json(evaluate_table(table, inputs))
    except EvaluationError as exc:
        raise EvaluationFailed(f"decision table {action.rule}: {exc.message}", instance=ctx.inst.id) from None
    assign(ctx.inst.data, action.into, result)
    ctx.actions.append({"action": "evaluate", "rule": action.rule, "inputs": to_json(inputs), "into": ".".join(action.into), "result": result})


def _addresses(ctx: Context, action: Alert) -> tuple[tuple[str, str | None], ...]:
    """Each role ``action`` is sent to, alert groups expanded, with the data field naming its holder (None: a
    role the host routes): the same for every alert of the definition, so worked out once for it."""
    known = ctx.wf.alert_addresses
    entry = known.get(id(action))
    if entry is None or entry[0] is not action:  # checked: a copy of the definition made elsewhere has other ids
        groups, roles = ctx.engine.definitions.alert_groups, ctx.wf.roles
        entry = known[id(action)] = (action, tuple(
            (r, bound.from_data if bound is not None and bound.from_data else None)
            for role in action.roles for r in groups.get(role, (role,)) for bound in (roles.get(r),)
        ))
    return entry[1]


def _alert(ctx: Context, action: Alert) -> None:
    data = ctx.inst.data
    recipients: list[dict[str, str]] = []
    for r, field in _addresses(ctx, action):
        if field is None:
            recipients.append({"role": r})
        elif data.get(field):
            people = data[field]
            for person in people if isinstance(people, list) else [people]:
                recipients.append({"person": str(person), "as": r})
        else:
            # nobody is named yet: address the role, and say so, so the host can route it
            recipients.append({"role": r, "unresolved": f"data.{field} is empty"})
    for expr in action.people:
        person = ctx.evaluate(expr, "alert recipient")
        if person:
            for p in person if isinstance(person, list) else [person]:
                recipients.append({"person": str(p)})
    ctx.env["state"] = ctx.inst.state
    try:
        message = action.message.render(ctx.env)
    except EvaluationError as exc:
        raise EvaluationFailed(f"alert message: {exc.message}", instance=ctx.inst.id) from None
    alert = ctx.uow.new_alert(
        at=ctx.at,
        instance=ctx.inst,
        name=action.name,
        severity=action.severity,
        recipients=recipients,
        message=message,
    )
    ctx.actions.append({"action": "alert", "id": alert["id"], "name": action.name, "to": recipients, "message": message})


def _start_child(ctx: Context, action: StartChild) -> None:
    if action.for_each is None:
        _start_one(ctx, action)
        return
    items = ctx.evaluate(action.for_each, f"for_each of start {action.workflow}")
    if items is None:
        items = []  # nothing to start (e.g. an optional list nobody gave)
    elif not isinstance(items, (list, tuple)):
        raise EvaluationFailed(
            f"for_each of start {action.workflow}: {action.for_each.source} should give a list, "
            f"found {type(items).__name__}",
            instance=ctx.inst.id,
        )
    env = ctx.env
    try:
        for index, item in enumerate(items):
            env[ITEM_NAME] = item
            _start_one(ctx, action, index)
    finally:
        env.pop(ITEM_NAME, None)


def _start_one(ctx: Context, action: StartChild, index: int | None = None) -> None:
    data = {name: to_json(ctx.evaluate(expr, f"data {name} for {action.workflow}")) for name, expr in action.data}
    child_id = ctx.uow.queue_start(action.workflow, data, parent=ctx.inst, at=ctx.at, actor=ctx.actor)
    ctx.inst.children.append(child_id)
    record: dict[str, Any] = {"action": "start", "workflow": action.workflow, "child": child_id, "data": data}
    if index is not None:
        record["item"] = index
    ctx.actions.append(record)


def _signal_parent(ctx: Context, action: SignalParent) -> None:
    if not ctx.inst.parent_id:
        raise ActionFailed(f"signal_parent '{action.trigger}': this instance has no parent", instance=ctx.inst.id)
    payload = {name: to_json(ctx.evaluate(expr, f"payload {name} for {action.trigger}")) for name, expr in action.payload}
    ctx.uow.queue_signal(ctx.inst.parent_id, action.trigger, payload, at=ctx.at, source=ctx.inst.id)
    ctx.actions.append({"action": "signal_parent", "parent": ctx.inst.parent_id, "trigger": action.trigger, "payload": payload})


def _deadline(ctx: Context, action: DeadlineAction) -> None:
    defs = ctx.engine.definitions
    defn = ctx.wf.deadlines[action.deadline]
    calendar = defs.calendars[defn.calendar]
    inst, at = ctx.inst, ctx.at
    record: dict[str, Any] = {"action": action.kind, "deadline": action.deadline}
    ds = inst.deadline_for_change(action.deadline)
    if action.op == "start":
        anchor_expr = action.anchor or defn.anchor
        if anchor_expr is None:
            anchor_value: Any = at
        else:
            anchor_value = ctx.evaluate(anchor_expr, f"start of deadline {defn.name}")
            if anchor_value is None:
                raise ActionFailed(f"deadline '{defn.name}' starts from {anchor_expr.source}, which is empty")
        anchor = clocks.to_date(anchor_value, f"start of deadline {defn.name}")
        if ds is not None and ds.status in ("open", "breached", "paused"):
            record["replaced_due"] = ds.due.isoformat()
        inst.deadlines[defn.name] = ds = clocks.start(defn, calendar, anchor, at)
        record.update(anchor=anchor.isoformat(), duration=ds.duration, due=ds.due.isoformat())
    elif ds is None:
        if action.op in ("satisfy", "cancel"):
            record["note"] = "not started"
        else:
            raise ActionFailed(f"deadline '{action.deadline}' has not been started", instance=inst.id)
    elif action.op == "satisfy":
        record["changed"] = clocks.satisfy(ds, at)
        record["late"] = ds.late
    elif action.op == "cancel":
        record["changed"] = clocks.cancel(ds, at)
    elif action.op == "extend":
        reason = ctx.evaluate(action.reason, f"reason for extending {ds.name}") if action.reason else None
        clocks.extend(ds, calendar, at, to=action.to, by=action.by, reason=to_json(reason))
        if defn.reminders:
            clocks.plan_reminders(ds, defn, calendar, at)
        record.update(due=ds.due.isoformat(), reason=to_json(reason))
    elif action.op == "pause":
        reason = ctx.evaluate(action.reason, f"reason for pausing {ds.name}") if action.reason else None
        clocks.pause(ds, calendar, at, to_json(reason))
        record["reason"] = to_json(reason)
    elif action.op == "resume":
        clocks.resume_clock(ds, calendar, at)
        if defn.reminders:
            clocks.plan_reminders(ds, defn, calendar, at)
        record["due"] = ds.due.isoformat()
    ctx.actions.append(record)


_HANDLERS: dict[type, Callable[[Context, Any], None]] = {
    SetData: _set,
    Evaluate: _evaluate,
    Alert: _alert,
    StartChild: _start_child,
    SignalParent: _signal_parent,
    DeadlineAction: _deadline,
}
