"""Monthly selection and allocation of case file audits, generic over the `selection:` rules and the programmes.

The rules come from the configuration: ``selection:`` in ``config/rules/selection.yaml`` (which workflow,
how cases are eligible, who leads, who may peer-audit, what each audit starts with) and the
service-area programmes in ``config/programmes/*.yaml`` (teams, sample sizes, peer-auditor pools).
This module only interprets them::

    rules = SelectionRules.from_definitions(definitions)
    programmes, problems = load_programmes("config")
    result = allocate(cases, pool, month="2026-10", rules=rules, programmes=programmes, seed=7)
    for audit in result.audits:
        engine.start(rules.workflow, audit.data, actor="qa", roles=["qa_team"], at=result.at)

``cases`` is any iterable of mappings (rows of a CSV or JSON file, or whatever a host system returns)
with ``case_id``, ``team`` and, as available, ``service``, ``team_manager``, ``social_worker``,
``service_manager``, ``lead_manager``, ``opened_on``, ``closed_on``, ``last_audited_on``.
``pool`` rows name the people who may peer-audit: ``person``, ``role``, ``team``, ``manager``,
``open_peer_audits`` (their current load), ``available``.
Everything the allocation could not do comes back in ``result.unallocated`` with the reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .calendar import LONDON, Calendar, Duration, london_date, parse_duration
from .errors import UsageError
from .problems import Location, Problem

__all__ = [
    "SelectionRules",
    "Programme",
    "TeamPlan",
    "PlannedAudit",
    "Unallocated",
    "AllocationResult",
    "allocate",
    "load_programmes",
    "read_rows",
    "pool_from_programmes",
    "selection_time",
]

#: Lead-auditor rules the ``selection.lead_auditor.rule`` (and ``fallback``) may name -> the case-row
#: field holding that person. The rule names are the selection language's vocabulary.
LEAD_RULES: Mapping[str, str] = {
    "case_responsible_team_manager": "team_manager",
    "team_manager": "team_manager",
    "service_manager": "service_manager",
    "social_worker": "social_worker",
}


# --------------------------------------------------------------------------- rules


def _duration(value: Any) -> Duration | None:
    return parse_duration(str(value)) if value not in (None, "") else None


@dataclass(frozen=True)
class SelectionRules:
    """The ``selection:`` section, read once."""

    workflow: str = "case_audit"
    default_sample: int = 2
    day_of_month: int = 1
    time: dt.time = dt.time(9, 0)
    method: str = "random"
    minimum_open_for: Duration | None = None
    must_have_worker: bool = False
    exclude_within: Duration | None = None
    lead_rule: str = "case_responsible_team_manager"
    lead_fallback: str | None = None
    pool_roles: tuple[str, ...] = ()
    never_the_lead: bool = True
    not_from_same_team: bool = True
    balance: str = "fewest_open_peer_audits"
    max_new_per_person: int | None = None
    start_data: tuple[str, ...] = ("case_id", "team", "service", "lead_auditor", "peer_auditor")

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> SelectionRules:
        sched = section.get("schedule") or {}
        eligible = section.get("eligible_cases") or {}
        lead = section.get("lead_auditor") or {}
        peer = section.get("peer_auditor") or {}
        hh, mm = (str(sched.get("time", "09:00")).split(":") + ["0"])[:2]
        rule = lead.get("rule", "case_responsible_team_manager")
        fallback = lead.get("fallback")
        for name in (rule, fallback):
            if name is not None and name not in LEAD_RULES:
                raise UsageError(f"selection.lead_auditor: unknown rule '{name}' (known: {', '.join(sorted(LEAD_RULES))})")
        return cls(
            workflow=section.get("workflow", "case_audit"),
            default_sample=int(section.get("default_sample_per_team", 2)),
            day_of_month=int(sched.get("day_of_month", 1)),
            time=dt.time(int(hh), int(mm)),
            method=section.get("method", "random"),
            minimum_open_for=_duration(eligible.get("minimum_open_for")),
            must_have_worker=bool(eligible.get("must_have_allocated_worker", False)),
            exclude_within=_duration(section.get("exclude_audited_within")),
            lead_rule=rule,
            lead_fallback=fallback,
            pool_roles=tuple(peer.get("pool_roles") or ()),
            never_the_lead=bool(peer.get("never_the_lead", True)),
            not_from_same_team=bool(peer.get("not_from_same_team", True)),
            balance=peer.get("balance", "fewest_open_peer_audits"),
            max_new_per_person=peer.get("max_new_per_person_per_month"),
            start_data=tuple(section.get("start_data") or cls.start_data),
        )

    @classmethod
    def from_definitions(cls, definitions: Any) -> SelectionRules:
        section = definitions.extra.get("selection")
        if not section:
            raise UsageError("the configuration has no 'selection:' rules section (config/rules/selection.yaml)")
        return cls.from_mapping(section)


# --------------------------------------------------------------------------- programmes


@dataclass(frozen=True)
class TeamPlan:
    id: str
    name: str
    team_manager: str | None
    sample: int


@dataclass(frozen=True)
class Programme:
    """A service area's programme as far as selection and simulation need it (``raw`` keeps the rest)."""

    id: str
    service: str
    service_manager: str | None
    teams: tuple[TeamPlan, ...]
    pool_roles: tuple[str, ...]
    period_from: dt.date | None
    period_to: dt.date | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], default_sample: int = 2) -> Programme:
        audits = data.get("monthly_case_audits") or {}
        per_team = int(audits.get("sample_per_team", default_sample))
        teams = tuple(
            TeamPlan(t["id"], t.get("name", t["id"]), t.get("team_manager"), int(t.get("monthly_audit_sample", per_team)))
            for t in data.get("teams") or ()
        )
        period = data.get("period") or {}
        return cls(
            id=data["programme"],
            service=data["service"],
            service_manager=data.get("service_manager"),
            teams=teams,
            pool_roles=tuple(audits.get("peer_auditor_pool") or ()),
            period_from=_as_date(period.get("from")),
            period_to=_as_date(period.get("to")),
            raw=data,
        )

    @property
    def period_months(self) -> int:
        """How many months one programme period covers (a quarter: 3)."""
        if self.period_from is None or self.period_to is None:
            return 3
        return (self.period_to.year - self.period_from.year) * 12 + self.period_to.month - self.period_from.month + 1


