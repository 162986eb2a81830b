"""Metrics from workflow history: ``compute_report``, ``monthly_trend`` and ``compare_reports``.

Reads only what a Store offers everyone (``find()`` and ``history(id)``); everything that says
what to count comes from the report definition (config/reports/*.yaml) and the KPIs of
config/rules. Output is plain JSON-ready data with sorted keys; percentages have one decimal
(rounded half up) and are null when nothing was counted.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from ..calendar import london_date
from ..definitions import Definitions
from ..errors import EvaluationError, UsageError
from ..expressions import Expression
from ..kpis.catalogue import BENCHMARKS, Benchmark, benchmarks_of, programme_kpi
from ..periods import Period, month_period, months_before, period_between
from ..runtime.instance import OPEN_STATUSES, DeadlineState, Instance
from ..store.base import KpiValue
from .definition import ITEM, NAMES, KpiDef, MetricDef, ReportDef, load_report

__all__ = ["DEADLINE_COUNTS", "UNASSIGNED", "compare_reports", "compute_report", "kpi_trend", "monthly_trend", "programme_kpi_months"]

UNASSIGNED = "unassigned"
MAX_WARNINGS = 20
DEADLINE_COUNTS = ("due", "met_on_time", "met_late", "breached", "open", "paused", "cancelled", "extended", "done", "late")
_FAR = dt.date.max


# --------------------------------------------------------------------------- small helpers


def pct(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` as a percentage with one decimal, rounded half up; None if nothing counted."""
    if not denominator:
        return None
    value = (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return float(value)


def _round1(value: float) -> float:
    return float(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _key(value: Any) -> str:
    """A group or value as a JSON key: null -> 'unassigned', true/false, 4.0 -> '4'."""
    if value is None:
        return UNASSIGNED
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _sorted(value: Any) -> Any:
    """The same data with every mapping's keys in sorted order (lists keep their order)."""
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _deadline_info(ds: DeadlineState) -> dict[str, Any]:
    changes = ds.changes or ()
    return {
        "name": ds.name,
        "status": ds.status,
        "due": ds.due,
        "open": ds.status in OPEN_STATUSES,
        "late": ds.late,
        "duration": ds.duration,
        "on_time": ds.status == "met" and not ds.late,
        "anchor": ds.anchor,
        "started": london_date(ds.started_at),
        "closed": london_date(ds.closed_at),
        "closed_at": ds.closed_at,
        "breached_at": ds.breached_at,
        "breached": ds.breached_at is not None or ds.late,
        "extended": any(c.get("op") == "extend" for c in changes),
        "paused": any(c.get("op") == "pause" for c in changes),
    }


_NOT_STARTED = {"status": "not_started", "due": None, "open": False, "late": False, "duration": None, "on_time": False,
                "breached": False, "extended": False, "paused": False}


# --------------------------------------------------------------------------- instances as the metrics see them


class _Deadlines(Mapping):
    """``deadlines.NAME...`` in report expressions; a clock never started reads as status 'not_started'."""

    __slots__ = ("_infos",)

    def __init__(self, infos: Mapping[str, Any]) -> None:
        self._infos = infos

    def __getitem__(self, name: str) -> Any:
        return self._infos.get(name, _NOT_STARTED)

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)


class _Item:
    """One instance with what the metrics read from it, each part worked out once on demand."""

    __slots__ = ("_deadlines", "_entered", "_groups", "_history", "index", "inst", "store", "store_no")

    def __init__(self, store_no: int, inst: Instance, store: Any, index: _Index) -> None:
        self.store_no = store_no
        self.inst = inst
        self.store = store
        self.index = index
        self._history: list[dict[str, Any]] | None = None
        self._entered: dict[str, dt.date] | None = None
        self._deadlines: dict[str, Any] | None = None
        self._groups: dict[str, str] = {}

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.store_no, self.inst.id)

    def history(self) -> list[dict[str, Any]]:
        if self._history is None:
            self._history = list(self.store.history(self.inst.id))
        return self._history

    def entered(self) -> dict[str, dt.date]:
        """State -> the day the instance first entered it."""
        if self._entered is None:
            out: dict[str, dt.date] = {}
            for entry in self.history():
                to = entry.get("to")
                if to and to not in out and (entry.get("from") != to or entry.get("trigger") == "(start)"):
                    day = london_date(entry.get("at"))
                    if day is not None:
                        out[to] = day
            self._entered = out
        return self._entered

    def deadlines(self) -> dict[str, Any]:
        if self._deadlines is None:
            self._deadlines = {name: _deadline_info(ds) for name, ds in self.inst.deadlines.items()}
        return self._deadlines

    @property
    def terminal(self) -> bool:
        wf = self.index.definitions.workflows.get(self.inst.workflow)
        state = wf.states.get(self.inst.state) if wf else None
        return bool(state and state.terminal)

    def parent_data(self) -> Any:
        pid = self.inst.parent_id
        parent = self.index.by_id.get((self.store_no, pid)) if pid else None
        return parent.inst.data if parent is not None else None


class _Env(Mapping):
    """The names a report expression reads, built lazily (most read only ``data``)."""

    __slots__ = ("deadline", "each", "item", "period")

    def __init__(self, item: _Item, period: Period, deadline: Mapping[str, Any] | None = None) -> None:
        self.item = item
        self.period = period
        self.deadline = deadline
        self.each: Any = None  # the item of a list metric's for_each list, read as 'item'

    def get(self, key: str, default: Any = None) -> Any:
        item = self.item
        inst = item.inst
        if key == "data":
            return inst.data
        if key == "state":
            return inst.state
        if key == "deadline":
            return self.deadline
        if key == "deadlines":
            return _Deadlines(item.deadlines())
        if key == "workflow":
            return inst.workflow
        if key == "instance_id":
            return inst.id
        if key == "created":
            return london_date(inst.created_at)
        if key == "updated":
            return london_date(inst.updated_at)
        if key == "entered":
            return item.entered()
        if key == "terminal":
            return item.terminal
        if key == "parent":
            return item.parent_data()
        if key == "period_from":
            return self.period.start
        if key == "period_to":
            return self.period.end
        if key == ITEM:
            return self.each
        return default

    def __getitem__(self, key: str) -> Any:
        if key not in NAMES and key != ITEM:
            raise KeyError(key)
        return self.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)


