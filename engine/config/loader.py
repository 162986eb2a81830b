"""Load a configuration directory: read YAML with positions, check schemas, compile, report every problem."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..calendar import Calendar
from ..definitions import Definitions, Scale, WorkflowDef
from ..errors import ConfigError
from ..problems import Location, Problem
from .compile import Known, compile_workflow, iter_workflow_cross_checks
from .rules import RulesCompiler
from .schemacheck import check_schema
from .yamlsource import Document, load_yaml_file

#: kind of file -> (folder under the config root, schema file name)
KINDS: dict[str, tuple[str, str]] = {
    "workflow": ("workflows", "workflow.schema.json"),
    "rules": ("rules", "rules.schema.json"),
    "scenario": ("scenarios", "scenario.schema.json"),
    "report": ("reports", "report.schema.json"),
    "simulation": ("simulation", "simulation.schema.json"),
}
YAML_SUFFIXES = (".yaml", ".yml")


def bundled_config_dir() -> Path:
    """The configuration shipped inside the package (the top-level ``config/`` folder)."""
    spec = importlib.util.find_spec("engine.bundled")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "config"  # a source tree that was never installed


def default_config_dir() -> Path:
    """``./config`` if it exists, else the bundled configuration."""
    local = Path("config")
    return local if local.is_dir() else bundled_config_dir()


@cache
def schema_for(kind: str) -> Mapping[str, Any]:
    """The JSON Schema (draft-07) of one kind of file, from the package's own copy."""
    _, filename = KINDS[kind]
    text = (bundled_config_dir() / "schemas" / filename).read_text(encoding="utf-8")
    return json.loads(text)


