"""Compile rule documents: calendars, timescales, grading scales, decision tables and alert groups."""

from __future__ import annotations

import datetime as dt
import difflib
from types import MappingProxyType
from typing import Any

from ..calendar import Calendar, Duration
from ..definitions import ANY, DecisionTable, Scale, ScaleLevel, TableInput, TableRow, Timescale, Vocabulary
from ..errors import DurationError
from ..problems import Problem
from .yamlsource import Document

BUILTIN_CALENDAR = "england"
#: the fields of a KPI that say how it is worked out from workflow history (docs/kpis.md)
HISTORY_ONLY = ("period_by", "population", "numerator", "counts_per_instance")


class RulesCompiler:
    """Collects every rule section of every rules document, with problems."""

    def __init__(self) -> None:
        self._problems: list[Problem] = []
        self.calendar_specs: dict[str, tuple[Document, dict[str, Any]]] = {}
        self.scales: dict[str, Scale] = {}
        self._tables: dict[str, DecisionTable] = {}
        # tables are compiled once every document is in: an input may name a vocabulary of another file
        self._table_specs: list[tuple[Document, str, dict[str, Any]]] = []
        self.alert_groups: dict[str, tuple[str, ...]] = {}
        self.timescales: dict[str, Timescale] = {}
        self.vocabularies: dict[str, Vocabulary] = {}
        self.extra: dict[str, Any] = {}
        self._seen: dict[tuple[str, str], Document] = {}

    @property
    def problems(self) -> list[Problem]:
        """Every problem found in the documents added so far."""
        self._compile_tables()
        return self._problems

    @property
    def tables(self) -> dict[str, DecisionTable]:
        """The decision tables of the documents added so far."""
        self._compile_tables()
        return self._tables

    def _compile_tables(self) -> None:
        pending, self._table_specs = self._table_specs, []
        for doc, name, spec in pending:
            self._table(doc, name, spec)

    def _error(self, doc: Document, path: tuple, code: str, message: str, *, key: bool = False) -> None:
        self._problems.append(Problem(doc.location(path, key=key), "error", code, message))

    def _unique(self, doc: Document, section: str, name: str) -> bool:
        first = self._seen.get((section, name))
        if first is not None:
            where = first.location((section, name), key=True)
            self._error(
                doc, (section, name), "duplicate-name", f"{section} '{name}' is already defined at {where}", key=True
            )
            return False
        self._seen[(section, name)] = doc
        return True

    def add(self, doc: Document) -> None:
        data = doc.data or {}
        for name, spec in (data.get("calendars") or {}).items():
            if self._unique(doc, "calendars", name):
                self.calendar_specs[name] = (doc, spec or {})
        for name, spec in (data.get("scales") or {}).items():
            if self._unique(doc, "scales", name):
                self._scale(doc, name, spec)
        for name, spec in (data.get("tables") or {}).items():
            if self._unique(doc, "tables", name):
                self._table_specs.append((doc, name, spec))
        for name, spec in (data.get("timescales") or {}).items():
            if self._unique(doc, "timescales", name):
                self._timescale(doc, name, spec)
        for name, spec in (data.get("vocabularies") or {}).items():
            if self._unique(doc, "vocabularies", name):
                self._vocabulary(doc, name, spec)
        for name, roles in (data.get("alert_groups") or {}).items():
            if self._unique(doc, "alert_groups", name):
                self.alert_groups[name] = tuple(roles)
        for name, spec in (data.get("kpis") or {}).items():
            if self._unique(doc, "kpis", name):
                self._kpi(doc, name, spec or {})
        for section in ("kpis", "indicator_rules", "selection", "grading"):
            if section in data:
                if section in self.extra and isinstance(self.extra[section], dict):
                    merged = dict(self.extra[section])
                    merged.update(data[section])
                    self.extra[section] = merged
                else:
                    self.extra[section] = data[section]

    def _kpi(self, doc: Document, name: str, spec: dict[str, Any]) -> None:
        """A KPI is computed from workflow history (it names a workflow) or imported (qaflow kpi import), never both."""
        values = spec.get("values", "history" if "workflow" in spec else "imported")
        where = ("kpis", name)
        if values == "imported":
            for key in ("workflow", *HISTORY_ONLY):
                if key in spec:
                    self._error(doc, (*where, key), "imported-kpi-computes",
                                f"KPI '{name}' is imported (values: imported): '{key}' is only for KPIs computed from workflow history",
                                key=True)
        elif "workflow" not in spec:
            self._error(doc, (*where, "values"), "kpi-without-workflow",
                        f"KPI '{name}' is computed from workflow history (values: history) but names no workflow; "
                        "give 'workflow', or write 'values: imported' for figures brought in with qaflow kpi import", key=True)

    def _timescale(self, doc: Document, name: str, spec: dict[str, Any]) -> None:
        try:
            duration = Duration.parse(str(spec["due"]))
        except DurationError as exc:
            self._error(doc, ("timescales", name, "due"), "bad-duration", exc.message)
            return
        self.timescales[name] = Timescale(
            name, duration, spec.get("source", ""), spec.get("description", ""), doc.location(("timescales", name), key=True)
        )

    def _vocabulary(self, doc: Document, name: str, spec: list[Any]) -> None:
        terms: list[tuple[str, str]] = []
        descriptions: dict[str, str] = {}
        for i, term in enumerate(spec):
            key, label = (term, term.replace("_", " ").capitalize()) if isinstance(term, str) else (term["key"], term.get("label") or term["key"])
            if any(key == k for k, _ in terms):
                where = ("vocabularies", name, i) if isinstance(term, str) else ("vocabularies", name, i, "key")
                self._error(doc, where, "duplicate-name", f"term '{key}' appears twice in vocabulary '{name}'")
                continue
            terms.append((key, label))
            if isinstance(term, dict) and term.get("description"):
                descriptions[key] = term["description"]
        self.vocabularies[name] = Vocabulary(name, tuple(terms), doc.location(("vocabularies", name), key=True),
                                             MappingProxyType(descriptions))

    def _scale(self, doc: Document, name: str, spec: dict[str, Any]) -> None:
        levels = tuple(ScaleLevel(lv["key"], lv["label"], lv["rank"]) for lv in spec["levels"])
        keys = [lv.key for lv in levels]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                self._error(doc, ("scales", name, "levels", i, "key"), "duplicate-name", f"level '{key}' appears twice")
        ranks = [lv.rank for lv in levels]
        for i, rank in enumerate(ranks):
            if rank in ranks[:i]:
                self._error(
                    doc, ("scales", name, "levels", i, "rank"), "duplicate-rank", f"two levels share rank {rank}"
                )
        self.scales[name] = Scale(name, levels, doc.location(("scales", name), key=True))

    def _table(self, doc: Document, name: str, spec: dict[str, Any]) -> None:
        inputs = tuple(self._table_input(doc, name, key, value or {}) for key, value in spec["inputs"].items())
        input_names = [i.name for i in inputs]
        outputs = tuple(spec["outputs"])
        rows = []
        for r, row in enumerate(spec["rows"]):
            base = ("tables", name, "rows", r)
            cells: dict[str, Any] = {}
            for key, cell in (row.get("when") or {}).items():
                if key not in input_names:
                    close = difflib.get_close_matches(key, input_names, n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    self._error(doc, base + ("when", key), "unknown-input", f"'{key}' is not an input of table '{name}'{hint}", key=True)
                    continue
                cells[key] = tuple(cell) if isinstance(cell, list) else cell
                declared = next(i for i in inputs if i.name == key).values
                if declared is not None:
                    named = (spec["inputs"].get(key) or {}).get("vocabulary")
                    for value in cells[key] if isinstance(cells[key], tuple) else (cells[key],):
                        if value != ANY and value not in declared:
                            close = difflib.get_close_matches(str(value), [str(v) for v in declared], n=1)
                            hint = f"; did you mean '{close[0]}'?" if close else ""
                            self._error(
                                doc,
                                base + ("when", key),
                                "unknown-value",
                                (f"{value!r} is not a term of vocabulary '{named}' (input '{key}'){hint}" if named else
                                 f"{value!r} is not one of the declared values of input '{key}'{hint}: " + ", ".join(map(repr, declared))),
                            )
            then = row["then"]
            for key in then:
                if key not in outputs:
                    self._error(doc, base + ("then", key), "unknown-output", f"'{key}' is not an output of table '{name}'", key=True)
            missing = [o for o in outputs if o not in then]
            if missing:
                self._error(doc, base + ("then",), "missing-output", f"row sets no value for output(s) {', '.join(missing)}")
            rows.append(TableRow(MappingProxyType(cells), MappingProxyType(dict(then)), doc.location(base)))
        self._tables[name] = DecisionTable(
            name=name,
            hit_policy=spec["hit_policy"],
            inputs=inputs,
            outputs=outputs,
            rows=tuple(rows),
            default=MappingProxyType(spec["default"]) if "default" in spec else None,
            location=doc.location(("tables", name), key=True),
        )

    def _table_input(self, doc: Document, table: str, key: str, spec: dict[str, Any]) -> TableInput:
        """An input of a table with its values: listed (``values:``), or the keys of a vocabulary (``vocabulary: NAME``)."""
        where = ("tables", table, "inputs", key)
        named = spec.get("vocabulary")
        if named is not None:
            if "values" in spec:
                self._error(doc, where + ("vocabulary",), "vocabulary-and-values",
                            "give 'vocabulary:' or 'values:', not both (the vocabulary is the list of values)", key=True)
            vocabulary = self.vocabularies.get(named)
            if vocabulary is None:
                known = sorted(self.vocabularies)
                close = difflib.get_close_matches(str(named), known, n=1)
                self._error(doc, where + ("vocabulary",), "unknown-vocabulary",
                            f"unknown vocabulary {named!r}" + (f"; did you mean '{close[0]}'?" if close else "")
                            + (f" (the rules define: {', '.join(known)})" if known else " (the rules define no vocabularies)"))
                return TableInput(key, None)
            return TableInput(key, vocabulary.keys)
        values = spec.get("values")
        return TableInput(key, tuple(values) if values else None)

    def calendars(self) -> dict[str, Calendar]:
        """Build calendars, resolving ``base`` chains; 'england' always exists."""
        out: dict[str, Calendar] = {}
        specs = self.calendar_specs

        def closures_of(name: str, seen: tuple[str, ...]) -> dict[dt.date, str] | None:
            if name not in specs:
                return {} if name == BUILTIN_CALENDAR else None
            doc, spec = specs[name]
            result: dict[dt.date, str] = {}
            base = spec.get("base")
            if base:
                if base in seen:
                    self._error(doc, ("calendars", name, "base"), "calendar-cycle", f"calendar '{name}' is based on itself")
                    return None
                inherited = closures_of(base, seen + (name,))
                if inherited is None:
                    self._error(doc, ("calendars", name, "base"), "unknown-calendar", f"unknown base calendar '{base}'")
                    return None
                result.update(inherited)
            for i, closure in enumerate(spec.get("closures") or []):
                try:
                    day = dt.date.fromisoformat(closure["date"])
                except ValueError:
                    self._error(doc, ("calendars", name, "closures", i, "date"), "bad-date", f"'{closure['date']}' is not a real date")
                    continue
                result[day] = closure["reason"]
            return result

        for name in {BUILTIN_CALENDAR, *specs}:
            closures = closures_of(name, ())
            if closures is not None:
                out[name] = Calendar.england(name=name, closures=closures)
        return out