def iter_programme_problems(doc: Any) -> Iterator[Problem]:
    """What a schema-valid programme (a Document) says twice where one value silently wins.

    A team's ``monthly_audit_sample`` wins over the programme's ``sample_per_team``: when every team
    sets its own and one differs, ``sample_per_team`` changes nothing, though it reads as if it did.
    """
    data = doc.data if isinstance(doc.data, Mapping) else {}
    audits = data.get("monthly_case_audits") or {}
    teams = [t for t in data.get("teams") or () if isinstance(t, Mapping)]
    if "sample_per_team" not in audits or not teams or any("monthly_audit_sample" not in t for t in teams):
        return
    per_team = audits["sample_per_team"]
    if all(t["monthly_audit_sample"] == per_team for t in teams):
        return
    where = doc.location(("monthly_case_audits", "sample_per_team"))
    own = ", ".join(f"{t.get('id')} {t['monthly_audit_sample']} at line {doc.location(('teams', i, 'monthly_audit_sample')).line}"
                    for i, t in enumerate(data["teams"]) if isinstance(t, Mapping))
    yield Problem(where, "warning", "value-overridden",
                  f"sample_per_team: {per_team} applies to no team: every team sets its own monthly_audit_sample, which wins "
                  f"({own}); remove the team values that should follow sample_per_team, or this line")