def display_path(path: Path) -> str:
    """A path as people should see it: relative to the working directory when it is inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def config_files(root: Path, kind: str) -> list[Path]:
    folder = root / KINDS[kind][0]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())


def read_document(
    path: Path, schema: Mapping[str, Any], *, refine: Callable[[Document, list[Problem]], list[Problem]] | None = None
) -> tuple[Document | None, list[Problem]]:
    """Read one YAML file and check it against ``schema``; the Document is None if it has errors.

    ``refine`` may reword or add to the schema problems (it sees them before they are judged).
    """
    doc, problems = load_yaml_file(path, display=display_path(path))
    if doc is None or any(p.severity == "error" for p in problems):
        return None, problems
    if doc.data is None:
        return None, problems + [Problem(Location(doc.file, 1, 1), "error", "empty-file", "the file is empty")]
    found = check_schema(doc, schema)
    if refine is not None:
        found = refine(doc, found)
    problems += found
    return (None if any(p.severity == "error" for p in found) else doc), problems


def read_documents(root: Path, kind: str) -> tuple[list[Document], list[Problem]]:
    """Read and schema-check every file of one kind; only clean documents are returned."""
    docs, problems = [], []
    schema = schema_for(kind)
    for path in config_files(root, kind):
        doc, found = read_document(path, schema)
        problems.extend(found)
        if doc is not None:
            docs.append(doc)
    return docs, problems


def expression_functions(scales: Mapping[str, Scale],
                         calendars: Mapping[str, Calendar] | None = None) -> dict[str, Callable[..., Any]]:
    """Functions the configuration adds to the condition language: grading-scale lookups and
    ``due_after``, a duration counted on one of the configuration's calendars.

    Without ``calendars`` only the built-in ``england`` calendar is known to ``due_after``.
    """
    from ..calendar import london_date, parse_duration  # here, not per call: imports showed in profiles
    from ..errors import DurationError, EvaluationError

    def _scale(name: Any) -> Scale:
        try:
            return scales[name]
        except KeyError:
            raise EvaluationError(f"unknown scale '{name}' (known: {', '.join(sorted(scales))})") from None

    def rank(scale: str, value: Any) -> int | None:
        return _scale(scale).rank(value)

    def label(scale: str, value: Any) -> str | None:
        return _scale(scale).label(value)

    known: dict[str, Calendar] = dict(calendars or {})

    def _calendar(name: Any) -> Calendar:
        if name not in known and name == "england":
            known[name] = Calendar.england()
        try:
            return known[name]
        except (KeyError, TypeError):
            raise EvaluationError(f"due_after(): unknown calendar {name!r} (known: {', '.join(sorted(known) or ['england'])})") from None

    def due_after(duration: Any, day: Any, calendar: Any = "england") -> Any:
        """The date DURATION after DAY (day 0), counted as a deadline counts it, on CALENDAR.

        ``due_after("2 working days", data.sent_on)``: the second working day after the day it was
        sent. Null if ``day`` is null.
        """
        if day is None:
            return None
        if not isinstance(duration, str):
            raise EvaluationError(f"due_after() needs a duration written as text, such as '2 working days', not {duration!r}")
        try:
            anchor = london_date(day)
        except ValueError:
            anchor = None
        if anchor is None:
            raise EvaluationError(f"due_after() could not read {str(day)[:40]!r} as a date (write YYYY-MM-DD)")
        try:
            return parse_duration(duration).apply(anchor, _calendar(calendar)).date
        except DurationError as exc:
            raise EvaluationError(f"due_after(): {exc.message}") from None

    return {"rank": rank, "label": label, "due_after": due_after}


def check_config(root: str | Path | None = None) -> tuple[Definitions | None, list[Problem]]:
    """Load ``root`` and return the definitions (None if there are errors) with every problem found."""
    root = Path(root) if root is not None else default_config_dir()
    if not root.is_dir():
        return None, [Problem(Location(str(root)), "error", "no-config", f"configuration folder '{root}' does not exist")]
    problems: list[Problem] = []

    rule_docs, found = read_documents(root, "rules")
    problems += found
    rules = RulesCompiler()
    for doc in rule_docs:
        rules.add(doc)
    calendars = rules.calendars()
    problems += rules.problems
    functions = expression_functions(rules.scales, calendars)

    wf_docs, found = read_documents(root, "workflow")
    problems += found
    ids: dict[str, Document] = {}
    for doc in wf_docs:
        wid = doc.data["workflow"]
        if wid in ids:
            problems.append(
                Problem(
                    doc.location(("workflow",)),
                    "error",
                    "duplicate-workflow",
                    f"workflow '{wid}' is already defined in {ids[wid].file}",
                )
            )
        else:
            ids[wid] = doc
    known = Known(
        workflows=ids,
        calendars=calendars,
        tables=rules.tables,
        alert_groups=rules.alert_groups,
        scales=rules.scales,
        timescales=rules.timescales,
    )
    workflows: dict[str, WorkflowDef] = {}
    for wid, doc in ids.items():
        wf, found = compile_workflow(doc, functions=functions, known=known)
        problems += found
        if wf is not None:
            workflows[wid] = wf
    if not any(p.severity == "error" for p in problems):
        problems += list(iter_workflow_cross_checks(workflows))
    from .lint import lint_config  # semantic checks over the compiled graph (engine/config/lint.py)

    complete = not any(p.severity == "error" for p in problems)
    problems += lint_config(workflows, rules.tables, documents=ids, functions=functions, complete=complete,
                            timescales=rules.timescales)
    if not wf_docs and not any(p.severity == "error" for p in problems):
        problems.append(
            Problem(Location(str(root / "workflows")), "warning", "no-workflows", "no workflow files were found")
        )
    problems.sort(key=lambda p: p.sort_key())
    if any(p.severity == "error" for p in problems):
        return None, problems

    from ..machine import build_machine

    workflows = {wid: dataclasses.replace(wf, machine=build_machine(wf)) for wid, wf in workflows.items()}
    definitions = Definitions(
        root=str(root),
        workflows=MappingProxyType(workflows),
        calendars=MappingProxyType(calendars),
        scales=MappingProxyType(rules.scales),
        tables=MappingProxyType(rules.tables),
        alert_groups=MappingProxyType(rules.alert_groups),
        extra=MappingProxyType(rules.extra),
        timescales=MappingProxyType(rules.timescales),
        functions=MappingProxyType(functions),
    )
    return definitions, problems


def load_config(root: str | Path | None = None) -> Definitions:
    """Load ``root`` (default: ./config or the bundled config); raise ConfigError listing every problem."""
    definitions, problems = check_config(root)
    if definitions is None:
        raise ConfigError(problems)
    return definitions


def compile_stored_workflow(source: str, definitions: Definitions, *, label: str) -> WorkflowDef:
    """Compile a workflow from the YAML text an instance started on, against today's rules.

    Running instances keep the version they started on; the store keeps that version's text.
    """
    from ..errors import UsageError
    from ..machine import build_machine
    from .yamlsource import load_yaml

    doc, problems = load_yaml(source, label)
    if doc is not None and not any(p.severity == "error" for p in problems):
        problems += check_schema(doc, schema_for("workflow"))
    wf = None
    if doc is not None and not any(p.severity == "error" for p in problems):
        known = Known(
            workflows=definitions.workflows,
            calendars=definitions.calendars,
            tables=definitions.tables,
            alert_groups=definitions.alert_groups,
            scales=definitions.scales,
            timescales=definitions.timescales,
        )
        wf, found = compile_workflow(doc, functions=definitions.functions, known=known)
        problems += found
    if wf is None:
        errors = "; ".join(str(p) for p in problems if p.severity == "error")
        raise UsageError(f"the stored definition {label} no longer compiles: {errors}")
    return dataclasses.replace(wf, machine=build_machine(wf))
