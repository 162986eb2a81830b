"""A unit of work: working copies of the instances one call touches, committed together or not at all."""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import TYPE_CHECKING, Any

from ..clock import iso_text
from ..errors import UnknownInstance
from ..store.base import Changes
from .instance import Instance

if TYPE_CHECKING:  # pragma: no cover
    from ..store.base import Store


class UnitOfWork:
    """Reads snapshots from the store, hands out private copies, and writes them back in one commit."""

    __slots__ = ("store", "working", "changes", "queue")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.working: dict[str, Instance] = {}
        self.changes = Changes()
        # children to start and parents to signal, processed after the current event settles
        self.queue: deque[tuple[Any, ...]] = deque()

    def get(self, instance_id: str) -> Instance:
        """A private, changeable copy of the instance (the same copy for the whole unit of work)."""
        inst = self.working.get(instance_id)
        if inst is not None:
            return inst
        snap = self.store.load(instance_id)
        if snap is None:
            raise UnknownInstance(f"no instance '{instance_id}'", instance=instance_id)
        inst = snap.clone()
        self.working[instance_id] = inst
        self.changes.base_revs[instance_id] = snap.rev
        return inst

    def peek(self, instance_id: str) -> Instance | None:
        """Read without taking a copy to change."""
        return self.working.get(instance_id) or self.store.load(instance_id)

    def add(self, inst: Instance) -> None:
        self.working[inst.id] = inst

    def record(self, entry: dict[str, Any]) -> None:
        self.changes.history.append(entry)

    def new_alert(
        self,
        *,
        at: dt.datetime,
        instance: Instance,
        name: str,
        severity: str,
        recipients: list[dict[str, str]],
        message: str,
    ) -> dict[str, Any]:
        alert = {
            "id": self.store.next_id("alert"),
            "at": iso_text(at),
            "instance_id": instance.id,
            "workflow": instance.workflow,
            "name": name,
            "severity": severity,
            "recipients": recipients,
            "message": message,
            "acknowledged_at": None,
        }
        self.changes.alerts.append(alert)
        return alert

    def queue_start(self, workflow: str, data: dict[str, Any], *, parent: Instance, at: dt.datetime, actor: str) -> str:
        child_id = self.store.next_id(workflow)
        self.queue.append(("start", child_id, workflow, data, parent.id, at, actor))
        return child_id

    def queue_signal(self, parent_id: str, trigger: str, payload: dict[str, Any], *, at: dt.datetime, source: str) -> None:
        self.queue.append(("signal", parent_id, trigger, payload, at, source))

    def commit(self) -> None:
        self.changes.instances = self.working
        self.store.commit(self.changes)
        for inst in self.working.values():
            inst.snapshot = None  # committed: it is a snapshot itself now, and need not keep the one before alive
