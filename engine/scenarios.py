"""Scenario tests: stories told to the Engine in YAML, checked step by step (docs/scenarios.md)."""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors
from .clock import as_time
from .config.loader import KINDS, YAML_SUFFIXES, read_document, schema_for
from .config.yamlsource import Document
from .definitions import Definitions, TransitionDef, WorkflowDef
from .errors import QaflowError, Refused
from .problems import Location, Problem

if TYPE_CHECKING:  # the runtime is imported when a scenario runs: reading and checking scenarios need none of it
    from .runtime.engine import Engine


def __getattr__(name: str) -> Any:
    """``Engine``, imported when first asked for (a scenario run asks; engine/explain.py replaces it for a run)."""
    if name == "Engine":
        from .runtime.engine import Engine

        globals()["Engine"] = Engine
        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Scenario",
    "Failure",
    "ScenarioResult",
    "load_scenarios",
    "run_scenario",
    "run_scenarios",
    "coverage",
    "DEFAULT_ACTOR",
]

#: The actor of ``given`` (and so of every step) when the scenario names none.
DEFAULT_ACTOR = "scenario"

#: ``refused:`` names a scenario may expect, mapped to the engine's exception classes.
REFUSALS: Mapping[str, type[QaflowError]] = {
    "Refused": errors.Refused,
    "RoleRefused": errors.RoleRefused,
    "PayloadInvalid": errors.PayloadInvalid,
    "GuardFailed": errors.GuardFailed,
    "UnknownTrigger": errors.UnknownTrigger,
    "ActionFailed": errors.ActionFailed,
    "EvaluationFailed": errors.EvaluationFailed,  # not a refusal, but a call that changed nothing
}

_STEP_KINDS = ("fire", "advance", "then")
_MISSING = object()


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, eq=False)  # compared by identity: it holds plain YAML data
class Scenario:
    """One scenario as written: where it is, what it starts and its steps (plain YAML data)."""

    name: str
    workflow: str
    file: str
    line: int
    column: int
    given: Mapping[str, Any]
    steps: tuple[Mapping[str, Any], ...]
    description: str = ""
    doc: Document | None = field(default=None, repr=False, compare=False)
    path: tuple = field(default=(), repr=False)  # where the scenario sits in ``doc``

    @property
    def id(self) -> str:
        """``FILE:LINE name``: unique enough to tell scenarios apart in reports and test ids."""
        return f"{self.file}:{self.line} {self.name}"

    def location(self, *parts: Any, key: bool = True) -> Location:
        """Where a part of this scenario is written (a key by default, else its value)."""
        if self.doc is None:
            return Location(self.file, self.line, self.column)
        return self.doc.location(self.path + parts, key=key)


@dataclass(frozen=True)
class Failure:
    """One thing a scenario expected that did not happen, at the YAML line that asked for it.

    ``step_index`` is the step's number as people count it (1 is the first step; 0 is ``given``).
    """

    file: str
    line: int
    column: int
    scenario: str
    step_index: int
    expected: str
    found: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}:{self.column}: scenario '{self.scenario}' step {self.step_index}: "
            f"expected {self.expected}, found {self.found}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "scenario": self.scenario,
            "step": self.step_index,
            "expected": self.expected,
            "found": self.found,
            "message": self.message,
        }


@dataclass
class ScenarioResult:
    """What running one scenario found, with the histories its engine recorded (for coverage)."""

    scenario: Scenario
    failures: list[Failure] = field(default_factory=list)
    steps_run: int = 0
    instance_id: str | None = None
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.scenario.name,
            "file": self.scenario.file,
            "line": self.scenario.line,
            "workflow": self.scenario.workflow,
            "passed": self.passed,
            "steps": len(self.scenario.steps),
            "steps_run": self.steps_run,
            "instance": self.instance_id,
            "failures": [f.to_dict() for f in self.failures],
        }


# --------------------------------------------------------------------------- loading


