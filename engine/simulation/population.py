"""A synthetic authority: teams from the programmes, caseloads, social workers and staff by role, seeded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..allocation import Programme, TeamPlan
from .model import PopulationSpec

__all__ = ["Person", "Population", "build_population"]


@dataclass
class Person:
    id: str
    roles: tuple[str, ...]
    team: str | None = None
    manager: str | None = None
    capacity_per_week: int | None = None


@dataclass
class Team:
    id: str
    programme: Programme
    team_manager: str
    social_workers: list[str]


@dataclass
class Population:
    """One authority's people, teams and open cases (the case rows change month by month)."""

    authority: str
    name: str
    programmes: list[Programme]
    teams: dict[str, Team] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    by_role: dict[str, list[str]] = field(default_factory=dict)
    cases: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # team -> open case rows
    next_case: int = 1
    # (teams, their row lists as they were, their lengths, the rows) per programme id (None: every team), so an arrival
    # does not gather a programme's thousands of rows again while no team's list was replaced (turnover makes new
    # lists) or grew; a row changed in place is the same row
    _gathered: dict[str | None, tuple[tuple[str, ...], list[Any], list[int], tuple[dict[str, Any], ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def add_person(self, person: Person) -> None:
        old = self.people.get(person.id)
        if old is not None:
            old.roles = tuple(dict.fromkeys(old.roles + person.roles))
            old.team = old.team or person.team
            old.manager = old.manager or person.manager
            if person.capacity_per_week is not None:
                old.capacity_per_week = person.capacity_per_week
            person = old
        else:
            self.people[person.id] = person
        for role in person.roles:
            ids = self.by_role.setdefault(role, [])
            if person.id not in ids:
                ids.append(person.id)

    def all_cases(self) -> Sequence[dict[str, Any]]:
        """Every open case row, team by team in team order."""
        return self._gather(None, tuple(sorted(self.cases)))

    def programme_cases(self, programme: Programme) -> Sequence[dict[str, Any]]:
        """The open case rows of the programme's teams, in the programme's team order."""
        return self._gather(programme.id, tuple(t.id for t in programme.teams))

    def _gather(self, key: str | None, teams: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
        lists = [self.cases.get(t) for t in teams]
        lengths = [len(rows) if rows is not None else 0 for rows in lists]
        known = self._gathered.get(key)
        if (known is not None and known[0] == teams and known[2] == lengths
                and all(a is b for a, b in zip(known[1], lists, strict=True))):
            return known[3]
        gathered = tuple(row for rows in lists if rows for row in rows)
        self._gathered[key] = (teams, lists, lengths, gathered)
        return gathered

    def pool(self) -> list[dict[str, Any]]:
        """Everyone, as peer-pool rows for the allocation (which keeps those in the pool roles)."""
        return [{"person": p.id, "roles": list(p.roles), "team": p.team, "manager": p.manager} for p in self.people.values()]

    def new_case(self, team: Team, rng: random.Random, opened_on: dt.date, spec: PopulationSpec,
                 last_audited_on: dt.date | None = None) -> dict[str, Any]:
        no = self.next_case
        self.next_case += 1
        prog = team.programme
        worker = "" if rng.random() < spec.without_worker or not team.social_workers else rng.choice(team.social_workers)
        return {
            "case_id": f"C-{no:06d}",
            "team": team.id,
            "service": prog.service,
            "team_manager": team.team_manager,
            "social_worker": worker,
            "service_manager": prog.service_manager or "",
            "lead_manager": prog.service_manager or "",
            "opened_on": opened_on.isoformat(),
            "last_audited_on": last_audited_on.isoformat() if last_audited_on else "",
        }

    def turnover(self, rng: random.Random, month_start: dt.date, spec: PopulationSpec) -> None:
        """Some cases close during the month just ended; as many new ones open."""
        if spec.monthly_turnover <= 0:
            return
        prev = (month_start - dt.timedelta(days=1)).replace(day=1)
        span = (month_start - prev).days
        for team_id in sorted(self.cases):
            team = self.teams[team_id]
            rows = self.cases[team_id]
            kept = []
            for row in rows:
                if rng.random() < spec.monthly_turnover:
                    kept.append(self.new_case(team, rng, prev + dt.timedelta(days=rng.randrange(span)), spec))
                else:
                    kept.append(row)
            self.cases[team_id] = kept


def _copies(programmes: Sequence[Programme], copies: int) -> list[Programme]:
    if copies <= 1:
        return list(programmes)
    out = []
    for prog in programmes:
        teams: list[TeamPlan] = []
        for t in prog.teams:
            for k in range(1, copies + 1):
                if k == 1:
                    teams.append(t)
                else:
                    tm = f"{t.team_manager}-{k}" if t.team_manager else None
                    teams.append(TeamPlan(f"{t.id}_{k}", f"{t.name} ({k})", tm, t.sample))
        out.append(dataclasses.replace(prog, teams=tuple(teams)))
    return out


def build_population(spec: PopulationSpec, programmes: Sequence[Programme], *, authority: str, name: str,
                     seed: Any, start: dt.date) -> Population:
    """The authority's population on ``start``: the same ``seed`` and authority always give the same people and cases."""
    rng = random.Random(f"{seed}:{authority}:population")
    pop = Population(authority, name, _copies(programmes, spec.team_copies))
    extra = {s.source: s for s in spec.staff if s.source != "count"}

    def adjust(person: Person, source: str) -> Person:
        s = extra.get(source)
        if s is not None:
            person.roles = tuple(dict.fromkeys(person.roles + s.roles))
            person.capacity_per_week = s.capacity_per_week
        return person

    for prog in pop.programmes:
        if prog.service_manager:
            pop.add_person(adjust(Person(prog.service_manager, ("service_manager",), f"{prog.service}_management"), "service_managers"))
        for plan in prog.teams:
            tm = plan.team_manager or f"TM-{plan.id}"
            pop.add_person(adjust(Person(tm, ("team_manager",), plan.id, prog.service_manager), "team_managers"))
            workers = []
            for n in range(max(1, round(spec.social_workers.sample(rng)))):
                sw = f"SW-{plan.id}-{n + 1:02d}"
                pop.add_person(adjust(Person(sw, ("social_worker",), plan.id, tm), "social_workers"))
                workers.append(sw)
            pop.teams[plan.id] = Team(plan.id, prog, tm, workers)
    for s in spec.staff:
        if s.source != "count":
            continue
        for n in range(s.count):
            pid = s.id_format.format(n=n + 1, role=s.roles[0] if s.roles else "person", authority=authority)
            pop.add_person(Person(pid, s.roles, s.team, s.manager, s.capacity_per_week))
    for team_id in sorted(pop.teams):
        team = pop.teams[team_id]
        rows = []
        for _ in range(max(0, round(spec.caseload.sample(rng)))):
            age = max(1, round(spec.case_age_days.sample(rng)))
            last = None
            if rng.random() < spec.audited_chance:
                ago = round(spec.audited_days_ago.sample(rng))
                if ago < age:
                    last = start - dt.timedelta(days=ago)
            rows.append(pop.new_case(team, rng, start - dt.timedelta(days=age), spec, last))
        pop.cases[team_id] = rows
    return pop


def people_with(pop: Population, roles: Iterable[str]) -> list[str]:
    out: list[str] = []
    for r in roles:
        for pid in pop.by_role.get(r, ()):
            if pid not in out:
                out.append(pid)
    return out
