"""The behaviour model: read ``config/simulation/*.yaml`` (or a scenario file), check it, compile it.

A model has a ``population`` (authorities, teams, caseloads, staff by role with weekly capacity),
``behaviours`` (who fires which trigger in which state, after how long, with what payload),
``arrivals`` (complaints, escalations, surveys: Poisson streams per month), ``planned`` starts
(targeted audits in a programme month) and ``kpi_series`` (modelled monthly KPI figures, imported as an
extract would be). docs/simulation.md describes the language.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..calendar import Duration, parse_duration
from ..config.yamlsource import Document
from ..errors import ConfigError, DurationError, ExpressionError
from ..expressions import Expression, Template, compile_expression, compile_template
from ..problems import Location, Problem
from . import generators as g
from .distributions import Delay, Dist, DistError, Late, parse_dist

__all__ = [
    "ActorSpec", "ActionSpec", "Rule", "Stream", "StaffSpec", "PopulationSpec", "Settings", "BehaviourModel", "KpiSeriesSpec",
    "model_files", "load_model", "check_model", "RULE_NAMES", "STREAM_NAMES",
]

#: Names a behaviour's conditions and generators may read.
RULE_NAMES = ("data", "state", "deadlines", "today", "now", "instance_id", "workflow", "payload", "actor", "authority")
#: Names an arrival's or planned start's generators may read.
STREAM_NAMES = ("authority", "programme", "item", "case", "today", "now", "month", "payload")


# --------------------------------------------------------------------------- compiled model


@dataclass(frozen=True)
class ActorSpec:
    """Who acts: a role (bound: the person the data names; organisational: someone of that role), or an expression."""

    role: str | None
    person: Expression | None = None
    roles: tuple[str, ...] = ()  # roles asserted to the engine
    bound_field: str | None = None  # set when ``role`` is bound to a data field in the workflow
    pool: tuple[str, ...] = ()  # population roles to pick someone from


@dataclass(frozen=True)
class ActionSpec:
    """One possible action of a behaviour (a branch of ``one_of``; no ``trigger``: nothing happens)."""

    weight: float
    trigger: str | None
    actor: ActorSpec | None
    delay: Delay | None
    late: Late | None
    payload: g.ObjectGen | None
    label: str


@dataclass(frozen=True)
class Rule:
    id: str
    workflow: str
    states: tuple[str, ...]  # resolved ('*' expanded to the non-terminal states)
    when: Expression | None
    chance: float
    times: int
    options: tuple[ActionSpec, ...]
    location: Location

    def choose(self, rng: Any) -> ActionSpec | None:
        if len(self.options) == 1:
            return self.options[0]
        total = sum(o.weight for o in self.options)
        x = rng.random() * total
        for o in self.options:
            x -= o.weight
            if x < 0:
                return o
        return self.options[-1]


@dataclass(frozen=True)
class Stream:
    """An arrival process (``rate_per_month``) or planned starts (``month``), per authority or per programme."""

    id: str
    kind: str  # "arrival" | "planned"
    workflow: str
    per: str  # "authority" | "programme"
    for_each: Expression | None
    where: Expression | None
    rate: float | None
    rate_by: Expression | None
    rate_values: Mapping[str, float]
    month: Expression | None
    day: int
    time: dt.time
    actor: ActorSpec
    data: g.ObjectGen
    location: Location


@dataclass(frozen=True)
class StaffSpec:
    roles: tuple[str, ...]
    source: str  # "count" | "team_managers" | "service_managers" | "social_workers"
    count: int = 0
    id_format: str = "{role}-{n:02d}"
    team: str | None = None
    manager: str | None = None
    capacity_per_week: int | None = None


@dataclass(frozen=True)
class PopulationSpec:
    authorities: tuple[tuple[str, str], ...]
    team_copies: int
    caseload: Dist
    social_workers: Dist
    case_age_days: Dist
    audited_chance: float
    audited_days_ago: Dist
    without_worker: float
    monthly_turnover: float
    staff: tuple[StaffSpec, ...]


@dataclass(frozen=True)
class Settings:
    warmup: Duration | None
    working_hours: tuple[float, float]
    calendar: str
    selection_actor: ActorSpec


@dataclass(frozen=True)
class KpiSeriesSpec:
    """Modelled monthly figures of the programmes' imported percentage KPIs (not real data)."""

    arrive_working_day: int
    time: dt.time
    denominator: Dist
    start: Dist
    step: Dist
    slump_chance: float
    slump_months: Dist
    slump_points: Dist


