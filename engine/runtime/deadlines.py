"""Deadline clocks on an instance: start, satisfy, cancel, extend, pause, resume, breach, and their explanations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..calendar import (
    LONDON,
    Calendar,
    Duration,
    london_date,
    parse_duration,
    remaining,
    resume,
)
from ..errors import ActionFailed, ConcurrencyConflict
from .instance import DeadlineState, due_at

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import DeadlineDef, ReminderDef


def to_date(value: Any, what: str) -> dt.date:
    """A date from a date, an aware/naive datetime (read in London) or ISO text of either."""
    day = london_date(value)
    if day is None:
        raise ActionFailed(f"{what}: expected a date, found {value!r}")
    return day


def start(defn: DeadlineDef, calendar: Calendar, anchor: dt.date, at: dt.datetime) -> DeadlineState:
    ds = DeadlineState(
        defn.name,
        calendar=defn.calendar,
        anchor=anchor,
        duration=defn.duration.text,
        due=defn.duration.due_date(anchor, calendar),
        started_at=at,
    )
    if defn.reminders:
        plan_reminders(ds, defn, calendar, at)
    return ds


def plan_reminders(ds: DeadlineState, defn: DeadlineDef, calendar: Calendar, at: dt.datetime) -> None:
    """Work out when each reminder of the clock goes: at the start of its day in London. Called when the
    clock starts and whenever its due date moves; reminders already sent stay, and those whose time
    has passed (or never comes, before a due date nearer than they count back) are not planned."""
    sent = [r for r in ds.reminders if r["sent"]]
    done = {r["name"] for r in sent}
    planned: list[dict[str, Any]] = []
    for reminder in defn.reminders:
        if reminder.name in done:
            continue
        day = reminder_day(reminder, ds, calendar)
        when = dt.datetime(day.year, day.month, day.day, tzinfo=LONDON)
        if when > at and when < ds.due_at:
            planned.append({"name": reminder.name, "at": when.isoformat(), "sent": False})
    ds.reminders = sent + sorted(planned, key=lambda r: r["at"])


def reminder_day(reminder: ReminderDef, ds: DeadlineState, calendar: Calendar) -> dt.date:
    """The day a reminder goes: counted back from the due date, or on from the clock's anchor."""
    if reminder.after is not None:
        return reminder.after.due_date(ds.anchor, calendar)
    before = reminder.before
    assert before is not None  # a reminder has one of the two (compile.py)
    if before.kind == "working_days":
        return calendar.add_working_days(ds.due, -before.n)
    return ds.due - dt.timedelta(days=before.n * (7 if before.kind == "weeks" else 1))


def satisfy(ds: DeadlineState, at: dt.datetime) -> bool:
    """Mark met; returns False (and changes nothing) if the clock was not running."""
    if ds.status not in ("open", "breached", "paused"):
        return False
    ds.late = ds.status == "breached" or at >= ds.due_at
    ds.status = "met"
    ds.closed_at = at
    return True


def cancel(ds: DeadlineState, at: dt.datetime) -> bool:
    if ds.status not in ("open", "breached", "paused"):
        return False
    ds.status = "cancelled"
    ds.closed_at = at
    return True


def extend(ds: DeadlineState, calendar: Calendar, at: dt.datetime, *, to: Duration | None, by: Duration | None, reason: Any) -> None:
    if ds.status not in ("open", "breached"):
        raise ActionFailed(f"deadline '{ds.name}' is {ds.status} and cannot be extended")
    if to is not None:
        new_due = to.due_date(ds.anchor, calendar)
        change = {"op": "extend", "at": at.isoformat(), "to": to.text, "reason": reason, "from_due": ds.due.isoformat()}
    else:
        assert by is not None
        new_due = by.due_date(ds.due, calendar)
        change = {"op": "extend", "at": at.isoformat(), "by": by.text, "reason": reason, "from_due": ds.due.isoformat()}
    if new_due < ds.due:
        raise ActionFailed(
            f"extending '{ds.name}' would bring it forward from {ds.due.isoformat()} to {new_due.isoformat()}"
        )
    change["due"] = new_due.isoformat()
    ds.changes.append(change)
    ds.due = new_due
    if ds.status == "breached" and due_at(new_due) > at:
        ds.status = "open"  # the extension gives time back; the earlier breach stays in the history


def pause(ds: DeadlineState, calendar: Calendar, at: dt.datetime, reason: Any) -> None:
    if ds.status != "open":
        raise ActionFailed(f"deadline '{ds.name}' is {ds.status} and cannot be paused")
    kind, n = remaining(_current_due(ds, calendar), at.astimezone(LONDON).date(), calendar)
    ds.changes.append({"op": "pause", "at": at.isoformat(), "reason": reason, "remaining": [kind, n]})
    ds.status = "paused"


