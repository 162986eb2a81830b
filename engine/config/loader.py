"""Load a configuration directory: read YAML with positions, check schemas, compile, report every problem."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..calendar import Calendar
from ..definitions import Definitions, Scale, Vocabulary, WorkflowDef
from ..errors import ConfigError
from ..problems import Location, Problem
from .compile import Known, compile_workflow, iter_workflow_cross_checks
from .configschemas import config_schema
from .paths import bundled_config_dir, display_path
from .rules import RulesCompiler
from .yamlsource import Document, load_yaml, load_yaml_file

#: kind of file -> (folder under the config root, schema file name)
KINDS: dict[str, tuple[str, str]] = {
    "workflow": ("workflows", "workflow.schema.json"),
    "rules": ("rules", "rules.schema.json"),
    "scenario": ("scenarios", "scenario.schema.json"),
    "report": ("reports", "report.schema.json"),
    "simulation": ("simulation", "simulation.schema.json"),
}
YAML_SUFFIXES = (".yaml", ".yml")


def default_config_dir() -> Path:
    """``./config`` if it exists, else the bundled configuration."""
    local = Path("config")
    return local if local.is_dir() else bundled_config_dir()


@cache
def schema_source(kind: str) -> bytes:
    """The bytes of one kind's JSON Schema, from the package's own copy, as this process reads them."""
    _, filename = KINDS[kind]
    return (bundled_config_dir() / "schemas" / filename).read_bytes()


@cache
def schema_for(kind: str) -> Mapping[str, Any]:
    """The JSON Schema (draft-07) of one kind of file, from the package's own copy.

    The same object as ``configschemas.template(kind)``, so that its compiled check is made once.
    """
    from .configschemas import template

    return template(kind)


def config_files(root: Path, kind: str) -> list[Path]:
    folder = root / KINDS[kind][0]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())


def read_document(
    path: Path, schema: Mapping[str, Any], *, refine: Callable[[Document, list[Problem]], list[Problem]] | None = None,
    raw: bytes | None = None,
) -> tuple[Document | None, list[Problem]]:
    """Read one YAML file and check it against ``schema``; the Document is None if it has errors.

    ``refine`` may reword or add to the schema problems (it sees them before they are judged);
    ``raw`` is the file's bytes when they were read already (for the cache's key).
    """
    if raw is None:
        doc, problems = load_yaml_file(path, display=display_path(path))
    else:
        doc, problems = load_yaml(raw, display_path(path))
    if doc is None or any(p.severity == "error" for p in problems):
        return None, problems
    if doc.data is None:
        return None, problems + [Problem(Location(doc.file, 1, 1), "error", "empty-file", "the file is empty")]
    from .schemacheck import check_schema  # here: jsonschema takes ~90 ms to import, and a cached load needs none

    found = check_schema(doc, schema)
    if refine is not None:
        found = refine(doc, found)
    problems += found
    return (None if any(p.severity == "error" for p in found) else doc), problems


def read_documents(root: Path, kind: str, *, sources: Mapping[Path, bytes] | None = None,
                   vocabularies: Mapping[str, Vocabulary] | None = None) -> tuple[list[Document], list[Problem]]:
    """Read and schema-check every file of one kind; only clean documents are returned.

    ``sources``: the files' bytes, read already (the files listed are then those in it).
    ``vocabularies``: the configuration's, for the lists its schema takes from them (configschemas.py).
    """
    docs, problems = [], []
    schema = schema_for(kind) if not vocabularies else config_schema(kind, vocabularies)
    paths = config_files(root, kind) if sources is None else [p for p in sources if p.parent == root / KINDS[kind][0]]
    for path in paths:
        doc, found = read_document(path, schema, raw=None if sources is None else sources[path])
        problems.extend(found)
        if doc is not None:
            docs.append(doc)
    return docs, problems


def vocabularies_of(root: str | Path | None) -> dict[str, Vocabulary]:
    """The vocabularies the rules of configuration ``root`` define (those that compile; no problems reported)."""
    if root is None or not (Path(root) / KINDS["rules"][0]).is_dir():
        return {}
    docs, _ = read_documents(Path(root), "rules")
    rules = RulesCompiler()
    for doc in docs:
        rules.add(doc)
    return dict(rules.vocabularies)


def expression_functions(scales: Mapping[str, Scale],
                         calendars: Mapping[str, Calendar] | None = None,
                         vocabularies: Mapping[str, Vocabulary] | None = None) -> dict[str, Callable[..., Any]]:
    """Functions the configuration adds to the condition language: grading-scale lookups, the
    label of a scale level or vocabulary term, and ``due_after``, a duration counted on one of the
    configuration's calendars.

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

    def label(name: str, value: Any) -> str | None:
        """The words people see for a level of scale NAME, or for a term of vocabulary NAME."""
        if name in scales:
            return scales[name].label(value)
        if vocabularies and name in vocabularies:
            return vocabularies[name].label(value)
        raise EvaluationError(f"label(): unknown scale or vocabulary '{name}' (scales: {', '.join(sorted(scales))}; "
                              f"vocabularies: {', '.join(sorted(vocabularies or {}))})")

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
            return parse_duration(duration).due_date(anchor, _calendar(calendar))
        except DurationError as exc:
            raise EvaluationError(f"due_after(): {exc.message}") from None

    return {"rank": rank, "label": label, "due_after": due_after}