def load_programmes(root: str | Path, names: Sequence[str] | None = None) -> tuple[list[Programme], list[Problem]]:
    """Read ``ROOT/programmes/*.yaml`` (schema-checked, with positions); ``names`` keeps only those programmes.

    A name matches a programme id (``early_help_2026_q3``), its service (``early_help``) or its file stem.
    """
    from .config.configschemas import config_schema
    from .config.loader import YAML_SUFFIXES, vocabularies_of
    from .config.schemacheck import check_schema
    from .config.yamlsource import load_yaml_file

    folder = Path(root) / "programmes"
    problems: list[Problem] = []
    if not folder.is_dir():
        return [], problems
    # the service areas (and any other list the schema marks) are those of this configuration's rules
    schema = config_schema("programme", vocabularies_of(root))
    found: list[tuple[str, Programme]] = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file()):
        doc, errs = load_yaml_file(path)
        problems += errs
        if doc is None or any(p.severity == "error" for p in errs) or doc.data is None:
            continue
        if schema is not None:
            errs = check_schema(doc, schema)
            problems += errs
            if any(p.severity == "error" for p in errs):
                continue
        found.append((path.stem, Programme.from_mapping(doc.data)))
    if names:
        wanted = set(names)
        chosen = [p for stem, p in found if wanted & {p.id, p.service, stem}]
        known = {p.id for _, p in found} | {p.service for _, p in found} | {s for s, _ in found}
        for name in names:
            if name not in known:
                problems.append(Problem(Location(str(folder)), "error", "unknown-programme",
                                        f"no programme '{name}' (known: {', '.join(sorted(p.id for _, p in found))})"))
        return chosen, problems
    return [p for _, p in found], problems


def pool_from_programmes(programmes: Sequence[Programme]) -> list[dict[str, Any]]:
    """A minimal peer pool when none is given: each programme's service manager."""
    seen: dict[str, dict[str, Any]] = {}
    for prog in programmes:
        if prog.service_manager and prog.service_manager not in seen:
            seen[prog.service_manager] = {"person": prog.service_manager, "role": "service_manager", "team": f"{prog.service}_management"}
    return list(seen.values())


# --------------------------------------------------------------------------- input files


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV file (header line) or a JSON file (a list of objects, or {"cases"|"pool"|"rows": [...]})."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such file: '{path}'")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, dict):
            for key in ("cases", "pool", "rows", "people"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UsageError(f"{path}: expected a list of objects")
        return [dict(r) for r in data]
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        raise UsageError(f"{path}: the CSV file has no header line")
    return [{k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k} for row in reader]


# --------------------------------------------------------------------------- result


@dataclass
class PlannedAudit:
    """One audit to start: the case, and the start data the workflow needs (``selection.start_data``)."""

    case_id: str
    team: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "team": self.team, "data": self.data}


@dataclass
class Unallocated:
    """Something the allocation could not do, and why (a team short of cases, a case without a peer)."""

    team: str
    reason: str
    case_id: str | None = None
    missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"team": self.team, "reason": self.reason}
        if self.case_id is not None:
            out["case_id"] = self.case_id
        if self.missing:
            out["missing"] = self.missing
        return out


@dataclass
class AllocationResult:
    month: str
    at: dt.datetime
    workflow: str
    audits: list[PlannedAudit] = field(default_factory=list)
    unallocated: list[Unallocated] = field(default_factory=list)
    teams: list[dict[str, Any]] = field(default_factory=list)
    peer_load: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "at": self.at.isoformat(),
            "workflow": self.workflow,
            "audits": [a.to_dict() for a in self.audits],
            "unallocated": [u.to_dict() for u in self.unallocated],
            "teams": self.teams,
            "peer_load": dict(sorted(self.peer_load.items())),
        }


# --------------------------------------------------------------------------- allocation


def _as_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    day = london_date(value)
    if day is None:
        raise UsageError(f"'{value}' is not a date (YYYY-MM-DD)")
    return day


def _truthy(value: Any, default: bool = True) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "n", "off")
    return bool(value)


def selection_time(month: str, rules: SelectionRules) -> dt.datetime:
    """When the month's selection runs (the 1st at 09:00 Europe/London by default)."""
    try:
        year, mon = (int(x) for x in month.split("-"))
        return dt.datetime(year, mon, rules.day_of_month, rules.time.hour, rules.time.minute, tzinfo=LONDON)
    except ValueError:
        raise UsageError(f"--month must be YYYY-MM, got '{month}'") from None


