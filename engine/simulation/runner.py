"""The simulator: drives the real Engine on a virtual clock, one authority at a time (or one per process).

Per authority: a synthetic population (seeded), one ``Engine`` with its own in-memory store, and one heap
of things that will happen, ordered by time: the month's start (case turnover, arrivals drawn), the
monthly selection (``engine.allocation``), arrivals and planned starts, and people's actions scheduled
by the behaviour rules. Before each of them, every deadline due is fired with ``Engine.advance`` (so
breaches happen in order, and the rules react to them). Every change the engine commits is seen by the
store wrapper below, which tells the runner which instances to look at again.

Nothing here knows about audits: the rules decide who does what.

Random numbers are drawn per entity (common random numbers): each instance, each arrival, each month's
arrival count of each stream, each team's monthly sample and each selected case has its own stream,
derived from the seed, the authority and a key that does not depend on anything else (a case audit:
its case and month; an arrival: its stream, programme, month and number; an instance the engine
started: its parent's key and its place among the parent's children). Two configurations run on the
same seed therefore draw the same numbers for everything a change does not reach: raising one team's
sample leaves complaint handling untouched, rather than shifting every later draw.
"""

from __future__ import annotations

import datetime as dt
import gc
import heapq
import json
import random
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..allocation import Programme, SelectionRules, allocate
from ..calendar import LONDON, _add_months
from ..errors import EvaluationFailed, Refused
from ..runtime.context import _Deadlines
from ..runtime.engine import Engine
from ..store.memory import MemoryStore
from .distributions import WorkingTime, poisson
from .model import ActionSpec, ActorSpec, BehaviourModel, Rule, Stream
from .population import Population, build_population, people_with

__all__ = ["RecordingStore", "AuthorityResult", "SimulationResult", "AuthorityRun", "simulate", "simulation_window"]

_MONTH, _ALLOCATE, _ARRIVAL, _ACTION, _KPIS = 0, 1, 2, 3, 4
#: what a modelled KPI figure says it is, in the store and the report
KPI_ORIGIN = "simulation"
KPI_SOURCE = "modelled by the simulation (not real figures)"


