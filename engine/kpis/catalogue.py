"""The KPIs a configuration defines: in config/rules/kpis.yaml and in the programmes, each with how its figures are had.

A KPI is **computed** from workflow history (``values: history``: it names a workflow, a population
and a numerator) or **imported** (``values: imported``: its figures come from ``qaflow kpi import``
or a host pushing them). Either way it has a unit, a direction, a target, a tolerance and the
benchmarks it is compared with. docs/kpis.md describes the language.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.loader import bundled_config_dir, display_path
from ..config.yamlsource import Document, load_yaml_file
from ..definitions import Definitions
from ..problems import Problem

__all__ = ["BENCHMARKS", "UNITS", "Benchmark", "KpiSpec", "check_programme_kpis", "known_levels", "kpi_catalogue", "programme_kpi", "programme_kpi_entries",
           "suggest"]

#: The units a KPI may have; percent figures lie between 0 and 100.
UNITS = ("percent", "count", "number", "days", "working_days", "rate_per_10000")
#: What a KPI is compared with: the national figure, the statistical neighbours' average, the region's.
BENCHMARKS = ("england", "statistical_neighbours", "region")
BENCHMARK_TITLES = {"england": "England", "statistical_neighbours": "Statistical neighbours", "region": "Region"}


@dataclass(frozen=True)
class Benchmark:
    """A benchmark a KPI is compared with; ``value`` set when the configuration gives one."""

    name: str
    value: float | None = None
    period: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "period": self.period, "source": self.source}


@dataclass(frozen=True)
class KpiSpec:
    """One KPI as the configuration defines it."""

    id: str
    title: str
    unit: str
    direction: str
    target: float | None
    values: str  # history | imported
    tolerance: float | None = None
    benchmarks: tuple[Benchmark, ...] = ()
    source: str = ""
    description: str = ""
    defined_in: str = "rules"  # rules | the id of the programme that defines it
    workflows: tuple[str, ...] = ()
    combine: str = "add_up"  # how an imported KPI's months make a longer period's figure: add_up | latest

    @property
    def imported(self) -> bool:
        return self.values == "imported"

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "unit": self.unit, "direction": self.direction, "target": self.target, "values": self.values,
                "tolerance": self.tolerance, "benchmarks": {b.name: b.to_dict() for b in self.benchmarks}, "source": self.source,
                "description": self.description, "defined_in": self.defined_in, "workflows": list(self.workflows), "combine": self.combine}


def combine_of(spec: Mapping[str, Any], unit: str) -> str:
    """add_up or latest: as written, else add_up for shares and rates (their counts add up), latest for other units."""
    given = spec.get("combine")
    if given in ("add_up", "latest"):
        return str(given)
    return "add_up" if unit in ("percent", "rate_per_10000") else "latest"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def benchmarks_of(raw: Any) -> tuple[Benchmark, ...]:
    """``[england, ...]`` or ``{england: {value, period, source}, ...}`` as Benchmarks, in BENCHMARKS order."""
    found: dict[str, Benchmark] = {}
    if isinstance(raw, (list, tuple)):
        found = {str(name): Benchmark(str(name)) for name in raw if name in BENCHMARKS}
    elif isinstance(raw, Mapping):
        for name, given in raw.items():
            if name in BENCHMARKS:
                spec = given if isinstance(given, Mapping) else {"value": given}
                found[name] = Benchmark(name, _number(spec.get("value")), str(spec.get("period") or ""), str(spec.get("source") or ""))
    return tuple(found[name] for name in BENCHMARKS if name in found)


def _rules_kpi(name: str, spec: Mapping[str, Any]) -> KpiSpec:
    wf = spec.get("workflow")
    workflows = (wf,) if isinstance(wf, str) else tuple(wf or ())
    return KpiSpec(
        id=name,
        title=str(spec.get("title", name)),
        unit=str(spec.get("unit", "percent")),
        direction=str(spec.get("direction", "higher_is_better")),
        target=_number(spec.get("target")),
        values=str(spec.get("values") or ("history" if workflows else "imported")),
        tolerance=_number(spec.get("tolerance")),
        benchmarks=benchmarks_of(spec.get("benchmarks")),
        source=str(spec.get("source", "")),
        description=str(spec.get("description") or spec.get("computed_from") or ""),
        workflows=workflows,
        combine=combine_of(spec, str(spec.get("unit", "percent"))),
    )


def programme_kpi(programme: str, spec: Mapping[str, Any]) -> KpiSpec:
    return KpiSpec(
        id=str(spec["kpi"]),
        title=str(spec.get("title", spec["kpi"])),
        unit=str(spec.get("unit", "percent")),
        direction=str(spec.get("direction", "higher_is_better")),
        target=_number(spec.get("target")),
        values="imported",  # a KPI a programme defines is brought in from outside (its values: can only say imported)
        tolerance=_number(spec.get("tolerance")),
        benchmarks=benchmarks_of(spec.get("benchmarks")),
        source=str(spec.get("source", "")),
        description=str(spec.get("computed_from") or ""),
        defined_in=programme,
        combine=combine_of(spec, str(spec.get("unit", "percent"))),
    )


def programme_documents(root: str | Path) -> Iterator[tuple[Document, Mapping[str, Any]]]:
    """Every readable programme file of the configuration (broken ones are qaflow validate's to report)."""
    folder = Path(root) / "programmes"
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.y*ml")):
        doc, problems = load_yaml_file(path, display=display_path(path))
        if doc is None or any(p.severity == "error" for p in problems) or not isinstance(doc.data, Mapping):
            continue
        yield doc, doc.data


def programme_kpi_entries(data: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, entry) for each well-formed entry of a programme's ``kpis`` list."""
    kpis = data.get("kpis")
    if not isinstance(kpis, list):
        return []
    return [(i, e) for i, e in enumerate(kpis) if isinstance(e, Mapping) and isinstance(e.get("kpi"), str)]


# What kpi_catalogue and known_levels found, by configuration, kept while none of the files they read changes
# (an import of one month's figures, as a host or the simulator pushes them, need not read every programme again).
_READ: dict[tuple[str, int], tuple[Definitions, tuple[Any, ...], Any]] = {}


def _files_key(*folders: Path) -> tuple[Any, ...]:
    out = []
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob("*.y*ml")):
                st = path.stat()
                out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _cached(kind: str, definitions: Definitions, key: tuple[Any, ...], work: Any) -> Any:
    hit = _READ.get((kind, id(definitions)))
    if hit is not None and hit[0] is definitions and hit[1] == key:
        return hit[2]
    value = work()
    if len(_READ) > 64:
        _READ.clear()
    _READ[(kind, id(definitions))] = (definitions, key, value)
    return value


