"""What a changed configuration would have changed: two replays of a store's history, compared instance by instance."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..calendar import LONDON
from ..clock import as_time
from ..definitions import Definitions
from ..errors import QaflowError, UsageError
from ..runtime.deadlines import explain
from ..runtime.instance import DeadlineState, Instance
from ..store.base import Store
from .replay import Outcome, Recorded, RecordedEvent, Replay, read_history, replay

__all__ = ["DeadlineSide", "DeadlineChange", "EventChange", "AlertChange", "InstanceImpact", "KpiChange", "ImpactReport", "impact"]

#: Data fields shown beside an instance's id, when it has them, so that people know which case it is.
LABEL_FIELDS = ("case_id", "team")
#: Differences between the store and the replay under the current configuration listed at most.
MAX_MISMATCHES = 50


def _local(value: dt.datetime) -> str:
    return value.astimezone(LONDON).strftime("%a %-d %b %Y %H:%M")


@dataclass(frozen=True, slots=True)
class DeadlineSide:
    """One deadline clock as one replay left it."""

    due: dt.date
    status: str  # open | met | breached | paused | cancelled
    late: bool  # met after its due date, or breached at some point
    closed_at: dt.datetime | None
    breached_at: dt.datetime | None
    explanation: tuple[str, ...]  # how the due date was worked out (engine.runtime.deadlines.explain)

    @classmethod
    def of(cls, ds: DeadlineState, explanation: Iterable[str]) -> DeadlineSide:
        return cls(ds.due, ds.status, bool(ds.late or ds.breached_at is not None), ds.closed_at, ds.breached_at, tuple(explanation))

    def outcome(self) -> str:
        """In a few words: met on time, met late, breached, open, paused, cancelled (after a breach)."""
        if self.status == "met":
            return f"met late on {_local(self.closed_at)}" if self.late and self.closed_at else (
                f"met on time on {_local(self.closed_at)}" if self.closed_at else "met")
        if self.status == "breached":
            return "breached, still awaited"
        if self.status == "cancelled":
            return "cancelled after a breach" if self.breached_at is not None else "cancelled in time"
        return "breached, then extended" if self.breached_at is not None else self.status

    def to_dict(self) -> dict[str, Any]:
        return {
            "due": self.due.isoformat(),
            "status": self.status,
            "late": self.late,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "breached_at": self.breached_at.isoformat() if self.breached_at else None,
            "outcome": self.outcome(),
            "explanation": list(self.explanation),
        }


@dataclass(frozen=True, slots=True)
class DeadlineChange:
    """A deadline whose due date or outcome differs; a side is None where that replay never started it."""

    deadline: str
    title: str
    current: DeadlineSide | None
    new: DeadlineSide | None

    @property
    def moved(self) -> bool:
        return self.current is not None and self.new is not None and self.current.due != self.new.due

    @property
    def now_late(self) -> bool:
        return self.new is not None and self.new.late and not (self.current is not None and self.current.late)

    @property
    def no_longer_late(self) -> bool:
        return self.current is not None and self.current.late and not (self.new is not None and self.new.late)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deadline": self.deadline,
            "title": self.title,
            "moved": self.moved,
            "now_late": self.now_late,
            "no_longer_late": self.no_longer_late,
            "current": self.current.to_dict() if self.current else None,
            "new": self.new.to_dict() if self.new else None,
        }


@dataclass(frozen=True, slots=True)
class EventChange:
    """A recorded event taken or refused differently (or taken to another state) under the new configuration."""

    event: RecordedEvent
    current: Outcome
    new: Outcome

    @property
    def kind(self) -> str:
        if self.current.ok and not self.new.ok:
            return "now_refused"
        if self.new.ok and not self.current.ok:
            return "now_taken"
        return "other_state"

    def to_dict(self) -> dict[str, Any]:
        return {**self.event.to_dict(), "change": self.kind, "current": self.current.to_dict(), "new": self.new.to_dict()}


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert sent to other people, at another time, or only under one configuration."""

    name: str
    kind: str  # recipients | time | no_longer_sent | now_sent
    current: Mapping[str, Any] | None  # {at, recipients, severity}
    new: Mapping[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "change": self.kind, "current": dict(self.current) if self.current else None,
                "new": dict(self.new) if self.new else None}


