"""What one accepted call changed, handed to the Engine's listeners after it is committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..store.base import Changes

log = logging.getLogger("qaflow")


@dataclass(frozen=True, slots=True)
class Change:
    """One committed call: the history entries it recorded, the alerts it put in the outbox, the
    instances it wrote, and the deadlines those instances now have.

    Listeners get it after the commit, so what it says has happened; a listener cannot undo it.
    """

    history: tuple[dict[str, Any], ...]
    alerts: tuple[dict[str, Any], ...]
    instances: tuple[str, ...]
    deadlines: tuple[dict[str, Any], ...]  # {instance, name, status, due, late} of every instance written
    set_aside: tuple[dict[str, Any], ...] = ()  # due items advance could not fire

    @classmethod
    def of(cls, changes: Changes) -> Change:
        deadlines = tuple(
            {"instance": iid, "name": ds.name, "status": ds.status, "due": ds.due.isoformat(), "late": ds.late}
            for iid, inst in changes.instances.items()
            for ds in inst.deadlines.values()
        )
        return cls(tuple(changes.history), tuple(changes.alerts), tuple(changes.instances), deadlines, tuple(changes.held))


Listener = Callable[[Change], Any]


def notify(listeners: Iterable[Listener], changes: Changes) -> None:
    """Tell every listener; one that raises is logged on the ``qaflow`` logger and the others still hear."""
    change = Change.of(changes)
    for listener in listeners:
        try:
            listener(change)
        except Exception:
            log.exception("qaflow listener %r failed on a committed change; the change stands", listener)