@dataclass(frozen=True)
class BehaviourModel:
    id: str
    title: str
    settings: Settings
    population: PopulationSpec
    rules: tuple[Rule, ...]
    arrivals: tuple[Stream, ...]
    planned: tuple[Stream, ...]
    files: tuple[str, ...]
    index: Mapping[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict, repr=False)
    kpi_series: KpiSeriesSpec | None = None

    def roles(self) -> list[str]:
        """Every population role, in order of first mention."""
        out: list[str] = []
        for s in self.population.staff:
            for r in s.roles:
                if r not in out:
                    out.append(r)
        for extra in ("team_manager", "service_manager", "social_worker"):
            if extra not in out:
                out.append(extra)
        return out


# --------------------------------------------------------------------------- reading


def model_files(config_dir: str | Path) -> list[Path]:
    folder = Path(config_dir) / "simulation"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _schema() -> Mapping[str, Any]:
    from ..config.loader import schema_for

    return schema_for("simulation")


def _read(paths: Sequence[Path]) -> tuple[list[Document], list[Problem]]:
    from ..config.loader import read_document

    schema = _schema()
    docs, problems = [], []
    for path in paths:
        doc, found = read_document(path, schema)
        problems += found
        if doc is not None:
            docs.append(doc)
    return docs, problems


@dataclass
class _Item:
    """One list entry of the merged model, with the document it came from (for locations)."""

    doc: Document
    path: tuple
    data: Any


@dataclass
class _Raw:
    id: str = "model"
    title: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    settings_at: dict[str, _Item] = field(default_factory=dict)
    population: dict[str, Any] = field(default_factory=dict)
    population_at: _Item | None = None
    lists: dict[str, list[_Item]] = field(default_factory=lambda: {"behaviours": [], "arrivals": [], "planned": []})
    files: list[str] = field(default_factory=list)
    kpi_series: dict[str, Any] = field(default_factory=dict)
    kpi_series_at: _Item | None = None