class RecordingStore(MemoryStore):
    """A MemoryStore that tells the runner what each commit touched, and counts history entries.

    With ``trace``: every history entry's (workflow, from state, trigger) as a small code in an array
    (4 bytes an event), for replaying on raw ``transitions`` in the benchmark.
    """

    def __init__(self, trace: bool = False) -> None:
        super().__init__()
        self.touched: list[str] = []
        self.events = 0
        self.commits = 0
        self.codes: dict[tuple[str, str | None, str], int] = {}  # filled only with trace
        self.trace: array | None = array("I") if trace else None

    def commit(self, changes: Any) -> None:
        super().commit(changes)
        self.commits += 1
        self.events += len(changes.history)
        self.touched.extend(changes.instances)
        if self.trace is not None:
            codes = self.codes
            for entry in changes.history:
                key = (entry["workflow"], entry["from"], entry["trigger"])
                code = codes.get(key)
                if code is None:
                    code = codes[key] = len(codes)
                self.trace.append(code)

    def __getstate__(self) -> dict[str, Any]:  # itertools.count does not pickle everywhere: keep the numbers
        state = super().__getstate__()
        state["_counters"] = {k: next(c) for k, c in self._counters.items()}
        import itertools

        self._counters = {k: itertools.count(v) for k, v in state["_counters"].items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import itertools

        state = dict(state)
        state["_counters"] = {k: itertools.count(v) for k, v in state["_counters"].items()}
        super().__setstate__(state)


@dataclass
class AuthorityResult:
    authority: str
    name: str
    stats: dict[str, int]
    problems: list[dict[str, Any]]
    unallocated: list[dict[str, Any]]
    rules_fired: dict[str, int]
    capacity: dict[str, Any]
    store: RecordingStore | None = None
    trace: tuple[dict[tuple[str, str | None, str], int], array] | None = None


@dataclass
class SimulationResult:
    model: str
    seed: Any
    start: dt.date
    end: dt.date
    sim_start: dt.date
    authorities: list[AuthorityResult] = field(default_factory=list)

    @property
    def stores(self) -> list[RecordingStore]:
        return [a.store for a in self.authorities if a.store is not None]

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.authorities:
            for k, v in a.stats.items():
                out[k] = out.get(k, 0) + v
        return out

    def problems(self) -> list[dict[str, Any]]:
        """Modelling problems (behaviour rules the engine refused), merged over authorities."""
        merged: dict[tuple, dict[str, Any]] = {}
        for a in self.authorities:
            for p in a.problems:
                key = (p["rule"], p["trigger"], p["state"], p["error"])
                if key in merged:
                    merged[key]["count"] += p["count"]
                else:
                    merged[key] = dict(p)
        return [merged[k] for k in sorted(merged, key=lambda k: tuple(str(x) for x in k))]

    def summary(self) -> dict[str, Any]:
        fired: dict[str, int] = {}
        for a in self.authorities:
            for k, v in a.rules_fired.items():
                fired[k] = fired.get(k, 0) + v
        unallocated = [u for a in self.authorities for u in a.unallocated]
        return {
            "model": self.model,
            "seed": self.seed,
            "period": {"from": self.start.isoformat(), "to": self.end.isoformat()},
            "simulated_from": self.sim_start.isoformat(),
            "authorities": [a.authority for a in self.authorities],
            "engine": self.totals(),
            "behaviours_fired": dict(sorted(fired.items())),
            "modelling_problems": self.problems(),
            "unallocated": len(unallocated),
            "unallocated_examples": unallocated[:10],
        }


def _month_add(d: dt.date, months: int) -> dt.date:
    return _add_months(d, months)[0]


def simulation_window(model: BehaviourModel, start: dt.date, end: dt.date) -> tuple[dt.date, dt.datetime]:
    """(first simulated day: the 1st of the month ``warmup`` before ``start``; the end: midnight after ``end``)."""
    warm = model.settings.warmup
    first = start
    if warm is not None:
        if warm.kind in ("months", "years"):
            first = _month_add(start, -warm.n * (12 if warm.kind == "years" else 1))
        elif warm.kind in ("weeks", "days", "working_days"):
            first = start - dt.timedelta(days=warm.n * (7 if warm.kind == "weeks" else 1))
    first = first.replace(day=1)
    stop = end + dt.timedelta(days=1)
    return first, dt.datetime(stop.year, stop.month, stop.day, tzinfo=LONDON)


class _Ctx:
    """What generators see (GenContext)."""

    __slots__ = ("run", "rng", "env", "now")

    def __init__(self, run: AuthorityRun, rng: random.Random, env: dict[str, Any], now: dt.datetime) -> None:
        self.run, self.rng, self.env, self.now = run, rng, env, now

    def people(self, roles: Sequence[str], exclude: Sequence[Any], count: int) -> list[str]:
        candidates = [p for p in people_with(self.run.pop, roles) if p not in exclude]
        if count >= len(candidates):
            return candidates
        if count == 1:
            return [candidates[self.rng.randrange(len(candidates))]]
        return self.rng.sample(candidates, count)

    def cases(self, count: int, scope: Any) -> list[dict[str, Any]]:
        pop = self.run.pop
        prog = None
        if isinstance(scope, Mapping) and scope.get("programme"):
            prog = next((p for p in pop.programmes if p.id == scope["programme"]), None)
        elif isinstance(scope, str):
            prog = next((p for p in pop.programmes if scope in (p.id, p.service)), None)
        rows = pop.programme_cases(prog) if prog is not None else pop.all_cases()
        if count >= len(rows):
            return list(rows)
        return self.rng.sample(rows, count)

    def add_days(self, day: dt.date, n: int, working: bool) -> dt.date:
        if working:
            return self.run.clock.calendar.add_working_days(day, n)
        return day + dt.timedelta(days=n)


class _Track:
    __slots__ = ("state", "visit", "counts", "pending")

    def __init__(self, state: str) -> None:
        self.state = state
        self.visit = 0
        self.counts: dict[str, int] = {}
        self.pending: set[str] = set()


class AuthorityRun:
    """One authority simulated from ``sim_start`` to ``end`` on its own Engine and store."""

    def __init__(self, definitions: Any, model: BehaviourModel, programmes: Sequence[Programme], selection: SelectionRules | None,
                 *, authority: str, name: str, seed: Any, sim_start: dt.date, end: dt.datetime, trace: bool = False,
                 progress: Callable[[int], None] | None = None, report: Any = None) -> None:
        self.defs = definitions
        self.model = model
        self.selection = selection
        self.authority = authority
        self.store = RecordingStore(trace)
        self.engine = Engine(definitions, self.store)
        self.pop: Population = build_population(model.population, programmes, authority=authority, name=name,
                                                seed=seed, start=sim_start)
        self.seed = seed
        self.pop_rng = random.Random(f"{seed}:{authority}:turnover")  # per team and case in turn: nothing else draws from it
        self.keys: dict[str, str] = {}  # instance id -> the key of its random stream (kept: children derive theirs from it)
        self.rngs: dict[str, random.Random] = {}  # instance id -> its stream, while it runs
        self.clock = WorkingTime(definitions.calendars[model.settings.calendar], model.settings.working_hours)
        self.sim_start = sim_start
        self.end = end
        self.now = dt.datetime(sim_start.year, sim_start.month, sim_start.day, tzinfo=LONDON)
        self.heap: list[tuple] = []
        self.seq = 0
        self.track: dict[str, _Track] = {}
        self.booked: dict[tuple[str, int, int], int] = {}
        # (the rule's roles, person) -> the roles they act with, as the frozenset the engine would make of them
        self._roles: dict[tuple[tuple[str, ...], str], frozenset[str]] = {}
        self.problems: dict[tuple, dict[str, Any]] = {}
        self.unallocated: list[dict[str, Any]] = []
        self.fired: dict[str, int] = {}
        self.stats = {"starts": 0, "fires": 0, "refused": 0, "breaches": 0, "overtaken": 0, "no_longer_applies": 0,
                      "allocated": 0, "arrivals": 0, "planned": 0, "postponed_for_capacity": 0}
        self.progress = progress
        self._days_reported = 0
        self.index = model.index
        self.auth_env = {"id": authority, "name": name}
        self.kpi_rng = random.Random(f"{seed}:{authority}:kpis")
        self.kpi_state: dict[tuple[str, str], list[float]] = {}  # (service, kpi) -> [where it started, now, slump months left, slump points]
        # the report definition the indicator rules read: it depends only on the definitions, so ``simulate`` compiles it
        # once for every authority (None: compiled here when first needed)
        self.kpi_report: Any = report

    # ------------------------------------------------------------------ the loop
    def push(self, at: dt.datetime, kind: int, *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, args))

    def run(self) -> AuthorityResult:
        d = self.sim_start
        while True:
            t = dt.datetime(d.year, d.month, 1, tzinfo=LONDON)
            if t >= self.end:
                break
            self.push(t, _MONTH, d)
            series = self.model.kpi_series
            if series is not None:  # the month's figures arrive a few working days into the next month
                nxt = _month_add(d.replace(day=1), 1)
                day = self.clock.calendar.add_working_days(nxt - dt.timedelta(days=1), series.arrive_working_day)
                when = dt.datetime(day.year, day.month, day.day, series.time.hour, series.time.minute, tzinfo=LONDON)
                if when < self.end:
                    self.push(when, _KPIS, d.strftime("%Y-%m"))
            d = _month_add(d.replace(day=1), 1)
        store, heap, end = self.store, self.heap, self.end
        next_due, pop, act = store.next_due, heapq.heappop, self._act
        tick = self._tick if self.progress is not None else None
        while True:
            top = heap[0][0] if heap and heap[0][0] < end else end
            item = next_due(top)
            if item is not None:
                self._advance(item.at)
                continue
            if not heap or heap[0][0] > end:
                break
            at, _, kind, args = pop(heap)
            if tick is not None:
                tick(at)
            self.now = at
            if kind == _ACTION:
                act(at, *args)
            elif kind == _ARRIVAL:
                self._arrival(at, *args)
            elif kind == _ALLOCATE:
                self._allocate(at, *args)
            elif kind == _KPIS:
                self._kpis(at, *args)
            else:
                self._month(at, *args)
        self._advance(end)
        self._tick(end)
        return AuthorityResult(
            authority=self.authority, name=self.pop.name, stats={**self.stats, "events": store.events, "commits": store.commits},
            problems=[self.problems[k] for k in sorted(self.problems, key=lambda k: tuple(str(x) for x in k))],
            unallocated=self.unallocated, rules_fired=dict(sorted(self.fired.items())),
            capacity=self._capacity(),
            store=store, trace=(store.codes, store.trace) if store.trace is not None else None,
        )

    def _tick(self, at: dt.datetime) -> None:
        if self.progress is None:
            return
        days = (at.date() - self.sim_start).days
        if days > self._days_reported:
            self.progress(days - self._days_reported)
            self._days_reported = days

    def _advance(self, to: dt.datetime) -> None:
        occurrences = self.engine.advance(to)
        self.now = max(self.now, to)
        self.stats["breaches"] += sum(1 for o in occurrences if o.kind == "breach")
        self._react_touched()

    def _react_touched(self) -> None:
        touched = self.store.touched
        if not touched:
            return
        seen = set()
        while touched:
            batch = list(dict.fromkeys(touched))
            touched.clear()
            for iid in batch:
                if iid not in seen:
                    seen.add(iid)
                    self._react(iid)

    # ------------------------------------------------------------------ behaviour rules
    def _env(self, inst: Any, at: dt.datetime, actor: Any = None) -> dict[str, Any]:
        return {"data": inst.data, "state": inst.state, "deadlines": _Deadlines(inst, self.defs.workflows.get(inst.workflow)), "today": at.date(), "now": at,
                "instance_id": inst.id, "workflow": inst.workflow, "payload": {}, "actor": actor, "authority": self.auth_env}

    def _react(self, iid: str) -> None:
        inst = self.store.load(iid)
        if inst is None:
            return
        tr = self.track.get(iid)
        if tr is None:
            tr = self.track[iid] = _Track(inst.state)
        elif tr.state != inst.state:
            tr.state = inst.state
            tr.visit += 1
            tr.counts = {}
            tr.pending = set()
        rules = self.index.get((inst.workflow, inst.state))
        if not rules:
            if inst.workflow and self.defs.workflows[inst.workflow].states[inst.state].terminal:
                self.track.pop(iid, None)
                self.rngs.pop(iid, None)
            return
        env = None
        now = self.now
        rng = self._rng(inst)
        for rule in rules:
            rid = rule.id
            if rid in tr.pending or tr.counts.get(rid, 0) >= rule.times:
                continue
            if rule.when is not None:
                if env is None:
                    env = self._env(inst, now)
                if not rule.when.test(env):
                    continue
            tr.counts[rid] = tr.counts.get(rid, 0) + 1
            if rule.chance < 1.0 and rng.random() >= rule.chance:
                continue
            option = rule.choose(rng)
            if option is None or option.trigger is None:
                continue
            if env is None:
                env = self._env(inst, now)
            at = self._when(option, env, now, rng)
            person = self._who(option.actor, inst.data, at, rng)
            if person is not None:
                at = self._book(person, at, rng)
            self.push(at, _ACTION, iid, rule, option, tr.visit, person)
            tr.pending.add(rid)

    def _rng(self, inst: Any) -> random.Random:
        """The instance's own random stream (see the module)."""
        rng = self.rngs.get(inst.id)
        if rng is None:
            rng = self.rngs[inst.id] = random.Random(f"{self.seed}:{self.authority}:instance:{self._key(inst)}")
        return rng

    def _key(self, inst: Any) -> str:
        key = self.keys.get(inst.id)
        if key is None:
            parent = self.store.load(inst.parent_id) if inst.parent_id else None
            if parent is not None and inst.id in parent.children:
                key = f"{self._key(parent)}>{inst.workflow}#{parent.children.index(inst.id)}"
            else:  # started some other way (a schedule): its id is the best key there is
                key = inst.id
            self.keys[inst.id] = key
        return key

    def _when(self, option: ActionSpec, env: dict[str, Any], now: dt.datetime, rng: random.Random) -> dt.datetime:
        delay = option.delay
        assert delay is not None, "an option that fires a trigger has a delay (model.py)"
        anchor = None
        if delay.anchor is not None:
            anchor = _as_day(delay.anchor.evaluate(env))
        at = delay.target(now, rng, self.clock, anchor)
        late = option.late
        if late is not None and rng.random() < late.chance:
            at = late.extra.target(at, rng, self.clock)
        return at

    def _who(self, actor: ActorSpec | None, data: Mapping[str, Any], at: dt.datetime, rng: random.Random) -> str | None:
        if actor is None:
            return None
        if actor.bound_field is not None:
            person = data.get(actor.bound_field)
            return person[0] if isinstance(person, list) and person else person if isinstance(person, str) else None
        if actor.person is not None:
            return None  # resolved when acting (it may read the payload-free env only)
        ids = self.pop.by_role.get(actor.pool[0]) if actor.pool else None
        if not ids:
            return None
        if len(ids) == 1:
            return ids[0]
        week = at.isocalendar()
        booked = self.booked
        best, ties = None, []
        for pid in ids:
            n = booked.get((pid, week[0], week[1]), 0)
            if best is None or n < best:
                best, ties = n, [pid]
            elif n == best:
                ties.append(pid)
        # always one draw, however many tie: how busy people are must not shift this stream's later numbers
        pick = rng.random()
        return ties[int(pick * len(ties))]

    def _book(self, person: str, at: dt.datetime, rng: random.Random) -> dt.datetime:
        p = self.pop.people.get(person)
        cap = p.capacity_per_week if p is not None else None
        iso = at.isocalendar()
        key = (person, iso[0], iso[1])
        if cap is not None:
            moved = 0
            while self.booked.get(key, 0) >= cap and moved < 52:
                # full this week: the same weekday and time next week
                at = at + dt.timedelta(days=7)
                at = self.clock.at_working_time(at.date(), rng) if not self.clock.calendar.is_working_day(at.date()) else at
                iso = at.isocalendar()
                key = (person, iso[0], iso[1])
                moved += 1
            if moved:
                self.stats["postponed_for_capacity"] += 1
        self.booked[key] = self.booked.get(key, 0) + 1
        return at

    def _act(self, at: dt.datetime, iid: str, rule: Rule, option: ActionSpec, visit: int, person: str | None) -> None:
        tr = self.track.get(iid)
        inst = self.store.load(iid)
        if tr is None or inst is None or tr.visit != visit or inst.state != tr.state:
            self.stats["overtaken"] += 1
            return
        tr.pending.discard(rule.id)
        rng = self._rng(inst)
        env = self._env(inst, at)
        if rule.when is not None and not rule.when.test(env):
            tr.counts[rule.id] -= 1  # may come back when it holds again
            self.stats["no_longer_applies"] += 1
            return
        actor, trigger = option.actor, option.trigger
        assert actor is not None and trigger is not None, "only options that fire a trigger are scheduled"
        if actor.bound_field is not None:
            person = self._who(actor, inst.data, at, rng)
        elif actor.person is not None:
            value = actor.person.evaluate(env)
            person = value[0] if isinstance(value, list) and value else value
        if not person:
            self._problem(rule, option, inst.state, "NoActor",
                          f"nobody to act as {actor.role or 'the person given'} (data.{actor.bound_field})" if actor.bound_field
                          else f"nobody in the population has the role {actor.role}")
            return
        env["actor"] = person
        try:
            payload = option.payload.value(_Ctx(self, rng, env, at)) if option.payload is not None else None
        except Exception as exc:  # an expression failing on this instance's data
            self._problem(rule, option, inst.state, type(exc).__name__, f"building the payload: {getattr(exc, 'message', exc)}")
            return
        roles = self._roles.get((actor.roles, person))
        if roles is None:
            p = self.pop.people.get(person)
            roles = self._roles[(actor.roles, person)] = frozenset(actor.roles + (p.roles if p is not None else ()))
        try:
            self.engine.fire(iid, trigger, payload, actor=person, roles=roles, at=at)
        except (Refused, EvaluationFailed) as exc:
            self.stats["refused"] += 1
            self._problem(rule, option, inst.state, type(exc).__name__, exc.message)
            self.store.touched.clear()
            return
        self.stats["fires"] += 1
        self.fired[rule.id] = self.fired.get(rule.id, 0) + 1
        self._react_touched()

    def _problem(self, rule: Rule, option: ActionSpec, state: str, error: str, message: str) -> None:
        key = (rule.id, option.trigger, state, error)
        entry = self.problems.get(key)
        if entry is None:
            self.problems[key] = {"rule": rule.id, "workflow": rule.workflow, "state": state, "trigger": option.trigger,
                                  "error": error, "message": message, "count": 1, "where": str(rule.location)}
        else:
            entry["count"] += 1

    # ------------------------------------------------------------------ months, allocation, arrivals
    def _month(self, at: dt.datetime, day: dt.date) -> None:
        if day > self.sim_start:
            self.pop.turnover(self.pop_rng, day, self.model.population)
        if self.model.kpi_series is not None and self.engine.instances("thematic_audit", "accepted"):
            from ..programmes import join_proposals

            join_proposals(self.engine, day.strftime("%Y-%m"), at=at, report=self._kpi_report())  # proposals accepted last month join this one
        month = day.strftime("%Y-%m")
        if self.selection is not None:
            sel = self.selection
            when = dt.datetime(day.year, day.month, sel.day_of_month, sel.time.hour, sel.time.minute, tzinfo=LONDON)
            if when < self.end:
                self.push(when, _ALLOCATE, month)
        nxt = _month_add(day, 1)
        for stream in self.model.arrivals:
            for env, rate in self._stream_envs(stream, day, month):
                if rate <= 0:
                    continue  # none this month: its stream would draw nothing (poisson), so it is not seeded
                key = _stream_key(stream, env, month)
                rng = random.Random(f"{self.seed}:{self.authority}:arrivals:{key}")
                n = poisson(rng, rate)
                for number in range(n):
                    d = day + dt.timedelta(days=rng.randrange((nxt - day).days))
                    t = self.clock.at_working_time(d, rng)
                    if t.month != day.month or t >= self.end:
                        continue  # rolled into the next month
                    self.push(t, _ARRIVAL, stream, env, f"{key}#{number}")
        for stream in self.model.planned:
            for env, _ in self._stream_envs(stream, day, month):
                prog = env.get("programme_obj")
                if stream.month is not None:
                    target = stream.month.evaluate(env)
                    if not _same_cycle_month(target, day, prog):
                        continue
                t = dt.datetime(day.year, day.month, min(stream.day, 28), stream.time.hour, stream.time.minute, tzinfo=LONDON)
                if t < self.end:
                    self.push(t, _ARRIVAL, stream, env, _stream_key(stream, env, month))

    def _kpis(self, at: dt.datetime, month: str) -> None:
        """Import the month's modelled figures of every programme's imported percentage KPIs at its service, as an extract
        would be, then apply the indicator rules to them (engine.kpis.watch): the loop from a red indicator to a proposal."""
        from ..kpis.importer import import_kpi_values
        from ..kpis.watch import check_indicators

        series = self.model.kpi_series
        assert series is not None
        rng, rows = self.kpi_rng, []
        for prog in self._kpi_programmes():
            for spec in prog.kpis:
                if spec.get("defined_in") != "programme" or spec.get("unit", "percent") != "percent" or spec.get("target") is None:
                    continue
                target, better = float(spec["target"]), (1.0 if spec.get("direction", "higher_is_better") == "higher_is_better" else -1.0)
                key = (prog.service, str(spec["kpi"]))
                state = self.kpi_state.get(key)
                if state is None:
                    base = target + better * series.start.sample(rng)
                    state = self.kpi_state[key] = [base, base, 0.0, 0.0]
                base, now, left, points = state
                now += 0.3 * (base - now) + series.step.sample(rng)  # drifts, and back towards where it started
                if left <= 0 and rng.random() < series.slump_chance:
                    left, points = max(1.0, round(series.slump_months.sample(rng))), series.slump_points.sample(rng)
                shown = now - better * points if left > 0 else now
                state[1:] = [now, left - 1, points]
                value = min(100.0, max(0.0, shown))
                den = max(1, round(series.denominator.sample(rng)))
                rows.append({"kpi": key[1], "period": month, "level": "service", "level_id": prog.service,
                             "numerator": round(value * den / 100), "denominator": den, "source": KPI_SOURCE})
        if not rows:
            return
        try:
            import_kpi_values(self.store, self.defs, rows, origin=KPI_ORIGIN, at=at)
            check_indicators(self.engine, at=at, kpis={r["kpi"] for r in rows}, report=self._kpi_report())
        except Refused as exc:  # a model whose figures the configuration refuses: said once, counted
            key = ("kpi_series", type(exc).__name__)
            entry = self.problems.setdefault(key, {"rule": "kpi_series", "workflow": "", "state": "", "trigger": None, "error": key[1],
                                                   "message": exc.message, "count": 0, "where": "kpi_series"})
            entry["count"] += 1

    def _kpi_report(self) -> Any:
        if self.kpi_report is None:
            from ..reports.definition import load_report

            self.kpi_report = load_report(self.defs)
        return self.kpi_report

    def _kpi_programmes(self) -> Sequence[Any]:
        return self._kpi_report().programmes

    def _stream_envs(self, stream: Stream, day: dt.date, month: str) -> Iterator[tuple[dict[str, Any], float]]:
        progs: list[Programme | None] = list(self.pop.programmes) if stream.per == "programme" else [None]
        for prog in progs:
            base = {"authority": self.auth_env, "programme": dict(prog.raw) if prog else None, "month": month,
                    "item": None, "case": None, "programme_obj": prog}
            items = [None]
            if stream.for_each is not None:
                value = stream.for_each.evaluate(_public(base))
                items = list(value) if isinstance(value, list) else []
            for item in items:
                env = dict(base, item=item)
                pub = _public(env)
                if stream.where is not None and not stream.where.test(pub):
                    continue
                rate = stream.rate or 0.0
                if stream.rate_by is not None:
                    key = stream.rate_by.evaluate(pub)
                    rate = stream.rate_values.get(str(key), stream.rate or 0.0)
                yield env, rate

    def _arrival(self, at: dt.datetime, stream: Stream, base: dict[str, Any], key: str) -> None:
        rng = random.Random(f"{self.seed}:{self.authority}:arrival:{key}")
        prog = base.get("programme_obj")
        rows = self.pop.programme_cases(prog) if prog is not None else self.pop.all_cases()
        case = rows[rng.randrange(len(rows))] if rows else None
        env = _public(base)
        env.update(case=case, today=at.date(), now=at, payload={})
        ctx = _Ctx(self, rng, env, at)
        try:
            data = stream.data.value(ctx)
        except Exception as exc:
            self._stream_problem(stream, type(exc).__name__, f"building the data: {getattr(exc, 'message', exc)}")
            return
        person = self._who(stream.actor, {}, at, rng)
        if stream.actor.person is not None:
            person = stream.actor.person.evaluate(env)
        if not person:
            self._stream_problem(stream, "NoActor", f"nobody in the population has the role {stream.actor.role}")
            return
        roles = stream.actor.roles
        try:
            view = self.engine.start(stream.workflow, data, actor=person, roles=roles, at=at)
        except (Refused, EvaluationFailed) as exc:
            self.stats["refused"] += 1
            self._stream_problem(stream, type(exc).__name__, exc.message)
            self.store.touched.clear()
            return
        self.keys[view.id] = key
        self.stats["starts"] += 1
        self.stats["arrivals" if stream.kind == "arrival" else "planned"] += 1
        self._react_touched()

    def _stream_problem(self, stream: Stream, error: str, message: str) -> None:
        key = (stream.id, "(start)", "", error)
        entry = self.problems.get(key)
        if entry is None:
            self.problems[key] = {"rule": stream.id, "workflow": stream.workflow, "state": "", "trigger": "(start)",
                                  "error": error, "message": message, "count": 1, "where": str(stream.location)}
        else:
            entry["count"] += 1

    def _allocate(self, at: dt.datetime, month: str) -> None:
        sel = self.selection
        assert sel is not None, "allocations are scheduled only with selection rules (_month)"
        open_load: dict[str, int] = {}
        last: dict[str, str] = {}
        for inst in self.store.find(sel.workflow):
            if not self.defs.workflows[inst.workflow].states[inst.state].terminal:
                peer = inst.data.get("peer_auditor")
                if isinstance(peer, str):
                    open_load[peer] = open_load.get(peer, 0) + 1
        prefix = f"{self.seed}:{self.authority}:selection:{month}:"
        result = allocate(self.pop.all_cases(), self.pop.pool(), month=month, rules=sel, programmes=self.pop.programmes,
                          rng_for=lambda name: random.Random(prefix + name), open_peer_audits=open_load,
                          calendar=self.clock.calendar, only_programmes=True, last_audited=last)
        for u in result.unallocated:
            self.unallocated.append({"month": month, **u.to_dict()})
        qa = self._who(self.model.settings.selection_actor, {}, at, random.Random(f"{self.seed}:{self.authority}:selection:{month}"))
        rows = {row["case_id"]: row for row in self.pop.all_cases()}
        for audit in result.audits:
            try:
                view = self.engine.start(sel.workflow, dict(audit.data), actor=qa or "qa-team",
                                         roles=self.model.settings.selection_actor.roles, at=result.at)
            except (Refused, EvaluationFailed) as exc:
                self.stats["refused"] += 1
                key = ("(selection)", "(start)", "", type(exc).__name__)
                entry = self.problems.setdefault(key, {"rule": "(selection)", "workflow": sel.workflow, "state": "",
                                                       "trigger": "(start)", "error": type(exc).__name__,
                                                       "message": exc.message, "count": 0, "where": "selection"})
                entry["count"] += 1
                self.store.touched.clear()
                continue
            self.keys[view.id] = f"{sel.workflow}|{audit.case_id}|{month}"
            self.stats["starts"] += 1
            self.stats["allocated"] += 1
            row = rows.get(audit.case_id)
            if row is not None:
                row["last_audited_on"] = result.at.date().isoformat()
            self._react_touched()

    def _capacity(self) -> dict[str, Any]:
        """Weekly capacity: per person (for the reports' workload metrics) and per role."""
        people = {pid: p.capacity_per_week for pid, p in sorted(self.pop.people.items()) if p.capacity_per_week is not None}
        roles: dict[str, dict[str, Any]] = {}
        for role, ids in sorted(self.pop.by_role.items()):
            known = [self.pop.people[i].capacity_per_week for i in ids if self.pop.people[i].capacity_per_week is not None]
            roles[role] = {"people": len(ids), "capacity_per_week": sum(known) if known else None}
        return {"people": people, "roles": roles}


