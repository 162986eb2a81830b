"""An in-memory store: fast, for tests, simulations and embedding where durability is not needed."""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import ConcurrencyConflict
from ..runtime.instance import Instance, due_stamp
from .base import AWAITED_STATUSES, Changes, DueItem, InstanceQuery, KpiValue, Reach, RequestRecord, kpi_value_matches, lease_dict


def same_json(stored: Any, wanted: Any) -> bool:
    """Whether a stored data value equals a wanted JSON scalar as the SQL stores compare them.

    Numbers equal numbers of the same value (1 == 1.0), booleans only booleans (True is not 1),
    text only the same text; None matches null or a field that is not set.
    """
    if wanted is None:
        return stored is None
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return stored is wanted
    if isinstance(wanted, str):
        return isinstance(stored, str) and stored == wanted
    return isinstance(stored, (int, float)) and stored == wanted


def matches(inst: Instance, query: InstanceQuery) -> bool:
    """Whether ``inst`` passes every filter of ``query`` (all but ``after`` and ``limit``)."""
    if query.workflow is not None and inst.workflow != query.workflow:
        return False
    if query.state is not None and inst.state != query.state:
        return False
    data = inst.data
    for name, values in query.where:
        stored = data.get(name)
        if not any(same_json(stored, v) for v in values):
            return False
    if query.due_before is not None:
        until = query.due_before
        if not any(ds.status in AWAITED_STATUSES and ds.due_at <= until for ds in inst.deadlines.values()):
            return False
    for reach in query.reach:
        if reach.workflow == inst.workflow and reach.version == inst.version:
            return within(reach, inst, query.person)
    return True


def within(reach: Reach, inst: Instance, person: str | None) -> bool:
    """Whether ``reach`` lets ``person`` act on ``inst`` (an instance of its workflow version)."""
    if inst.state in reach.states:
        return True
    if inst.state not in reach.bound_states:
        return False
    for field in reach.fields:
        named = inst.data.get(field)
        if named == person or (isinstance(named, list) and person in named):
            return True
    return False