def _merge_dict(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge_dict(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _add(raw: _Raw, doc: Document, *, replace_by_id: bool) -> None:
    data = doc.data
    raw.files.append(doc.file)
    if "simulation" in data:
        raw.id = data["simulation"]
    if data.get("title"):
        raw.title = data["title"]
    for k, v in (data.get("settings") or {}).items():
        raw.settings[k] = v
        raw.settings_at[k] = _Item(doc, ("settings", k), v)
    if isinstance(data.get("kpi_series"), Mapping):
        raw.kpi_series = _merge_dict(raw.kpi_series, data["kpi_series"]) if replace_by_id else dict(data["kpi_series"])
        raw.kpi_series_at = _Item(doc, ("kpi_series",), data["kpi_series"])
    if "population" in data:
        raw.population = _merge_dict(raw.population, data["population"]) if replace_by_id else data["population"]
        raw.population_at = _Item(doc, ("population",), data["population"])
    for section in ("behaviours", "arrivals", "planned"):
        for i, entry in enumerate(data.get(section) or ()):
            item = _Item(doc, (section, i), entry)
            items = raw.lists[section]
            at = next((j for j, old in enumerate(items) if old.data.get("id") == entry.get("id")), None)
            if at is not None and replace_by_id:
                items[at] = item
            else:
                items.append(item)
    for rid in data.get("disable") or ():
        for section in ("behaviours", "arrivals", "planned"):
            raw.lists[section] = [x for x in raw.lists[section] if x.data.get("id") != rid]


def load_model(definitions: Any, config_dir: str | Path | None = None, scenario: str | Path | None = None) -> BehaviourModel:
    """The behaviour model of ``config_dir`` (its ``simulation/`` folder), or of ``scenario``; ConfigError on problems."""
    model, problems = check_model(definitions, config_dir, scenario)
    if model is None:
        raise ConfigError(problems)
    return model


def check_model(definitions: Any, config_dir: str | Path | None = None, scenario: str | Path | None = None
                ) -> tuple[BehaviourModel | None, list[Problem]]:
    """Read, schema-check, merge and compile a behaviour model; every problem, sorted by position.

    With ``scenario``: that file alone, or, if it says ``extends: config``, the configuration's model
    with the scenario's sections laid over it (entries with the same ``id`` are replaced).
    """
    from ..config.loader import default_config_dir

    root = Path(config_dir) if config_dir is not None else Path(definitions.root or default_config_dir())
    problems: list[Problem] = []
    raw = _Raw()
    if scenario is not None:
        path = Path(scenario)
        if not path.is_file():
            return None, [Problem(Location(str(path)), "error", "no-such-file", f"'{path}' does not exist")]
        docs, found = _read([path])
        problems += found
        if docs and docs[0].data.get("extends") == "config":
            base_docs, found = _read(model_files(root))
            problems += found
            for doc in base_docs:
                _add(raw, doc, replace_by_id=False)
        for doc in docs:
            _add(raw, doc, replace_by_id=True)
    else:
        files = model_files(root)
        if not files:
            return None, [Problem(Location(str(root / "simulation")), "error", "no-model",
                                  f"no behaviour model: '{root / 'simulation'}' has no YAML files (see docs/simulation.md)")]
        docs, found = _read(files)
        problems += found
        for doc in docs:
            _add(raw, doc, replace_by_id=False)
    if any(p.severity == "error" for p in problems):
        problems.sort(key=lambda p: p.sort_key())
        return None, problems
    compiler = _Compiler(definitions)
    model = compiler.model(raw)
    problems += compiler.problems
    problems.sort(key=lambda p: p.sort_key())
    if any(p.severity == "error" for p in problems):
        return None, problems
    return model, problems


# --------------------------------------------------------------------------- compiling


class _Compiler:
    def __init__(self, definitions: Any) -> None:
        self.defs = definitions
        self.problems: list[Problem] = []
        self.functions = dict(definitions.functions)
        self.population_roles: set[str] = set()

    # -- problems
    def error(self, doc: Document, path: tuple, code: str, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(doc.location(path, key=key), "error", code, message))

    def warning(self, doc: Document, path: tuple, code: str, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(doc.location(path, key=key), "warning", code, message))

    # -- building blocks
    def expr(self, doc: Document, path: tuple, source: Any, names: Sequence[str]) -> Expression | None:
        try:
            return compile_expression(str(source), names=names, functions=self.functions)
        except ExpressionError as exc:
            self.error(doc, path, f"expression-{exc.code}", exc.message)
            return None

    def template(self, doc: Document, path: tuple, source: Any, names: Sequence[str]) -> Template | None:
        try:
            return compile_template(str(source), names=names, functions=self.functions)
        except ExpressionError as exc:
            self.error(doc, path, "expression", exc.message)
            return None

    def dist(self, doc: Document, path: tuple, spec: Any) -> Dist:
        try:
            return parse_dist(spec)
        except (DistError, KeyError, TypeError, ValueError) as exc:
            self.error(doc, path, "distribution", f"not a distribution: {exc}")
            return Dist("const", 0.0)

    def delay(self, doc: Document, path: tuple, spec: Any, names: Sequence[str]) -> Delay | None:
        if spec is None:
            return None
        units = [u for u in ("working_days", "days", "hours") if u in spec]
        if len(units) != 1:
            self.error(doc, path, "delay", "a delay has exactly one of working_days, days or hours")
            return None
        unit = units[0]
        anchor = self.expr(doc, path + ("from",), spec["from"], names) if "from" in spec else None
        return Delay(unit, self.dist(doc, path + (unit,), spec[unit]), anchor)

    def scale_levels(self, doc: Document, path: tuple, name: Any) -> list[str]:
        scale = self.defs.scales.get(name)
        if scale is None:
            self.error(doc, path, "unknown-scale", f"no scale '{name}' in the rules (known: {', '.join(sorted(self.defs.scales))})")
            return ["?"]
        return [lv.key for lv in sorted(scale.levels, key=lambda lv: lv.rank)]

    def gen(self, doc: Document, path: tuple, spec: Any, names: Sequence[str]) -> g.Generator:
        """Compile one generator (a constant, a list of generators, or a mapping with one generator key)."""
        if isinstance(spec, list):
            return g.ListGen([self.gen(doc, path + (i,), s, names) for i, s in enumerate(spec)])
        if not isinstance(spec, dict):
            return g.Const(spec)
        key = next((k for k in g.GENERATOR_KEYS if k in spec), None)
        if key is None:
            self.error(doc, path, "generator", "a mapping here must be a generator (const, expr, text, choice, pick, chance, "
                                               "if, switch, person, number, integer, date, object, repeat, scale_map, "
                                               "scale_pick, perturb, clamp, blend, cases); write a literal object as {const: {...}}")
            return g.Const(None)
        v = spec[key]
        p = path + (key,)
        if key == "const":
            return g.Const(v)
        if key == "expr":
            e = self.expr(doc, p, v, names)
            return g.Expr(e) if e else g.Const(None)
        if key == "text":
            t = self.template(doc, p, v, names)
            return g.Text(t) if t else g.Const(None)
        if key == "choice":
            pairs = list(v.items()) if isinstance(v, dict) else [(x["value"], x.get("weight", 1)) for x in v]
            return g.Choice([(self.gen(doc, p, val, names) if not isinstance(v, dict) else g.Const(val), float(w))
                             for val, w in pairs])
        if key == "pick":
            if isinstance(v, dict):
                return g.Pick(self.gen(doc, p + ("of",), {"expr": v["of"]} if isinstance(v["of"], str) else v["of"], names),
                              self.dist(doc, p + ("count",), v["count"]) if "count" in v else None)
            return g.Pick(self.gen(doc, p, {"expr": v} if isinstance(v, str) else v, names), None)
        if key == "chance":
            return g.Chance(float(v), self.gen(doc, path + ("then",), spec.get("then", True), names),
                            self.gen(doc, path + ("else",), spec.get("else", False), names))
        if key == "if":
            e = self.expr(doc, p, v, names)
            then = self.gen(doc, path + ("then",), spec.get("then"), names)
            other = self.gen(doc, path + ("else",), spec.get("else"), names)
            return g.If(e, then, other) if e else other
        if key == "switch":
            e = self.expr(doc, p, v, names)
            cases = {str(k) if k is not None else "null": self.gen(doc, path + ("cases", k), c, names)
                     for k, c in (spec.get("cases") or {}).items()}
            default = self.gen(doc, path + ("default",), spec.get("default"), names)
            return g.Switch(e, cases, default) if e else default
        if key == "person":
            spec_p = v if isinstance(v, dict) else {"role": v}
            roles = spec_p.get("role") or spec_p.get("roles")
            roles = tuple([roles] if isinstance(roles, str) else roles or ())
            for r in roles:
                if r not in self.population_roles:
                    self.error(doc, p, "unknown-role", f"nobody in the population has the role '{r}' "
                                                       f"(roles: {', '.join(sorted(self.population_roles))})")
            excl = spec_p.get("exclude") or []
            excl = [excl] if isinstance(excl, str) else excl
            exprs = tuple(e for i, x in enumerate(excl) if (e := self.expr(doc, p + ("exclude", i), x, names)) is not None)
            count = self.dist(doc, p + ("count",), spec_p["count"]) if "count" in spec_p else None
            return g.Person(roles, exprs, count)
        if key in ("number", "integer"):
            return g.Number(self.dist(doc, p, v), integer=key == "integer")
        if key == "date":
            if isinstance(v, str):
                e = self.expr(doc, p, v, names)
                return g.DateGen(e, None, False)
            base = self.expr(doc, p + ("from",), v["from"], names) if "from" in v else None
            unit = "working_days" if "working_days" in v else "days" if "days" in v else None
            dist = self.dist(doc, p + (unit,), v[unit]) if unit else None
            return g.DateGen(base, dist, unit == "working_days")
        if key == "object":
            return g.ObjectGen([(str(k), self.gen(doc, p + (k,), s, names)) for k, s in v.items()])
        if key == "repeat":
            return g.Repeat(self.dist(doc, p + ("count",), v["count"]), self.gen(doc, p + ("item",), v["item"], names))
        if key == "scale_map":
            levels = self.scale_levels(doc, p + ("scale",), v["scale"])
            keys = v["keys"]
            names_gen = self.gen(doc, p + ("keys",), {"expr": keys} if isinstance(keys, str) else {"const": keys}, names)
            shift = {int(k): float(w) for k, w in (v.get("shift") or {0: 1}).items()}
            return g.ScaleMap(levels, names_gen, self.gen(doc, p + ("centre",), v["centre"], names), shift)
        if key == "scale_pick":
            levels = self.scale_levels(doc, p + ("scale",), v["scale"])
            of = v["of"]
            return g.ScalePick(levels, self.gen(doc, p + ("of",), {"expr": of} if isinstance(of, str) else of, names),
                               v.get("pick", "median"))
        if key == "perturb":
            levels = self.scale_levels(doc, p + ("scale",), v["scale"])
            e = self.expr(doc, p + ("of",), v["of"], names)
            otherwise = self.gen(doc, p + ("otherwise",), v["otherwise"], names) if "otherwise" in v else None
            if e is None:
                return otherwise or g.Const(None)
            return g.Perturb(levels, e, float(v.get("chance", 0.0)), otherwise)
        if key == "clamp":
            levels = self.scale_levels(doc, p + ("scale",), v["scale"])
            within = v["within"]
            return g.Clamp(levels, self.gen(doc, p + ("value",), v["value"], names),
                           self.gen(doc, p + ("within",), {"expr": within} if isinstance(within, str) else within, names))
        if key == "blend":
            sources = [e for i, s in enumerate(v) if (e := self.expr(doc, p + (i,), s, names)) is not None]
            return g.Blend(sources)
        if key == "cases":
            spec_c = v if isinstance(v, dict) else {"count": v}
            count = spec_c.get("count", 1)
            scope = self.expr(doc, p + ("from",), spec_c["from"], names) if "from" in spec_c else None
            return g.Cases(self.gen(doc, p + ("count",), {"expr": count} if isinstance(count, str) else count, names), scope)
        raise AssertionError(key)  # pragma: no cover

    def payload(self, doc: Document, path: tuple, spec: Any, names: Sequence[str]) -> g.ObjectGen | None:
        if spec is None:
            return None
        return g.ObjectGen([(str(k), self.gen(doc, path + (k,), s, names)) for k, s in spec.items()], top=True)

    def actor(self, doc: Document, path: tuple, spec: Any, wf: Any, names: Sequence[str], trigger: Any = None) -> ActorSpec | None:
        if spec is None:
            self.error(doc, path, "no-actor", "who acts? give 'actor: ROLE' (or {role: ROLE, person: EXPRESSION})")
            return None
        spec = {"role": spec} if isinstance(spec, str) else spec
        role = spec.get("role")
        person = self.expr(doc, path + ("person",), spec["person"], names) if "person" in spec else None
        asserted = tuple(spec.get("roles") or ())
        bound_field = None
        pool: tuple[str, ...] = ()
        if role is not None:
            rdef = wf.roles.get(role) if wf is not None else None
            if rdef is not None and rdef.from_data:
                bound_field = rdef.from_data
            else:
                if role not in self.population_roles and person is None:
                    self.error(doc, path + ("role",), "unknown-role",
                               f"nobody in the population has the role '{role}' (roles: {', '.join(sorted(self.population_roles))})")
                if wf is not None and rdef is None and role != "system":
                    self.warning(doc, path + ("role",), "role-not-in-workflow",
                                 f"workflow '{wf.id}' has no role '{role}'")
                asserted = asserted + ((role,) if role not in asserted else ())
                pool = (role,)
        elif person is None:
            self.error(doc, path, "no-actor", "an actor needs a role or a person")
        if trigger is not None and wf is not None and role is not None:
            trig = wf.triggers.get(trigger)
            if trig is not None and not (set(asserted) | ({role} if bound_field else set())) & trig.roles:
                self.warning(doc, path, "role-cannot-fire",
                             f"'{trigger}' needs one of the roles {', '.join(sorted(trig.roles))}; this actor has {role}: "
                             "the engine will refuse it")
        return ActorSpec(role, person, asserted, bound_field, pool)

    # -- sections
    def model(self, raw: _Raw) -> BehaviourModel:
        population = self.population(raw)
        settings = self.settings(raw)
        compiled = [(item, r) for item in raw.lists["behaviours"] if (r := self.rule(item)) is not None]
        rules = [rule for _, rule in compiled]
        seen: dict[str, Location] = {}
        for item, rule in compiled:  # each rule with its own item, even when one before it did not compile
            if rule.id in seen:
                self.error(item.doc, item.path + ("id",), "duplicate-id", f"behaviour '{rule.id}' is already defined at {seen[rule.id]}")
            seen[rule.id] = rule.location
        arrivals = [s for item in raw.lists["arrivals"] if (s := self.stream(item, "arrival")) is not None]
        planned = [s for item in raw.lists["planned"] if (s := self.stream(item, "planned")) is not None]
        index: dict[tuple[str, str], list[Rule]] = {}
        for rule in rules:
            for state in rule.states:
                index.setdefault((rule.workflow, state), []).append(rule)
        return BehaviourModel(
            id=raw.id, title=raw.title or raw.id, settings=settings, population=population, rules=tuple(rules),
            arrivals=tuple(arrivals), planned=tuple(planned), files=tuple(raw.files),
            index={k: tuple(v) for k, v in index.items()}, kpi_series=self.kpi_series(raw),
        )

    def kpi_series(self, raw: _Raw) -> KpiSeriesSpec | None:
        spec, item = raw.kpi_series, raw.kpi_series_at
        if not spec or item is None:
            return None
        doc, path = item.doc, item.path
        slump = spec.get("slump") or {}
        hh, mm = (str(spec.get("time", "09:00")).split(":") + ["0"])[:2]
        return KpiSeriesSpec(
            arrive_working_day=int(spec.get("arrive_working_day", 5)), time=dt.time(int(hh), int(mm)),
            denominator=self.dist(doc, path + ("denominator",), spec.get("denominator", {"uniform": [30, 120]})),
            start=self.dist(doc, path + ("start",), spec.get("start", 0)),
            step=self.dist(doc, path + ("step",), spec.get("step", 0)),
            slump_chance=float(slump.get("chance", 0)),
            slump_months=self.dist(doc, path + ("slump", "months"), slump.get("months", 2)),
            slump_points=self.dist(doc, path + ("slump", "points"), slump.get("points", 0)),
        )

    def settings(self, raw: _Raw) -> Settings:
        s = raw.settings
        warmup = None
        if s.get("warmup") not in (None, "", "none"):
            try:
                warmup = parse_duration(str(s["warmup"]))
            except DurationError as exc:
                item = raw.settings_at["warmup"]
                self.error(item.doc, item.path, "duration", exc.message)
        hours = tuple(float(h) for h in s.get("working_hours", (9, 17)))
        if not 0 <= hours[0] < hours[1] <= 24:
            item = raw.settings_at["working_hours"]
            self.error(item.doc, item.path, "working-hours", "working_hours must be [start, end] with 0 <= start < end <= 24")
            hours = (9.0, 17.0)
        calendar = s.get("calendar", "england")
        if calendar not in self.defs.calendars:
            item = raw.settings_at["calendar"]
            self.error(item.doc, item.path, "unknown-calendar", f"no calendar '{calendar}' in the rules")
            calendar = "england"
        actor_spec = s.get("selection_actor", {"role": "qa_team"})
        actor_at = raw.settings_at.get("selection_actor")
        if actor_at is not None:
            actor = self.actor(actor_at.doc, actor_at.path, actor_spec, None, STREAM_NAMES)
        else:
            actor = ActorSpec("qa_team", None, ("qa_team",), None, ("qa_team",))
        return Settings(warmup, (hours[0], hours[1]), calendar, actor or ActorSpec(None))

    def population(self, raw: _Raw) -> PopulationSpec:
        pop = raw.population
        at = raw.population_at
        doc = at.doc if at else None
        base = ("population",)
        auth = pop.get("authorities") or [{"id": "authority"}]
        if isinstance(auth, dict):
            n = int(auth.get("count", 1))
            fmt: str = auth.get("id", "la{n:03d}")
            name_fmt: str = auth.get("name", fmt)
            authorities = tuple((fmt.format(n=i + 1), name_fmt.format(n=i + 1)) for i in range(n))
        else:
            authorities = tuple((a["id"], a.get("name", a["id"])) for a in auth)
        teams = pop.get("teams") or {}

        def d(key: str, default: Any) -> Dist:
            if doc is None:
                return parse_dist(default)
            return self.dist(doc, base + ("teams", key), teams.get(key, default))

        audited = teams.get("last_audited") or {}
        staff = []
        for i, s in enumerate(pop.get("staff") or ()):
            roles = s.get("roles") or ([s["role"]] if "role" in s else [])
            source = s.get("from", "count")
            if source == "count" and "count" not in s and doc is not None:
                self.error(doc, base + ("staff", i), "staff", "a staff entry needs 'count' (or 'from: team_managers | service_managers | social_workers')")
            if not roles:
                roles = {"team_managers": ["team_manager"], "service_managers": ["service_manager"],
                         "social_workers": ["social_worker"]}.get(source, [])
            staff.append(StaffSpec(
                roles=tuple(roles), source=source, count=int(s.get("count", 0)),
                id_format=s.get("id", (roles[0].upper().replace("_", "") if roles else "P") + "-{n:02d}"),
                team=s.get("team"), manager=s.get("manager"), capacity_per_week=s.get("capacity_per_week"),
            ))
            self.population_roles.update(roles)
        self.population_roles.update(("team_manager", "service_manager", "social_worker"))
        return PopulationSpec(
            authorities=authorities,
            team_copies=int(pop.get("team_copies", 1)),
            caseload=d("caseload", {"uniform": [30, 60]}),
            social_workers=d("social_workers", {"uniform": [5, 8]}),
            case_age_days=d("case_age_days", {"lognormal": {"median": 180, "sigma": 0.8}}),
            audited_chance=float(audited.get("chance", 0.2)),
            audited_days_ago=self.dist(doc, base + ("teams", "last_audited", "days_ago"), audited.get("days_ago", {"uniform": [0, 365]}))
            if doc else parse_dist({"uniform": [0, 365]}),
            without_worker=float(teams.get("without_worker", 0.0)),
            monthly_turnover=float(teams.get("monthly_turnover", 0.0)),
            staff=tuple(staff),
        )

    def workflow(self, doc: Any, path: tuple, name: str) -> Any:
        """The workflow a rule or stream names, or None with an error at its 'workflow:' key."""
        wf = self.defs.workflows.get(name)
        if wf is None:
            self.error(doc, path + ("workflow",), "unknown-workflow",
                       f"no workflow '{name}' (known: {', '.join(sorted(self.defs.workflows))})")
        return wf

    def rule(self, item: _Item) -> Rule | None:
        doc, path, spec = item.doc, item.path, item.data
        wf = self.workflow(doc, path, spec["workflow"])
        if wf is None:
            return None
        states_spec = spec["state"]
        states_spec = [states_spec] if isinstance(states_spec, str) else list(states_spec)
        states: list[str] = []
        for i, s in enumerate(states_spec):
            where = path + (("state", i) if isinstance(spec["state"], list) else ("state",))
            if s == "*":
                states += [n for n, st in wf.states.items() if not st.terminal and n not in states]
            elif s not in wf.states:
                self.error(doc, where, "unknown-state",
                           f"workflow '{wf.id}' has no state '{s}' (states: {', '.join(wf.states)})")
            elif wf.states[s].terminal:
                self.warning(doc, where, "terminal-state", f"state '{s}' is terminal: nothing can be fired there")
            elif s not in states:
                states.append(s)
        when = self.expr(doc, path + ("when",), spec["when"], RULE_NAMES) if "when" in spec else None
        branches = spec.get("one_of", [spec])
        options = []
        for i, b in enumerate(branches):
            bpath = path + ("one_of", i) if "one_of" in spec else path
            trigger = b.get("fire")
            if trigger is not None:
                trig = wf.triggers.get(trigger)
                if trig is None:
                    self.error(doc, bpath + ("fire",), "unknown-trigger",
                               f"workflow '{wf.id}' has no trigger '{trigger}' (triggers: {', '.join(sorted(wf.triggers))})")
                    continue
                accepted = [s for s in states if (trigger, s) in wf.by_event]
                if states and not accepted:
                    self.warning(doc, bpath + ("fire",), "trigger-not-accepted",
                                 f"'{trigger}' is not accepted in {', '.join(states)}: the engine will refuse it")
                self._check_payload(doc, bpath + ("payload",), trig, b.get("payload"))
            actor = self.actor(doc, bpath + ("actor",), b.get("actor"), wf, RULE_NAMES, trigger) if trigger else None
            delay = self.delay(doc, bpath + ("after",), b.get("after") or {"hours": 0}, RULE_NAMES) if trigger else None
            late = None
            if b.get("late"):
                extra = self.delay(doc, bpath + ("late", "extra"), b["late"]["extra"], RULE_NAMES)
                late = Late(float(b["late"].get("chance", 0)), extra) if extra else None
            options.append(ActionSpec(
                weight=float(b.get("weight", 1)), trigger=trigger, actor=actor, delay=delay, late=late,
                payload=self.payload(doc, bpath + ("payload",), b.get("payload"), RULE_NAMES) if trigger else None,
                label=b.get("label") or (trigger or "nothing"),
            ))
        if not options:
            return None
        return Rule(
            id=spec["id"], workflow=wf.id, states=tuple(states), when=when, chance=float(spec.get("chance", 1.0)),
            times=int(spec.get("times", 1)), options=tuple(options), location=doc.location(path),
        )

    def _check_payload(self, doc: Document, path: tuple, trig: Any, payload: Any) -> None:
        schema = trig.payload_schema or {}
        props = schema.get("properties") if isinstance(schema, Mapping) else None
        payload = {} if payload is None else payload
        if not isinstance(payload, Mapping) or props is None:
            return
        if schema.get("additionalProperties") is False:
            for key in payload:
                if key not in props:
                    self.error(doc, path + (key,), "unknown-payload-field",
                               f"'{trig.name}' takes no '{key}' (it takes: {', '.join(props)})", key=True)
        for key in schema.get("required") or ():
            if key not in payload:
                self.warning(doc, path, "missing-payload-field", f"'{trig.name}' needs '{key}': the engine will refuse it")

    def stream(self, item: _Item, kind: str) -> Stream | None:
        doc, path, spec = item.doc, item.path, item.data
        wf = self.workflow(doc, path, spec["workflow"])
        if wf is None:
            return None
        names = STREAM_NAMES
        for_each = self.expr(doc, path + ("for_each",), spec["for_each"], names) if "for_each" in spec else None
        where = self.expr(doc, path + ("where",), spec["where"], names) if "where" in spec else None
        per = spec.get("per", "programme" if for_each is not None else "authority")
        rate, rate_by, rate_values = None, None, {}
        r = spec.get("rate_per_month")
        if isinstance(r, (int, float)):
            rate = float(r)
        elif isinstance(r, dict):
            rate_by = self.expr(doc, path + ("rate_per_month", "by"), r["by"], names)
            rate_values = {str(k): float(v) for k, v in (r.get("values") or {}).items()}
            rate = float(r.get("default", 0))
        month = self.expr(doc, path + ("month",), spec["month"], names) if "month" in spec else None
        if kind == "arrival" and r is None:
            self.error(doc, path, "no-rate", "an arrival needs rate_per_month")
        hh, mm = (str(spec.get("time", "09:00")).split(":") + ["0"])[:2]
        fields = wf.fields
        data = spec.get("data") or {}
        if fields:
            for key in data:
                if key not in fields:
                    self.warning(doc, path + ("data", key), "unknown-field", f"workflow '{wf.id}' declares no field '{key}'", key=True)
            for name, f in fields.items():
                if f.required and f.default is None and name not in data:
                    self.error(doc, path + ("data",), "missing-field", f"workflow '{wf.id}' needs '{name}' to start")
        actor = self.actor(doc, path + ("actor",), spec.get("actor", {"role": "qa_team"}), None, names)
        return Stream(
            id=spec["id"], kind=kind, workflow=wf.id, per=per, for_each=for_each, where=where, rate=rate,
            rate_by=rate_by, rate_values=rate_values, month=month, day=int(spec.get("day", 1)),
            time=dt.time(int(hh), int(mm)), actor=actor or ActorSpec(None),
            data=self.payload(doc, path + ("data",), data, names) or g.ObjectGen([], top=True),
            location=doc.location(path),
        )


def iter_rules(model: BehaviourModel) -> Iterable[Rule]:
    return iter(model.rules)