@dataclass(frozen=True, slots=True)
class InstanceImpact:
    """Everything that differs for one instance."""

    instance: str  # its id in the store, or its key when only a replay started it
    key: str
    workflow: str
    parent: str | None
    label: str  # a few identifying data fields ("C-0123, assessment_1")
    started: str  # both | current | new: which replays started it
    current_state: str | None
    new_state: str | None
    deadlines: tuple[DeadlineChange, ...] = ()
    events: tuple[EventChange, ...] = ()
    current_path: tuple[str, ...] = ()  # the states it went through, when the two differ
    new_path: tuple[str, ...] = ()
    alerts: tuple[AlertChange, ...] = ()

    @property
    def now_late(self) -> bool:
        return any(d.now_late for d in self.deadlines)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "instance": self.instance,
            "key": self.key,
            "workflow": self.workflow,
            "parent": self.parent,
            "label": self.label,
            "started": self.started,
            "current_state": self.current_state,
            "new_state": self.new_state,
            "deadlines": [d.to_dict() for d in self.deadlines],
            "events": [e.to_dict() for e in self.events],
            "alerts": [a.to_dict() for a in self.alerts],
        }
        if self.current_path or self.new_path:
            out["path"] = {"current": list(self.current_path), "new": list(self.new_path)}
        return out


@dataclass(frozen=True, slots=True)
class KpiChange:
    """A KPI whose value or RAG status differs over the period."""

    name: str
    title: str
    current: Mapping[str, Any]  # {value, status, numerator, denominator, target, unit}
    new: Mapping[str, Any]

    @property
    def rag_changed(self) -> bool:
        return self.current.get("status") != self.new.get("status")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "rag_changed": self.rag_changed, "current": dict(self.current), "new": dict(self.new)}


