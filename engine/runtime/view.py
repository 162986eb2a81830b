"""Read-only views of instances and deadlines, as callers see them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .deadlines import explain
from .instance import OPEN_STATUSES, DeadlineState, Instance, clone_json

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine


@dataclass(frozen=True)
class DeadlineView:
    """One deadline of an instance, with the reasoning behind its due date."""

    name: str
    title: str
    status: str  # open | paused | breached | met | cancelled
    due: dt.date
    due_at: dt.datetime
    anchor: dt.date
    duration: str
    calendar: str
    late: bool
    started_at: dt.datetime
    closed_at: dt.datetime | None
    breached_at: dt.datetime | None
    changes: tuple[dict[str, Any], ...]
    explanation: tuple[str, ...]
    reminders: tuple[dict[str, Any], ...] = ()  # {name, at, sent}: reminders planned and sent, in time order

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "due": self.due.isoformat(),
            "due_at": self.due_at.isoformat(),
            "anchor": self.anchor.isoformat(),
            "duration": self.duration,
            "calendar": self.calendar,
            "late": self.late,
            "started_at": self.started_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "breached_at": self.breached_at.isoformat() if self.breached_at else None,
            "changes": list(self.changes),
            "explanation": list(self.explanation),
            "reminders": list(self.reminders),
        }


class InstanceView:
    """An instance as last committed. Cheap to create; data is copied on access."""

    __slots__ = ("_engine", "_inst")

    def __init__(self, engine: Engine, inst: Instance) -> None:
        self._engine = engine
        self._inst = inst

    def __repr__(self) -> str:
        return f"<InstanceView {self.id} {self.workflow} v{self.version} state={self.state!r}>"

    @property
    def id(self) -> str:
        return self._inst.id

    @property
    def workflow(self) -> str:
        return self._inst.workflow

    @property
    def version(self) -> int:
        return self._inst.version

    @property
    def state(self) -> str:
        return self._inst.state

    @property
    def parent_id(self) -> str | None:
        return self._inst.parent_id

    @property
    def created_at(self) -> dt.datetime:
        return self._inst.created_at

    @property
    def updated_at(self) -> dt.datetime:
        """The time of the instance's last event (a backdated event does not move it back)."""
        return self._inst.updated_at

    @property
    def rev(self) -> int:
        """The revision: 1 when started, one more with every committed change."""
        return self._inst.rev

    @property
    def children(self) -> tuple[str, ...]:
        return tuple(self._inst.children)

    @property
    def data(self) -> dict[str, Any]:
        return clone_json(self._inst.data)

    @property
    def terminal(self) -> bool:
        wf = self._engine.definitions.workflows.get(self.workflow)
        return bool(wf and wf.states.get(self.state) and wf.states[self.state].terminal)

    def _deadline_view(self, ds: DeadlineState) -> DeadlineView:
        wf = self._engine.definitions.workflows.get(self.workflow)
        defn = wf.deadlines.get(ds.name) if wf else None
        return DeadlineView(
            name=ds.name,
            title=defn.title if defn else "",
            status=ds.status,
            due=ds.due,
            due_at=ds.due_at,
            anchor=ds.anchor,
            duration=ds.duration,
            calendar=ds.calendar,
            late=ds.late,
            started_at=ds.started_at,
            closed_at=ds.closed_at,
            breached_at=ds.breached_at,
            changes=tuple(dict(c) for c in ds.changes),
            explanation=tuple(explain(ds, self._engine.definitions.calendars, defn)),
            reminders=tuple(dict(r) for r in ds.reminders),
        )

    @property
    def deadlines(self) -> list[DeadlineView]:
        """Every deadline ever started on the instance, open and closed."""
        return [self._deadline_view(ds) for ds in self._inst.deadlines.values()]

    def deadline(self, name: str) -> DeadlineView | None:
        ds = self._inst.deadlines.get(name)
        return self._deadline_view(ds) if ds else None

    @property
    def history(self) -> list[dict[str, Any]]:
        return self._engine.store.history(self.id)

    def to_dict(self, *, history: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "state": self.state,
            "terminal": self.terminal,
            "data": self.data,
            "parent": self.parent_id,
            "children": list(self.children),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "deadlines": [d.to_dict() for d in self.deadlines],
        }
        if history:
            out["history"] = self.history
        return out