class _Index:
    """Every instance of every store, by workflow, in a stable order."""

    def __init__(self, stores: Any, definitions: Definitions, *, instances: bool = True) -> None:
        self.definitions = definitions
        if hasattr(stores, "find"):
            stores = [stores]
        self.stores = list(stores)
        self.by_id: dict[tuple[int, str], _Item] = {}
        scope: dict[str, list[_Item]] = defaultdict(list)
        first: dt.datetime | None = None
        for store_no, store in enumerate(self.stores if instances else ()):  # instances=False: the imported KPI figures only
            for inst in store.find():
                item = _Item(store_no, inst, store, self)
                self.by_id[(store_no, inst.id)] = item
                scope[inst.workflow].append(item)
                if first is None or inst.created_at < first:
                    first = inst.created_at
        # the day the history starts (go-live, or a simulation's first day): no month before it has data
        self.first_day: dt.date | None = london_date(first)
        for items in scope.values():
            items.sort(key=lambda i: i.sort_key)
        self.scope: dict[str, list[_Item]] = dict(scope)
        # imported KPI figures by (kpi, level, level id), oldest period first; for a key in several stores, the first store's
        kpi_values: dict[tuple[str, str, str], dict[tuple[dt.date, dt.date], KpiValue]] = defaultdict(dict)
        for store in self.stores:
            for v in (store.kpi_values() if hasattr(store, "kpi_values") else ()):
                kpi_values[(v.kpi, v.level, v.level_id)].setdefault((v.period_from, v.period_to), v)
        self.kpi_values: dict[tuple[str, str, str], list[KpiValue]] = {k: [found[d] for d in sorted(found)] for k, found in kpi_values.items()}

    @property
    def size(self) -> int:
        return len(self.by_id)


class _Run:
    """One evaluation: the period, who asked for what capacity, and what was touched or went wrong."""

    def __init__(self, period: Period, *, scales: Mapping[str, Any], capacity: Mapping[str, float] | None = None,
                 warnings: list[dict[str, Any]] | None = None, touched: set[tuple[int, str]] | None = None,
                 department: bool = True, level: str = "department", group: str = "", trend: bool = True,
                 vocabularies: Mapping[str, Any] | None = None,
                 kpi_values: Mapping[tuple[str, str, str], list[KpiValue]] | None = None) -> None:
        self.period = period
        self.scales = scales
        self.vocabularies = vocabularies or {}
        self.capacity = capacity or {}
        self.warnings = warnings if warnings is not None else []
        self.touched = touched
        self.department = department
        self.level = level  # the level and group worked out (department: everything)
        self.group = group
        self.trend = trend  # KPIs with their months before (the report's trend: the command line's --no-trend turns both off)
        self.kpi_values = kpi_values or {}

    def touch(self, item: _Item) -> None:
        if self.touched is not None:
            self.touched.add(item.sort_key)

    def warn(self, metric: str, item: _Item, exc: Exception) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            message = getattr(exc, "message", str(exc))
            entry = {"metric": metric, "instance": item.inst.id, "message": message}
            if entry not in self.warnings:
                self.warnings.append(entry)

    def evaluate(self, expr: Expression, env: _Env, metric: str) -> Any:
        try:
            return expr.evaluate(env)
        except EvaluationError as exc:
            self.warn(metric, env.item, exc)
            return None

    def test(self, expr: Expression, env: _Env, metric: str) -> bool:
        try:
            return bool(expr.test(env))
        except EvaluationError as exc:
            self.warn(metric, env.item, exc)
            return False


Scope = Mapping[str, list[_Item]]


# --------------------------------------------------------------------------- selecting what a metric counts


def _in_period(expr: Expression | None, env: _Env, run: _Run, metric: str, default: Any) -> bool:
    value = run.evaluate(expr, env, metric) if expr is not None else default
    day = london_date(value)
    return day is not None and day in run.period


def _select(m: MetricDef, scope: Scope, run: _Run) -> Iterator[_Env]:
    """Instances of the metric's workflows whose period date is in the period and that meet 'where'."""
    for wf in m.workflows:
        for item in scope.get(wf, ()):
            env = _Env(item, run.period)
            if not _in_period(m.period_by, env, run, m.name, item.inst.created_at):
                continue
            if m.where is not None and not run.test(m.where, env, m.name):
                continue
            run.touch(item)
            yield env


def _select_clocks(m: MetricDef, names: Iterable[str], scope: Scope, run: _Run) -> Iterator[_Env]:
    """Each named clock (started at least once) of each instance, dated by period_by (default: its due date)."""
    names = tuple(names)
    for wf in m.workflows:
        for item in scope.get(wf, ()):
            infos = item.deadlines()
            for name in names:
                info = infos.get(name)
                if info is None:
                    continue
                env = _Env(item, run.period, info)
                if not _in_period(m.period_by, env, run, m.name, info["due"]):
                    continue
                if m.where is not None and not run.test(m.where, env, m.name):
                    continue
                run.touch(item)
                yield env


def _split(m: MetricDef, rows: Iterable[_Env], run: _Run) -> dict[str, list[_Env]]:
    groups: dict[str, list[_Env]] = defaultdict(list)
    by = m.by
    assert by is not None, "only a metric with 'by' is split"
    for env in rows:
        groups[_key(run.evaluate(by, env, m.name))].append(env)
    return groups


# --------------------------------------------------------------------------- metric kinds