@dataclass(frozen=True)
class ImpactReport:
    """What replaying a store's history under a new configuration changes, against the current one.

    ``totals`` counts every kind of difference; ``instances`` lists the instances that differ (by id
    in the store); ``kpis`` the KPIs whose value changes over ``period``; ``reproduced`` says whether
    the replay under the current configuration gave back exactly what the store holds (if not,
    ``mismatches`` says where it did not: then the store was written under another configuration, or
    by hosts whose clock ran breaches at other times, and the comparison is with the replay).
    """

    store: str
    current_config: str
    new_config: str
    first: dt.datetime | None
    until: dt.datetime
    period: tuple[dt.date, dt.date]
    events: int  # recorded events replayed
    instances_in_store: int
    totals: Mapping[str, Any]
    instances: tuple[InstanceImpact, ...]
    kpis: tuple[KpiChange, ...]
    reproduced: bool
    mismatches: tuple[str, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether anything at all would have differed."""
        return bool(self.instances or self.kpis)

    def moved(self) -> list[tuple[InstanceImpact, DeadlineChange]]:
        """Every deadline whose due date moves, with its instance."""
        return [(i, d) for i in self.instances for d in i.deadlines if d.moved]

    def now_late(self) -> list[tuple[InstanceImpact, DeadlineChange]]:
        """Every deadline that was met in time (or not yet due) and would now be late or breached."""
        return [(i, d) for i in self.instances for d in i.deadlines if d.now_late]

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "current_config": self.current_config,
            "new_config": self.new_config,
            "history": {"from": self.first.isoformat() if self.first else None, "until": self.until.isoformat(),
                        "events": self.events, "instances": self.instances_in_store},
            "period": {"from": self.period[0].isoformat(), "to": self.period[1].isoformat()},
            "reproduced": self.reproduced,
            "mismatches": list(self.mismatches),
            "notes": list(self.notes),
            "totals": dict(self.totals),
            "kpis": [k.to_dict() for k in self.kpis],
            "instances": [i.to_dict() for i in self.instances],
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------- the comparison


@dataclass
class _Side:
    """One replay, read for comparison: instances, steps and alerts by key."""

    replay: Replay
    definitions: Definitions
    instances: dict[str, Instance] = field(default_factory=dict)
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def read(cls, rp: Replay, definitions: Definitions) -> _Side:
        side = cls(rp, definitions, rp.instances())
        for alert in rp.engine.store.outbox(True):
            key = rp.keys.get(str(alert.get("instance_id")))
            if key is not None:
                side.alerts.setdefault(key, []).append(alert)
        return side

    def deadline(self, inst: Instance, ds: DeadlineState) -> DeadlineSide:
        try:
            defn = self.replay.engine._wf(inst).deadlines.get(ds.name)
            lines = explain(ds, self.definitions.calendars, defn)
        except QaflowError as exc:  # a calendar or duration this configuration lacks: say so, rather than fail
            lines = [f"(cannot explain: {exc.message})"]
        return DeadlineSide.of(ds, lines)


def _steps(history: Iterable[Mapping[str, Any]]) -> list[str]:
    """The transitions an instance went through, as ``trigger: from -> to`` (reminders and breaches that move nothing left out)."""
    out = []
    for entry in history:
        trigger = str(entry.get("trigger"))
        if trigger.startswith("(reminder)") or (trigger.startswith("(breach)") and entry.get("from") == entry.get("to")):
            continue
        out.append(f"{trigger}: {entry.get('from') or 'start'} -> {entry.get('to')}")
    return out


def _recipients(alert: Mapping[str, Any]) -> list[str]:
    out = []
    for r in alert.get("recipients") or ():
        if "person" in r:
            out.append(f"{r['person']}" + (f" ({r['as']})" if r.get("as") else ""))
        else:
            out.append(f"role {r.get('role')}" + (" (unresolved)" if r.get("unresolved") else ""))
    return sorted(out)


def _alert_view(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {"at": alert.get("at"), "recipients": _recipients(alert), "severity": alert.get("severity")}


def _alert_changes(current: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[AlertChange]:
    """Alerts paired by name and rank (the 1st overdue alert with the 1st...), then compared."""
    def by_name(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for a in alerts:
            out.setdefault(str(a.get("name")), []).append(a)
        return out

    a, b = by_name(current), by_name(new)
    changes: list[AlertChange] = []
    for name in sorted(set(a) | set(b)):
        xs, ys = a.get(name, []), b.get(name, [])
        for i in range(max(len(xs), len(ys))):
            x = _alert_view(xs[i]) if i < len(xs) else None
            y = _alert_view(ys[i]) if i < len(ys) else None
            if x is None:
                changes.append(AlertChange(name, "now_sent", None, y))
            elif y is None:
                changes.append(AlertChange(name, "no_longer_sent", x, None))
            elif x["recipients"] != y["recipients"]:
                changes.append(AlertChange(name, "recipients", x, y))
            elif as_time(x["at"]) != as_time(y["at"]):
                changes.append(AlertChange(name, "time", x, y))
    return changes


def _label(inst: Instance | None) -> str:
    if inst is None:
        return ""
    return ", ".join(str(inst.data[f]) for f in LABEL_FIELDS if isinstance(inst.data.get(f), (str, int)))


def _deadline_changes(cur_inst: Instance | None, new_inst: Instance | None, cur: _Side, new: _Side) -> list[DeadlineChange]:
    names = list(cur_inst.deadlines if cur_inst else ())
    names += [n for n in (new_inst.deadlines if new_inst else ()) if n not in names]
    out = []
    for name in names:
        a = cur_inst.deadlines.get(name) if cur_inst else None
        b = new_inst.deadlines.get(name) if new_inst else None
        if a is not None and b is not None and (a.due, a.status, bool(a.late or a.breached_at)) == (b.due, b.status, bool(b.late or b.breached_at)):
            continue
        wf = new.definitions.workflows.get(new_inst.workflow) if new_inst else None
        if wf is None or name not in wf.deadlines:
            wf = cur.definitions.workflows.get(cur_inst.workflow) if cur_inst else None
        title = wf.deadlines[name].title if wf is not None and name in wf.deadlines and wf.deadlines[name].title else name
        out.append(DeadlineChange(name, str(title),
                                  cur.deadline(cur_inst, a) if a is not None and cur_inst is not None else None,
                                  new.deadline(new_inst, b) if b is not None and new_inst is not None else None))
    return out


def _kpis(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every KPI in a computed report (engine.reports), by name (``PROGRAMME/KPI`` for a programme's own)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(value: Any) -> None:
        if not isinstance(value, Mapping):
            return
        indicators = value.get("indicators")
        if isinstance(indicators, Mapping):
            for name, k in indicators.items():
                found[str(name)] = dict(k)
            for prog, p in (value.get("programmes") or {}).items():
                for name, k in (p.get("kpis") or {}).items():
                    found[f"{prog}/{name}"] = dict(k)
            return
        for child in value.values():
            walk(child)

    walk(report.get("metrics") or {})
    return found


def _kpi_view(k: Mapping[str, Any]) -> dict[str, Any]:
    return {f: k.get(f) for f in ("value", "status", "numerator", "denominator", "target", "unit")}


def _kpi_changes(cur: Replay, new: Replay, cur_defs: Definitions, new_defs: Definitions, period: tuple[dt.date, dt.date],
                 report: Any, notes: list[str]) -> list[KpiChange]:
    from ..reports.metrics import compute_report

    figures = []
    for rp, defs, which in ((cur, cur_defs, "current"), (new, new_defs, "new")):
        try:
            figures.append(_kpis(compute_report(rp.engine.store, defs, start=period[0], end=period[1], report=report, trend=False)))
        except QaflowError as exc:
            notes.append(f"KPIs not compared: the report cannot be worked out under the {which} configuration: {exc.message}")
            return []
    a, b = figures
    out = []
    for name in list(a) + [n for n in b if n not in a]:
        x, y = _kpi_view(a.get(name, {})), _kpi_view(b.get(name, {}))
        if x != y:
            title = (b.get(name) or a.get(name) or {}).get("title") or name
            out.append(KpiChange(name, str(title), x, y))
    return out


def _entry(steps: list[tuple[Any, ...]], index: int) -> str:
    if index >= len(steps):
        return "nothing more"
    trigger, src, dst, at = steps[index]
    return f"{trigger} ({src or 'start'} -> {dst}) on {_local(at)}"


def _mismatches(recorded: Recorded, cur: _Side) -> list[str]:
    """Where the replay under the current configuration does not give back what the store holds."""
    out: list[str] = []
    rp = cur.replay
    for event, outcome in zip(recorded.events, rp.outcomes, strict=False):
        if not outcome.ok:
            out.append(f"{event.instance}: {event.label()} on {_local(event.at)} by {event.actor} is refused: {outcome.error}")
    stored_keys = set(recorded.keys.values())
    for iid, stored in recorded.instances.items():
        key = recorded.keys[iid]
        inst = cur.instances.get(key)
        if inst is None:
            out.append(f"{iid}: not started by the replay")
            continue
        if inst.version != stored.version:
            out.append(f"{iid}: ran on {stored.workflow} version {stored.version}, the replay on version {inst.version}")
        if inst.state != stored.state:
            out.append(f"{iid}: in state '{stored.state}' in the store, '{inst.state}' in the replay")
        for name in sorted(set(stored.deadlines) | set(inst.deadlines)):
            a, b = stored.deadlines.get(name), inst.deadlines.get(name)
            if a is None or b is None or (a.due, a.status, a.late) != (b.due, b.status, b.late):
                def show(ds: DeadlineState | None) -> str:
                    return "not started" if ds is None else f"due {ds.due.isoformat()}, {ds.status}{', late' if ds.late else ''}"
                out.append(f"{iid}: deadline {name} is {show(a)} in the store, {show(b)} in the replay")
        steps = [(e.get("trigger"), e.get("from"), e.get("to"), as_time(e["at"])) for e in recorded.history[iid]]
        again = [(e.get("trigger"), e.get("from"), e.get("to"), as_time(e["at"])) for e in rp.history(key)]
        if steps != again:
            where = next((i for i, (x, y) in enumerate(zip(steps, again, strict=False)) if x != y), min(len(steps), len(again)))
            out.append(f"{iid}: history differs at entry {where + 1}: the store has {_entry(steps, where)}, "
                       f"the replay {_entry(again, where)}")
    for key in cur.instances:
        if key not in stored_keys:
            out.append(f"{key}: started by the replay, not in the store")
    stored_alerts = Counter((recorded.keys.get(str(a.get("instance_id")), ""), a.get("name")) for a in recorded.alerts)
    replay_alerts = Counter((k, a.get("name")) for k, alerts in cur.alerts.items() for a in alerts)
    by_key = recorded.by_key
    for pair in sorted(set(stored_alerts) | set(replay_alerts), key=lambda x: (str(x[0]), str(x[1]))):
        if stored_alerts[pair] != replay_alerts[pair]:
            out.append(f"{by_key.get(pair[0], pair[0])}: {stored_alerts[pair]} '{pair[1]}' alert(s) in the store, "
                       f"{replay_alerts[pair]} in the replay")
    return out


def _shown(key: str, by_key: Mapping[str, str]) -> str:
    return by_key.get(key, key)


def compare(recorded: Recorded, cur_rp: Replay, new_rp: Replay, current: Definitions, new: Definitions, *,
            period: tuple[dt.date, dt.date], report: Any = None, labels: tuple[str, str, str] = ("", "", "")) -> ImpactReport:
    """The ImpactReport of two replays of ``recorded``: ``cur_rp`` under ``current``, ``new_rp`` under ``new``."""
    cur, nxt = _Side.read(cur_rp, current), _Side.read(new_rp, new)
    by_key = recorded.by_key
    notes: list[str] = []
    # the events each instance recorded, and what each replay made of them
    events: dict[str, list[EventChange]] = {}
    for event, a, b in zip(recorded.events, cur_rp.outcomes, new_rp.outcomes, strict=False):
        if not a.same_as(b):
            events.setdefault(event.key, []).append(EventChange(event, a, b))
    keys = list(cur.instances) + [k for k in nxt.instances if k not in cur.instances]
    keys.sort(key=lambda k: (_shown(k, by_key), k))
    impacts: list[InstanceImpact] = []
    for key in keys:
        ia, ib = cur.instances.get(key), nxt.instances.get(key)
        some = ia if ia is not None else ib
        assert some is not None
        deadlines = _deadline_changes(ia, ib, cur, nxt)
        path_a, path_b = _steps(cur_rp.history(key)) if ia else [], _steps(new_rp.history(key)) if ib else []
        alerts = _alert_changes(cur.alerts.get(key, []), nxt.alerts.get(key, []))
        started = "both" if ia is not None and ib is not None else ("current" if ia is not None else "new")
        changes = events.get(key, [])
        differs = path_a != path_b
        if not (deadlines or alerts or changes or differs or started != "both"
                or (ia is not None and ib is not None and ia.state != ib.state)):
            continue
        parent_key = key.rpartition("/")[0] if "/" in key else None
        impacts.append(InstanceImpact(
            instance=_shown(key, by_key), key=key, workflow=some.workflow,
            parent=_shown(parent_key, by_key) if parent_key else None,
            label=_label(recorded.instances.get(by_key.get(key, "")) or some),
            started=started, current_state=ia.state if ia else None, new_state=ib.state if ib else None,
            deadlines=tuple(deadlines), events=tuple(changes),
            current_path=tuple(path_a) if differs else (), new_path=tuple(path_b) if differs else (),
            alerts=tuple(alerts)))
    # events on instances that neither replay has (a root whose start both refused) still count
    for key, changes in events.items():
        if key not in cur.instances and key not in nxt.instances:
            ev = changes[0].event
            impacts.append(InstanceImpact(_shown(key, by_key), key, ev.workflow, None, "", "neither", None, None, events=tuple(changes)))
    kpis = _kpi_changes(cur_rp, new_rp, current, new, period, report, notes)
    mismatches = _mismatches(recorded, cur)
    if len(mismatches) > MAX_MISMATCHES:
        mismatches = [*mismatches[:MAX_MISMATCHES], f"... and {len(mismatches) - MAX_MISMATCHES} more"]
    replayed = len(cur_rp.outcomes)
    if replayed < len(recorded.events):
        notes.append(f"{len(recorded.events) - replayed} recorded event(s) after {_local(cur_rp.until)} were not replayed")
    return ImpactReport(
        store=labels[0], current_config=labels[1], new_config=labels[2], first=recorded.first, until=cur_rp.until, period=period,
        events=replayed, instances_in_store=len(recorded.instances), totals=_totals(impacts, kpis, cur, nxt),
        instances=tuple(impacts), kpis=tuple(kpis), reproduced=not mismatches, mismatches=tuple(mismatches), notes=tuple(notes))


def _totals(impacts: list[InstanceImpact], kpis: list[KpiChange], cur: _Side, new: _Side) -> dict[str, Any]:
    moved: Counter[str] = Counter()
    late: Counter[str] = Counter()
    no_longer: Counter[str] = Counter()
    only_cur: Counter[str] = Counter()
    only_new: Counter[str] = Counter()
    events: Counter[str] = Counter()
    alerts: Counter[str] = Counter()
    for i in impacts:
        for d in i.deadlines:
            where = f"{i.workflow}.{d.deadline}"
            moved[where] += d.moved
            late[where] += d.now_late
            no_longer[where] += d.no_longer_late
        if i.started == "current":
            only_cur[i.workflow] += 1
        elif i.started == "new":
            only_new[i.workflow] += 1
        for e in i.events:
            events[e.kind] += 1
        for a in i.alerts:
            alerts[a.kind] += 1

    def nonzero(c: Counter[str]) -> dict[str, int]:
        return {k: v for k, v in sorted(c.items()) if v}

    return {
        "instances_current": len(cur.instances),
        "instances_new": len(new.instances),
        "instances_changed": len(impacts),
        "deadlines_moved": sum(moved.values()),
        "deadlines_now_late": sum(late.values()),
        "deadlines_no_longer_late": sum(no_longer.values()),
        "events_now_refused": events["now_refused"],
        "events_now_taken": events["now_taken"],
        "events_other_state": events["other_state"],
        "instances_no_longer_started": sum(only_cur.values()),
        "instances_now_started": sum(only_new.values()),
        "alerts_other_recipients": alerts["recipients"],
        "alerts_other_time": alerts["time"],
        "alerts_no_longer_sent": alerts["no_longer_sent"],
        "alerts_now_sent": alerts["now_sent"],
        "kpis_changed": len(kpis),
        "kpis_rag_changed": sum(k.rag_changed for k in kpis),
        "by_deadline": {"moved": nonzero(moved), "now_late": nonzero(late), "no_longer_late": nonzero(no_longer)},
        "by_workflow": {"no_longer_started": nonzero(only_cur), "now_started": nonzero(only_new)},
    }


def impact(store: Store, current: Definitions, new: Definitions, *, until: Any = None, period: tuple[Any, Any] | None = None,
           report: Any = None, store_label: str = "") -> ImpactReport:
    """Replay the history in ``store`` under ``current`` and under ``new``, and say what would have differed.

    The store is only read. Each replay starts from nothing on an in-memory store and takes every
    start and every fired trigger the store recorded, in time order, at its recorded time, by its
    recorded actor with their roles; deadlines breach and reminders go as the configuration says,
    up to each event and at the end up to ``until`` (default: the latest entry in the history).
    ``period`` (two dates, inclusive; default: the history's first day to ``until``) is the period
    of the KPIs compared (``report``: a report definition, default qa_report). Events a
    configuration refuses are noted with the reason and the replay goes on.
    """
    began = time.perf_counter()
    recorded = read_history(store)
    if recorded.last is None:
        raise UsageError("the store holds no instances: there is no history to replay")
    cur_rp = replay(recorded, current, until=until)
    new_rp = replay(recorded, new, until=cur_rp.until)
    if period is None:
        end = cur_rp.until.astimezone(LONDON)
        last = end.date() - dt.timedelta(days=1) if end.time() == dt.time(0) else end.date()
        first = recorded.first.astimezone(LONDON).date() if recorded.first else last
        chosen = (first, max(first, last))
    else:
        from ..reports.metrics import _as_date

        chosen = (_as_date(period[0], "start"), _as_date(period[1], "end"))
    labels = (store_label, str(getattr(current, "root", "") or ""), str(getattr(new, "root", "") or ""))
    result = compare(recorded, cur_rp, new_rp, current, new, period=chosen, report=report, labels=labels)
    return replace(result, seconds=time.perf_counter() - began)