def _stream_key(stream: Stream, env: Mapping[str, Any], month: str) -> str:
    """What one month's draws of a stream are keyed by: the stream, its programme and item, the month."""
    prog = env.get("programme_obj")
    item = env.get("item")
    item_key = "" if item is None else item if isinstance(item, str) else json.dumps(item, sort_keys=True, default=str)
    return f"{stream.id}|{prog.id if prog is not None else ''}|{item_key}|{month}"


def _public(env: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in env.items() if k != "programme_obj"}


def _as_day(value: Any) -> Any:
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _same_cycle_month(target: Any, day: dt.date, prog: Programme | None) -> bool:
    """Is ``day``'s month the same month of its programme period as ``target`` (YYYY-MM) is of the programme's?"""
    if not target:
        return False
    try:
        y, m = (int(x) for x in str(target)[:7].split("-"))
    except ValueError:
        return False
    if prog is None or prog.period_from is None:
        return (y, m) == (day.year, day.month)
    length = prog.period_months
    start = prog.period_from
    offset = (y - start.year) * 12 + m - start.month
    here = (day.year - start.year) * 12 + day.month - start.month
    return offset % length == here % length


# --------------------------------------------------------------------------- many authorities


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while one authority runs (as it was, after).

    A run makes almost no reference cycles (reference counting frees nearly everything), but it keeps a
    store that grows to hundreds of thousands of objects, and the collector's passes over them cost about
    a fifth of the run. The few cycles it does make are collected once the collector is back.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_WORKER: dict[str, Any] = {}


