"""Replaying a store's history: what people did (starts and fired triggers), in time order, on a fresh engine.

Only what people did is replayed; everything the engine did itself (automatic transitions, children
started by a parent, signals to a parent, breaches and reminders) happens again inside the engine,
under whichever configuration runs the replay: that is what makes two replays comparable.

Instances are named by a *key* that does not depend on the order ids were handed out: a root
instance by its id in the store, a child by its parent's key, its workflow and its rank among the
parent's children of that workflow (``case_audit-000012/moderation#1``). A child the store holds is
shown by its id in the store; one that only a replay started, by its key.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import as_time
from ..definitions import Definitions
from ..errors import QaflowError, UsageError
from ..runtime.engine import Engine, start_as_engine
from ..runtime.inputs import SYSTEM_ACTOR
from ..runtime.instance import Instance
from ..store.base import Store
from ..store.memory import MemoryStore

__all__ = ["RecordedEvent", "Recorded", "Outcome", "Replay", "read_history", "replay", "instance_keys"]


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One thing a person (or a host) did, as the store recorded it."""

    at: dt.datetime
    instance: str  # the instance's id in the store
    key: str  # its key (module docstring)
    kind: str  # "start" | "fire"
    workflow: str
    trigger: str | None  # None for a start
    payload: Any  # the start data as given, or the payload
    actor: str
    roles: tuple[str, ...]
    backdate_reason: str | None = None

    def label(self) -> str:
        return "start" if self.kind == "start" else str(self.trigger)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "instance": self.instance, "event": self.label(), "actor": self.actor,
                "roles": list(self.roles)}


@dataclass
class Recorded:
    """A store's instances and history, read once (the store is only read)."""

    instances: dict[str, Instance]  # by id in the store
    history: dict[str, list[dict[str, Any]]]  # by id in the store
    keys: dict[str, str]  # id in the store -> key
    events: list[RecordedEvent]  # in the order they are replayed
    alerts: list[dict[str, Any]]
    first: dt.datetime | None  # the earliest and latest history entries (any kind)
    last: dt.datetime | None

    @property
    def by_key(self) -> dict[str, str]:
        """key -> id in the store."""
        return {k: i for i, k in self.keys.items()}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one recorded event did in one replay: taken (from a state to a state) or refused (why)."""

    ok: bool
    from_state: str | None = None
    to_state: str | None = None
    error: str | None = None
    error_type: str | None = None

    def same_as(self, other: Outcome) -> bool:
        if self.ok != other.ok:
            return False
        return (self.from_state, self.to_state) == (other.from_state, other.to_state) if self.ok else True

    def describe(self) -> str:
        if self.ok:
            return f"{self.from_state or 'start'} -> {self.to_state}"
        return f"refused: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"taken": True, "from": self.from_state, "to": self.to_state}
        return {"taken": False, "error": self.error, "error_type": self.error_type}


@dataclass
class Replay:
    """An engine that replayed a store's events, and what each event did there."""

    engine: Engine
    outcomes: list[Outcome]  # one per Recorded.events, in order (events after ``until`` are not replayed)
    until: dt.datetime
    roots: dict[str, str] = field(default_factory=dict)  # root key -> id in the replay
    keys: dict[str, str] = field(default_factory=dict)  # id in the replay -> key (filled by ``finish``)

    def instances(self) -> dict[str, Instance]:
        """key -> instance as the replay left it."""
        store = self.engine.store
        return {key: inst for iid, key in self.keys.items() if (inst := store.load(iid)) is not None}

    def history(self, key: str) -> list[dict[str, Any]]:
        iid = self.replay_id(key)
        return self.engine.store.history(iid) if iid is not None else []

    def replay_id(self, key: str) -> str | None:
        """The id in the replay of the instance ``key`` names, if the replay has it."""
        root = self.roots.get(key)
        if root is not None:
            return root
        parent_key, sep, rest = key.rpartition("/")
        if not sep:
            return None
        parent = self.replay_id(parent_key)
        if parent is None:
            return None
        workflow, _, rank = rest.rpartition("#")
        store = self.engine.store
        inst = store.load(parent)
        if inst is None:
            return None
        seen = 0
        for child_id in inst.children:
            child = store.load(child_id)
            if child is not None and child.workflow == workflow:
                seen += 1
                if str(seen) == rank:
                    return child_id
        return None


def instance_keys(instances: Mapping[str, Instance], roots: Mapping[str, str] | None = None) -> dict[str, str]:
    """id -> key for every instance in ``instances`` (by id); ``roots`` gives root ids their keys (default: the id)."""
    keys: dict[str, str] = {}

    def walk(iid: str, key: str) -> None:
        keys[iid] = key
        inst = instances.get(iid)
        if inst is None:
            return
        ranks: dict[str, int] = {}
        for child_id in inst.children:
            child = instances.get(child_id)
            if child is None:
                continue
            ranks[child.workflow] = ranks.get(child.workflow, 0) + 1
            walk(child_id, f"{key}/{child.workflow}#{ranks[child.workflow]}")

    named = roots if roots is not None else {iid: iid for iid, inst in instances.items() if inst.parent_id is None}
    for iid, key in named.items():
        walk(iid, key)
    for iid in instances:  # a child whose parent is not in the store: known by its own id
        keys.setdefault(iid, iid)
    return keys