class MemoryStore:
    """Keeps committed snapshots in dicts and due clocks in one heap (stale entries skipped lazily).

    Safe to share between threads: a commit checks and writes under one lock, so two threads cannot
    both pass the revision check; reads see one commit whole or not at all (snapshots are replaced,
    never changed in place).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instances: dict[str, Instance] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._alerts: dict[str, dict[str, Any]] = {}
        self._schedules: dict[str, dict[str, Any]] = {}
        self._requests: dict[str, RequestRecord] = {}
        self._definitions: dict[tuple[str, int], dict[str, Any]] = {}
        # (due time as a POSIX number, kind, key, name, due time): ties fire breaches before starts, then by id,
        # then by name. The number orders as the time does, and compares faster than datetimes in different
        # time zones (a due date in London, a reminder read from ISO text)
        self._heap: list[tuple[float, str, str, str, dt.datetime]] = []
        self._limit: tuple[dt.datetime | None, float] = (None, 0.0)  # the last time next_due was asked about, as a number
        self._counters: dict[str, itertools.count] = {}
        self._held: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, key, name) -> held item
        self._pending: dict[str, None] = {}  # unacknowledged alert ids, oldest first
        self._leases: dict[str, tuple[str, float, str | None, int]] = {}  # alert id -> (worker, until, at, claims)
        self._ids: list[str] = []  # instance ids in order, rebuilt by query when instances were added
        # workflow -> its instance ids as added, and the workflows whose ids were not added in order (sorted when read)
        self._by_workflow: dict[str, list[str]] = {}
        self._unsorted: set[str] = set()
        self._kpis: dict[tuple[str, str, str, dt.date, dt.date], KpiValue] = {}  # imported KPI values by key

    def __getstate__(self) -> dict[str, Any]:  # simulation workers pickle their stores; a lock does not pickle
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_kpis", {})
        self.__dict__.setdefault("_limit", (None, 0.0))
        if "_by_workflow" not in self.__dict__:
            self._by_workflow, self._unsorted = {}, set()
            for iid, inst in sorted(self._instances.items()):
                self._by_workflow.setdefault(inst.workflow, []).append(iid)
        self._lock = threading.Lock()

    # -- reads ---------------------------------------------------------------------------
    def load(self, instance_id: str) -> Instance | None:
        return self._instances.get(instance_id)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        return list(self._history.get(instance_id, ()))

    def find(self, workflow: str | None = None, state: str | None = None) -> Iterable[Instance]:
        if workflow is None:
            keys = sorted(self._instances)
        else:
            with self._lock:
                keys = self._by_workflow.get(workflow) or []
                if workflow in self._unsorted:
                    keys.sort()
                    self._unsorted.discard(workflow)
                keys = list(keys)  # a copy: commits may add to it while this is read
        for key in keys:
            inst = self._instances[key]
            if (workflow is None or inst.workflow == workflow) and (state is None or inst.state == state):
                yield inst

    def query(self, query: InstanceQuery) -> list[Instance]:
        instances = self._instances
        ids = self._ids
        if len(ids) != len(instances):  # instances are never removed: a new count means new ids
            ids = self._ids = sorted(instances)  # copies the keys in C first: safe while another thread commits
        found: list[Instance] = []
        start = 0 if query.after is None else bisect.bisect_right(ids, query.after)
        for k in range(start, len(ids)):
            inst = instances[ids[k]]
            if matches(inst, query):
                found.append(inst)
                if len(found) >= query.limit:
                    break
        return found

    def outbox(self, include_acknowledged: bool = False) -> list[dict[str, Any]]:
        alerts = list(self._alerts.values())  # one C-level copy: safe while another thread commits
        return [{**a, "acknowledged_by": a.get("acknowledged_by")} for a in alerts if include_acknowledged or a["acknowledged_at"] is None]

    def claim_alerts(self, worker: str, limit: int, lease_seconds: float, at: str | None) -> list[dict[str, Any]]:
        claimed = []
        with self._lock:
            now = time.time()
            leases = self._leases
            for alert_id in list(self._pending):
                lease = leases.get(alert_id)
                if lease is not None and lease[1] > now:
                    continue  # someone holds it
                until = now + lease_seconds
                claims = 1 if lease is None else lease[3] + 1
                leases[alert_id] = (worker, until, at, claims)
                alert = self._alerts[alert_id]
                claimed.append({**alert, "acknowledged_by": None, "lease": lease_dict(worker, at, until, claims)})
                if len(claimed) >= limit:
                    break
        return claimed

    def request(self, request_id: str) -> RequestRecord | None:
        return self._requests.get(request_id)

    def schedule(self, schedule_id: str) -> dict[str, Any] | None:
        return self._schedules.get(schedule_id)

    def definition(self, workflow: str, version: int) -> dict[str, Any] | None:
        return self._definitions.get((workflow, version))

    def next_id(self, prefix: str) -> str:
        counter = self._counters.setdefault(prefix, itertools.count(1))
        return f"{prefix}-{next(counter):06d}"

    def next_due(self, until: dt.datetime) -> DueItem | None:
        last = self._limit  # callers ask again with the same time until nothing is due: convert it once
        if last[0] is until:
            limit = last[1]
        else:
            limit = until.timestamp()
            self._limit = (until, limit)
        with self._lock:
            heap = self._heap
            while heap:
                when, kind, key, name, at = heap[0]
                if when > limit:
                    return None
                if self._still_due(at, kind, key, name):
                    return DueItem(at, kind, key, name)
                heapq.heappop(heap)
            return None

    def _still_due(self, at: dt.datetime, kind: str, key: str, name: str) -> bool:
        if kind == "start":
            return key in self._schedules
        if self._held and (kind, key, name) in self._held and self._held[(kind, key, name)]["at"] == at:
            return False
        inst = self._instances.get(key)
        return inst is not None and inst.clock(name) == ("open", at)

    # -- writes --------------------------------------------------------------------------
    def commit(self, changes: Changes) -> None:
        instances, base_revs, request = self._instances, changes.base_revs, changes.request
        with self._lock:  # the checks and the writes are one step for every thread
            for iid, rev in base_revs.items():
                current = instances.get(iid)
                if current is None or current.rev != rev:
                    raise ConcurrencyConflict(
                        f"instance {iid} was changed by someone else since it was read; reload and try again",
                        instance=iid,
                    )
            for iid in changes.instances:
                if iid not in base_revs and iid in instances:
                    raise ConcurrencyConflict(f"instance {iid} already exists", instance=iid)
            # as in the SQL stores: a schedule fires once, a request id is carried out once
            for sid in changes.schedules_done:
                if sid not in self._schedules:
                    raise ConcurrencyConflict(f"scheduled start {sid} was already done by someone else", schedule=sid)
            if request is not None and request[0] in self._requests:
                raise ConcurrencyConflict(f"request {request[0]} was already carried out", request_id=request[0])
            for item in changes.held:
                if not self._still_due(item["at"], item["kind"], item["key"], item["name"]):
                    raise ConcurrencyConflict(f"{item['kind']} {item['key']} {item['name']} is no longer due", instance=item["key"])
            # nothing below can fail: the commit is all or nothing
            for iid, inst in changes.instances.items():
                inst.rev = base_revs.get(iid, 0) + 1
                old = instances.get(iid)
                instances[iid] = inst
                if old is None:
                    ids = self._by_workflow.setdefault(inst.workflow, [])
                    if ids and iid < ids[-1]:
                        self._unsorted.add(inst.workflow)
                    ids.append(iid)
                for ds in inst.deadlines.values():
                    if old is not None and old.deadlines.get(ds.name) is ds:
                        continue  # shared with the snapshot it replaces, so unchanged (changes copy it first)
                    if ds.reminders:  # a reminder is due on its own: push each that is waiting and new
                        for name, status, at in ds.clocks():
                            if status == "open" and (old is None or old.clock(name) != ("open", at)):
                                heapq.heappush(self._heap, (at.timestamp(), "breach", iid, name, at))
                    elif ds.status == "open":
                        before = old.deadlines.get(ds.name) if old else None
                        if before is None or before.status != "open" or before.due != ds.due:
                            heapq.heappush(self._heap, (due_stamp(ds.due), "breach", iid, ds.name, ds.due_at))
            history = self._history
            for entry in changes.history:
                iid = entry["instance_id"]
                kept = history.get(iid)
                if kept is None:
                    history[iid] = [entry]
                else:
                    kept.append(entry)
            for alert in changes.alerts:
                self._alerts[alert["id"]] = alert
                if alert.get("acknowledged_at") is None:
                    self._pending[alert["id"]] = None
            for sched in changes.schedules_added:
                self._schedules[sched["id"]] = sched
                heapq.heappush(self._heap, (sched["at"].timestamp(), "start", sched["id"], sched["workflow"], sched["at"]))
            for sid in changes.schedules_done:
                del self._schedules[sid]
            if request is not None:
                request_id, call, iid = request
                inst = instances[iid]
                self._requests[request_id] = RequestRecord(request_id, call, iid, inst.state, inst)
            for d in changes.definitions:
                self._definitions.setdefault((d["workflow"], d["version"]), d)
            for item in changes.held:
                held = dict(item)
                if item["kind"] == "start":
                    held["entry"] = self._schedules.pop(item["key"])
                self._held[(item["kind"], item["key"], item["name"])] = held

    def schedules(self) -> list[dict[str, Any]]:
        return sorted(self._schedules.values(), key=lambda sched: (sched["at"], sched["id"]))

    def held(self) -> list[dict[str, Any]]:
        items = sorted(self._held.values(), key=lambda h: (h["at"], h["kind"], h["key"], h["name"]))
        return [{k: v for k, v in h.items() if k != "entry"} for h in items]

    def release(self, kind: str, key: str, name: str) -> bool:
        with self._lock:
            held = self._held.pop((kind, key, name), None)
            if held is None:
                return False
            if kind == "start":
                self._schedules[key] = held["entry"]
            heapq.heappush(self._heap, (held["at"].timestamp(), kind, key, name, held["at"]))
            return True

    def acknowledge(self, alert_id: str, at: dt.datetime, worker: str | None = None) -> bool:
        with self._lock:
            alert = self._alerts.get(alert_id)
            if alert is None:
                return False
            if alert["acknowledged_at"] is None:
                alert["acknowledged_at"] = at.isoformat()
                alert["acknowledged_by"] = worker
                self._pending.pop(alert_id, None)
            return True

    # -- imported KPI values -------------------------------------------------------------------
    def put_kpi_values(self, values: Sequence[KpiValue]) -> list[KpiValue]:
        with self._lock:
            replaced = [old for v in values if (old := self._kpis.get(v.key)) is not None]
            for v in values:
                self._kpis[v.key] = v
            return replaced

    def kpi_values(self, kpi: str | None = None, *, level: str | None = None, level_id: str | None = None,
                   start: dt.date | None = None, end: dt.date | None = None) -> list[KpiValue]:
        stored = list(self._kpis.values())  # one C-level copy: safe while another thread imports
        return sorted((v for v in stored if kpi_value_matches(v, kpi, level, level_id, start, end)), key=lambda v: v.key)