def _count(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> Any:
    rows = _select(m, scope, run)
    if m.by is None:
        return sum(1 for _ in rows)
    return {k: len(v) for k, v in _split(m, rows, run).items()}


def _share_result(m: MetricDef, rows: list[_Env], run: _Run) -> Any:
    numerator = m.numerator
    assert numerator is not None, "a share has a numerator (the report schema requires one)"
    num = sum(1 for env in rows if run.test(numerator, env, m.name))
    value = pct(num, len(rows))
    return {"numerator": num, "denominator": len(rows), "pct": value} if m.detail else value


def _share(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> Any:
    rows = list(_select_clocks(m, m.deadlines, scope, run) if m.deadlines else _select(m, scope, run))
    if m.by is None:
        return _share_result(m, rows, run)
    return {k: _share_result(m, v, run) for k, v in _split(m, rows, run).items()}


def _value_key(value: Any) -> str:
    return _key(value)


def _dist(counter: Counter, m: MetricDef, scales: Mapping[str, Any], cases: int | None = None,
          vocabularies: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Counts and percentages; ``cases`` (the instances counted) is the total when values are lists, where
    one instance may count towards several values: then each percentage is the share of the instances."""
    if m.scale:
        for level in scales[m.scale].levels:
            counter.setdefault(level.key, 0)
    if m.vocabulary and vocabularies and m.vocabulary in vocabularies:
        for key in vocabularies[m.vocabulary].keys:
            counter.setdefault(key, 0)
    total = sum(counter.values()) if cases is None else cases
    out: dict[str, Any] = {
        "total": total,
        "counts": dict(counter),
        "pct": {k: pct(n, total) for k, n in counter.items()},
    }
    if m.favourable is not None:
        good = {_value_key(v) for v in m.favourable}
        out["favourable_pct"] = pct(sum(n for k, n in counter.items() if k in good), total)
    return out


def _distribution_of(m: MetricDef, rows: list[_Env], run: _Run) -> dict[str, Any]:
    scales = run.scales
    out: dict[str, Any] = {}
    for name, expr in m.values:
        counter: Counter = Counter()
        cases = 0
        for env in rows:
            value = run.evaluate(expr, env, m.name)
            if value is None:
                continue
            cases += 1
            if isinstance(value, (list, tuple)):  # tags: each distinct one once for this instance
                for key in dict.fromkeys(_value_key(v) for v in value if v is not None):
                    counter[key] += 1
            else:
                counter[_value_key(value)] += 1
        out[name] = _dist(counter, m, scales, cases, run.vocabularies)
    for name, expr in m.each:
        per: dict[str, Counter] = defaultdict(Counter)
        for key, _ in m.keys:
            per[key]  # every listed key appears, even with nothing counted
        for env in rows:
            mapping = run.evaluate(expr, env, m.name)
            if isinstance(mapping, Mapping):
                for key, value in mapping.items():
                    if value is not None:
                        per[str(key)][_value_key(value)] += 1
        out[name] = {key: _dist(counter, m, scales, vocabularies=run.vocabularies) for key, counter in per.items()}
    return out


def _distribution(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> Any:
    rows = list(_select(m, scope, run))
    if m.by is None:
        return _distribution_of(m, rows, run)
    return {k: _distribution_of(m, v, run) for k, v in _split(m, rows, run).items()}


def _cell(value: Any) -> Any:
    """A list metric's cell as plain JSON: dates as ISO text, lists joined with commas."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_cell(v)) for v in value if v is not None)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return value


def _list_of(m: MetricDef, rows: list[_Env], run: _Run) -> dict[str, Any]:
    found: list[tuple[Any, ...]] = []
    for env in rows:
        items: list[Any] = [None]
        if m.for_each is not None:
            listed = run.evaluate(m.for_each, env, m.name)
            items = list(listed) if isinstance(listed, (list, tuple)) else []
        when = london_date(run.evaluate(m.period_by, env, m.name)) if m.period_by is not None else london_date(env.item.inst.created_at)
        for item in items:
            env.each = item
            found.append((when or _FAR, env.item.sort_key, [_cell(run.evaluate(e, env, m.name)) for _, e in m.columns]))
        env.each = None
    found.sort(key=lambda row: (row[0], row[1]))
    return {"columns": [name for name, _ in m.columns], "rows": [cells for _, _, cells in found[: m.limit]], "total": len(found)}


def _list(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> Any:
    rows = list(_select(m, scope, run))
    if m.by is None:
        return _list_of(m, rows, run)
    return {k: _list_of(m, v, run) for k, v in _split(m, rows, run).items()}


def _deadline_counts(infos: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    t: dict[str, Any] = dict.fromkeys(DEADLINE_COUNTS, 0)
    for info in infos:
        status = info["status"]
        if status == "cancelled":
            t["cancelled"] += 1
        else:
            t["due"] += 1
            if status == "met":
                t["met_late" if info["late"] else "met_on_time"] += 1
            elif status == "breached":
                t["breached"] += 1
            elif status == "paused":
                t["paused"] += 1
            else:
                t["open"] += 1
        if info["extended"]:
            t["extended"] += 1
    t["done"] = t["met_on_time"] + t["met_late"]
    t["late"] = t["met_late"] + t["breached"]
    t["on_time_pct"] = pct(t["met_on_time"], t["met_on_time"] + t["met_late"] + t["breached"])
    return t


def _deadlines_of(m: MetricDef, rows: list[_Env]) -> dict[str, Any]:
    infos = [env.deadline for env in rows if env.deadline is not None]  # every row here is a clock: none is left out
    if m.combine:
        return _deadline_counts(infos)
    per: dict[str, list[Any]] = {name: [] for name in m.deadlines}
    for info in infos:
        per[info["name"]].append(info)
    return {name: _deadline_counts(infos) for name, infos in per.items()}


def _deadlines(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> Any:
    rows = list(_select_clocks(m, m.deadlines, scope, run))
    if m.by is None:
        return _deadlines_of(m, rows)
    return {k: _deadlines_of(m, v) for k, v in _split(m, rows, run).items()}


def _changes_of(m: MetricDef, rows: list[_Env], run: _Run) -> dict[str, Any]:
    scale = run.scales.get(m.scale) if m.scale else None
    to = m.to
    assert to is not None, "a 'changes' metric has 'to' (the report schema requires it)"
    out: dict[str, Any] = {}
    for name, expr in m.compare:
        t: dict[str, Any] = {"total": 0, "unchanged": 0, "changed": 0}
        if scale is not None:
            t.update(raised=0, lowered=0)
        matrix: dict[str, Counter] = defaultdict(Counter)
        for env in rows:
            before = run.evaluate(expr, env, m.name)
            after = run.evaluate(to, env, m.name)
            if before is None or after is None:
                continue
            t["total"] += 1
            matrix[_value_key(before)][_value_key(after)] += 1
            if before == after:
                t["unchanged"] += 1
                continue
            t["changed"] += 1
            if scale is not None:
                rb, ra = scale.rank(before), scale.rank(after)
                if rb is not None and ra is not None:
                    t["raised" if ra > rb else "lowered"] += 1
        t["matrix"] = {k: dict(v) for k, v in matrix.items()}
        out[name] = t
    return out


def _changes(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> Any:
    rows = list(_select(m, scope, run))
    if m.by is None:
        return _changes_of(m, rows, run)
    return {k: _changes_of(m, v, run) for k, v in _split(m, rows, run).items()}


# -- workload


def _mondays(period: Period) -> list[dt.date]:
    first = period.start - dt.timedelta(days=period.start.weekday())
    out = []
    while first <= period.end:
        out.append(first)
        first += dt.timedelta(days=7)
    return out


def _holders(item: _Item, person: Any, env: _Env, run: _Run, metric: str) -> list[tuple[Any, dt.date | None, dt.date | None]]:
    """Who held the role and when: (person, from, to). A plain data.FIELD is followed through the history."""
    if person.field is None:
        who = run.evaluate(person.person, env, metric)
        return [(who, None, None)] if who is not None else []
    field = person.field
    segments: list[tuple[Any, dt.date | None, dt.date | None]] = []
    current: Any = None
    since: dt.date | None = None
    seen = False
    for entry in item.history():
        day = london_date(entry.get("at"))
        if entry.get("trigger") == "(start)":
            payload = entry.get("payload") or {}
            if isinstance(payload, Mapping) and payload.get(field) is not None:
                current, since, seen = payload.get(field), day, True
        for action in entry.get("actions") or ():
            if isinstance(action, Mapping) and action.get("action") == "set" and action.get("field") == field:
                new = action.get("value")
                if seen and new != current and current is not None:
                    segments.append((current, since, day))
                current, since, seen = new, day, True
    if not seen:
        current = item.inst.data.get(field)
    if current is not None:
        segments.append((current, since, None))
    return segments


def _work_end(item: _Item, person: Any) -> dt.date | None:
    ends = []
    if person.until_deadline:
        info = item.deadlines().get(person.until_deadline)
        if info is not None and info["status"] in ("met", "cancelled") and info["closed"] is not None:
            ends.append(info["closed"])
    if person.until_state:
        entered = item.entered()
        ends += [entered[s] for s in person.until_state if s in entered]
    if item.terminal:
        day = item.entered().get(item.inst.state) or london_date(item.inst.updated_at)
        if day is not None:
            ends.append(day)
    return min(ends) if ends else None


def _workload(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> dict[str, Any]:
    mondays = _mondays(run.period)
    loads: dict[str, Counter] = defaultdict(Counter)
    for wf in m.workflows:
        for item in scope.get(wf, ()):
            env = _Env(item, run.period)
            if m.where is not None and not run.test(m.where, env, m.name):
                continue
            start = london_date(run.evaluate(m.start, env, m.name)) if m.start is not None else None
            start = start or london_date(item.inst.created_at)
            if start is None or start > run.period.end:
                continue
            busy: set[tuple[str, dt.date]] = set()
            for person in m.people:
                end = _work_end(item, person) or _FAR
                for who, seg_from, seg_to in _holders(item, person, env, run, m.name):
                    lo = max(start, seg_from or start)
                    hi = min(end, seg_to or _FAR)
                    if hi < lo:
                        continue
                    for monday in mondays:
                        if lo <= monday + dt.timedelta(days=6) and hi >= monday:
                            busy.add((_key(who), monday))
            if busy:
                run.touch(item)
            for who, monday in busy:
                loads[who][monday] += 1
    star = run.capacity.get("*")
    default = float(star) if star is not None else (float(m.capacity) if m.capacity is not None else None)
    people: dict[str, Any] = {}
    for who, weeks in loads.items():
        given = run.capacity.get(who)
        cap = float(given) if given is not None else default
        values = [weeks.get(monday, 0) for monday in mondays]
        people[who] = {
            "weeks": {monday.isoformat(): weeks.get(monday, 0) for monday in mondays},
            "peak": max(values) if values else 0,
            "average": _round1(sum(values) / len(values)) if values else 0.0,
            "capacity": cap,
            "weeks_over_capacity": sum(1 for v in values if cap is not None and v > cap),
        }
    return {
        "capacity": default,
        "weeks": [monday.isoformat() for monday in mondays],
        "people": people,
        "people_over_capacity": sum(1 for p in people.values() if p["weeks_over_capacity"]),
        "peak": max((p["peak"] for p in people.values()), default=0),
    }


# -- KPIs


def rag(value: float | None, target: float | None, direction: str, tolerance: float) -> str:
    """green: on target; amber: missed by at most ``tolerance``; red: further off; no_data / no_target."""
    if value is None:
        return "no_data"
    if target is None:
        return "no_target"
    gap = value - target if direction == "lower_is_better" else target - value
    if gap <= 0:
        return "green"
    return "amber" if gap <= tolerance + 1e-9 else "red"


def _kpi_figures(k: KpiDef, scope: Scope, run: _Run) -> tuple[int, int]:
    num = den = 0
    metric = f"kpi {k.name}"
    for wf in k.workflows:
        for item in scope.get(wf, ()):
            if k.per_deadline:
                infos = item.deadlines()
                envs = []
                for name in k.per_deadline:
                    info = infos.get(name)
                    # a clock still running has no outcome yet: it is left out until it has one
                    if info is None or info["status"] in ("open", "paused"):
                        continue
                    envs.append(_Env(item, run.period, info))
            else:
                envs = [_Env(item, run.period)]
            for env in envs:
                default = env.deadline["due"] if env.deadline is not None else item.inst.created_at
                if not _in_period(k.period_by, env, run, metric, default):
                    continue
                if k.population is not None and not run.test(k.population, env, metric):
                    continue
                run.touch(item)
                den += 1
                if k.numerator is not None and run.test(k.numerator, env, metric):
                    num += 1
    return num, den


@dataclass(frozen=True)
class _Kpi:
    """A KPI as one table of the report shows it: its definition with the target, tolerance and benchmarks that apply there."""

    id: str
    title: str
    unit: str
    direction: str
    target: float | None
    tolerance: float
    values: str  # history | imported
    source: str = ""
    kdef: KpiDef | None = None  # for a KPI computed from history
    benchmarks: tuple[Benchmark, ...] = ()
    combine: str = "add_up"  # add_up | latest: how an imported KPI's months make a longer period's figure


def _tolerance(m: MetricDef, kid: str, *own: Any) -> float:
    """The report's tolerance for this KPI, else the first of ``own`` given (a programme's, the KPI's), else the report's default."""
    if kid in m.tolerances:
        return m.tolerances[kid]
    return next((float(t) for t in own if isinstance(t, (int, float)) and not isinstance(t, bool)), m.tolerance)


def _target(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _is_month(v: KpiValue) -> bool:
    return v.period_from.day == 1 and v.period_to == month_period(v.period_from.year, v.period_from.month).end


def _imported_figure(values: list[KpiValue], period: Period, unit: str, combine: str = "add_up") -> dict[str, Any] | None:
    """The figure for the period from stored values: the value stored for exactly these days; else, from the months
    inside it, their counts added up (``combine: add_up``, a percentage or rate with every month's numerator and
    denominator) or the latest month's figure. None when nothing was imported for the period."""
    exact = [v for v in values if v.period_from == period.start and v.period_to == period.end]
    if exact:
        v = exact[-1]
        return {"value": v.value, "numerator": v.numerator, "denominator": v.denominator, "basis": "period", "months": [], "row": v}
    months = [v for v in values if _is_month(v) and period.start <= v.period_from and v.period_to <= period.end]
    if not months:
        return None
    counted = all(v.numerator is not None and v.denominator is not None for v in months)
    if combine == "add_up" and unit in ("percent", "rate_per_10000") and counted:
        num = sum(v.numerator or 0 for v in months)
        den = sum(v.denominator or 0 for v in months)
        value = pct(num, den) if unit == "percent" else (_round1(num * 10_000 / den) if den else None)
        return {"value": value, "numerator": num, "denominator": den, "basis": "months", "months": [v.period for v in months], "row": months[-1]}
    v = months[-1]
    return {"value": v.value, "numerator": v.numerator, "denominator": v.denominator, "basis": "latest_month", "months": [v.period], "row": v}


def _benchmarks(k: _Kpi, values: list[KpiValue], row: KpiValue | None, period: Period) -> dict[str, Any]:
    """Each benchmark known for the figure: from the imported value used, else the latest imported before the period's
    end that has it, else the KPI's definition. A benchmark the KPI names but nobody gave is null."""
    out: dict[str, Any] = {}
    earlier = [v for v in values if v.period_to <= period.end]
    declared = {b.name: b for b in k.benchmarks}
    for name in BENCHMARKS:
        found = None
        for v in ([row] if row is not None else []) + earlier[::-1]:
            if getattr(v, name) is not None:
                found = {"value": getattr(v, name), "period": v.benchmark_period or v.period, "source": v.source}
                break
        if found is None and name in declared and declared[name].value is not None:
            b = declared[name]
            found = {"value": b.value, "period": b.period, "source": b.source}
        if found is not None or name in declared:
            out[name] = found or {"value": None, "period": "", "source": ""}
    return out


def _months_to(period: Period, count: int) -> list[Period]:
    """The ``count`` calendar months ending with the period's last month."""
    last = month_period(period.end.year, period.end.month)
    return months_before(last, count - 1) if count > 0 else []


def _computed_value(k: _Kpi, scope: Scope, run: _Run) -> tuple[int, int, float | None]:
    assert k.kdef is not None
    num, den = _kpi_figures(k.kdef, scope, run)
    return num, den, (float(num) if k.unit == "count" else pct(num, den))


def _kpi_entry(k: _Kpi, scope: Scope, run: _Run, *, series: list[KpiValue], where: tuple[str, str], trend_months: int) -> dict[str, Any]:
    """One KPI's line of the report: figure, target, RAG status, benchmarks, and its trend month by month."""
    entry: dict[str, Any] = {"title": k.title, "unit": k.unit, "direction": k.direction, "target": k.target, "tolerance": k.tolerance,
                             "values": k.values, "source": k.source}
    row = None
    if k.values == "imported":
        figure = _imported_figure(series, run.period, k.unit, k.combine)
        if figure is None:
            entry.update(numerator=None, denominator=None, value=None, status="not_imported")
        else:
            row = figure["row"]
            entry.update(numerator=figure["numerator"], denominator=figure["denominator"], value=figure["value"],
                         status=rag(figure["value"], k.target, k.direction, k.tolerance))
            # basis: period (a figure imported for exactly these days), months (the months' counts added up) or
            # latest_month (the latest month's figure); period: the days the figure describes
            days = f"{figure['months'][0]}..{figure['months'][-1]}" if figure["basis"] == "months" else row.period
            entry["imported"] = {"basis": figure["basis"], "months": figure["months"], "period": days, "level": where[0], "level_id": where[1],
                                 "source": row.source, "note": row.note, "from": row.imported_from, "at": row.imported_at}
    elif k.kdef is not None:
        num, den, value = _computed_value(k, scope, run)
        entry.update(numerator=num, denominator=den, value=value, status=rag(value, k.target, k.direction, k.tolerance))
    else:  # a programme names a rules KPI that is not defined (qaflow validate reports it)
        entry.update(numerator=None, denominator=None, value=None, status="not_computed")
    entry["benchmarks"] = _benchmarks(k, series, row, run.period)
    if run.trend and trend_months > 0 and (k.kdef is not None or k.values == "imported"):
        entry["trend"] = _kpi_trend(k, scope, run, series, trend_months)
    return entry


def _kpi_trend(k: _Kpi, scope: Scope, run: _Run, series: list[KpiValue], count: int) -> dict[str, Any]:
    """Month -> {value, status} for the ``count`` months ending with the period's last month."""
    out = {}
    monthly = {v.period: v for v in series if _is_month(v)}
    for month in _months_to(run.period, count):
        if k.values == "imported":
            v = monthly.get(month.code)
            value = v.value if v is not None else None
        else:
            value = _computed_value(k, scope, _Run(month, scales=run.scales, vocabularies=run.vocabularies, trend=False))[2]
        out[month.code] = {"value": value, "status": rag(value, k.target, k.direction, k.tolerance)}
    return out


def _rules_kpi(m: MetricDef, kdef: KpiDef) -> _Kpi:
    return _Kpi(kdef.name, kdef.title, kdef.unit, kdef.direction, kdef.target, _tolerance(m, kdef.name, kdef.tolerance), kdef.values,
                kdef.source, kdef if not kdef.imported else None, kdef.benchmarks, kdef.combine)


def _programme_kpi(m: MetricDef, prog_id: str, spec: Mapping[str, Any], report: ReportDef) -> _Kpi:
    """A KPI of a programme's list, with the programme's target (and tolerance and benchmarks, where it gives them)."""
    kid = str(spec.get("kpi"))
    kdef = report.kpis.get(kid) if spec.get("defined_in") == "rules" else None
    if kdef is not None:
        benchmarks = benchmarks_of(spec["benchmarks"]) if "benchmarks" in spec else kdef.benchmarks
        return _Kpi(kid, kdef.title, str(spec.get("unit", kdef.unit)), str(spec.get("direction", kdef.direction)), _target(spec.get("target")),
                    _tolerance(m, kid, spec.get("tolerance"), kdef.tolerance), kdef.values, str(spec.get("source") or kdef.source),
                    kdef if not kdef.imported else None, benchmarks, kdef.combine)
    own = programme_kpi(prog_id, spec)
    values = "imported" if spec.get("defined_in") == "programme" else "history"
    return _Kpi(kid, own.title, own.unit, own.direction, own.target, _tolerance(m, kid, own.tolerance), values, own.source, None, own.benchmarks,
                own.combine)


def _series(run: _Run, kid: str, *wheres: tuple[str, str]) -> tuple[list[KpiValue], tuple[str, str]]:
    """The imported values of a KPI at the first of ``wheres`` (level, level id) that has any."""
    for where in wheres:
        found = run.kpi_values.get((kid, *where))
        if found:
            return found, where
    return [], wheres[0]


#: a targeted audit is delivered when its findings are reported
_DELIVERED = {"thematic_audit": "report", "multi_agency_audit": "findings"}


def _audit_row(item: _Item | None, wf: str) -> dict[str, Any]:
    if item is None:
        return {"instance": None, "state": None, "started_on": None, "delivered": False}
    data = item.inst.data
    joined = data.get("joined") or {}
    started = joined.get("on") or str(london_date(item.inst.created_at))
    return {"instance": item.inst.id, "state": item.inst.state, "started_on": started,
            "delivered": data.get(_DELIVERED.get(wf, "report")) is not None}


def _delivery(m: MetricDef, prog: Any, scope: Scope, run: _Run) -> dict[str, Any]:
    """Planned vs delivered: the programme's targeted audits planned for a month in the period, and the proposed audits
    that joined it, each with the instance that carries it out (if any) and whether its findings are reported; and its
    surveys, sent and answered in the period, against the target response rate."""
    first, last = run.period.start.isoformat()[:7], run.period.end.isoformat()[:7]
    audits: list[dict[str, Any]] = []
    used: set[str] = set()
    for entry in prog.targeted_audits:
        month = str(entry.get("month") or "")
        if not first <= month <= last:
            continue
        wf = str(entry.get("workflow") or "")
        theme = entry.get("theme")
        found = None
        for item in scope.get(wf, ()):
            data = item.inst.data
            if wf == "thematic_audit":
                ours = data.get("programme") == prog.id and data.get("theme") == theme and data.get("proposal") is None
            else:
                ours = data.get("topic") == theme
            if ours and item.inst.id not in used:
                found = item
                break
        if found is not None:
            used.add(found.inst.id)
        audits.append({"id": entry.get("id"), "title": theme, "workflow": wf, "month": month, "from": "programme", **_audit_row(found, wf)})
    for item in scope.get("thematic_audit", ()):
        joined = item.inst.data.get("joined") or {}
        if joined.get("programme") == prog.id and first <= str(joined.get("month") or "")[:7] <= last:
            proposal = item.inst.data.get("proposal") or {}
            audits.append({"id": item.inst.id, "title": item.inst.data.get("theme"), "workflow": "thematic_audit",
                           "month": str(joined["month"])[:7], "from": f"indicator: {proposal.get('rule_title') or proposal.get('rule')}",
                           **_audit_row(item, "thematic_audit")})
    surveys = []
    for entry in prog.surveys:
        sent = answered = 0
        for item in scope.get(str(entry.get("workflow") or "feedback_survey"), ()):
            data = item.inst.data
            day = str(data.get("sent_on") or london_date(item.inst.created_at))
            if data.get("service") == prog.service and data.get("point") == entry.get("point") and \
                    run.period.start.isoformat() <= day <= run.period.end.isoformat():
                sent += 1
                answered += data.get("response") is not None
        target = _target(entry.get("target_response_rate"))
        rate = pct(answered, sent)
        surveys.append({"id": entry.get("id"), "point": entry.get("point"), "sent": sent, "responded": answered, "response_rate": rate,
                        "target": target, "status": rag(rate, target, "higher_is_better", m.tolerance)})
    return {"planned": len(audits), "started": sum(1 for a in audits if a["instance"]), "delivered": sum(1 for a in audits if a["delivered"]),
            "audits": audits, "surveys": surveys}


def _kpis(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> dict[str, Any]:
    indicators = {}
    where = ("department", "") if run.department else (run.level, run.group)
    for name, kdef in report.kpis.items():
        if m.only and name not in m.only:
            continue
        series, found = _series(run, name, where) if kdef.imported else ([], where)
        indicators[name] = _kpi_entry(_rules_kpi(m, kdef), scope, run, series=series, where=found,
                                      trend_months=m.trend_months if run.department else 0)
    out: dict[str, Any] = {"indicators": indicators}
    if not (m.programmes and run.department):
        return out
    programmes = {}
    start, end = run.period.start.isoformat(), run.period.end.isoformat()
    service_expr = report.levels.get("service")
    for prog in report.programmes:
        if prog.end < start or prog.start > end:
            continue
        sub: dict[str, list[_Item]] = {}
        for wf, items in scope.items():
            if service_expr is None:
                sub[wf] = items
            else:
                sub[wf] = [i for i in items if _group_of(i, "service", service_expr, run) == prog.service]
        entries = {}
        for spec in prog.kpis:
            k = _programme_kpi(m, prog.id, spec, report)
            # a service's figure, else the department's (a service-wide indicator is often extracted for the whole council)
            series, found = _series(run, k.id, ("service", prog.service), ("department", "")) if k.values == "imported" else ([], ("service", prog.service))
            entry = _kpi_entry(k, sub, run, series=series, where=found, trend_months=m.trend_months)
            entry["defined_in"] = str(spec.get("defined_in", "rules"))
            entries[k.id] = entry
        programmes[prog.id] = {"title": prog.title, "service": prog.service, "from": prog.start, "to": prog.end, "kpis": entries,
                               "delivery": _delivery(m, prog, scope, run)}
    out["programmes"] = programmes
    return out


def _group(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> dict[str, Any]:
    return {child.name: _compute(child, scope, run, report) for child in m.children}


_KINDS = {
    "count": _count,
    "share": _share,
    "distribution": _distribution,
    "deadlines": _deadlines,
    "changes": _changes,
    "workload": _workload,
    "kpis": _kpis,
    "list": _list,
    "group": _group,
}


def _compute(m: MetricDef, scope: Scope, run: _Run, report: ReportDef) -> Any:
    return _KINDS[m.kind](m, scope, run, report)


# --------------------------------------------------------------------------- grouping


def _group_of(item: _Item, level: str, expr: Expression, run: _Run) -> str:
    found = item._groups.get(level)
    if found is None:
        found = item._groups[level] = _key(run.evaluate(expr, _Env(item, run.period), f"level {level}"))
    return found


def _partition(index: _Index, keys: set[tuple[int, str]], level: str, expr: Expression, run: _Run) -> dict[str, dict[str, list[_Item]]]:
    """Every group that something in the period belongs to, with all of that group's instances."""
    groups = {_group_of(index.by_id[k], level, expr, run) for k in keys}
    parts: dict[str, dict[str, list[_Item]]] = {g: defaultdict(list) for g in groups}
    for wf, items in index.scope.items():
        for item in items:
            g = _group_of(item, level, expr, run)
            if g in parts:
                parts[g][wf].append(item)
    return parts


# --------------------------------------------------------------------------- public API


def _new_run(index: _Index, period: Period, capacity: Mapping[str, float] | None, **kw: Any) -> _Run:
    return _Run(period, scales=index.definitions.scales, capacity=capacity, kpi_values=index.kpi_values,
                vocabularies=index.definitions.vocabularies, **kw)


def _as_date(value: Any, what: str) -> dt.date:
    day = london_date(value)
    if day is None:
        raise UsageError(f"{what} should be a date, found {value!r}")
    return day


def _deadline_titles(report: ReportDef, definitions: Definitions) -> dict[str, str]:
    titles: dict[str, str] = {}

    def walk(ms: Iterable[MetricDef]) -> None:
        for m in ms:
            for wf in m.workflows:
                wdef = definitions.workflows.get(wf)
                for name in m.deadlines:
                    if wdef is not None and name in wdef.deadlines and name not in titles:
                        titles[name] = wdef.deadlines[name].title or name
            walk(m.children)

    walk(report.metrics)
    return titles


def compute_report(
    stores: Any,
    definitions: Definitions,
    *,
    start: dt.date,
    end: dt.date,
    level: str = "department",
    capacity: Mapping[str, float] | None = None,
    report: str | Path | ReportDef | None = None,
    trend: bool = True,
) -> dict[str, Any]:
    """The report for ``start``..``end`` (inclusive) over one Store or several (one per authority).

    ``level``: department (everything) or a level of the report's ``levels`` (service, team,
    practitioner): every metric is then also given per group under ``by_group``. ``capacity``:
    weekly capacity per person for workload metrics (key ``"*"``: everyone else). ``report``: a
    report id in <config>/reports, a file, or a loaded ReportDef (default: qa_report).
    ``trend``: include the monthly trajectory (``monthly_trend``).
    """
    rdef = load_report(definitions, report)
    start, end = _as_date(start, "start"), _as_date(end, "end")
    if end < start:
        raise UsageError(f"the period ends ({end}) before it starts ({start})")
    if level != "department" and level not in rdef.levels:
        raise UsageError(f"unknown level '{level}' (known: {', '.join(['department', *sorted(rdef.levels)])})")
    index = _Index(stores, definitions)
    return _report(index, rdef, period_between(start, end), level, capacity, trend)


def _report(index: _Index, rdef: ReportDef, period: Period, level: str, capacity: Mapping[str, float] | None, trend: bool) -> dict[str, Any]:
    warnings: list[dict[str, Any]] = []
    touched: set[tuple[int, str]] = set()
    run = _new_run(index, period, capacity, warnings=warnings, touched=touched, trend=trend)
    metrics = {m.name: _compute(m, index.scope, run, rdef) for m in rdef.metrics}
    out: dict[str, Any] = {
        "report": rdef.id,
        "title": rdef.title,
        "period": period.to_dict(),
        "level": level,
        "metrics": metrics,
        "source": {"stores": len(index.stores), "instances": index.size, "instances_in_period": len(touched)},
        "about": {m.name: m.about() for m in rdef.metrics},
        "order": [m.name for m in rdef.metrics],
        "labels": {**rdef.labels, "deadlines": _deadline_titles(rdef, index.definitions)},
        "presentation": rdef.presentation,
    }
    if level != "department":
        expr = rdef.levels[level]
        parts = _partition(index, touched, level, expr, run)
        by_group = {}
        for group, scope in parts.items():
            grun = _new_run(index, period, capacity, warnings=warnings, department=False, level=level, group=group, trend=False)
            by_group[group] = {m.name: _compute(m, scope, grun, rdef) for m in rdef.metrics}
        out["groups"] = sorted(parts)
        out["by_group"] = by_group
    if trend and rdef.trend_series:
        out["trend"] = _trend(index, rdef, period, rdef.trend_months_before, capacity)
    out["warnings"] = sorted(warnings, key=lambda w: (w["metric"], w["instance"], w["message"]))
    return _sorted(out)


def _leaf(value: Any, path: list[str]) -> float | None:
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if isinstance(value, Mapping) and "pct" in value and not isinstance(value["pct"], Mapping):
        value = value["pct"]  # a share with detail
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _trend(index: _Index, rdef: ReportDef, period: Period, count: int, capacity: Mapping[str, float] | None) -> dict[str, Any]:
    # months before the period that end before the history starts would show nothing but zeros
    first = index.first_day
    months = [m for m in months_before(period, count) if first is None or m.end >= first or m.start >= period.start.replace(day=1)]
    needed = []
    for _, path, _, _ in rdef.trend_series:
        head = path.split(".")[0]
        m = rdef.metric(head)
        if m is not None and m not in needed:
            needed.append(m)
    series: dict[str, Any] = {}
    for name, path, title, kpi in rdef.trend_series:
        k = rdef.kpis.get(kpi) if kpi else None
        series[name] = {"title": title, "metric": path, "values": [],
                        "target": k.target if k else None, "direction": k.direction if k else None}
    for month in months:
        run = _new_run(index, month, capacity, trend=False)
        computed = {m.name: _compute(m, index.scope, run, rdef) for m in needed}
        for name, path, _, _ in rdef.trend_series:
            series[name]["values"].append(_leaf(computed, path.split(".")))
    return {
        "months": [m.start.strftime("%Y-%m") for m in months],
        "in_period": [m.start >= period.start.replace(day=1) and m.start <= period.end for m in months],
        "series": series,
    }


def monthly_trend(
    stores: Any,
    definitions: Definitions,
    *,
    start: dt.date,
    end: dt.date,
    months_before: int | None = None,
    capacity: Mapping[str, float] | None = None,
    report: str | Path | ReportDef | None = None,
) -> dict[str, Any]:
    """The report's trend series month by month: ``months_before`` whole months before the period
    (default: the report's ``trend.months_before``) and every month the period touches. Months
    before the period that end before the first instance in the stores was started are left out:
    there is no history for them (before go-live, or before a simulation's first day).

    Returns ``{"months": ["2026-05", ...], "in_period": [false, ..., true], "series": {name:
    {"title", "metric", "values": [...], "target", "direction"}}}``.
    """
    rdef = load_report(definitions, report)
    start, end = _as_date(start, "start"), _as_date(end, "end")
    index = _Index(stores, definitions)
    count = rdef.trend_months_before if months_before is None else months_before
    return _sorted(_trend(index, rdef, period_between(start, end), count, capacity))


def kpi_trend(
    stores: Any,
    definitions: Definitions,
    kpi: str,
    *,
    end: dt.date,
    months: int = 6,
    level: str = "department",
    level_id: str = "",
    programme: str | None = None,
    report: str | Path | ReportDef | None = None,
) -> list[dict[str, Any]]:
    """A KPI's figure and RAG status for each of the ``months`` calendar months ending with the month of ``end``,
    oldest first: ``[{"month": "2026-10", "value": 85.5, "status": "amber"}, ...]`` (status ``no_data`` for a month
    with no figure).

    For whatever acts on a run of statuses; "red for the last 2 months" is
    ``all(m["status"] == "red" for m in kpi_trend(...)[-2:])``. ``programme``: with that programme's target and
    tolerance, and for a KPI computed from history only its service's cases (imported figures: its service's, else
    the department's). Without it, the KPI's own target; imported figures at ``level`` / ``level_id``.
    """
    rdef = load_report(definitions, report)
    index = _Index(stores, definitions)
    m = next((x for x in rdef.metrics if x.kind == "kpis"), None) or MetricDef(name="kpis", kind="kpis")
    end = _as_date(end, "end")
    run = _new_run(index, month_period(end.year, end.month), None)
    scope: Scope = index.scope
    wheres: tuple[tuple[str, str], ...] = ((level, level_id),)
    if programme is not None:
        prog = next((p for p in rdef.programmes if p.id == programme), None)
        if prog is None:
            raise UsageError(f"no programme '{programme}' (known: {', '.join(p.id for p in rdef.programmes) or 'none'})")
        spec = next((e for e in prog.kpis if e.get("kpi") == kpi), None)
        if spec is None:
            raise UsageError(f"programme '{programme}' lists no KPI '{kpi}'")
        k = _programme_kpi(m, prog.id, spec, rdef)
        service_expr = rdef.levels.get("service")
        if service_expr is not None:
            scope = {wf: [i for i in items if _group_of(i, "service", service_expr, run) == prog.service] for wf, items in index.scope.items()}
        wheres = (("service", prog.service), ("department", ""))
    elif kpi in rdef.kpis:
        k = _rules_kpi(m, rdef.kpis[kpi])
    elif kpi in rdef.catalogue:
        own = rdef.catalogue[kpi]
        k = _Kpi(kpi, own.title, own.unit, own.direction, own.target, _tolerance(m, kpi, own.tolerance), own.values, own.source, None,
                 own.benchmarks, own.combine)
    else:
        raise UsageError(f"no KPI '{kpi}' in config/rules or the programmes")
    series = _series(run, kpi, *wheres)[0] if k.values == "imported" else []
    return [{"month": month, **figure} for month, figure in _kpi_trend(k, scope, run, series, months).items()]


def programme_kpi_months(
    stores: Any,
    definitions: Definitions,
    *,
    at: dt.date,
    months: int = 12,
    kpis: Iterable[str] | None = None,
    report: str | Path | ReportDef | None = None,
) -> list[dict[str, Any]]:
    """Each programme KPI's figures month by month, as an indicator rule reads them (engine.kpis.watch).

    For every KPI a programme lists (only those in ``kpis``, if given): the ``months`` calendar months ending
    with the last month that has a figure, each ``{month, value, status, benchmarks: {name: value}}`` against
    the programme's target and tolerance. An imported KPI's last month is the latest with a monthly figure at or
    before the month of ``at`` (the service's figures, else the department's); a KPI computed from history ends
    with the last whole month before ``at``. Only programmes whose period holds that last month are read.
    """
    rdef = load_report(definitions, report)
    wanted = set(kpis) if kpis is not None else None
    history = any(spec.get("defined_in") == "rules" and str(spec.get("kpi")) in rdef.kpis and not rdef.kpis[str(spec.get("kpi"))].imported
                  for prog in rdef.programmes for spec in prog.kpis if wanted is None or spec.get("kpi") in wanted)
    index = _Index(stores, definitions, instances=history)  # figures imported only: no instance need be read
    m = next((x for x in rdef.metrics if x.kind == "kpis"), None) or MetricDef(name="kpis", kind="kpis")
    at = _as_date(at, "at")
    this_month = month_period(at.year, at.month)
    last_whole = months_before(this_month, 1)[0]
    service_expr = rdef.levels.get("service")
    out: list[dict[str, Any]] = []
    for prog in rdef.programmes:
        start, end = dt.date.fromisoformat(prog.start), dt.date.fromisoformat(prog.end)
        run = _new_run(index, this_month, None, trend=False)
        scope: Scope | None = None
        for spec in prog.kpis:
            kid = str(spec.get("kpi"))
            if wanted is not None and kid not in wanted:
                continue
            k = _programme_kpi(m, prog.id, spec, rdef)
            if k.values == "imported":
                series, where = _series(run, kid, ("service", prog.service), ("department", ""))
                monthly = [v for v in series if _is_month(v) and v.period_from <= this_month.end]
                if not monthly:
                    continue
                last = monthly[-1]
                through = month_period(last.period_from.year, last.period_from.month)
            elif k.kdef is not None:
                through, where, monthly = last_whole, ("service", prog.service), []
            else:
                continue
            if not start <= through.start <= end:
                continue  # the figures end outside this programme's quarter
            if k.values != "imported" and scope is None:
                scope = index.scope if service_expr is None else {
                    wf: [i for i in items if _group_of(i, "service", service_expr, run) == prog.service] for wf, items in index.scope.items()}
            by_month = {v.period: v for v in monthly}
            declared = {b.name: b.value for b in k.benchmarks if b.value is not None}
            rows = []
            for month, figure in _kpi_trend(k, scope or {}, _new_run(index, through, None, trend=False), monthly, months).items():
                row = by_month.get(month)
                marks = {name: (getattr(row, name, None) if row is not None else None) for name in BENCHMARKS}
                rows.append({"month": month, **figure,
                             "benchmarks": {n: (v if v is not None else declared.get(n)) for n, v in marks.items()
                                            if v is not None or declared.get(n) is not None}})
            out.append({"programme": prog.id, "service": prog.service, "service_manager": prog.service_manager, "kpi": kid,
                        "title": k.title, "unit": k.unit, "direction": k.direction, "target": k.target, "tolerance": k.tolerance,
                        "values": k.values, "level": where[0], "level_id": where[1], "months": rows})
    return out


# --------------------------------------------------------------------------- comparing


_SKIP = ("about", "labels", "presentation", "source", "warnings")


def _diff(a: Any, b: Any) -> Any:
    numbers = (int, float)
    a_num = isinstance(a, numbers) and not isinstance(a, bool)
    b_num = isinstance(b, numbers) and not isinstance(b, bool)
    if (a_num or a is None) and (b_num or b is None) and (a_num or b_num):
        diff = None
        if a_num and b_num:
            diff = b - a if isinstance(a, int) and isinstance(b, int) else _round1(b - a)
        return {"a": a, "b": b, "difference": diff}
    if (isinstance(a, Mapping) and isinstance(b, Mapping)) or (isinstance(a, Mapping) and b is None) or (a is None and isinstance(b, Mapping)):
        a, b = a or {}, b or {}
        return {k: _diff(a.get(k), b.get(k)) for k in sorted(set(a) | set(b), key=str)}
    return {"a": a, "b": b, "same": a == b}


def _changed(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, Mapping):
        if set(node) == {"a", "b", "difference"}:
            if node["difference"] not in (0, 0.0) or (node["a"] is None) != (node["b"] is None):
                out.append(path)
            return
        if set(node) == {"a", "b", "same"}:
            if not node["same"]:
                out.append(path)
            return
        for k, v in node.items():
            _changed(v, f"{path}.{k}" if path else str(k), out)


def compare_reports(a: Mapping[str, Any], b: Mapping[str, Any], *, labels: tuple[str, str] = ("a", "b")) -> dict[str, Any]:
    """Two reports side by side: every figure as ``{"a", "b", "difference"}`` (b - a, one decimal),
    other values as ``{"a", "b", "same"}``; ``changed`` lists the dotted paths that differ."""
    metrics = _diff(a.get("metrics") or {}, b.get("metrics") or {})
    out: dict[str, Any] = {
        "labels": {"a": labels[0], "b": labels[1]},
        "period": {"a": a.get("period"), "b": b.get("period")},
        "metrics": metrics,
    }
    if "trend" in a or "trend" in b:
        out["trend"] = {"a": a.get("trend"), "b": b.get("trend")}
    changed: list[str] = []
    _changed(metrics, "", changed)
    out["changed"] = sorted(changed)
    return _sorted(out)