def _run_one(args: tuple[int, bool, bool]) -> AuthorityResult:
    index, keep_store, trace = args
    w = _WORKER
    auth_id, name = w["authorities"][index]
    with _collector_paused():
        result = AuthorityRun(w["definitions"], w["model"], w["programmes"], w["selection"], authority=auth_id, name=name,
                              seed=w["seed"], sim_start=w["sim_start"], end=w["end"], trace=trace, report=w["report"]).run()
        if w.get("reduce") is not None:
            result = w["reduce"](result)
        if not keep_store:
            result.store = None
    return result


def simulate(
    definitions: Any,
    model: BehaviourModel,
    programmes: Sequence[Programme],
    *,
    start: dt.date,
    end: dt.date,
    seed: Any = 0,
    workers: int = 1,
    keep_stores: bool = True,
    trace: bool = False,
    authorities: Sequence[tuple[str, str]] | None = None,
    progress: Callable[[int], None] | None = None,
    on_result: Callable[[AuthorityResult], AuthorityResult | None] | None = None,
) -> SimulationResult:
    """Simulate every authority of the model from ``start`` to ``end`` (both dates included), after the warm-up.

    ``progress(n)`` is told of each simulated day (per authority). ``on_result`` sees each authority's
    result as it finishes (in authority order) and may return a slimmer one (e.g. metrics only).
    With ``workers`` > 1 the authorities run in that many processes; the results are the same. Python's cyclic
    garbage collector is paused while each authority runs, and restored after (reference counting still frees memory).
    """
    sim_start, stop = simulation_window(model, start, end)
    try:
        selection = SelectionRules.from_definitions(definitions)
    except Exception:
        selection = None
    auths = list(authorities if authorities is not None else model.population.authorities)
    report = None
    if model.kpi_series is not None:  # the indicator rules read the report definition: compiled once, not per authority
        from ..reports.definition import load_report

        report = load_report(definitions)
    result = SimulationResult(model=model.id, seed=seed, start=start, end=end, sim_start=sim_start)
    days = (stop.date() - sim_start).days
    if workers <= 1 or len(auths) <= 1:
        for auth_id, name in auths:
            with _collector_paused():  # the run (and a store not kept) freed before the collector is back
                one = AuthorityRun(definitions, model, programmes, selection, authority=auth_id, name=name, seed=seed,
                                   sim_start=sim_start, end=stop, trace=trace, progress=progress, report=report).run()
                if not keep_stores:
                    one.store = None
            if on_result is not None:
                one = on_result(one) or one
            result.authorities.append(one)
        return result
    import multiprocessing as mp

    _WORKER.clear()
    _WORKER.update(definitions=definitions, model=model, programmes=list(programmes), selection=selection, seed=seed,
                   sim_start=sim_start, end=stop, authorities=auths, reduce=None, report=report)
    ctx: mp.context.BaseContext
    try:
        ctx = mp.get_context("fork")
    except ValueError:  # pragma: no cover - no fork (Windows, macOS defaults): the workers load the config again
        ctx = mp.get_context()
    with ctx.Pool(processes=min(workers, len(auths))) as pool:
        for done in pool.imap(_run_one, [(i, keep_stores, trace) for i in range(len(auths))], chunksize=1):
            if progress is not None:
                progress(days)
            result.authorities.append(done if on_result is None else (on_result(done) or done))
    _WORKER.clear()
    return result