def _england() -> Calendar:
    return Calendar.england()


def allocate(
    cases: Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]],
    pool: Iterable[Mapping[str, Any]] | None = None,
    *,
    month: str,
    rules: SelectionRules,
    programmes: Sequence[Programme] = (),
    seed: int | None = None,
    rng: random.Random | None = None,
    rng_for: Callable[[str], random.Random] | None = None,
    open_peer_audits: Mapping[str, int] | None = None,
    last_audited: Mapping[str, Any] | None = None,
    calendar: Calendar | None = None,
    only_programmes: bool = False,
) -> AllocationResult:
    """Pick each team's monthly sample at random and allocate a lead and a peer auditor to each case.

    ``open_peer_audits`` adds to each pool member's current load (e.g. counted from a store);
    ``last_audited`` maps case ids to the date of their last audit (merged with the rows' own field).
    ``only_programmes``: ignore cases of teams no programme lists (by default they get
    ``default_sample_per_team``). The same ``seed`` (or an ``rng`` in the same state) gives the same result.
    ``rng_for(name)``, when given, is a random stream per team (``team:ID``: its sample) and per selected
    case (``case:ID``: its place in the order auditors are given out, and ties between peers), so that
    changing one team's sample moves no other team's draws (the simulator compares configurations so).
    """
    rng = rng if rng is not None else random.Random(seed)
    calendar = calendar or _england()
    at = selection_time(month, rules)
    on = at.date()
    result = AllocationResult(month=month, at=at, workflow=rules.workflow)

    plans: dict[str, tuple[TeamPlan, Programme | None]] = {}
    for programme in programmes:
        for team_plan in programme.teams:
            plans.setdefault(team_plan.id, (team_plan, programme))

    rows = cases() if callable(cases) else cases
    by_team: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        team = str(row.get("team") or "")
        if not row.get("case_id") or not team:
            continue
        by_team.setdefault(team, []).append(row)
    teams = sorted(set(by_team) | set(plans))
    if only_programmes:
        teams = [t for t in teams if t in plans]

    # ---- the sample per team
    memo: dict[Any, Any] = {}  # dates read and due dates worked out, within this call
    chosen: list[tuple[Mapping[str, Any], TeamPlan | None, Programme | None]] = []
    for team in teams:
        plan, prog = plans.get(team, (None, None))
        wanted = plan.sample if plan is not None else rules.default_sample
        rows_here = sorted(by_team.get(team, ()), key=lambda r: str(r["case_id"]))
        eligible, excluded = [], {"closed": 0, "too_new": 0, "no_worker": 0, "audited_recently": 0}
        for row in rows_here:
            why = _ineligible(row, on, rules, calendar, last_audited, memo)
            if why is None:
                eligible.append(row)
            else:
                excluded[why] += 1
        take = min(wanted, len(eligible))
        team_rng = rng_for(f"team:{team}") if rng_for is not None else rng
        picked = team_rng.sample(eligible, take) if take else []
        picked.sort(key=lambda r: str(r["case_id"]))
        chosen += [(row, plan, prog) for row in picked]
        summary = {"team": team, "wanted": wanted, "cases": len(rows_here), "eligible": len(eligible), "selected": take,
                   "excluded": {k: v for k, v in excluded.items() if v}}
        result.teams.append(summary)
        if take < wanted:
            parts = [f"{n} {_EXCLUSION_WORDS[k](rules)}" for k, n in excluded.items() if n]
            detail = f" ({'; '.join(parts)})" if parts else ""
            result.unallocated.append(Unallocated(
                team, f"team {team}: {take} of {wanted} cases selected: only {len(eligible)} of {len(rows_here)} "
                      f"cases are eligible{detail}", missing=wanted - take))

    # ---- auditors
    people = _pool(pool or (), open_peer_audits)
    load = {p["person"]: p["load"] for p in people}
    new: dict[str, int] = {p["person"]: 0 for p in people}
    order = list(range(len(chosen)))
    case_rngs: list[random.Random] = []
    if rng_for is None:
        rng.shuffle(order)  # who gets the least-loaded auditors first is random, not alphabetical
    else:  # the same, by a number of each case's own
        case_rngs = [rng_for(f"case:{row['case_id']}") for row, _, _ in chosen]
        places = [r.random() for r in case_rngs]
        order.sort(key=lambda i: places[i])
    planned: dict[int, PlannedAudit] = {}
    in_roles: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # the pool members in these roles, in pool order
    for index in order:
        row, plan, prog = chosen[index]
        case_id, team = str(row["case_id"]), str(row["team"])
        service = row.get("service") or (prog.service if prog else None)
        service_manager = row.get("service_manager") or (prog.service_manager if prog else None)
        lead = _lead(row, rules, plan, service_manager)
        if not lead:
            result.unallocated.append(Unallocated(team, f"case {case_id}: no lead auditor: the case has no "
                                                        f"{LEAD_RULES[rules.lead_rule].replace('_', ' ')}"
                                                        + (f" and no {rules.lead_fallback.replace('_', ' ')}" if rules.lead_fallback else ""),
                                                  case_id=case_id))
            continue
        roles = (prog.pool_roles if prog and prog.pool_roles else rules.pool_roles)
        in_role = in_roles.get(tuple(roles))
        if in_role is None:
            pool_roles = set(roles)
            in_role = in_roles[tuple(roles)] = [p for p in people if not pool_roles or not p["roles"].isdisjoint(pool_roles)]
        peer, why = _peer(people, in_role, load, new, lead=lead, team=team, roles=roles, rules=rules,
                          rng=case_rngs[index] if case_rngs else rng)
        if peer is None:
            result.unallocated.append(Unallocated(team, f"case {case_id}: no peer auditor: {why}", case_id=case_id))
            continue
        load[peer["person"]] += 1
        new[peer["person"]] += 1
        values = {
            "case_id": case_id,
            "team": team,
            "service": service,
            "lead_auditor": lead,
            "peer_auditor": peer["person"],
            "lead_manager": row.get("lead_manager") or service_manager,
            "peer_manager": peer.get("manager"),
            "social_worker": row.get("social_worker"),
            "service_manager": service_manager,
            "peer_team": peer.get("team"),
        }
        data = {}
        for key in rules.start_data:
            value = values.get(key, row.get(key))
            if value not in (None, ""):
                data[key] = value
        planned[index] = PlannedAudit(case_id, team, data)
    result.audits = [planned[i] for i in sorted(planned)]
    result.peer_load = {k: v for k, v in new.items() if v}
    return result