def kpi_catalogue(definitions: Definitions) -> dict[str, KpiSpec]:
    """Every KPI the configuration defines, by id: those of config/rules, then those the programmes define
    (``defined_in: programme``; the first programme file, by name, that defines an id gives its definition)."""
    found = _cached("catalogue", definitions, _files_key(Path(definitions.root) / "programmes"), lambda: _catalogue(definitions))
    return dict(found)


def _catalogue(definitions: Definitions) -> dict[str, KpiSpec]:
    out: dict[str, KpiSpec] = {}
    raw = definitions.extra.get("kpis") or {}
    if isinstance(raw, Mapping):
        for name, spec in raw.items():
            if isinstance(spec, Mapping):
                out[name] = _rules_kpi(name, spec)
    for _, data in programme_documents(definitions.root):
        pid = str(data.get("programme", ""))
        for _, entry in programme_kpi_entries(data):
            if entry.get("defined_in") == "programme" and entry["kpi"] not in out:
                out[entry["kpi"]] = programme_kpi(pid, entry)
    return out


def check_programme_kpis(definitions: Definitions) -> list[Problem]:
    """What the schema cannot see in the programmes' KPI lists: a rules KPI that does not exist or that the entry
    redefines, a programme KPI that takes a rules KPI's id, or one id defined with different units."""
    problems: list[Problem] = []
    rules = {k: v for k, v in kpi_catalogue(definitions).items() if v.defined_in == "rules"}
    first: dict[str, tuple[str, Document, tuple[Any, ...]]] = {}  # kpi -> (unit, where it was first defined)

    def error(doc: Document, path: tuple[Any, ...], code: str, message: str) -> None:
        problems.append(Problem(doc.location(path), "error", code, message))

    for doc, data in programme_documents(definitions.root):
        for i, entry in programme_kpi_entries(data):
            kid, path = entry["kpi"], ("kpis", i)
            if entry.get("defined_in") == "rules":
                if kid not in rules:
                    error(doc, (*path, "kpi"), "unknown-kpi", f"no KPI '{kid}' in config/rules{suggest(kid, rules)}")
                elif entry.get("unit", rules[kid].unit) != rules[kid].unit:
                    error(doc, (*path, "unit"), "kpi-unit-differs",
                          f"KPI '{kid}' is measured in {rules[kid].unit} (config/rules), not {entry.get('unit')}")
                if "values" in entry:
                    error(doc, (*path, "values"), "kpi-values-in-rules",
                          f"whether KPI '{kid}' is computed or imported is said in config/rules, not in a programme")
                continue
            if kid in rules:
                error(doc, (*path, "kpi"), "kpi-defined-twice",
                      f"KPI '{kid}' is defined in config/rules: write 'defined_in: rules' to set its target here")
                continue
            unit = str(entry.get("unit", "percent"))
            if kid in first and first[kid][0] != unit:
                where = first[kid][1].location(first[kid][2])
                error(doc, (*path, "unit"), "kpi-unit-differs",
                      f"KPI '{kid}' is measured in {first[kid][0]} where it is first defined ({where}), not {unit}: "
                      "imported figures have one unit")
            first.setdefault(kid, (unit, doc, (*path, "unit")))
    return problems


def known_levels(definitions: Definitions) -> tuple[str, ...]:
    """The levels figures are given at: department, and every level the report files declare (service, team, ...)."""
    key = _files_key(Path(definitions.root) / "reports", bundled_config_dir() / "reports")
    return _cached("levels", definitions, key, lambda: _levels(definitions))


def _levels(definitions: Definitions) -> tuple[str, ...]:
    levels = ["department"]
    for root in (Path(definitions.root), bundled_config_dir()):
        folder = root / "reports"
        files = sorted(folder.glob("*.y*ml")) if folder.is_dir() else []
        for path in files:
            doc, _ = load_yaml_file(path)
            data = doc.data if doc is not None else None
            if isinstance(data, Mapping) and isinstance(data.get("levels"), Mapping):
                levels += [str(k) for k in data["levels"] if str(k) not in levels]
        if files:
            break  # the configuration's own report files, else the bundled ones (as qaflow report finds them)
    return tuple(levels)


def suggest(name: str, known: Sequence[str] | Mapping[str, Any]) -> str:
    """"; did you mean 'x'?" for a near miss, else ""."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
