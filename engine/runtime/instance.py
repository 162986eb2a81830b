"""Instances and their deadlines: the mutable records the engine works on inside one unit of work."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from ..calendar import LONDON


def clone_json(value: Any) -> Any:
    """A fast deep copy for JSON-like data (dicts, lists and scalars)."""
    if isinstance(value, dict):
        return {k: clone_json(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):
        return [clone_json(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


@functools.lru_cache(maxsize=4096)  # asked for on every commit and clock check, about a few hundred distinct days
def due_at(day: dt.date) -> dt.datetime:
    """A date-only deadline is due by the end of that day: midnight at the start of the next, in London."""
    nxt = day + dt.timedelta(days=1)
    return dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=LONDON)


@functools.lru_cache(maxsize=4096)
def due_stamp(day: dt.date) -> float:
    """``due_at(day)`` as a POSIX time (the memory store orders its queue by it)."""
    return due_at(day).timestamp()


# A reminder's time is kept as ISO text (it is JSON in every store) and read on every clock check:
# the same few hundred texts, parsed once each.
_time = functools.lru_cache(maxsize=4096)(dt.datetime.fromisoformat)

OPEN_STATUSES = frozenset({"open", "breached", "paused"})
REMINDER = "#"  # a reminder's name in the stores' index: DEADLINE#REMINDER


class DeadlineState:
    """One running or finished deadline clock of an instance.

    ``changes`` records every extension, pause and resume, oldest first; nothing is overwritten.
    """

    __slots__ = ("name", "status", "calendar", "anchor", "duration", "due", "started_at", "closed_at", "breached_at", "late", "changes",
                 "reminders")

    def __init__(
        self,
        name: str,
        *,
        calendar: str,
        anchor: dt.date,
        duration: str,
        due: dt.date,
        started_at: dt.datetime,
        status: str = "open",
        closed_at: dt.datetime | None = None,
        breached_at: dt.datetime | None = None,
        late: bool = False,
        changes: list[dict[str, Any]] | None = None,
        reminders: list[dict[str, Any]] | None = None,
    ) -> None:
        self.name = name
        self.status = status
        self.calendar = calendar
        self.anchor = anchor
        self.duration = duration
        self.due = due
        self.started_at = started_at
        self.closed_at = closed_at
        self.breached_at = breached_at
        self.late = late
        self.changes = changes if changes is not None else []
        # {name, at (ISO time), sent}: sent by advance while the clock is open, in time order
        self.reminders = reminders if reminders is not None else []

    @property
    def due_at(self) -> dt.datetime:
        return due_at(self.due)

    def clocks(self) -> list[tuple[str, str, dt.datetime]]:
        """(name, status, time) of what ``advance`` may fire for this clock: the breach, then each reminder
        (``DEADLINE#REMINDER``, "open" while it waits for an open clock, else "done")."""
        out = [(self.name, self.status, self.due_at)]
        for r in self.reminders:
            out.append((f"{self.name}{REMINDER}{r['name']}", self._reminder_status(r), _time(r["at"])))
        return out

    def _reminder_status(self, reminder: dict[str, Any]) -> str:
        return "open" if not reminder["sent"] and self.status == "open" else "done"

    @property
    def is_timing(self) -> bool:
        """True while the clock runs towards a breach (open, not yet breached, not paused)."""
        return self.status == "open"

    def clone(self) -> DeadlineState:
        return DeadlineState(
            self.name,
            calendar=self.calendar,
            anchor=self.anchor,
            duration=self.duration,
            due=self.due,
            started_at=self.started_at,
            status=self.status,
            closed_at=self.closed_at,
            breached_at=self.breached_at,
            late=self.late,
            changes=[dict(c) for c in self.changes],
            reminders=[dict(r) for r in self.reminders],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "calendar": self.calendar,
            "anchor": self.anchor.isoformat(),
            "duration": self.duration,
            "due": self.due.isoformat(),
            "started_at": self.started_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "breached_at": self.breached_at.isoformat() if self.breached_at else None,
            "late": self.late,
            "changes": self.changes,
            **({"reminders": self.reminders} if self.reminders else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeadlineState:
        return cls(
            d["name"],
            calendar=d["calendar"],
            anchor=dt.date.fromisoformat(d["anchor"]),
            duration=d["duration"],
            due=dt.date.fromisoformat(d["due"]),
            started_at=dt.datetime.fromisoformat(d["started_at"]),
            status=d["status"],
            closed_at=dt.datetime.fromisoformat(d["closed_at"]) if d.get("closed_at") else None,
            breached_at=dt.datetime.fromisoformat(d["breached_at"]) if d.get("breached_at") else None,
            late=d.get("late", False),
            changes=list(d.get("changes") or []),
            reminders=[dict(r) for r in d.get("reminders") or ()],
        )


class Instance:
    """A running (or finished) workflow instance. History lives in the store, not here."""

    __slots__ = ("id", "workflow", "version", "state", "data", "parent_id", "children", "deadlines", "created_at", "updated_at", "rev", "snapshot")

    def __init__(
        self,
        id: str,
        workflow: str,
        version: int,
        state: str,
        data: dict[str, Any],
        *,
        created_at: dt.datetime,
        updated_at: dt.datetime | None = None,
        parent_id: str | None = None,
        children: list[str] | None = None,
        deadlines: dict[str, DeadlineState] | None = None,
        rev: int = 0,
    ) -> None:
        self.id = id
        self.workflow = workflow
        self.version = version
        self.state = state
        self.data = data
        self.parent_id = parent_id
        self.children = children if children is not None else []
        self.deadlines = deadlines if deadlines is not None else {}
        self.created_at = created_at
        self.updated_at = updated_at or created_at
        self.rev = rev
        # the deadlines of the snapshot this was cloned from: a clock found there too is shared, and copied before it changes
        self.snapshot: dict[str, DeadlineState] | None = None

    def clone(self) -> Instance:
        """A working copy to change, copy-on-write: committed snapshots are never changed in place.

        The data is copied one level deep; nested values are copied along the path when they are
        set (``actions.assign``). Deadline clocks are shared until one is changed
        (``deadline_for_change``). Deep-copying everything on every event cost about a tenth of an
        event in the simulation benchmark.
        """
        # Filled slot by slot, not through __init__: its keyword handling was a third of the cost of a clone.
        inst = Instance.__new__(Instance)
        inst.id = self.id
        inst.workflow = self.workflow
        inst.version = self.version
        inst.state = self.state
        inst.data = dict(self.data)
        inst.parent_id = self.parent_id
        inst.children = list(self.children)
        inst.deadlines = dict(self.deadlines)
        inst.created_at = self.created_at
        inst.updated_at = self.updated_at
        inst.rev = self.rev
        inst.snapshot = self.deadlines
        return inst

    def clocks(self) -> list[tuple[str, str, dt.datetime]]:
        """(name, status, time) of every breach and reminder of this instance: what the stores index."""
        out: list[tuple[str, str, dt.datetime]] = []
        for ds in self.deadlines.values():
            if ds.reminders:
                out += ds.clocks()
            else:
                out.append((ds.name, ds.status, ds.due_at))
        return out

    def clock(self, name: str) -> tuple[str, dt.datetime] | None:
        """(status, time) of one breach or reminder (``DEADLINE#REMINDER``), or None if there is none."""
        deadline, _, reminder = name.partition(REMINDER)
        ds = self.deadlines.get(deadline)
        if ds is None:
            return None
        if not reminder:
            return ds.status, ds.due_at
        for r in ds.reminders:
            if r["name"] == reminder:
                return ds._reminder_status(r), _time(r["at"])
        return None

    def deadline_for_change(self, name: str) -> DeadlineState | None:
        """The deadline clock ``name``, this instance's own copy, ready to be changed."""
        ds = self.deadlines.get(name)
        snapshot = self.snapshot
        if ds is not None and snapshot is not None and snapshot.get(name) is ds:
            ds = self.deadlines[name] = ds.clone()
        return ds

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "state": self.state,
            "data": self.data,
            "parent_id": self.parent_id,
            "children": self.children,
            "deadlines": [d.to_dict() for d in self.deadlines.values()],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "rev": self.rev,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Instance:
        return cls(
            d["id"],
            d["workflow"],
            d["version"],
            d["state"],
            d["data"],
            created_at=dt.datetime.fromisoformat(d["created_at"]),
            updated_at=dt.datetime.fromisoformat(d["updated_at"]),
            parent_id=d.get("parent_id"),
            children=list(d.get("children") or []),
            deadlines={x["name"]: DeadlineState.from_dict(x) for x in d.get("deadlines") or []},
            rev=d.get("rev", 0),
        )