def check_config(root: str | Path | None = None, *, cache: bool = False) -> tuple[Definitions | None, list[Problem]]:
    """Load ``root`` and return the definitions (None if there are errors) with every problem found.

    ``cache``: keep the outcome of a clean load in the per-user cache (engine/config/cache.py) and
    use it when the files are byte for byte the same: the problems come from the entry, the rules
    are compiled again and each workflow is compiled when it is first asked for. The result is the
    same either way; ``QAFLOW_CACHE=0`` turns the cache off.
    """
    return _check_config(root, cache=cache)


def _check_config(root: str | Path | None, *, cache: bool, machines: bool = True) -> tuple[Definitions | None, list[Problem]]:
    """check_config; ``machines=False``: a fresh check leaves each workflow's state machine None (for
    ``qaflow validate``, whose checks never run a workflow: it need not import ``transitions``)."""
    root = Path(root) if root is not None else default_config_dir()
    if not root.is_dir():
        return None, [Problem(Location(str(root)), "error", "no-config", f"configuration folder '{root}' does not exist")]
    snap = _snapshot(root) if cache else None
    if snap is not None:
        hit = _from_cache(root, snap)
        if hit is not None:
            return hit
    definitions, problems = _check(root, sources=snap.files if snap is not None else None, machines=machines)
    if snap is not None and definitions is not None:
        _to_cache(snap, definitions, problems)
    return definitions, problems


def _check(root: Path, *, sources: Mapping[Path, bytes] | None, machines: bool = True) -> tuple[Definitions | None, list[Problem]]:
    problems: list[Problem] = []

    rule_docs, found = read_documents(root, "rules", sources=sources)
    problems += found
    rules = RulesCompiler()
    for doc in rule_docs:
        rules.add(doc)
    calendars = rules.calendars()
    problems += rules.problems
    functions = expression_functions(rules.scales, calendars, rules.vocabularies)

    wf_docs, found = read_documents(root, "workflow", sources=sources, vocabularies=rules.vocabularies)
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
        vocabularies=rules.vocabularies,
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
                            timescales=rules.timescales, scales=rules.scales)
    if not wf_docs and not any(p.severity == "error" for p in problems):
        problems.append(
            Problem(Location(str(root / "workflows")), "warning", "no-workflows", "no workflow files were found")
        )
    problems.sort(key=lambda p: p.sort_key())
    if any(p.severity == "error" for p in problems):
        return None, problems

    if machines:
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
        vocabularies=MappingProxyType(rules.vocabularies),
        functions=MappingProxyType(functions),
    )
    return definitions, problems