def _by_person(entry: Mapping[str, Any]) -> bool:
    """Whether a history entry records something a person or a host did (not the engine itself)."""
    trigger = str(entry.get("trigger") or "")
    actor = str(entry.get("actor") or "")
    return not trigger.startswith("(") and actor != SYSTEM_ACTOR and not actor.startswith(SYSTEM_ACTOR + ":")


def read_history(store: Store) -> Recorded:
    """Everything a replay needs from ``store``, read once; the store is not written."""
    instances = {inst.id: inst for inst in store.find()}
    history = {iid: store.history(iid) for iid in instances}
    keys = instance_keys(instances)
    depth = {iid: key.count("/") for iid, key in keys.items()}
    queues: dict[str, list[RecordedEvent]] = {}
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    for iid, entries in history.items():
        inst = instances[iid]
        queue: list[RecordedEvent] = []
        for index, entry in enumerate(entries):
            at = as_time(entry["at"])
            first = at if first is None or at < first else first
            last = at if last is None or at > last else last
            roles = tuple(entry.get("roles") or ())
            if index == 0 and entry.get("trigger") == "(start)":
                if inst.parent_id is None:  # a child is started again by its parent
                    queue.append(RecordedEvent(at, iid, keys[iid], "start", inst.workflow, None, entry.get("payload") or {},
                                               str(entry.get("actor") or ""), roles))
                continue
            if not _by_person(entry):
                continue
            backdated = entry.get("backdated")
            queue.append(RecordedEvent(at, iid, keys[iid], "fire", inst.workflow, str(entry["trigger"]), entry.get("payload"),
                                       str(entry.get("actor") or ""), roles,
                                       backdated.get("reason") if isinstance(backdated, dict) else None))
        if queue:
            queues[iid] = queue
    return Recorded(instances, history, keys, _merge(queues, instances, depth), store.outbox(True), first, last)


def _merge(queues: Mapping[str, list[RecordedEvent]], instances: Mapping[str, Instance], depth: Mapping[str, int]) -> list[RecordedEvent]:
    """Every instance's events in one time order, each instance's own kept in the order it recorded them.

    A backdated event (dated before the one recorded just before it on its instance) stays after that
    one. Events at the same moment: a parent's before its children's (a child exists only once its
    parent has started it), then older instances first.
    """
    heap: list[tuple[dt.datetime, int, dt.datetime, str, int]] = []
    for iid, queue in queues.items():
        heap.append((queue[0].at, depth[iid], instances[iid].created_at, iid, 0))
    heapq.heapify(heap)
    out: list[RecordedEvent] = []
    while heap:
        _, d, created, iid, index = heapq.heappop(heap)
        queue = queues[iid]
        out.append(queue[index])
        if index + 1 < len(queue):
            heapq.heappush(heap, (queue[index + 1].at, d, created, iid, index + 1))
    return out


def replay(recorded: Recorded, definitions: Definitions, *, until: Any = None, store: Store | None = None) -> Replay:
    """Replay ``recorded`` on a new engine with ``definitions`` (into ``store``, default a new MemoryStore).

    Before each event the clock is advanced to its time (breaches and reminders due by then fire), and
    at the end to ``until`` (default: the latest entry in the recorded history). Events after ``until``
    are not replayed. An event the configuration refuses is noted with its reason, and the replay goes on.
    """
    end = as_time(until) if until is not None else recorded.last
    if end is None:
        raise UsageError("nothing to replay: the history is empty (give until= to run the clock on an empty store)")
    engine = Engine(definitions, store if store is not None else MemoryStore())
    result = Replay(engine, [], end)
    for event in recorded.events:
        if event.at > end:
            break
        engine.advance(event.at)
        result.outcomes.append(_apply(result, event))
    engine.advance(end)
    finish(result)
    return result


def _apply(result: Replay, event: RecordedEvent) -> Outcome:
    engine = result.engine
    try:
        if event.kind == "start":
            if SYSTEM_ACTOR in event.roles:  # started by the engine for a host (scenario tests): do the same
                view = start_as_engine(engine, event.workflow, dict(event.payload), at=event.at)
            else:
                view = engine.start(event.workflow, dict(event.payload), actor=event.actor, roles=list(event.roles), at=event.at)
            result.roots[event.key] = view.id
            return Outcome(True, None, view.state)
        target = result.replay_id(event.key)
        if target is None:
            return Outcome(False, error=f"{event.instance} was never started under this configuration", error_type="NotStarted")
        before = engine.store.load(target)
        assert before is not None
        view = engine.fire(target, str(event.trigger), event.payload, actor=event.actor, roles=list(event.roles), at=event.at,
                           backdate_reason=event.backdate_reason)
        return Outcome(True, before.state, view.state)
    except QaflowError as exc:
        return Outcome(False, error=exc.message, error_type=type(exc).__name__)


def finish(result: Replay) -> None:
    """Name every instance of the replay by its key."""
    instances = {inst.id: inst for inst in result.engine.store.find()}
    roots = {iid: key for key, iid in result.roots.items()}
    result.keys = instance_keys(instances, roots)
    for iid, key in result.keys.items():  # an instance that is no root of ours and no child of one
        if key == iid and iid not in roots:
            result.keys[iid] = f"(replay) {iid}"

