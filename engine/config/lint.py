"""Semantic checks over compiled definitions and whole workflow graphs, yielding Problems with positions.

Each check is a generator (python-jsonschema style): it yields every problem it finds and never
raises; :func:`lint_config` collects them all and sorts them by file, line and column. The codes
are stable (kebab-case) and listed in :data:`LINT_CODES`, each with what it means.

``qaflow validate`` runs these with the other checks through ``engine/config/validate.py``.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from ..definitions import (
    ANY,
    ITEM_NAME,
    Action,
    DeadlineAction,
    DecisionTable,
    Evaluate,
    Scale,
    SignalParent,
    StartChild,
    TableRow,
    Timescale,
    TransitionDef,
    WorkflowDef,
)
from ..errors import ExpressionError
from ..expressions import compile_expression, compile_template
from ..patterns import payload_fits
from ..problems import Location, Problem
from ..rules import row_matches
from .compile import EXPRESSION_NAMES
from .yamlsource import Document

__all__ = [
    "LINT_CODES",
    "lint_config",
    "iter_workflow_problems",
    "iter_graph_problems",
    "iter_table_problems",
    "iter_cross_workflow_problems",
    "iter_tidiness_problems",
    "iter_scenario_problems",
]

#: Every code this module yields, with what it means (for docs and for ``qaflow validate``).
LINT_CODES: Mapping[str, str] = {
    "unreachable-state": "warning: no chain of transitions leads from the initial state to this state",
    "dead-end-state": "error: a state that is not terminal has no transition out of it, so instances get stuck there",
    "cannot-finish": "warning: from this state no terminal state can ever be reached",
    "ambiguous-transitions": "error: two transitions from the same state on the same trigger/event with no condition, or the same condition",
    "shadowed-transition": "error: an earlier transition on the same trigger/event has no condition, so this one is never taken",
    "star-self-loop": "warning: from: \"*\" includes the target state itself, so the transition leaves and re-enters it",
    "unused-trigger": "warning: a trigger no transition uses; firing it is always refused",
    "unused-timescale": "warning: a timescale in the rules that no deadline names, so changing it changes nothing",
    "deadline-never-started": "warning: no action starts this deadline",
    "unhandled-breach": "warning: nothing happens when this deadline passes (no on_breach, no breach transition)",
    "breach-never-applies": "warning: a breach transition from states where its deadline is never running",
    "zero-duration": "warning: a duration of 0 weeks, months or years, or an extension by nothing",
    "extension-not-longer": "error/warning: extend_deadline 'to' a duration that is not longer than the deadline's own",
    "unknown-deadline": "error: a condition or message reads deadlines.NAME for a deadline the workflow does not have",
    "unknown-deadline-field": "error: a deadline has only status, due, open and late",
    "unknown-payload-field": "error/warning: a condition reads a payload field the trigger's payload schema does not have",
    "payload-pattern": "error: a payload-schema pattern RE2 cannot run (look-ahead, look-behind, back-reference); patterns are matched in linear time",
    "pattern-backtracking": "warning: a payload-schema pattern repeats a repetition ('(a+)+'): fine here, exponential in backtracking engines",
    "no-payload": "warning: automatic transitions and deadline breaches have no payload; payload.X is always null there",
    "no-parent": "warning: the workflow reads 'parent' or signals its parent, but no workflow starts it",
    "unknown-parent-field": "warning: parent.X names a field none of the parent workflows declares",
    "missing-child-data": "error: starting a child workflow without a field it requires",
    "unknown-child-field": "warning: starting a child workflow with a field it does not declare",
    "unknown-table-input": "error: evaluate gives a value for a name that is not an input of the table",
    "missing-table-input": "warning: evaluate gives no value for one of the table's inputs",
    "table-overlap": "error: rows of a 'unique' table (or an 'any' table, with different outputs) can match together",
    "table-gap": "error: some combination of the inputs' declared values matches no row and there is no default",
    "table-row-unreachable": "warning: in a 'first' table, earlier rows already match everything this row matches",
    "unknown-term": "error/warning: a condition compares a name with a quoted value it can never hold (a state, a deadline status, an "
                    "enum or vocabulary, a payload schema, a scale; a warning when inferred from what set: copied)",
    "stale-schema": "warning: a schema in the configuration's schemas/ folder is not the one 'qaflow schema --out' writes for it",
    "value-overridden": "warning: a programme's sample_per_team applies to no team: every team sets its own monthly_audit_sample",
    "unknown-kind": "error: qaflow validate cannot tell what kind of configuration file this is",
    "unknown-workflow": "error: a scenario starts (or acts 'on') a workflow the configuration does not have",
    "unknown-trigger": "error: a scenario fires a trigger its workflow does not have (unless it expects UnknownTrigger)",
    "unknown-state": "error: a scenario expects a state its workflow does not have",
    "scenario-payload": "error: a scenario step that expects to be accepted gives a payload its trigger's schema refuses (e.g. a misspelt theme)",
    "no-config": "error: a folder given to qaflow validate is not a configuration folder",
    "no-such-file": "error: a path given to qaflow validate does not exist",
    "empty-file": "error: the file holds nothing",
    "too-deep": "error: the input is nested too deeply to check",
    "internal-error": "error: qaflow itself failed while checking this input (please report it)",
}

_NO_PAYLOAD_CONTEXTS = ("auto", "breach", "on_breach")
_COUNTED = ("working_days", "days", "weeks", "months", "years")  # duration kinds that carry a number
_DEADLINE_FIELDS = ("status", "due", "open", "late", "duration")
#: Combinations of declared input values a table check will enumerate before giving up.
MAX_COMBINATIONS = 200_000
#: Gaps and overlaps named in one message.
_SHOWN = 5


def _did_you_mean(name: Any, options: Iterable[Any]) -> str:
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _show(value: Any) -> str:
    """A cell or input value as people wrote it in YAML: true/false/null, text unquoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def _names(items: Iterable[str]) -> str:
    items = [f"'{i}'" for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class _Where:
    """Positions for one workflow: from its Document when there is one, else the compiled locations."""

    def __init__(self, wf: WorkflowDef, doc: Document | None) -> None:
        self.wf = wf
        self.doc = doc

    def at(self, path: tuple, fallback: Location | None = None, *, key: bool = False) -> Location:
        if self.doc is not None:
            return self.doc.location(path, key=key)
        return fallback or Location(self.wf.file, 1, 1)

    def state(self, name: str) -> Location:
        return self.at(("states", name), self.wf.states[name].location, key=True)

    def transition(self, t: TransitionDef) -> Location:
        return self.at(("transitions", t.index, t.event), t.location)

    def trigger(self, name: str) -> Location:
        return self.at(("triggers", name), self.wf.triggers[name].location, key=True)

    def deadline(self, name: str) -> Location:
        return self.at(("deadlines", name), self.wf.deadlines[name].location, key=True)

    def inside(self, path: tuple, line: int, column: int, fallback: Location | None) -> Location:
        if self.doc is not None:
            return self.doc.scalar_location(path, line, column)
        return fallback or Location(self.wf.file, 1, 1)


# --------------------------------------------------------------------------- walking a workflow


def _all_actions(wf: WorkflowDef) -> Iterator[tuple[Action, tuple, str]]:
    """Every action with the YAML path of its list and a context: trigger/auto/breach/state/on_breach."""

    def walk(actions: tuple[Action, ...], path: tuple, context: str) -> Iterator[tuple[Action, tuple, str]]:
        for j, action in enumerate(actions):
            yield action, path + (j,), context

    for name, s in wf.states.items():
        yield from walk(s.on_enter, ("states", name, "on_enter"), "state")
        yield from walk(s.on_exit, ("states", name, "on_exit"), "state")
    for t in wf.transitions:
        yield from walk(t.actions, ("transitions", t.index, "actions"), t.event)
    for name, d in wf.deadlines.items():
        yield from walk(d.on_breach, ("deadlines", name, "on_breach"), "on_breach")


def _edges(wf: WorkflowDef) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {name: set() for name in wf.states}
    for t in wf.transitions:
        for source in t.sources:
            if source in out:
                out[source].add(t.dest or source)
    return out


def _reach(edges: Mapping[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _is_star(wf: WorkflowDef, doc: Document | None, t: TransitionDef) -> bool:
    if doc is not None:
        try:
            return doc.data["transitions"][t.index]["from"] == "*"
        except (KeyError, IndexError, TypeError):
            pass
    non_terminal = [n for n, s in wf.states.items() if not s.terminal]
    return len(t.sources) > 1 and list(t.sources) == non_terminal


def iter_graph_problems(wf: WorkflowDef, doc: Document | None = None) -> Iterator[Problem]:
    """States nobody reaches, states nobody leaves, and transitions that can never be told apart."""
    where = _Where(wf, doc)
    edges = _edges(wf)
    reachable = _reach(edges, wf.initial) if wf.initial in wf.states else set(wf.states)
    terminals = wf.terminals
    dead_ends = {n for n, s in wf.states.items() if not s.terminal and not edges[n] - {n}}
    for name, state in wf.states.items():
        if name not in reachable:
            yield Problem(
                where.state(name), "warning", "unreachable-state",
                f"state '{name}' can never be reached: no transition from '{wf.initial}' (the initial state) "
                f"leads to it; add a transition with 'to: {name}', or remove the state",
            )
        if state.terminal:
            continue
        exits = edges[name] - {name}
        if not exits:
            yield Problem(
                where.state(name), "error", "dead-end-state",
                f"state '{name}' is not terminal, but no transition leaves it, so an instance that gets there "
                f"is stuck for ever; add a transition 'from: {name}' with a 'to:', or mark it 'terminal: true'",
            )
        elif terminals and name in reachable and not (_reach(edges, name) & (terminals | dead_ends)):
            # (a way into a dead end is reported there: the dead end is the mistake to fix)
            leads = sorted(_reach(edges, name) - {name})
            yield Problem(
                where.state(name), "warning", "cannot-finish",
                f"from state '{name}' no terminal state can ever be reached (it only leads to "
                f"{_names(leads)}); add a way to {_names(sorted(terminals))}",
            )
    yield from _iter_transition_overlaps(wf, doc, where)
    yield from _iter_star_problems(wf, doc, where)


def _same_guard(a: TransitionDef, b: TransitionDef) -> bool:
    if a.guard is None or b.guard is None:
        return a.guard is None and b.guard is None
    return " ".join(a.guard.source.split()) == " ".join(b.guard.source.split())


def _event_phrase(t: TransitionDef) -> str:
    if t.event == "trigger":
        return f"trigger '{t.name}'"
    if t.event == "breach":
        return f"the breach of deadline '{t.name}'"
    return "automatic transitions"


def _iter_transition_overlaps(wf: WorkflowDef, doc: Document | None, where: _Where) -> Iterator[Problem]:
    """Transitions tried in file order: a later one behind an unguarded (or identical) earlier one never runs."""
    earlier: dict[str, list[TransitionDef]] = {}
    for t in wf.transitions:
        before = earlier.setdefault(t.event_key, [])
        star = _is_star(wf, doc, t)
        blocked: dict[int, tuple[TransitionDef, list[str]]] = {}
        for source in t.sources:
            for e in before:
                if source in e.sources and (e.guard is None or _same_guard(e, t)):
                    blocked.setdefault(e.index, (e, []))[1].append(source)
                    break
        if not blocked:
            before.append(t)
            continue
        states = [s for _, found in blocked.values() for s in found]
        # from: "*" after specific transitions is the usual "otherwise" pattern: only a problem when
        # it is blocked in every state it covers.
        if star and len(states) < len(t.sources):
            before.append(t)
            continue
        for e, found in blocked.values():
            e_line = e.location.line if e.location else "?"
            what = f"{_event_phrase(t)} from {_names(found)}"
            star_note = " ('from: \"*\"' means every state that is not terminal)" if _is_star(wf, doc, e) else ""
            if _same_guard(e, t):
                guard = "no condition" if t.guard is None else "the same condition"
                yield Problem(
                    where.transition(t), "error", "ambiguous-transitions",
                    f"transitions {e.index + 1} (line {e_line}) and {t.index + 1} both handle {what} "
                    f"with {guard}{star_note}; the first always wins, so transition {t.index + 1} is never taken: "
                    f"give them different 'when' conditions, or remove one",
                )
            else:
                yield Problem(
                    where.transition(t), "error", "shadowed-transition",
                    f"transition {t.index + 1} is never taken for {what}: transition {e.index + 1} (line {e_line}) "
                    f"handles the same and has no 'when' condition{star_note}, and transitions are tried in file "
                    f"order; move this one above it, or give transition {e.index + 1} a condition",
                )
        before.append(t)


def _iter_star_problems(wf: WorkflowDef, doc: Document | None, where: _Where) -> Iterator[Problem]:
    for t in wf.transitions:
        if not _is_star(wf, doc, t) or t.dest is None:
            continue
        if t.dest in t.sources:
            yield Problem(
                where.at(("transitions", t.index, "from"), t.location), "warning", "star-self-loop",
                f"'from: \"*\"' includes '{t.dest}' itself, so in '{t.dest}' transition {t.index + 1} leaves and "
                f"re-enters it (running on_exit and on_enter again, restarting their deadlines); "
                f"list the states it applies to instead",
            )


def iter_workflow_problems(
    wf: WorkflowDef,
    doc: Document | None = None,
    *,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    tables: Mapping[str, DecisionTable] | None = None,
    parents: Sequence[WorkflowDef] | None = None,
    scales: Mapping[str, Scale] | None = None,
) -> Iterator[Problem]:
    """Every check on one compiled workflow; ``parents`` are the workflows that start it (None: unknown)."""
    where = _Where(wf, doc)
    yield from iter_graph_problems(wf, doc)
    yield from _iter_deadline_problems(wf, where)
    if tables is not None:
        yield from _iter_evaluate_problems(wf, where, tables)
    if doc is not None:
        yield from _iter_reference_problems(wf, doc, where, functions or {}, parents)
        yield from _iter_quoted_problems(wf, doc, where, tables or {}, scales or {})
    elif parents is not None and not parents:
        for action, path, _ in _all_actions(wf):
            if isinstance(action, SignalParent):
                yield _no_parent(wf, where.at(path, action.location), "signals its parent")
                break


def iter_tidiness_problems(doc: Document) -> Iterator[Problem]:
    """Declarations that change nothing at run time (``qaflow validate`` only, so that loading stays quiet).

    Read from the schema-checked document, so they are found even when other files have errors.
    """
    raw = doc.data if isinstance(doc.data, Mapping) else {}
    triggers = raw.get("triggers")
    if not isinstance(triggers, Mapping):
        triggers = {}
    used = {t.get("trigger") for t in raw.get("transitions") or () if isinstance(t, Mapping)}
    for name in triggers:
        if name not in used:
            yield Problem(
                doc.location(("triggers", name), key=True), "warning", "unused-trigger",
                f"trigger '{name}' is declared but no transition uses it, so firing it is always refused; "
                f"add a transition with 'trigger: {name}', or remove it",
            )


def _iter_deadline_problems(wf: WorkflowDef, where: _Where) -> Iterator[Problem]:
    started: set[str] = set()
    for action, path, _ in _all_actions(wf):
        if not isinstance(action, DeadlineAction):
            continue
        if action.op == "start":
            started.add(action.deadline)
        defn = wf.deadlines.get(action.deadline)
        for attr, label in (("to", "to"), ("by", "by")):
            duration = getattr(action, attr)
            if duration is None:
                continue
            kind_path = path + ("extend_deadline", label)
            if attr == "by" and duration.n == 0 and duration.kind in _COUNTED:
                yield Problem(
                    where.at(kind_path, action.location), "warning", "zero-duration",
                    f"extending '{action.deadline}' by {duration.text} changes nothing; give the extra time, e.g. '10 working days'",
                )
            if attr == "to" and defn is not None:
                verdict = _compare(duration, defn.duration)
                if verdict is not None and verdict <= 0:
                    yield Problem(
                        where.at(kind_path, action.location), "error" if verdict < 0 else "warning", "extension-not-longer",
                        f"extending '{action.deadline}' to {duration.text} "
                        + ("would bring it forward" if verdict < 0 else "changes nothing")
                        + f": the deadline is already {defn.duration.text} from the same start; "
                        f"'to' is the new total, so it must be longer (or use 'by' for extra time)",
                    )
    breaches = {t.name for t in wf.transitions if t.event == "breach"}
    for name, defn in wf.deadlines.items():
        if defn.duration.n == 0 and defn.duration.kind in ("weeks", "months", "years"):
            yield Problem(
                where.at(("deadlines", name, "due"), defn.location), "warning", "zero-duration",
                f"'{defn.duration.text}' is the start day itself; write '0 days' if that is meant, "
                f"or give the real duration",
            )
        if name not in started:
            yield Problem(
                where.deadline(name), "warning", "deadline-never-started",
                f"deadline '{name}' is never started, so it can never be met or breached; "
                f"add '- start_deadline: {name}' to a state's on_enter or a transition's actions",
            )
            continue
        if not defn.on_breach and name not in breaches:
            yield Problem(
                where.deadline(name), "warning", "unhandled-breach",
                f"nothing happens when deadline '{name}' passes: add 'on_breach:' actions (e.g. an alert) "
                f"or a transition with 'breach: {name}'",
            )
    # A breach transition only fires while the deadline is running; a deadline started only on entering
    # some states and stopped on leaving them is not checked here (that needs the data flow), but a
    # breach transition whose deadline is started nowhere is.
    for t in wf.transitions:
        if t.event == "breach" and t.name in wf.deadlines and t.name not in started:
            yield Problem(
                where.transition(t), "warning", "breach-never-applies",
                f"transition {t.index + 1} waits for deadline '{t.name}' to pass, but nothing starts that deadline",
            )


def _compare(a: Any, b: Any) -> int | None:
    """Sign of (a - b) for two durations measured the same way, None when they cannot be compared."""
    per_day = {"days": 1, "weeks": 7}
    if a.kind == b.kind and a.kind in _COUNTED:
        x, y = a.n, b.n
    elif a.kind in per_day and b.kind in per_day:
        x, y = a.n * per_day[a.kind], b.n * per_day[b.kind]
    elif {a.kind, b.kind} <= {"months", "years"}:
        x, y = a.n * (12 if a.kind == "years" else 1), b.n * (12 if b.kind == "years" else 1)
    else:
        return None
    return (x > y) - (x < y)


def _iter_evaluate_problems(wf: WorkflowDef, where: _Where, tables: Mapping[str, DecisionTable]) -> Iterator[Problem]:
    for action, path, _ in _all_actions(wf):
        if not isinstance(action, Evaluate) or action.rule not in tables:
            continue
        table = tables[action.rule]
        inputs = [i.name for i in table.inputs]
        given = [name for name, _ in action.inputs]
        for name in given:
            if name not in inputs:
                yield Problem(
                    where.at(path + ("evaluate", "with", name), action.location, key=True), "error", "unknown-table-input",
                    f"'{name}' is not an input of table '{table.name}' (its inputs: {', '.join(inputs)})"
                    + _did_you_mean(name, inputs),
                )
        missing = [name for name in inputs if name not in given]
        if missing:
            yield Problem(
                where.at(path + ("evaluate", "with"), action.location), "warning", "missing-table-input",
                f"evaluating table '{table.name}' gives no value for {_names(missing)}, so only rows that leave "
                f"{'it' if len(missing) == 1 else 'them'} out or write '-' can match; add "
                + ", ".join(f"'{m}: ...'" for m in missing) + " under 'with:'",
            )


# --------------------------------------------------------------------------- names read by expressions


def _expression_sites(raw: Mapping[str, Any]) -> Iterator[tuple[tuple, bool, tuple[str, ...]]]:
    """(YAML path, is a message template, (context kind, name, *extra names)) of every expression in a
    workflow document; the extra names are those the expression may read besides the usual ones
    (``item`` in the data of a start with ``for_each``)."""

    def actions(path: tuple, items: Any, context: tuple[str, ...]) -> Iterator[tuple[tuple, bool, tuple[str, ...]]]:
        for j, action in enumerate(items if isinstance(items, list) else ()):
            if not isinstance(action, dict):
                continue
            p = path + (j,)
            if "if" in action:
                yield p + ("if",), False, context
            kind = next((k for k in action if k != "if"), None)
            body = action.get(kind)
            q = p + (kind,)
            if kind == "set" and isinstance(body, dict):
                for key in body:
                    yield q + (key,), False, context
            elif kind == "evaluate" and isinstance(body, dict):
                for key in body.get("with") or {}:
                    yield q + ("with", key), False, context
            elif kind == "alert" and isinstance(body, dict):
                for k, _ in enumerate(body.get("people") or ()):
                    yield q + ("people", k), False, context
                if "message" in body:
                    yield q + ("message",), True, context
            elif kind in ("start", "signal_parent") and isinstance(body, dict):
                section = "data" if kind == "start" else "payload"
                each = kind == "start" and "for_each" in body
                if each:
                    yield q + ("for_each",), False, context
                for key in body.get(section) or {}:
                    yield q + (section, key), False, context + ((ITEM_NAME,) if each else ())
            elif isinstance(body, dict):
                for key in ("from", "reason"):
                    if key in body:
                        yield q + (key,), False, context

    for i, t in enumerate(raw.get("transitions") or ()):
        if not isinstance(t, dict):
            continue
        if "trigger" in t:
            context = ("trigger", str(t["trigger"]))
        elif "breach" in t:
            context = ("breach", str(t["breach"]))
        else:
            context = ("auto", "")
        if "when" in t:
            yield ("transitions", i, "when"), False, context
        yield from actions(("transitions", i, "actions"), t.get("actions"), context)
    for name, spec in (raw.get("states") or {}).items():
        for key in ("on_enter", "on_exit"):
            yield from actions(("states", name, key), (spec or {}).get(key), ("state", name))
    for name, spec in (raw.get("deadlines") or {}).items():
        if isinstance(spec, dict):
            if "from" in spec:
                yield ("deadlines", name, "from"), False, ("anchor", name)
            yield from actions(("deadlines", name, "on_breach"), spec.get("on_breach"), ("on_breach", name))


def _value_at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _no_parent(wf: WorkflowDef, loc: Location, what: str) -> Problem:
    return Problem(
        loc, "warning", "no-parent",
        f"workflow '{wf.id}' {what}, but no workflow starts it as a child, so it never has a parent; "
        f"start it from another workflow with '- start: {{workflow: {wf.id}}}'",
    )


def _iter_reference_problems(
    wf: WorkflowDef,
    doc: Document,
    where: _Where,
    functions: Mapping[str, Callable[..., Any]],
    parents: Sequence[WorkflowDef] | None,
) -> Iterator[Problem]:
    """payload.X, deadlines.X and parent.X that cannot hold anything where they are read."""
    raw = doc.data
    parent_said = False
    if parents is not None and not parents:
        for action, path, _ in _all_actions(wf):
            if isinstance(action, SignalParent):
                parent_said = True
                yield _no_parent(wf, where.at(path + ("signal_parent",), action.location, key=True), "signals its parent")
                break
    parent_fields: set[str] | None = None
    if parents and all(p.fields for p in parents):
        parent_fields = {name for p in parents for name in p.fields}
    for path, template, (context, name, *extra) in _expression_sites(raw):
        try:
            text = _value_at(raw, path)
            if not isinstance(text, str):
                text = str(text).lower() if isinstance(text, bool) else repr(text)
            make = compile_template if template else compile_expression
            compiled = make(text, names=EXPRESSION_NAMES | set(extra), functions=functions)
        except (ExpressionError, KeyError, IndexError, TypeError):
            continue  # the compiler reports what does not compile
        no_payload_said = False
        for ref in compiled.references:
            head, rest = ref.path[0], ref.path[1:]
            loc = partial(where.inside, path, ref.line, ref.column, None)
            if head == "payload" and rest and context in _NO_PAYLOAD_CONTEXTS and not no_payload_said:
                no_payload_said = True
                what = {"auto": "an automatic transition", "breach": "a breach transition", "on_breach": "a deadline's on_breach"}[context]
                yield Problem(
                    loc(), "warning", "no-payload",
                    f"'payload.{_show(rest[0])}' is read in {what}, which has no payload, so it is always null; "
                    f"read the value from data instead (save it with 'set:' when the trigger is fired)",
                )
            elif head == "payload" and rest and context == "trigger" and isinstance(rest[0], str):
                problem = _payload_problem(wf, name, rest[0], loc)
                if problem is not None:
                    yield problem
            elif head == "deadlines" and rest and isinstance(rest[0], str):
                if rest[0] not in wf.deadlines:
                    yield Problem(
                        loc(), "error", "unknown-deadline",
                        f"'deadlines.{rest[0]}': workflow '{wf.id}' has no deadline '{rest[0]}'"
                        + (_did_you_mean(rest[0], wf.deadlines) or f" (it has: {', '.join(wf.deadlines) or 'none'})"),
                    )
                elif len(rest) > 1 and isinstance(rest[1], str) and rest[1] not in _DEADLINE_FIELDS:
                    yield Problem(
                        loc(), "error", "unknown-deadline-field",
                        f"'deadlines.{rest[0]}.{rest[1]}' is always null: a deadline has {', '.join(_DEADLINE_FIELDS)}"
                        + _did_you_mean(rest[1], _DEADLINE_FIELDS),
                    )
            elif head == "parent" and rest and isinstance(rest[0], str):
                if parents is not None and not parents and not parent_said:
                    parent_said = True
                    yield _no_parent(wf, loc(), "reads 'parent'")
                elif parent_fields is not None and rest[0] not in parent_fields:
                    yield Problem(
                        loc(), "warning", "unknown-parent-field",
                        f"'parent.{rest[0]}' is not a data field of "
                        + " or ".join(f"'{p.id}'" for p in parents or ())
                        + f", the workflow(s) that start '{wf.id}'" + _did_you_mean(rest[0], parent_fields),
                    )


def _iter_quoted_problems(wf: WorkflowDef, doc: Document, where: _Where, tables: Mapping[str, DecisionTable],
                          scales: Mapping[str, Scale]) -> Iterator[Problem]:
    """Text a condition compares with a name that can never hold it (engine/config/terms.py): an error where a
    definition says what the name holds (a state, a deadline status, an enum, a payload schema, a scale), a
    warning where it is inferred from what ``set:`` or ``evaluate`` put in a data field."""
    from .terms import WorkflowTerms, quoted_values

    raw = doc.data
    sites = list(_expression_sites(raw))
    terms: WorkflowTerms | None = None
    for path, template, context in sites:
        try:
            text = _value_at(raw, path)
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(text, str):
            continue
        for quoted in quoted_values(text, template=template):
            if terms is None:
                terms = WorkflowTerms(wf, raw, sites, tables, scales)
            found = terms.problem_text(quoted, context)
            if found is not None:
                message, certain = found
                yield Problem(where.inside(path, quoted.line, quoted.column, None), "error" if certain else "warning",
                              "unknown-term", message)


def _payload_problem(wf: WorkflowDef, trigger: str, field: str, loc: Callable[[], Location]) -> Problem | None:
    trig = wf.triggers.get(trigger)
    schema = trig.payload_schema if trig is not None else None
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or field in properties:
        return None
    if schema.get("patternProperties") or isinstance(schema.get("additionalProperties"), Mapping):
        return None  # other fields are allowed in a described way: cannot tell
    closed = schema.get("additionalProperties") is False
    listed = ", ".join(map(str, properties)) or "none"
    if closed:
        message = (f"'payload.{field}' is always null: the payload schema of trigger '{trigger}' allows only "
                   f"{listed}")
    else:
        message = (f"'payload.{field}' is not one of the payload fields of trigger '{trigger}' ({listed}), "
                   f"so it is null unless someone sends it; declare it under the trigger's payload 'properties'")
    return Problem(
        loc(), "error" if closed else "warning", "unknown-payload-field", message + _did_you_mean(field, properties)
    )


# --------------------------------------------------------------------------- across workflows


def iter_cross_workflow_problems(
    workflows: Mapping[str, WorkflowDef], documents: Mapping[str, Document] | None = None
) -> Iterator[Problem]:
    """Child starts that miss required fields or give undeclared ones."""
    documents = documents or {}
    for wf in workflows.values():
        where = _Where(wf, documents.get(wf.id))
        for action, path, _ in _all_actions(wf):
            if not isinstance(action, StartChild):
                continue
            child = workflows.get(action.workflow)
            if child is None:
                continue  # unknown or broken: reported elsewhere
            given = [name for name, _ in action.data]
            missing = [n for n, f in child.fields.items() if f.required and f.default is None and n not in given]
            if missing:
                yield Problem(
                    where.at(path + ("start",), action.location, key=True), "error", "missing-child-data",
                    f"starting '{child.id}' needs {_names(missing)} (required in {child.file}), which this start "
                    f"does not give; add {', '.join(f'{m}: ...' for m in missing)} under 'data:'",
                )
            if child.fields:
                for name in given:
                    if name not in child.fields:
                        yield Problem(
                            where.at(path + ("start", "data", name), action.location, key=True), "warning",
                            "unknown-child-field",
                            f"'{name}' is not a data field of workflow '{child.id}'" + _did_you_mean(name, child.fields),
                        )


def parents_of(workflows: Mapping[str, WorkflowDef]) -> dict[str, list[WorkflowDef]]:
    """Workflow id -> the workflows whose actions start it."""
    out: dict[str, list[WorkflowDef]] = {w: [] for w in workflows}
    for wf in workflows.values():
        for action, _, _ in _all_actions(wf):
            if isinstance(action, StartChild) and action.workflow in out and wf not in out[action.workflow]:
                out[action.workflow].append(wf)
    return out


# --------------------------------------------------------------------------- decision tables


def _cell(row: Any, name: str) -> Any:
    """A row's cell for an input; an input the row does not name matches anything."""
    return row.cells.get(name, ANY)


def _cell_values(cell: Any, declared: tuple[Any, ...] | None) -> list[Any] | None:
    """The values a cell matches, limited to the declared ones; None means any value at all."""
    if cell == ANY:
        return list(declared) if declared is not None else None
    options = list(cell) if isinstance(cell, tuple) else [cell]
    if declared is None:
        return options
    return [v for v in declared if _matches(cell, v)]


def _matches(cell: Any, value: Any) -> bool:
    """Whether one cell matches a value, exactly as the engine decides (engine.rules.row_matches)."""
    return row_matches(TableRow({"x": cell}, {}), {"x": value})


def _row_matches(row: Any, combo: Mapping[str, Any]) -> bool:
    return row_matches(row, combo)


def _show_combo(combo: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in combo.items())


def _intersection(a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
    if a is None:
        return b
    if b is None:
        return a
    return [x for x in a if any(x == y for y in b)]


def iter_table_problems(table: DecisionTable) -> Iterator[Problem]:
    """Overlapping rows (unique/any), gaps (no default, every input's values declared), rows never reached."""
    table_loc = table.location or Location("?", 0, 0)
    rows = table.rows
    declared = {i.name: i.values for i in table.inputs}
    names = [i.name for i in table.inputs]
    if table.hit_policy in ("unique", "any"):
        for j, later in enumerate(rows):
            for i in range(j):
                earlier = rows[i]
                if table.hit_policy == "any" and dict(earlier.outputs) == dict(later.outputs):
                    continue
                example: dict[str, Any] = {}
                for name in names:
                    both = _intersection(_cell_values(_cell(earlier, name), declared[name]),
                                         _cell_values(_cell(later, name), declared[name]))
                    if both is not None and not both:
                        break
                    if both is not None:
                        example[name] = both[0]
                else:
                    shown = _show_combo(example) if example else "any input"
                    rule = ("its hit policy is 'unique', so exactly one row may match"
                            if table.hit_policy == "unique" else
                            "their outputs differ and the hit policy 'any' needs matching rows to agree")
                    yield Problem(
                        later.location or table_loc, "error", "table-overlap",
                        f"rows {i + 1} and {j + 1} of table '{table.name}' both match {shown}; {rule}: "
                        f"make the rows exclusive, or use hit policy 'first'",
                    )
                    break  # one report per row is enough
    enumerable = bool(names) and all(declared[n] is not None for n in names)
    size = 1
    for n in names:
        size *= len(declared[n] or ()) or 1
    if enumerable and size <= MAX_COMBINATIONS:
        combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(declared[n] or () for n in names))]
        if table.default is None and table.hit_policy != "collect":
            gaps = [c for c in combos if not any(_row_matches(r, c) for r in rows)]
            if gaps:
                shown = ", nor ".join(_show_combo(g) for g in gaps[:_SHOWN])
                more = f" (and {_plural(len(gaps) - _SHOWN, 'more combination')})" if len(gaps) > _SHOWN else ""
                yield Problem(
                    table_loc, "error", "table-gap",
                    f"no row of table '{table.name}' matches {shown}{more}; add rows for "
                    f"{'it' if len(gaps) == 1 else 'them'}, a last row with '-' for every input, or a 'default:'",
                )
        if table.hit_policy == "first":
            for j, row in enumerate(rows):
                mine = [c for c in combos if _row_matches(row, c)]
                if mine and all(any(_row_matches(rows[i], c) for i in range(j)) for c in mine):
                    yield Problem(
                        row.location or table_loc, "warning", "table-row-unreachable",
                        f"row {j + 1} of table '{table.name}' is never used: the rows above it already match "
                        f"everything it matches (hit policy 'first' takes the first match); move it up or remove it",
                    )
    elif table.hit_policy == "first":
        for j, row in enumerate(rows):
            for i in range(j):
                if all(_covers(_cell(rows[i], n), _cell(row, n)) for n in set(names) | set(row.cells) | set(rows[i].cells)):
                    yield Problem(
                        row.location or table_loc, "warning", "table-row-unreachable",
                        f"row {j + 1} of table '{table.name}' is never used: row {i + 1} above it matches everything "
                        f"it matches (hit policy 'first' takes the first match); move it up or remove it",
                    )
                    break


def _covers(outer: Any, inner: Any) -> bool:
    if outer == ANY:
        return True
    if inner == ANY:
        return False
    inner_values = list(inner) if isinstance(inner, tuple) else [inner]
    return all(_matches(outer, v) for v in inner_values)


# --------------------------------------------------------------------------- everything at once


def lint_config(
    workflows: Mapping[str, WorkflowDef],
    tables: Mapping[str, DecisionTable] | None = None,
    *,
    documents: Mapping[str, Document] | None = None,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    complete: bool = True,
    timescales: Mapping[str, Timescale] | None = None,
    scales: Mapping[str, Scale] | None = None,
) -> list[Problem]:
    """Every semantic problem in compiled workflows and tables, sorted by file, line and column.

    ``documents`` (workflow id -> its Document) lets problems point inside conditions and messages.
    ``complete`` says ``workflows`` are all there is: when some failed to compile, "no workflow starts
    this one" cannot be known and is not said. Never raises: a check that fails becomes an
    ``internal-error`` problem rather than a traceback.
    """
    documents = documents or {}
    tables = tables or {}
    parents: dict[str, list[WorkflowDef] | None] = dict(parents_of(workflows))
    if not complete:
        parents = {w: found or None for w, found in parents.items()}
    problems: list[Problem] = []

    def run(checks: Iterator[Problem], where: Location) -> None:
        try:
            problems.extend(checks)
        except Exception as exc:  # a bug in a check must not hide the other problems
            problems.append(Problem(where, "error", "internal-error",
                                    f"qaflow could not finish checking this ({type(exc).__name__}: {exc}); please report it"))

    for wid, wf in workflows.items():
        run(iter_workflow_problems(wf, documents.get(wid), functions=functions, tables=tables,
                                   parents=parents.get(wid), scales=scales), Location(wf.file, 1, 1))
    run(iter_cross_workflow_problems(workflows, documents), Location("(configuration)", 0, 0))
    for table in tables.values():
        run(iter_table_problems(table), table.location or Location("(rules)", 0, 0))
    if complete and timescales:
        run(iter_timescale_problems(timescales, workflows), Location("(rules)", 0, 0))
    unique = list(dict.fromkeys(problems))
    unique.sort(key=lambda p: (p.sort_key(), p.message))
    return unique


def iter_timescale_problems(timescales: Mapping[str, Timescale], workflows: Mapping[str, WorkflowDef]) -> Iterator[Problem]:
    """Timescales no deadline names (only said when every workflow compiled)."""
    named = {d.timescale for wf in workflows.values() for d in wf.deadlines.values()}
    for name, timescale in timescales.items():
        if name not in named:
            yield Problem(timescale.location or Location("(rules)", 0, 0), "warning", "unused-timescale",
                          f"no deadline names the timescale '{name}' (write 'timescale: {name}' in a deadline), "
                          f"so changing it changes nothing")


# --------------------------------------------------------------------------- scenarios


def iter_scenario_problems(scenarios: Iterable[Any], workflows: Mapping[str, WorkflowDef]) -> Iterator[Problem]:
    """Scenario steps that name workflows, triggers, states or deadlines the configuration does not have."""
    for sc in scenarios:
        wf = workflows.get(sc.workflow)
        if wf is None:
            yield Problem(sc.location("workflow", key=False), "error", "unknown-workflow",
                          f"scenario '{sc.name}' starts unknown workflow '{sc.workflow}'" + _did_you_mean(sc.workflow, workflows))
            continue
        for j, step in enumerate(sc.steps):
            if not isinstance(step, Mapping):
                continue
            base = ("steps", j)
            target = wf
            on = step.get("on") if "fire" in step else (step.get("then") or {}).get("on") if isinstance(step.get("then"), Mapping) else None
            if isinstance(on, str) and on != "parent":
                named = workflows.get(on)
                if named is None:
                    yield Problem(sc.location(*base, *(("on",) if "fire" in step else ("then", "on")), key=False),
                                  "error", "unknown-workflow",
                                  f"unknown workflow '{on}'" + _did_you_mean(on, workflows))
                    continue
                target = named
            elif on == "parent":
                continue
            expects_refusal = step.get("refused") in ("UnknownTrigger", "Refused")  # testing the refusal itself
            if "fire" in step and isinstance(step["fire"], str) and step["fire"] not in target.triggers and not expects_refusal:
                yield Problem(sc.location(*base, "fire", key=False), "error", "unknown-trigger",
                              f"workflow '{target.id}' has no trigger '{step['fire']}'" + _did_you_mean(step["fire"], target.triggers))
            elif "fire" in step and "refused" not in step and isinstance(step["fire"], str):
                yield from _scenario_payload_problems(sc, base, step, target)
            then = step.get("then")
            if isinstance(then, Mapping):
                state = then.get("state")
                if isinstance(state, str) and state not in target.states:
                    yield Problem(sc.location(*base, "then", "state", key=False), "error", "unknown-state",
                                  f"workflow '{target.id}' has no state '{state}'" + _did_you_mean(state, target.states))
                for name in then.get("deadlines") or {}:
                    if name not in target.deadlines:
                        yield Problem(sc.location(*base, "then", "deadlines", name), "error", "unknown-deadline",
                                      f"workflow '{target.id}' has no deadline '{name}'" + _did_you_mean(name, target.deadlines))


def _scenario_payload_problems(sc: Any, base: tuple, step: Mapping[str, Any], wf: WorkflowDef) -> Iterator[Problem]:
    """A step that expects its trigger to be accepted, with a payload the trigger's schema refuses (a
    misspelt theme, a grade not on the scale): the scenario would fail when run, so say where now."""
    trig = wf.triggers.get(step["fire"])
    payload = step.get("payload", {})
    if trig is None or trig.validator is None or not isinstance(payload, Mapping):
        return
    if trig.payload_schema is not None and payload_fits(trig.payload_schema, payload):
        return  # the schema's compiled predicate passes it: no need for jsonschema to look
    for error in sorted(trig.validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path])[:5]:
        where = tuple(error.absolute_path)
        message = f"'{trig.name}' would refuse this payload: {error.message}"
        if error.validator == "enum" and isinstance(error.instance, str):
            message += _did_you_mean(error.instance, [str(v) for v in error.validator_value])
        yield Problem(sc.location(*base, "payload", *where, key=False), "error", "scenario-payload", message)