# --------------------------------------------------------------------------- the cache (engine/config/cache.py)


class LazyWorkflows(Mapping[str, WorkflowDef]):
    """Workflows of a configuration a cached check found clean, each compiled when first asked for.

    Reading every value (``values()``, ``items()``, equality) compiles them all. Safe to share
    between threads: a workflow is compiled once.
    """

    def __init__(self, makers: Mapping[str, Callable[[], WorkflowDef]]) -> None:
        self._makers = dict(makers)
        self._made: dict[str, WorkflowDef] = {}
        self._lock = threading.Lock()

    def __getitem__(self, wid: str) -> WorkflowDef:
        wf = self._made.get(wid)
        if wf is None:
            make = self._makers[wid]  # KeyError for an unknown workflow, as a dict
            with self._lock:
                wf = self._made.get(wid)
                if wf is None:
                    wf = self._made[wid] = make()
        return wf

    def __contains__(self, wid: object) -> bool:
        return wid in self._makers

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)

    def __repr__(self) -> str:
        return f"LazyWorkflows({list(self._makers)!r}, compiled={list(self._made)!r})"


def _snapshot(root: Path) -> Any:
    """The bytes of every file check_config reads (rules, workflows, their schemas), and their key; None: no cache."""
    from . import cache as entries

    if entries.cache_dir() is None:
        return None
    try:
        context = ("check_config", os.getcwd(), str(root))
        paths = config_files(root, "rules") + config_files(root, "workflow")
        schemas = (schema_source("rules"), schema_source("workflow"))
    except OSError:  # the working directory or a folder went away: load without the cache
        return None
    return entries.snapshot(paths, context=context, blobs=schemas)


def _holidays_key(calendar: Any) -> str:
    from . import cache as entries

    params = ("holidays", calendar.country, str(calendar.subdiv), str(calendar.first_year), str(calendar.last_year))
    snap = entries.snapshot((), context=params)
    assert snap is not None  # no files to read
    return snap.key


def _to_cache(snap: Any, definitions: Definitions, problems: list[Problem]) -> None:
    """Keep a clean load: its problems (warnings), which file holds which workflow, the calendars' holidays."""
    from ..calendar import public_holidays
    from . import cache as entries

    files = {display_path(path): str(path) for path in snap.files}
    payload = {
        "problems": [p.to_dict() for p in problems],
        "workflows": [[wid, files[wf.file]] for wid, wf in definitions.workflows.items()],
    }
    if not entries.store("config", snap.key, payload):
        return
    for calendar in {(c.country, c.subdiv, c.first_year, c.last_year): c for c in definitions.calendars.values()}.values():
        key = _holidays_key(calendar)
        if entries.load("holidays", key) is None:
            try:
                named = public_holidays(calendar.country, calendar.subdiv, calendar.first_year, calendar.last_year)
            except Exception:  # the calendar says what is wrong when it is used; the cache never does
                continue
            entries.store("holidays", key, {"named": sorted(named.items())})