_EXCLUSION_WORDS: Mapping[str, Callable[[SelectionRules], str]] = {
    "closed": lambda r: "closed",
    "too_new": lambda r: f"open less than {r.minimum_open_for.text if r.minimum_open_for else 'the minimum'}",
    "no_worker": lambda r: "without an allocated worker",
    "audited_recently": lambda r: f"audited within {r.exclude_within.text if r.exclude_within else 'the window'}",
}


def _ineligible(row: Mapping[str, Any], on: dt.date, rules: SelectionRules, calendar: Calendar,
                last_audited: Mapping[str, Any] | None, memo: dict[Any, Any]) -> str | None:
    def day(value: Any) -> dt.date | None:
        if value in (None, ""):
            return None
        key = ("d", value) if isinstance(value, str) else None
        if key is None:
            return _as_date(value)
        found = memo.get(key)
        if found is None:
            found = memo[key] = _as_date(value)
        return found

    def due(duration: Duration, anchor: dt.date) -> dt.date:
        key = (duration.text, anchor)
        found = memo.get(key)
        if found is None:
            found = memo[key] = duration.due_date(anchor, calendar)
        return found

    closed = day(row.get("closed_on"))
    if (closed is not None and closed <= on) or str(row.get("status") or "open").lower() == "closed":
        return "closed"
    if rules.minimum_open_for is not None:
        opened = day(row.get("opened_on"))
        if opened is not None and due(rules.minimum_open_for, opened) > on:
            return "too_new"
    if rules.must_have_worker and not row.get("social_worker"):
        return "no_worker"
    if rules.exclude_within is not None:
        last = day(row.get("last_audited_on"))
        if last_audited:
            other = day(last_audited.get(str(row["case_id"])))
            if other is not None and (last is None or other > last):
                last = other
        if last is not None and on < due(rules.exclude_within, last):
            return "audited_recently"
    return None


