"""Read a report definition (config/reports/*.yaml) and compile its metric language once."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.loader import bundled_config_dir, display_path, schema_for
from ..config.schemacheck import check_schema
from ..config.yamlsource import Document, load_yaml_file
from ..definitions import Definitions
from ..errors import ConfigError, ExpressionError, UsageError
from ..expressions import Expression, compile_expression
from ..kpis.catalogue import Benchmark, KpiSpec, benchmarks_of, combine_of, kpi_catalogue
from ..problems import Location, Problem

__all__ = ["ITEM", "NAMES", "KpiDef", "MetricDef", "PersonDef", "Programme", "ReportDef", "load_report"]

#: The names a report expression may read (docs/reports.md).
NAMES = (
    "data",  # the instance's data
    "state",  # its current state
    "workflow",  # its workflow id
    "instance_id",
    "deadlines",  # its clocks by name: status, due, late, open, on_time, closed, extended, ...
    "deadline",  # the clock being counted (per-deadline metrics and KPIs)
    "created",  # the day it started
    "updated",  # the day it last changed
    "entered",  # state -> the day it first entered that state (from the history)
    "terminal",  # true if its state is terminal
    "parent",  # the data of the instance that started it
    "period_from",
    "period_to",
)
#: The name a list metric's columns read each item of its ``for_each`` list by.
ITEM = "item"
DEFAULT_LIST_LIMIT = 50

DEFAULT_REPORT = "qa_report"
DEFAULT_TOLERANCE = 5.0
DEFAULT_MONTHS_BEFORE = 5
DEFAULT_KPI_TREND_MONTHS = 6


@dataclass(frozen=True)
class PersonDef:
    person: Expression
    field: str | None  # "lead_auditor" when person is a plain data.lead_auditor (followed through history)
    until_deadline: str | None = None
    until_state: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricDef:
    """One metric of the report, compiled. Which fields matter depends on ``kind``."""

    name: str
    kind: str
    title: str = ""
    description: str = ""
    workflows: tuple[str, ...] = ()
    period_by: Expression | None = None
    where: Expression | None = None
    by: Expression | None = None
    # share
    numerator: Expression | None = None
    deadlines: tuple[str, ...] = ()
    detail: bool = False
    # distribution
    values: tuple[tuple[str, Expression], ...] = ()
    each: tuple[tuple[str, Expression], ...] = ()
    scale: str | None = None
    vocabulary: str | None = None  # a vocabulary of the rules: orders and labels the values
    favourable: tuple[Any, ...] | None = None
    keys: tuple[tuple[str, str], ...] = ()  # (key, label) of 'each' mappings
    # deadlines
    combine: bool = False
    # changes
    compare: tuple[tuple[str, Expression], ...] = ()
    to: Expression | None = None
    # workload
    start: Expression | None = None
    people: tuple[PersonDef, ...] = ()
    capacity: float | None = None
    # kpis
    only: tuple[str, ...] = ()
    programmes: bool = True
    tolerance: float = DEFAULT_TOLERANCE
    tolerances: Mapping[str, float] = field(default_factory=dict)
    trend_months: int = DEFAULT_KPI_TREND_MONTHS
    # list
    columns: tuple[tuple[str, Expression], ...] = ()
    for_each: Expression | None = None
    limit: int = DEFAULT_LIST_LIMIT
    # group
    children: tuple[MetricDef, ...] = ()

    def about(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "title": self.title or self.name.replace("_", " ").capitalize()}
        if self.description:
            out["description"] = self.description
        if self.scale:
            out["scale"] = self.scale
        if self.vocabulary:
            out["vocabulary"] = self.vocabulary
        if self.columns:
            out["columns"] = [name for name, _ in self.columns]
        if self.workflows:
            out["workflows"] = list(self.workflows)
        if self.deadlines:
            out["deadlines"] = list(self.deadlines)  # in the order the definition lists them
        if self.values:
            out["values"] = [name for name, _ in self.values]
        if self.each:
            out["each"] = [name for name, _ in self.each]
        if self.children:
            out["metrics"] = {c.name: c.about() for c in self.children}
            out["order"] = [c.name for c in self.children]
        return out


@dataclass(frozen=True)
class KpiDef:
    """A KPI of config/rules/kpis.yaml, compiled: computed from workflow history (``values: history``) or imported."""

    name: str
    title: str
    unit: str
    direction: str
    target: float | None
    source: str
    workflows: tuple[str, ...]
    period_by: Expression | None
    population: Expression | None
    numerator: Expression | None
    per_deadline: tuple[str, ...] = ()
    description: str = ""
    values: str = "history"  # history | imported
    tolerance: float | None = None  # the KPI's own amber band, over the report's default
    benchmarks: tuple[Benchmark, ...] = ()
    combine: str = "add_up"  # how an imported KPI's months make a longer period's figure (add_up | latest)

    @property
    def imported(self) -> bool:
        return self.values == "imported"


@dataclass(frozen=True)
class Programme:
    """What a report needs of a service-area programme: its service, period and KPI targets."""

    id: str
    title: str
    service: str
    start: str
    end: str
    kpis: tuple[Mapping[str, Any], ...]
    service_manager: str = ""
    targeted_audits: tuple[Mapping[str, Any], ...] = ()
    surveys: tuple[Mapping[str, Any], ...] = ()
    reporting: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportDef:
    id: str
    title: str
    description: str
    file: str
    levels: Mapping[str, Expression]
    metrics: tuple[MetricDef, ...]
    trend_months_before: int
    trend_series: tuple[tuple[str, str, str, str | None], ...]  # (name, metric path, title, target kpi)
    presentation: Mapping[str, Any]
    kpis: Mapping[str, KpiDef]
    programmes: tuple[Programme, ...]
    labels: Mapping[str, Any]  # scale and key labels for renderers
    catalogue: Mapping[str, KpiSpec] = field(default_factory=dict)  # every KPI defined, the programmes' too

    def metric(self, name: str) -> MetricDef | None:
        for m in self.metrics:
            if m.name == name:
                return m
        return None


# --------------------------------------------------------------------------- loading


def _report_files(root: Path) -> list[Path]:
    folder = root / "reports"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def find_report_file(definitions: Definitions, report: str | Path | None = None) -> Path:
    """The report file: a path, an id in <config>/reports/, or qa_report (falling back to the bundled one)."""
    if report is not None and (Path(report).suffix in (".yaml", ".yml") or Path(report).is_file()):
        path = Path(report)
        if not path.is_file():
            raise UsageError(f"report file '{report}' does not exist")
        return path
    name = str(report) if report is not None else DEFAULT_REPORT
    for root in (Path(definitions.root), bundled_config_dir()):
        for path in _report_files(root):
            if path.stem == name:
                return path
        if report is None and _report_files(root):
            return _report_files(root)[0]
    known = sorted({p.stem for r in (Path(definitions.root), bundled_config_dir()) for p in _report_files(r)})
    raise UsageError(f"no report '{name}' in {definitions.root}/reports (known: {', '.join(known) or 'none'})")


def load_report(definitions: Definitions, report: str | Path | ReportDef | None = None) -> ReportDef:
    """Read, schema-check and compile a report definition; ConfigError lists every problem."""
    if isinstance(report, ReportDef):
        return report
    path = find_report_file(definitions, report)
    doc, problems = load_yaml_file(path, display=display_path(path))
    if doc is not None and doc.data is not None and not any(p.severity == "error" for p in problems):
        problems += check_schema(doc, schema_for("report"))
    if doc is None or doc.data is None or any(p.severity == "error" for p in problems):
        if doc is not None and doc.data is None:
            problems.append(Problem(Location(doc.file, 1, 1), "error", "empty-file", "the file is empty"))
        raise ConfigError(problems)
    compiler = _Compiler(doc, definitions)
    result = compiler.report()
    if any(p.severity == "error" for p in compiler.problems):
        raise ConfigError(compiler.problems)
    return result



class _Compiler:
    def __init__(self, doc: Document, definitions: Definitions) -> None:
        self.doc = doc
        self.defs = definitions
        self.problems: list[Problem] = []
        self.functions = dict(definitions.functions)

    # -- helpers
    def error(self, path: Sequence[Any], code: str, message: str) -> None:
        self.problems.append(Problem(self.doc.location(tuple(path)), "error", code, message))

    def expr(self, path: Sequence[Any], source: Any, names: Sequence[str] = NAMES) -> Expression | None:
        if source is None:
            return None
        try:
            return compile_expression(str(source), names=names, functions=self.functions)
        except ExpressionError as exc:
            where = self.doc.scalar_location(tuple(path), exc.line, exc.column)
            self.problems.append(Problem(where, "error", f"expression-{exc.code}", exc.message))
            return None

    def rules_path(self, path: Sequence[Any], ref: str) -> Any:
        section, _, key = ref.partition(".")
        value = self.defs.extra.get(section)
        if isinstance(value, Mapping) and key:
            value = value.get(key)
        if value is None:
            self.error(path, "unknown-rules-path", f"'{ref}' is not in the rules (config/rules/*.yaml)")
        return value

    # -- the report
    def report(self) -> ReportDef:
        data = self.doc.data
        levels = {}
        for name, source in (data.get("levels") or {}).items():
            if name == "department":
                self.error(("levels", name), "reserved-level", "'department' is everything together; it cannot be redefined")
                continue
            e = self.expr(("levels", name), source)
            if e is not None:
                levels[name] = e
        metrics = tuple(self.metric(("metrics", n), n, spec) for n, spec in data["metrics"].items())
        kpis = self.kpis()
        trend = data.get("trend") or {}
        series = []
        for name, spec in (trend.get("series") or {}).items():
            head = spec["metric"].split(".")[0]
            if not any(m.name == head for m in metrics):
                self.error(("trend", "series", name, "metric"), "unknown-metric", f"no metric '{head}' in this report")
            target = spec.get("target_kpi")
            if target is not None and target not in kpis:
                self.error(("trend", "series", name, "target_kpi"), "unknown-kpi", f"no KPI '{target}' in config/rules")
            series.append((name, spec["metric"], spec.get("title") or name.replace("_", " "), target))
        presentation = data.get("presentation") or {}
        self.check_presentation(presentation, metrics, {s[0] for s in series})
        labels = self.labels(metrics)
        return ReportDef(
            id=data["report"],
            title=data["title"],
            description=data.get("description", ""),
            file=self.doc.file,
            levels=levels,
            metrics=metrics,
            trend_months_before=int(trend.get("months_before", DEFAULT_MONTHS_BEFORE)),
            trend_series=tuple(series),
            presentation=presentation,
            kpis=kpis,
            programmes=self.programmes(),
            labels=labels,
            catalogue=kpi_catalogue(self.defs),
        )

    def check_presentation(self, presentation: Mapping[str, Any], metrics: tuple[MetricDef, ...], series: set[str]) -> None:
        def known(path: str) -> bool:
            parts = path.split(".")
            pool = metrics
            for i, part in enumerate(parts):
                found = next((m for m in pool if m.name == part), None)
                if found is None:
                    return i > 0  # a path inside a metric's result is fine
                pool = found.children
            return True

        for layout in ("monthly", "quarterly", "annual"):
            for i, section in enumerate((presentation.get(layout) or {}).get("sections", [])):
                for j, name in enumerate(section.get("metrics") or []):
                    if not known(name):
                        self.error(("presentation", layout, "sections", i, "metrics", j), "unknown-metric", f"no metric '{name}' in this report")
                if section.get("metric") and not known(section["metric"]):
                    self.error(("presentation", layout, "sections", i, "metric"), "unknown-metric", f"no metric '{section['metric']}' in this report")
                for j, name in enumerate(section.get("series") or []):
                    if name not in series:
                        self.error(("presentation", layout, "sections", i, "series", j), "unknown-series", f"no trend series '{name}'")
        ids = set()
        for i, chart in enumerate(presentation.get("charts") or []):
            if chart["id"] in ids:
                self.error(("presentation", "charts", i, "id"), "duplicate-chart", f"chart id '{chart['id']}' is used twice")
            ids.add(chart["id"])
            if chart.get("metric") and not known(chart["metric"]):
                self.error(("presentation", "charts", i, "metric"), "unknown-metric", f"no metric '{chart['metric']}' in this report")
            if chart["type"] == "line" and not chart.get("series"):
                self.error(("presentation", "charts", i), "missing-series", "a line chart needs 'series'")
            if chart["type"] != "line" and not chart.get("metric"):
                self.error(("presentation", "charts", i), "missing-metric", f"a {chart['type']} chart needs 'metric'")
            for j, name in enumerate(chart.get("series") or []):
                if name not in series:
                    self.error(("presentation", "charts", i, "series", j), "unknown-series", f"no trend series '{name}'")

    def workflows(self, path: tuple, spec: Mapping[str, Any]) -> tuple[str, ...]:
        raw = spec.get("workflow")
        names = (raw,) if isinstance(raw, str) else tuple(raw or ())
        for name in names:
            if name not in self.defs.workflows:
                self.error(path + ("workflow",), "unknown-workflow",
                           f"unknown workflow '{name}' (known: {', '.join(sorted(self.defs.workflows)) or 'none'})")
        return names

    def check_deadlines(self, path: tuple, workflows: tuple[str, ...], names: Sequence[str]) -> None:
        declared = {d for w in workflows if w in self.defs.workflows for d in self.defs.workflows[w].deadlines}
        for i, name in enumerate(names):
            if name not in declared:
                self.error(path + (i,), "unknown-deadline",
                           f"no workflow of {', '.join(workflows)} declares a deadline '{name}' (declared: {', '.join(sorted(declared)) or 'none'})")

    def metric(self, path: tuple, name: str, spec: Mapping[str, Any]) -> MetricDef:
        kind = spec["kind"]
        common: dict[str, Any] = {"name": name, "kind": kind, "title": spec.get("title", ""), "description": spec.get("description", "")}
        if kind == "group":
            children = tuple(self.metric(path + ("metrics", n), n, s) for n, s in spec["metrics"].items())
            return MetricDef(children=children, **common)
        if kind == "kpis":
            return MetricDef(
                only=tuple(spec.get("only") or ()),
                programmes=bool(spec.get("programmes", True)),
                tolerance=float(spec.get("tolerance", DEFAULT_TOLERANCE)),
                tolerances={k: float(v) for k, v in (spec.get("tolerances") or {}).items()},
                trend_months=int(spec.get("trend_months", DEFAULT_KPI_TREND_MONTHS)),
                **common,
            )
        wfs = self.workflows(path, spec)
        common.update(
            workflows=wfs,
            period_by=self.expr(path + ("period_by",), spec.get("period_by")),
            where=self.expr(path + ("where",), spec.get("where")),
            by=self.expr(path + ("by",), spec.get("by")),
        )
        if kind == "count":
            return MetricDef(**common)
        if kind == "share":
            deadlines = tuple(spec.get("deadlines") or ())
            self.check_deadlines(path + ("deadlines",), wfs, deadlines)
            return MetricDef(numerator=self.expr(path + ("numerator",), spec["numerator"]), deadlines=deadlines,
                             detail=bool(spec.get("detail", False)), **common)
        if kind == "distribution":
            scale = spec.get("scale")
            if scale is not None and scale not in self.defs.scales:
                self.error(path + ("scale",), "unknown-scale", f"no scale '{scale}' in config/rules (known: {', '.join(sorted(self.defs.scales))})")
                scale = None
            favourable = spec.get("favourable")
            if spec.get("favourable_from"):
                found = self.rules_path(path + ("favourable_from",), spec["favourable_from"])
                favourable = found if isinstance(found, list) else favourable
            keys: list[tuple[str, str]] = []
            if spec.get("keys_from"):
                found = self.rules_path(path + ("keys_from",), spec["keys_from"])
                for item in found or []:
                    if isinstance(item, Mapping) and "key" in item:
                        keys.append((str(item["key"]), str(item.get("label") or item["key"])))
                    elif isinstance(item, str):
                        keys.append((item, item))
            if not spec.get("values") and not spec.get("each"):
                self.error(path, "empty-distribution", "a distribution needs 'values' or 'each'")
            vocabulary = spec.get("vocabulary")
            if vocabulary is not None and vocabulary not in self.defs.vocabularies:
                known = sorted(self.defs.vocabularies)
                close = difflib.get_close_matches(vocabulary, known, n=1)
                self.error(path + ("vocabulary",), "unknown-vocabulary",
                           f"no vocabulary '{vocabulary}' in config/rules" + (f"; did you mean '{close[0]}'?" if close else "")
                           + f" (known: {', '.join(known) or 'none'})")
                vocabulary = None
            return MetricDef(
                vocabulary=vocabulary,
                values=tuple((k, e) for k, v in (spec.get("values") or {}).items() if (e := self.expr(path + ("values", k), v))),
                each=tuple((k, e) for k, v in (spec.get("each") or {}).items() if (e := self.expr(path + ("each", k), v))),
                scale=scale,
                favourable=tuple(favourable) if favourable is not None else None,
                keys=tuple(keys),
                **common,
            )
        if kind == "list":
            for_each = self.expr(path + ("for_each",), spec.get("for_each"))
            names = (*NAMES, ITEM) if spec.get("for_each") else NAMES
            columns = tuple((k, e) for k, v in spec["columns"].items() if (e := self.expr(path + ("columns", k), v, names)))
            return MetricDef(columns=columns, for_each=for_each, limit=int(spec.get("limit", DEFAULT_LIST_LIMIT)), **common)
        if kind == "deadlines":
            names = tuple(spec.get("deadlines") or ())
            if names:
                self.check_deadlines(path + ("deadlines",), wfs, names)
            else:
                seen: list[str] = []
                for w in wfs:
                    for d in (self.defs.workflows[w].deadlines if w in self.defs.workflows else {}):
                        if d not in seen:
                            seen.append(d)
                names = tuple(seen)
            return MetricDef(deadlines=names, combine=bool(spec.get("combine", False)), **common)
        if kind == "changes":
            scale = spec.get("scale")
            if scale is not None and scale not in self.defs.scales:
                self.error(path + ("scale",), "unknown-scale", f"no scale '{scale}' in config/rules")
                scale = None
            return MetricDef(
                compare=tuple((k, e) for k, v in spec["compare"].items() if (e := self.expr(path + ("compare", k), v))),
                to=self.expr(path + ("to",), spec["to"]),
                scale=scale,
                **common,
            )
        if kind == "workload":
            people = []
            for i, p in enumerate(spec["people"]):
                e = self.expr(path + ("people", i, "person"), p["person"])
                if e is None:
                    continue
                text = str(p["person"]).strip()
                parts = text.split(".")
                plain = len(parts) == 2 and parts[0] == "data" and parts[1].isidentifier()
                if p.get("until_deadline"):
                    self.check_deadlines(path + ("people", i), wfs, [p["until_deadline"]])
                people.append(PersonDef(e, parts[1] if plain else None, p.get("until_deadline"), tuple(p.get("until_state") or ())))
            return MetricDef(start=self.expr(path + ("from",), spec.get("from")), people=tuple(people),
                             capacity=float(spec["capacity"]) if spec.get("capacity") is not None else None, **common)
        raise AssertionError(kind)  # the schema allows no other kind

    # -- KPIs and programmes
    def kpis(self) -> dict[str, KpiDef]:
        out: dict[str, KpiDef] = {}
        raw = self.defs.extra.get("kpis") or {}
        if not isinstance(raw, Mapping):
            return out
        for name, spec in raw.items():
            if not isinstance(spec, Mapping):
                continue
            wf = spec.get("workflow")
            workflows = (wf,) if isinstance(wf, str) else tuple(wf or ())
            per = spec.get("counts_per_instance") or ()
            tolerance = spec.get("tolerance")
            out[name] = KpiDef(
                name=name,
                title=str(spec.get("title", name)),
                unit=str(spec.get("unit", "percent")),
                direction=str(spec.get("direction", "higher_is_better")),
                target=float(spec["target"]) if isinstance(spec.get("target"), (int, float)) else None,
                source=str(spec.get("source", "")),
                workflows=tuple(w for w in workflows if w in self.defs.workflows),
                period_by=self.kpi_expr(name, "period_by", spec.get("period_by")),
                population=self.kpi_expr(name, "population", spec.get("population")),
                numerator=self.kpi_expr(name, "numerator", spec.get("numerator")),
                per_deadline=tuple(per) if isinstance(per, (list, tuple)) else (),
                description=str(spec.get("description", "")),
                values=str(spec.get("values") or ("history" if workflows else "imported")),
                tolerance=float(tolerance) if isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) else None,
                benchmarks=benchmarks_of(spec.get("benchmarks")),
                combine=combine_of(spec, str(spec.get("unit", "percent"))),
            )
        return out

    def kpi_expr(self, kpi: str, key: str, source: Any) -> Expression | None:
        if source is None:
            return None
        try:
            return compile_expression(str(source), names=NAMES, functions=self.functions)
        except ExpressionError as exc:
            self.problems.append(Problem(Location(str(Path(self.defs.root) / "rules")), "error", f"expression-{exc.code}",
                                         f"KPI '{kpi}' {key}: {exc.message}"))
            return None

    def programmes(self) -> tuple[Programme, ...]:
        folder = Path(self.defs.root) / "programmes"
        if not folder.is_dir():
            return ()
        out = []
        for path in sorted(folder.glob("*.y*ml")):
            doc, problems = load_yaml_file(path, display=display_path(path))
            data = doc.data if doc is not None else None
            if not isinstance(data, Mapping) or any(p.severity == "error" for p in problems):
                continue  # qaflow validate reports broken programmes; a report just leaves them out
            period = data.get("period") or {}
            try:
                out.append(Programme(str(data["programme"]), str(data.get("title", data["programme"])), str(data["service"]),
                                     str(period["from"]), str(period["to"]), tuple(data.get("kpis") or ()),
                                     str(data.get("service_manager") or ""), tuple(data.get("targeted_audits") or ()),
                                     tuple(data.get("surveys") or ()), dict(data.get("reporting") or {})))
            except (KeyError, TypeError):
                continue
        return tuple(sorted(out, key=lambda p: p.id))

    def labels(self, metrics: tuple[MetricDef, ...]) -> dict[str, Any]:
        scales = {}
        keys = {}
        vocabularies = {}

        def walk(ms: Sequence[MetricDef]) -> None:
            for m in ms:
                if m.scale and m.scale in self.defs.scales:
                    scales[m.scale] = [{"key": lv.key, "label": lv.label, "rank": lv.rank} for lv in self.defs.scales[m.scale].levels]
                if m.vocabulary and m.vocabulary in self.defs.vocabularies:
                    vocabularies[m.vocabulary] = [{"key": k, "label": lab} for k, lab in self.defs.vocabularies[m.vocabulary].terms]
                if m.keys:
                    keys[m.name] = [{"key": k, "label": lab} for k, lab in m.keys]
                walk(m.children)

        walk(metrics)
        out: dict[str, Any] = {"scales": scales, "keys": keys}
        if vocabularies:
            out["vocabularies"] = vocabularies
        return out