def resume_clock(ds: DeadlineState, calendar: Calendar, at: dt.datetime) -> None:
    if ds.status != "paused":
        raise ActionFailed(f"deadline '{ds.name}' is {ds.status}, not paused")
    kind, n = ds.changes[-1]["remaining"]
    new = resume((kind, n), at.astimezone(LONDON).date(), calendar)
    ds.changes.append({"op": "resume", "at": at.isoformat(), "due": new.date.isoformat()})
    ds.due = new.date
    ds.status = "open"


def breach(ds: DeadlineState | None, at: dt.datetime) -> None:
    """Mark the clock breached; ``ds`` as ``Instance.deadline_for_change`` gives it (None: the clock has gone)."""
    if ds is None:
        raise ConcurrencyConflict(f"the deadline due at {at.isoformat()} is no longer on its instance")
    ds.status = "breached"
    ds.breached_at = at


def _current_due(ds: DeadlineState, calendar: Calendar):
    """The Due object for the clock as it stands, for explanations and pause arithmetic."""
    due = parse_duration(ds.duration).apply(ds.anchor, calendar)
    for change in ds.changes:
        if change["op"] == "extend":
            if "to" in change:
                due = parse_duration(change["to"]).apply(ds.anchor, calendar)
            else:
                due = parse_duration(change["by"]).apply(due.date, calendar)
        elif change["op"] == "resume":
            kind, n = _last_pause(ds.changes, change)["remaining"]
            due = resume((kind, n), dt.datetime.fromisoformat(change["at"]).astimezone(LONDON).date(), calendar)
    return due


def _last_pause(changes: list[dict[str, Any]], upto: dict[str, Any]) -> dict[str, Any]:
    pause_rec = None
    for change in changes:
        if change is upto:
            break
        if change["op"] == "pause":
            pause_rec = change
    assert pause_rec is not None
    return pause_rec


def explain(ds: DeadlineState, calendars: Mapping[str, Calendar], defn: DeadlineDef | None = None) -> list[str]:
    """Every step that produced the current due date, in plain English, then its reminders."""
    lines = _explain_due(ds, calendars)
    rules = {r.name: r for r in defn.reminders} if defn is not None else {}
    for r in ds.reminders:
        day = dt.datetime.fromisoformat(r["at"]).astimezone(LONDON).strftime("%a %-d %b %Y")
        rule = rules.get(r["name"])
        when = (f"{rule.before.text} before the due date" if rule is not None and rule.before is not None
                else f"{rule.after.text} after {ds.anchor.strftime('%a %-d %b %Y')}" if rule is not None and rule.after is not None
                else "")
        done = "sent" if r["sent"] else ("to be sent" if ds.status in ("open", "paused") else "not sent: the clock closed first")
        lines.append(f"reminder {r['name']} on {day}" + (f" ({when})" if when else "") + f": {done}")
    return lines


def _explain_due(ds: DeadlineState, calendars: Mapping[str, Calendar]) -> list[str]:
    calendar = calendars[ds.calendar]
    due = parse_duration(ds.duration).apply(ds.anchor, calendar)
    lines = list(due.explanation())
    for change in ds.changes:
        when = dt.datetime.fromisoformat(change["at"]).astimezone(LONDON).strftime("%a %-d %b %Y")
        reason = f" (reason: {change['reason']})" if change.get("reason") else ""
        if change["op"] == "extend":
            if "to" in change:
                due = parse_duration(change["to"]).apply(ds.anchor, calendar)
                lines.append(f"extended on {when} to {change['to']} from the same start{reason}:")
            else:
                due = parse_duration(change["by"]).apply(due.date, calendar)
                lines.append(f"extended on {when} by {change['by']} after the previous due date{reason}:")
            lines.extend("  " + line for line in due.explanation())
        elif change["op"] == "pause":
            kind, n = change["remaining"]
            unit = "working day" if kind == "working_days" else "day"
            lines.append(f"clock stopped on {when} with {n} {unit}{'s' if n != 1 else ''} left{reason}")
        elif change["op"] == "resume":
            kind, n = _last_pause(ds.changes, change)["remaining"]
            due = resume((kind, n), dt.datetime.fromisoformat(change["at"]).astimezone(LONDON).date(), calendar)
            lines.append(f"clock restarted on {when}:")
            lines.extend("  " + line for line in due.explanation())
    return lines