def _lead(row: Mapping[str, Any], rules: SelectionRules, plan: TeamPlan | None, service_manager: Any) -> str | None:
    def holder(rule: str | None) -> Any:
        if rule is None:
            return None
        fieldname = LEAD_RULES[rule]
        value = row.get(fieldname)
        if not value and fieldname == "team_manager" and plan is not None:
            value = plan.team_manager
        if not value and fieldname == "service_manager":
            value = service_manager
        if _truthy(row.get(f"{fieldname}_available"), True) is False:
            return None
        return value

    return holder(rules.lead_rule) or holder(rules.lead_fallback) or None


def _pool(rows: Iterable[Mapping[str, Any]], extra_load: Mapping[str, int] | None) -> list[dict[str, Any]]:
    people: dict[str, dict[str, Any]] = {}
    for row in rows:
        person = str(row.get("person") or row.get("id") or "")
        if not person or not _truthy(row.get("available"), True):
            continue
        roles = row.get("roles") or row.get("role") or ()
        if isinstance(roles, str):
            roles = [r.strip() for r in roles.replace(";", ",").split(",") if r.strip()]
        entry = people.setdefault(person, {"person": person, "roles": set(), "team": row.get("team") or None,
                                           "manager": row.get("manager") or None, "load": 0})
        entry["roles"].update(roles)
        try:
            entry["load"] = max(entry["load"], int(row.get("open_peer_audits") or 0))
        except (TypeError, ValueError):
            raise UsageError(f"pool: open_peer_audits of {person} is not a whole number: {row.get('open_peer_audits')!r}") from None
    for person, n in (extra_load or {}).items():
        if person in people:
            people[person]["load"] += int(n)
    return [people[k] for k in sorted(people)]


def _peer(people: list[dict[str, Any]], in_role: list[dict[str, Any]], load: dict[str, int], new: dict[str, int], *, lead: str,
          team: str, roles: Sequence[str], rules: SelectionRules, rng: random.Random) -> tuple[dict[str, Any] | None, str]:
    """A peer auditor among ``in_role`` (the members of ``people`` in one of ``roles``), or None and why not."""
    wanted = set(roles)
    counts = {"role": len(people) - len(in_role), "lead": 0, "team": 0, "limit": 0}
    never_the_lead, not_same_team, limit = rules.never_the_lead, rules.not_from_same_team, rules.max_new_per_person
    candidates = []
    for p in in_role:
        if never_the_lead and p["person"] == lead:
            counts["lead"] += 1
        elif not_same_team and p["team"] is not None and p["team"] == team:
            counts["team"] += 1
        elif limit is not None and new[p["person"]] >= limit:
            counts["limit"] += 1
        else:
            candidates.append(p)
    if not candidates:
        reasons = []
        if counts["role"]:
            reasons.append(f"{counts['role']} not in the pool roles ({', '.join(sorted(wanted))})")
        if counts["lead"]:
            reasons.append(f"{counts['lead']} the lead auditor")
        if counts["team"]:
            reasons.append(f"{counts['team']} from the same team")
        if counts["limit"]:
            reasons.append(f"{counts['limit']} already at the limit of {rules.max_new_per_person} new peer audits this month")
        total = len(people)
        return None, (f"none of the {total} people in the pool can take it: " + "; ".join(reasons)) if total else "the peer pool is empty"
    if rules.balance == "random":
        return rng.choice(candidates), ""
    fewest = min(load[p["person"]] for p in candidates)
    ties = [p for p in candidates if load[p["person"]] == fewest]
    return (ties[0] if len(ties) == 1 else rng.choice(ties)), ""