def _from_cache(root: Path, snap: Any) -> tuple[Definitions, list[Problem]] | None:
    """The load an entry describes, rebuilt from the snapshot's bytes; None if there is none or it does not fit."""
    from . import cache as entries

    payload = entries.load("config", snap.key)
    if payload is None:
        return None
    try:
        problems = [Problem.from_dict(d) for d in payload["problems"]]
        sources = {str(wid): snap.files[Path(path)] for wid, path in payload["workflows"]}
        # named now, as the key's working directory has them, not when each is compiled
        shown = {str(wid): display_path(Path(path)) for wid, path in payload["workflows"]}
    except (KeyError, TypeError, ValueError):
        return None
    if any(p.severity != "warning" for p in problems):
        return None  # entries are written for clean loads only
    workflow_files = sorted(str(path) for path in snap.files if path.parent == root / KINDS["workflow"][0])
    if len(sources) != len(payload["workflows"]) or sorted(str(path) for _, path in payload["workflows"]) != workflow_files:
        return None  # a clean load has one workflow in each workflow file

    rules = RulesCompiler()
    for path, raw in snap.files.items():
        if path.parent != root / KINDS["rules"][0]:
            continue
        doc, found = load_yaml(raw, display_path(path))
        if doc is None or any(p.severity == "error" for p in found):
            return None
        rules.add(doc)
    if any(p.severity == "error" for p in rules.problems):
        return None
    calendars = rules.calendars()
    functions = expression_functions(rules.scales, calendars, rules.vocabularies)
    _remember_holidays(calendars.values())
    known = Known(
        workflows=sources,
        calendars=calendars,
        tables=rules.tables,
        alert_groups=rules.alert_groups,
        scales=rules.scales,
        timescales=rules.timescales,
        vocabularies=rules.vocabularies,
    )

    def maker(wid: str) -> Callable[[], WorkflowDef]:
        def make() -> WorkflowDef:
            from ..machine import build_machine

            doc, found = load_yaml(sources[wid], shown[wid])
            wf = None
            if doc is not None and not any(p.severity == "error" for p in found):
                wf, found = compile_workflow(doc, functions=functions, known=known, checked=True)
            if wf is None or any(p.severity == "error" for p in found):
                # the entry said this file was clean: it was not written by this qaflow for these bytes
                raise ConfigError(found or [Problem(Location(shown[wid]), "error", "cache",
                                                    "the cached check of this file does not hold; delete the qaflow cache")])
            return dataclasses.replace(wf, machine=build_machine(wf))

        return make

    definitions = Definitions(
        root=str(root),
        workflows=LazyWorkflows({wid: maker(wid) for wid in sources}),
        calendars=MappingProxyType(calendars),
        scales=MappingProxyType(rules.scales),
        tables=MappingProxyType(rules.tables),
        alert_groups=MappingProxyType(rules.alert_groups),
        extra=MappingProxyType(rules.extra),
        timescales=MappingProxyType(rules.timescales),
        vocabularies=MappingProxyType(rules.vocabularies),
        functions=MappingProxyType(functions),
    )
    return definitions, problems


def _remember_holidays(calendars: Any) -> None:
    """Hand the calendars the public holidays kept in the cache, so that building their tables needs no ``holidays``."""
    from ..calendar import remember_public_holidays
    from . import cache as entries

    seen = set()
    for calendar in calendars:
        params = (calendar.country, calendar.subdiv, calendar.first_year, calendar.last_year)
        if params in seen:
            continue
        seen.add(params)
        payload = entries.load("holidays", _holidays_key(calendar))
        try:
            named = {int(ordinal): str(name) for ordinal, name in payload["named"]} if payload is not None else None
        except (KeyError, TypeError, ValueError):
            named = None
        if named is not None:
            remember_public_holidays(*params, named)


def load_config(root: str | Path | None = None, *, cache: bool = False) -> Definitions:
    """Load ``root`` (default: ./config or the bundled config); raise ConfigError listing every problem.

    ``cache``: see :func:`check_config`.
    """
    definitions, problems = check_config(root, cache=cache)
    if definitions is None:
        raise ConfigError(problems)
    return definitions


def compile_stored_workflow(source: str, definitions: Definitions, *, label: str) -> WorkflowDef:
    """Compile a workflow from the YAML text an instance started on, against today's rules.

    Running instances keep the version they started on; the store keeps that version's text.
    """
    from ..errors import UsageError
    from ..machine import build_machine
    from .schemacheck import check_schema
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
            vocabularies=definitions.vocabularies,
        )
        wf, found = compile_workflow(doc, functions=definitions.functions, known=known)
        problems += found
    if wf is None:
        errors = "; ".join(str(p) for p in problems if p.severity == "error")
        raise UsageError(f"the stored definition {label} no longer compiles: {errors}")
    return dataclasses.replace(wf, machine=build_machine(wf))