def _refine(doc: Document, found: list[Problem]) -> list[Problem]:
    """Clearer schema messages, then the checks of dates and times once the shape is right."""
    found = _clearer(doc, found)
    if not any(p.severity == "error" for p in found):
        found += list(_iter_time_problems(doc))
    return found


def _scenario_files(source: Any, problems: list[Problem]) -> list[Path]:
    """Files named by ``source``: a config root (its ``scenarios/``), a folder of scenario files, or files."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    folder_name = KINDS["scenario"][0]
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            folder = path / folder_name if (path / folder_name).is_dir() else path
            files += sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(Location(str(path)), "error", "no-such-file", f"'{path}' does not exist"))
    seen: set[Path] = set()
    unique = []
    for path in files:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(path)
    return unique


def load_scenarios(source: str | Path | Iterable[str | Path]) -> tuple[list[Scenario], list[Problem]]:
    """Read scenarios from a config root (its ``scenarios/*.yaml``), folders or files.

    Every file is schema-checked with positions; a file with errors contributes no scenarios, and
    every problem is returned, sorted by position. Never raises for bad input.
    """
    problems: list[Problem] = []
    scenarios: list[Scenario] = []
    schema = schema_for("scenario")
    for path in _scenario_files(source, problems):
        doc, found = read_document(path, schema, refine=_refine)
        problems += found
        if doc is None:
            continue
        for index, raw in enumerate(doc.data["scenarios"]):
            loc = doc.location(("scenarios", index))
            scenarios.append(
                Scenario(
                    name=raw["name"],
                    workflow=raw["workflow"],
                    file=doc.file,
                    line=loc.line,
                    column=loc.column,
                    given=raw["given"],
                    steps=tuple(raw.get("steps") or ()),
                    description=raw.get("description", ""),
                    doc=doc,
                    path=("scenarios", index),
                )
            )
    problems += list(_iter_duplicate_names(scenarios))
    problems.sort(key=lambda p: p.sort_key())
    return scenarios, problems


def _clearer(doc: Document, problems: list[Problem]) -> list[Problem]:
    """Say which kinds a step mixes, rather than the schema's 'matches more than one form'."""
    steps: dict[Location, list[str]] = {}
    scenarios = doc.data.get("scenarios") if isinstance(doc.data, dict) else None
    for i, raw in enumerate(scenarios if isinstance(scenarios, list) else ()):
        listed = raw.get("steps") if isinstance(raw, dict) else None
        for j, step in enumerate(listed if isinstance(listed, list) else ()):  # the schema reports a non-list
            if isinstance(step, dict):
                kinds = [k for k in _STEP_KINDS if k in step]
                if len(kinds) > 1:
                    steps[doc.location(("scenarios", i, "steps", j))] = kinds
    out = []
    for p in problems:
        mixed = steps.get(p.location)
        if mixed and p.message.endswith("matches more than one of the allowed forms"):
            out.append(Problem(
                p.location, p.severity, p.code,
                "a step has exactly one of fire, advance or then; this one has " + " and ".join(mixed)
                + " (split it into separate steps)",
            ))
        else:
            out.append(p)
    return out


def _iter_time_problems(doc: Document) -> Iterable[Problem]:
    """Dates the schema's pattern lets through but the calendar does not have (2026-02-30)."""

    def check(path: tuple, value: Any, date_only: bool = False) -> Iterable[Problem]:
        if not isinstance(value, str):
            return
        try:
            if date_only:
                dt.date.fromisoformat(value)
            else:
                as_time(value)
        except (ValueError, QaflowError):
            yield Problem(doc.location(path), "error", "scenario-time", f"'{value}' is not a real date or time")

    for i, raw in enumerate(doc.data["scenarios"]):
        base = ("scenarios", i)
        yield from check(base + ("given", "at"), raw["given"].get("at"))
        for j, step in enumerate(raw.get("steps") or ()):
            here = base + ("steps", j)
            for key in ("at", "advance"):
                yield from check(here + (key,), step.get(key))
            then = step.get("then")
            if isinstance(then, dict):
                for name, spec in (then.get("deadlines") or {}).items():
                    if isinstance(spec, dict):
                        yield from check(here + ("then", "deadlines", name, "due"), spec.get("due"), date_only=True)


def _iter_duplicate_names(scenarios: list[Scenario]) -> Iterable[Problem]:
    first: dict[str, Scenario] = {}
    for sc in scenarios:
        if sc.name in first:
            other = first[sc.name]
            yield Problem(
                sc.location("name", key=False),
                "warning",
                "duplicate-scenario",
                f"another scenario is also called '{sc.name}' ({other.file}:{other.line}); give each a distinct name",
            )
        else:
            first[sc.name] = sc


# --------------------------------------------------------------------------- running


class _Stop(Exception):
    """The scenario cannot go on: what follows would depend on a step that went wrong."""


def run_scenarios(scenarios: Iterable[Scenario], definitions: Definitions) -> list[ScenarioResult]:
    """Run each scenario on its own fresh engine."""
    return [run_scenario(sc, definitions) for sc in scenarios]


def run_scenario(scenario: Scenario, definitions: Definitions) -> ScenarioResult:
    """Run one scenario on a fresh ``Engine(definitions)`` with an in-memory store.

    Never raises: a refusal that was not expected, an expected refusal that did not come, an
    expectation that does not hold and any unexpected error all become ``Failure``s.
    """
    engine_class = globals().get("Engine") or __getattr__("Engine")  # the module's Engine, as explain.py may set it
    engine = engine_class(definitions)
    result = ScenarioResult(scenario)
    run = _Run(scenario, engine, result)
    try:
        run.start()
        for number, step in enumerate(scenario.steps, start=1):
            run.step(number, step)
            result.steps_run = number
    except _Stop:
        pass
    except Exception as exc:  # the last line of defence: a failure, never a traceback
        run.fail(run.current, run.current_loc, "the scenario to run", _describe_error(exc), _error_message(exc))
    try:
        for view in engine.instances():
            result.histories[view.id] = engine.history(view.id)
        result.alerts = engine.outbox(include_acknowledged=True)
    except Exception as exc:  # pragma: no cover - reading a memory store back
        run.fail(run.current, run.current_loc, "the engine's history to be readable", _describe_error(exc), _error_message(exc))
    return result


def _describe_error(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, QaflowError) else str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _error_message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, QaflowError) else f"{type(exc).__name__}: {exc}"


class _Run:
    """The state of one scenario run: the engine, the clock, the started instance."""

    def __init__(self, scenario: Scenario, engine: Engine, result: ScenarioResult) -> None:
        self.sc = scenario
        self.engine = engine
        self.result = result
        self.given = scenario.given
        self.actor = str(self.given.get("actor") or DEFAULT_ACTOR)
        self.now: dt.datetime | None = None
        self.root: str | None = None
        self.current = 0  # step number being run; 0 is given
        self.current_loc: Location = scenario.location(key=False)

    # -- reporting

    def fail(self, step: int, where: Location, expected: str, found: str, message: str | None = None) -> None:
        self.result.failures.append(
            Failure(
                file=where.file,
                line=where.line,
                column=where.column,
                scenario=self.sc.name,
                step_index=step,
                expected=expected,
                found=found,
                message=message if message is not None else f"expected {expected}, found {found}",
            )
        )

    # -- given

    def start(self) -> None:
        self.current_loc = self.sc.location("given")
        try:
            self.now = as_time(self.given.get("at"))
        except QaflowError as exc:
            self.fail(0, self.sc.location("given", "at"), "a start time", _describe_error(exc), exc.message)
            raise _Stop from None
        from .runtime.engine import start_as_engine
        from .runtime.inputs import SYSTEM_ACTOR

        try:
            if self.actor == SYSTEM_ACTOR:  # started as the engine starts a child: no start roles
                view = start_as_engine(self.engine, self.sc.workflow, dict(self.given.get("data") or {}), at=self.now)
            else:
                view = self.engine.start(
                    self.sc.workflow,
                    dict(self.given.get("data") or {}),
                    actor=self.actor,
                    roles=list(self.given.get("roles") or ()),
                    at=self.now,
                )
        except errors.UsageError as exc:
            self.fail(0, self.sc.location("workflow"), f"workflow '{self.sc.workflow}' to start", _describe_error(exc), exc.message)
            raise _Stop from None
        except QaflowError as exc:
            where = self.sc.location("given", "data") if "data" in self.given else self.sc.location("given")
            self.fail(0, where, f"workflow '{self.sc.workflow}' to start", _describe_error(exc), exc.message)
            raise _Stop from None
        self.root = view.id
        self.result.instance_id = view.id

    # -- steps

    def step(self, number: int, step: Mapping[str, Any]) -> None:
        self.current = number
        kind = next((k for k in _STEP_KINDS if k in step), None)
        base = ("steps", number - 1)
        self.current_loc = self.sc.location(*base, kind) if kind else self.sc.location(*base, key=False)
        if kind == "fire":
            self._fire(number, step, base)
        elif kind == "advance":
            self._advance(number, step, base)
        elif kind == "then":
            before = len(self.result.failures)
            self._then(number, step["then"] or {}, base + ("then",))
            # report a step's failed expectations in the order they are written
            self.result.failures[before:] = sorted(self.result.failures[before:], key=lambda f: (f.line, f.column))
        else:
            self.fail(number, self.current_loc, "one of fire, advance or then", "none of them")
            raise _Stop

    def _fire(self, number: int, step: Mapping[str, Any], base: tuple) -> None:
        trigger = step["fire"]
        target = self._target(number, step.get("on"), base + ("on",))
        if target is None:
            raise _Stop
        if step.get("at") is not None:
            self.now = as_time(step["at"])
        expected_name = step.get("refused")
        from .runtime.engine import fire_as_engine
        from .runtime.inputs import SYSTEM_ACTOR

        try:
            if step.get("actor") == SYSTEM_ACTOR:  # fired as the engine fires it (a trigger whose roles include system)
                after = fire_as_engine(self.engine, target, trigger, step.get("payload"), at=self.now)
            else:
                after = self.engine.fire(
                    target,
                    trigger,
                    step.get("payload"),
                    actor=str(step.get("actor") or self.actor),
                    roles=list(step.get("roles") or ()),
                    at=self.now,
                )
        except (Refused, errors.EvaluationFailed) as exc:
            if expected_name is None:
                self.fail(number, self.sc.location(*base, "fire"), f"'{trigger}' to be accepted", _describe_error(exc), exc.message)
                raise _Stop from None
            if not isinstance(exc, REFUSALS[expected_name]):
                # Nothing changed, so the steps after this one still mean what they say.
                self.fail(number, self.sc.location(*base, "refused"), f"'{trigger}' to be refused with {expected_name}", _describe_error(exc), exc.message)
            return
        except QaflowError as exc:  # e.g. a time the engine cannot read
            self.fail(number, self.sc.location(*base, "fire"), f"'{trigger}' to be fired", _describe_error(exc), exc.message)
            raise _Stop from None
        if expected_name is not None:
            self.fail(
                number,
                self.sc.location(*base, "refused"),
                f"'{trigger}' to be refused with {expected_name}",
                f"it was accepted ({after.id} is now in state '{after.state}')",
            )
            raise _Stop

    def _advance(self, number: int, step: Mapping[str, Any], base: tuple) -> None:
        self.now = as_time(step["advance"])
        for occ in self.engine.advance(self.now):
            if occ.error:
                what = f"breach of '{occ.name}' on {occ.instance_id}" if occ.kind == "breach" else f"scheduled start of '{occ.workflow}'"
                self.fail(
                    number,
                    self.sc.location(*base, "advance"),
                    f"the {what} at {occ.at.isoformat()} to run its actions",
                    f"it failed: {occ.error}",
                    occ.error,
                )

    # -- choosing an instance

    def _target(self, number: int, on: Any, path: tuple) -> str | None:
        assert self.root is not None
        if on is None:
            return self.root
        root = self.engine.get(self.root)
        if on == "parent":
            if root.parent_id is None:
                self.fail(number, self.sc.location(*path), "the instance to have a parent", f"{root.id} has none")
                return None
            return root.parent_id
        # Breadth first: the latest child of that workflow, looking deeper only if there is none.
        level = [root]
        seen: list[str] = []
        while level:
            found = None
            below = []
            for view in level:
                for cid in view.children:
                    child = self.engine.get(cid)
                    seen.append(f"{child.id} ({child.workflow})")
                    below.append(child)
                    if child.workflow == on:
                        found = child.id
            if found is not None:
                return found
            level = below
        self.fail(
            number,
            self.sc.location(*path),
            f"a child of workflow '{on}'",
            ("children " + ", ".join(seen)) if seen else f"{root.id} has no children",
        )
        return None

    # -- expectations

    def _then(self, number: int, then: Mapping[str, Any], base: tuple) -> None:
        target = self._target(number, then.get("on"), base + ("on",))
        if target is None:
            return
        view = self.engine.get(target)
        wf = self.engine.definitions.workflows.get(view.workflow)
        loc = lambda *parts, key=True: self.sc.location(*base, *parts, key=key)  # noqa: E731

        if "state" in then and then["state"] != view.state:
            hint = ""
            if wf is not None and then["state"] not in wf.states:
                hint = f" (workflow '{wf.id}' has no state '{then['state']}'{_did_you_mean(then['state'], wf.states)})"
            self.fail(number, loc("state"), f"state '{then['state']}'", f"state '{view.state}'{hint}")

        data = view.data
        for key, want in (then.get("data") or {}).items():
            got = _lookup(data, str(key))
            if not _same(got, want):
                found = f"data.{key} absent" if got is _MISSING else f"data.{key} = {_show(got)}"
                self.fail(number, loc("data", key), f"data.{key} = {_show(want)}", found)

        for name, spec in (then.get("deadlines") or {}).items():
            self._check_deadline(number, view, wf, name, spec or {}, loc)

        if then.get("children"):
            counts: dict[str, int] = {}
            for cid in view.children:
                child = self.engine.get(cid)
                counts[child.workflow] = counts.get(child.workflow, 0) + 1
            for workflow, want in then["children"].items():
                got = counts.get(workflow, 0)
                if got != want:
                    self.fail(number, loc("children", workflow), f"{want} {workflow} child(ren)", f"{got}")

        if "alerts" in then or "no_alerts" in then:
            alerts = self.engine.outbox(include_acknowledged=True)
            groups = self.engine.definitions.alert_groups
            for j, want in enumerate(then.get("alerts") or ()):
                if not any(_alert_matches(a, want, groups) for a in alerts):
                    self.fail(number, loc("alerts", j, key=False), f"an alert {_show_alert_spec(want)}", _show_alerts(alerts))
            raised = {a.get("name") for a in alerts}
            for j, name in enumerate(then.get("no_alerts") or ()):
                if name in raised:
                    hits = [a for a in alerts if a.get("name") == name]
                    self.fail(number, loc("no_alerts", j, key=False), f"no alert '{name}'", _show_alerts(hits))

        if then.get("history"):
            got = [entry.get("trigger") for entry in view.history]
            wanted = list(then["history"])
            k = 0
            for trigger in got:
                if k < len(wanted) and trigger == wanted[k]:
                    k += 1
            if k < len(wanted):
                self.fail(
                    number,
                    loc("history", k, key=False),
                    f"'{wanted[k]}' in the history" + (f" after '{wanted[k - 1]}'" if k else ""),
                    "history " + " -> ".join(str(t) for t in got),
                )

    def _check_deadline(self, number: int, view: Any, wf: WorkflowDef | None, name: str, spec: Mapping[str, Any], loc: Any) -> None:
        dv = view.deadline(name)
        if dv is None:
            if spec.get("status") == "not_started" and len(spec) == 1:
                return
            if wf is not None and name not in wf.deadlines:
                found = f"workflow '{wf.id}' has no deadline '{name}'{_did_you_mean(name, wf.deadlines)}"
            else:
                found = f"deadline '{name}' was never started"
            wanted = spec.get("status", "started")
            self.fail(number, loc("deadlines", name), f"deadline '{name}' {wanted}", found)
            return
        if "status" in spec and spec["status"] != dv.status:
            self.fail(number, loc("deadlines", name, "status"), f"deadline '{name}' {spec['status']}", f"{dv.status} (due {dv.due.isoformat()})")
        if "due" in spec and str(spec["due"]) != dv.due.isoformat():
            self.fail(
                number,
                loc("deadlines", name, "due"),
                f"deadline '{name}' due {spec['due']}",
                f"due {dv.due.isoformat()} ({dv.explanation[0] if dv.explanation else dv.duration})",
            )
        if "late" in spec and bool(spec["late"]) != dv.late:
            self.fail(number, loc("deadlines", name, "late"), f"deadline '{name}' late: {_show(bool(spec['late']))}", f"late: {_show(dv.late)} ({dv.status})")


# --------------------------------------------------------------------------- comparing and showing


def _lookup(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _same(got: Any, want: Any) -> bool:
    """Equality that does not confuse true with 1; absent equals null."""
    if got is _MISSING:
        return want is None
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in got)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_same(a, b) for a, b in zip(got, want, strict=True))
    return got == want


def _show(value: Any) -> str:
    if value is _MISSING or value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    try:
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _recipient_names(alert: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for r in alert.get("recipients") or ():
        for key in ("role", "person", "as"):
            if r.get(key):
                names.add(str(r[key]))
    return names


def _alert_matches(alert: Mapping[str, Any], want: Mapping[str, Any], groups: Mapping[str, Sequence[str]]) -> bool:
    if "name" in want and alert.get("name") != want["name"]:
        return False
    if "contains" in want and str(want["contains"]) not in str(alert.get("message", "")):
        return False
    if "to" in want:
        names = _recipient_names(alert)
        to = str(want["to"])
        if to not in names and not (to in groups and all(m in names for m in groups[to])):
            return False
    return True


def _show_alert_spec(want: Mapping[str, Any]) -> str:
    parts = []
    if "name" in want:
        parts.append(f"'{want['name']}'")
    if "to" in want:
        parts.append(f"to {want['to']}")
    if "contains" in want:
        parts.append(f"containing '{want['contains']}'")
    return " ".join(parts)


def _show_alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return "no alerts"
    shown = []
    for a in alerts[:5]:
        who = ", ".join(
            r.get("person") or r.get("role") or "?" for r in (a.get("recipients") or ())
        )
        shown.append(f"'{a.get('name') or '(unnamed)'}' to {who or 'nobody'}: \"{a.get('message', '')}\"")
    more = f" and {len(alerts) - 5} more" if len(alerts) > 5 else ""
    return "alerts " + "; ".join(shown) + more


# --------------------------------------------------------------------------- coverage


def transition_label(wf: WorkflowDef, t: TransitionDef) -> str:
    """``from -> to on trigger``, e.g. ``open -> graded on grade``; ``*`` for every non-terminal state."""
    non_terminal = tuple(n for n, s in wf.states.items() if not s.terminal)
    if len(t.sources) > 1 and set(t.sources) == set(non_terminal):
        source = "*"
    else:
        source = ", ".join(t.sources) or "(nowhere)"
    dest = t.dest or (t.sources[0] if len(t.sources) == 1 else "(same state)")
    if t.event == "trigger":
        how = f"on {t.name}"
    elif t.event == "auto":
        how = "automatically"
    else:
        how = f"on breach of {t.name}"
    label = f"{source} -> {dest} {how}"
    return f"{t.title}: {label}" if t.title else label


def _taken(wf: WorkflowDef, entry: Mapping[str, Any]) -> int | None:
    """The index of the transition a history entry records, judged as the engine chose it."""
    source, key = entry.get("from"), entry.get("trigger")
    if source is None or not key or key == "(start)" or entry.get("error"):
        return None
    results: dict[int, bool] = {}
    for cond in entry.get("conditions") or ():
        if "transition" in cond:
            results[cond["transition"]] = results.get(cond["transition"], False) or bool(cond.get("result"))
    for t in wf.by_event.get((key, source), ()):
        if (t.dest or source) != entry.get("to"):
            continue
        if t.guard is not None and results.get(t.index) is False:
            continue
        return t.index
    return None


def coverage(results: Iterable[ScenarioResult], definitions: Definitions) -> dict[str, dict[str, Any]]:
    """Per workflow: which transitions, deadline starts and breaches the scenarios exercised, and which not.

    Computed only from the histories the engines recorded.
    """
    counts: dict[str, dict[int, int]] = {w: {t.index: 0 for t in wf.transitions} for w, wf in definitions.workflows.items()}
    started: dict[str, dict[str, int]] = {w: dict.fromkeys(wf.deadlines, 0) for w, wf in definitions.workflows.items()}
    breached: dict[str, dict[str, int]] = {w: dict.fromkeys(wf.deadlines, 0) for w, wf in definitions.workflows.items()}
    reminded: dict[str, dict[str, int]] = {
        w: {f"{d.name}/{r.name}": 0 for d in wf.deadlines.values() for r in d.reminders} for w, wf in definitions.workflows.items()
    }
    instances: dict[str, int] = dict.fromkeys(definitions.workflows, 0)
    for result in results:
        for history in result.histories.values():
            for entry in history:
                w: str = entry.get("workflow", "")
                wf = definitions.workflows.get(w)
                if wf is None or wf.version != entry.get("version", wf.version):
                    continue
                trigger = str(entry.get("trigger") or "")
                if trigger == "(start)":
                    instances[w] += 1
                index = _taken(wf, entry)
                if index is not None:
                    counts[w][index] += 1
                if trigger.startswith("(breach) "):
                    name = trigger[len("(breach) "):]
                    breached[w][name] = breached[w].get(name, 0) + 1
                elif trigger.startswith("(reminder) ") and isinstance(entry.get("payload"), Mapping):
                    key = f"{trigger[len('(reminder) '):]}/{entry['payload'].get('reminder')}"
                    reminded[w][key] = reminded[w].get(key, 0) + 1
                for action in entry.get("actions") or ():
                    if action.get("action") == "start_deadline" and action.get("deadline"):
                        name = action["deadline"]
                        started[w][name] = started[w].get(name, 0) + 1

    report: dict[str, dict[str, Any]] = {}
    for w in sorted(definitions.workflows):
        wf = definitions.workflows[w]
        transitions = [
            {
                "index": t.index,
                "label": transition_label(wf, t),
                "location": str(t.location) if t.location else wf.file,
                "count": counts[w][t.index],
            }
            for t in wf.transitions
        ]
        deadlines = [
            {
                "name": name,
                "location": str(d.location) if d.location else wf.file,
                "started": started[w].get(name, 0),
                "breached": breached[w].get(name, 0),
            }
            for name, d in wf.deadlines.items()
        ]
        report[w] = {
            "instances": instances[w],
            "transitions": {
                "total": len(transitions),
                "exercised": sum(1 for t in transitions if t["count"]),
                "items": transitions,
            },
            "deadlines": {
                "total": len(deadlines),
                "started": sum(1 for d in deadlines if d["started"]),
                "breached": sum(1 for d in deadlines if d["breached"]),
                "items": deadlines,
            },
            "reminders": {"total": len(reminded[w]), "sent": sum(1 for n in reminded[w].values() if n), "items": dict(reminded[w])},
            "not_exercised": {
                "transitions": [
                    {k: t[k] for k in ("index", "label", "location")} for t in transitions if not t["count"]
                ],
                "deadlines_not_started": [d["name"] for d in deadlines if not d["started"]],
                "breaches": [d["name"] for d in deadlines if not d["breached"]],
                "reminders": [name for name, n in reminded[w].items() if not n],
            },
        }
    return report
