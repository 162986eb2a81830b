"""Plain-English explanations: why an instance moved as it did, and how due dates were computed.

Everything is read from what the engine recorded (history entries, deadline views) and from the
definitions; nothing here decides anything.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .calendar import LONDON, Calendar, parse_duration
from .definitions import Definitions, Timescale, WorkflowDef
from .errors import DurationError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .config.rules import RulesCompiler

__all__ = [
    "explain_entry",
    "explain_history",
    "explain_instance",
    "explain_scenarios",
    "explain_due",
    "rules_from_config",
    "report_lines",
]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Longest value shown inline before it is cut short.
MAX_VALUE = 80


# --------------------------------------------------------------------------- showing values


def _day(d: dt.date) -> str:
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


def _when(at: Any) -> str:
    """``Thu 15 Oct 2026 at 10:00`` (London time) from an ISO timestamp."""
    try:
        moment = dt.datetime.fromisoformat(str(at))
    except ValueError:
        return str(at)
    if moment.tzinfo is not None:
        moment = moment.astimezone(LONDON)
    return f"{_day(moment.date())} at {moment:%H:%M}"


def _date(text: Any) -> str:
    try:
        return _day(dt.date.fromisoformat(str(text)[:10]))
    except ValueError:
        return str(text)


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value
    else:
        shown = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return shown if len(shown) <= MAX_VALUE else shown[: MAX_VALUE - 1] + "…"


def _fields(values: Any) -> str:
    if not isinstance(values, Mapping) or not values:
        return ""
    return ", ".join(f"{k}={_value(v)}" for k, v in values.items())


def _condition(text: Any) -> str:
    return "`" + " ".join(str(text).split()) + "`"


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- one history entry


def _who(entry: Mapping[str, Any]) -> str:
    actor = str(entry.get("actor") or "someone")
    roles = [r for r in entry.get("roles") or () if r != "system"]
    if actor == "system":
        return "the engine"
    if actor.startswith("system:"):
        return f"child {actor.split(':', 1)[1]}"
    return f"{actor} ({', '.join(roles)})" if roles else actor


def _recipients(to: Any) -> str:
    names = []
    for r in to or ():
        if not isinstance(r, Mapping):
            continue
        if r.get("person"):
            names.append(str(r["person"]) + (f" ({r['as']})" if r.get("as") else ""))
        elif r.get("role"):
            names.append(str(r["role"]))
    return _join(names) or "nobody"


def _action(a: Mapping[str, Any]) -> str:
    kind = a.get("action")
    if kind == "set":
        return f"set {a.get('field')} = {_value(a.get('value'))}"
    if kind == "evaluate":
        return (f"looked up table '{a.get('rule')}' with {_fields(a.get('inputs')) or 'no inputs'}, "
                f"giving {_value(a.get('result'))}, kept in {a.get('into')}")
    if kind == "alert":
        called = f" '{a['name']}'" if a.get("name") and a.get("name") != "alert" else ""
        return f"sent alert{called} to {_recipients(a.get('to'))}: \"{a.get('message', '')}\""
    if kind == "start":
        data = _fields(a.get("data"))
        return f"started child {a.get('child')} ({a.get('workflow')})" + (f" with {data}" if data else "")
    if kind == "signal_parent":
        payload = _fields(a.get("payload"))
        return f"signalled '{a.get('trigger')}' to parent {a.get('parent')}" + (f" with {payload}" if payload else "")
    name = a.get("deadline")
    if kind == "start_deadline":
        text = (f"started deadline {name}: {a.get('duration')} from {_date(a.get('anchor'))}, "
                f"due {_date(a.get('due'))}")
        if a.get("replaced_due"):
            text += f" (replacing the clock that was due {_date(a['replaced_due'])})"
        return text
    if kind == "satisfy_deadline":
        if a.get("note") == "not started":
            return f"deadline {name} was marked met, but it had never been started"
        if a.get("changed") is False:
            return f"deadline {name} was already closed, so marking it met changed nothing"
        return f"deadline {name} was met " + ("late" if a.get("late") else "on time")
    if kind == "cancel_deadline":
        if a.get("note") == "not started":
            return f"deadline {name} was cancelled, but it had never been started"
        return f"cancelled deadline {name}" + (" (it was already closed)" if a.get("changed") is False else "")
    reason = f" (reason: {_value(a['reason'])})" if a.get("reason") else ""
    if kind == "extend_deadline":
        return f"extended deadline {name}: now due {_date(a.get('due'))}{reason}"
    if kind == "pause_deadline":
        return f"stopped the clock of deadline {name}{reason}"
    if kind == "resume_deadline":
        return f"restarted the clock of deadline {name}: now due {_date(a.get('due'))}"
    return f"{kind} " + _fields({k: v for k, v in a.items() if k != "action"})


def _conditions(entry: Mapping[str, Any], wf: WorkflowDef | None) -> tuple[list[str], list[str]]:
    """(what decided this change, automatic transitions checked afterwards that did not move it)."""
    own: list[str] = []
    later: list[str] = []
    trigger = str(entry.get("trigger") or "")
    for c in entry.get("conditions") or ():
        if not isinstance(c, Mapping):
            continue
        held = "held" if c.get("result") else "did not hold"
        if "transition" in c:
            index = c.get("transition")
            t = wf.transitions[index] if wf is not None and isinstance(index, int) and 0 <= index < len(wf.transitions) else None
            text = f"condition {_condition(c.get('when'))} {held}"
            if t is not None and t.event == "auto" and trigger != "(auto)":
                later.append(text)
            else:
                own.append(text)
        else:
            verb = "ran" if c.get("result") else "was skipped"
            own.append(f"the {c.get('action')} action in {c.get('where')} {verb}: its 'if' {_condition(c.get('if'))} {held}")
    return own, later


def explain_entry(entry: Mapping[str, Any], wf: WorkflowDef | None = None) -> str:
    """One history entry as a sentence: when, who, what, which conditions held, what changed."""
    trigger = str(entry.get("trigger") or "")
    instance = str(entry.get("instance_id") or "the instance")
    source, target = entry.get("from"), entry.get("to")
    own, later = _conditions(entry, wf)
    when = _when(entry.get("at"))
    if trigger == "(start)":
        data = _fields(entry.get("payload"))
        head = (f"On {when} {_who(entry)} started {instance} ({entry.get('workflow')}) in state '{target}'"
                + (f" with {data}" if data else ""))
        moved = ""
    elif trigger == "(auto)":
        head = f"Then, on {when}, an automatic transition was taken"
        moved = f"{instance} moved from {source} to {target}"
    elif trigger.startswith("(breach) "):
        name = trigger[len("(breach) "):]
        head = f"On {when} deadline '{name}' passed unmet"
        moved = f"{instance} moved from {source} to {target}" if source != target else f"{instance} stayed in {source}"
    elif trigger.startswith("(reminder) "):
        name = trigger[len("(reminder) "):]
        reminder = (entry.get("payload") or {}).get("reminder") if isinstance(entry.get("payload"), Mapping) else None
        head = f"On {when} a reminder{f' ({reminder})' if reminder else ''} went out for deadline '{name}', still open"
        moved = ""
    else:
        payload = _fields(entry.get("payload"))
        head = f"On {when} {_who(entry)} fired '{trigger}'" + (f" with {payload}" if payload else "")
        moved = f"{instance} moved from {source} to {target}" if source != target else f"{instance} stayed in {source}"
    parts = own + [_action(a) for a in entry.get("actions") or () if isinstance(a, Mapping)]
    if moved:
        parts.append(moved)
    if later:
        parts.append("automatic transitions were checked and none was taken: " + "; ".join(later))
    if entry.get("error"):
        parts.append(f"it failed: {entry['error']}")
    return head + (": " + "; ".join(parts) if parts else "") + "."


def explain_history(history: Iterable[Mapping[str, Any]], definitions: Definitions | None = None) -> list[dict[str, Any]]:
    """Each history entry with its sentence, the conditions checked and the actions taken."""
    out = []
    for entry in history:
        wf = definitions.workflows.get(str(entry.get("workflow"))) if definitions is not None else None
        if wf is not None and wf.version != entry.get("version", wf.version):
            wf = None  # another version: transition numbers may not match
        out.append(
            {
                "at": entry.get("at"),
                "actor": entry.get("actor"),
                "roles": list(entry.get("roles") or ()),
                "trigger": entry.get("trigger"),
                "from": entry.get("from"),
                "to": entry.get("to"),
                "text": explain_entry(entry, wf),
                "conditions": list(entry.get("conditions") or ()),
                "actions": list(entry.get("actions") or ()),
            }
        )
    return out


# --------------------------------------------------------------------------- instances


def explain_instance(engine: Any, instance_id: str) -> dict[str, Any]:
    """Why an instance is where it is: its history in plain English and how each deadline was computed."""
    view = engine.get(instance_id)
    wf = engine.definitions.workflows.get(view.workflow)
    defs = wf.deadlines if wf is not None and wf.version == view.version else {}  # the shared timescale, if named
    return {
        "instance": view.id,
        "workflow": view.workflow,
        "version": view.version,
        "state": view.state,
        "terminal": view.terminal,
        "parent": view.parent_id,
        "children": list(view.children),
        "events": explain_history(engine.history(view.id), engine.definitions),
        "deadlines": [
            {
                "name": d.name,
                "title": d.title,
                "status": d.status,
                "due": d.due.isoformat(),
                "late": d.late,
                "timescale": defs[d.name].timescale if d.name in defs else "",
                "explanation": list(d.explanation),
            }
            for d in view.deadlines
        ],
    }


def _family(engine: Any, root: str) -> list[str]:
    """The instance and its descendants, parents before children, in the order they were started."""
    order, todo = [], [root]
    while todo:
        iid = todo.pop(0)
        if iid in order:
            continue
        order.append(iid)
        todo.extend(engine.get(iid).children)
    return order


def explain_scenarios(
    source: str | Path, definitions: Definitions, *, name: str | None = None
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Run the scenarios in a file and explain every instance each one produced.

    Returns (one report per scenario, problems loading the file). Uses ``engine.scenarios`` to load
    and run them; each scenario's Engine is kept for its deadline explanations.
    """
    from . import scenarios as scenario_module

    loaded, problems = scenario_module.load_scenarios([source])
    if any(p.severity == "error" for p in problems):
        return [], problems
    chosen = [s for s in loaded if name is None or s.name == name]
    if name is not None and not chosen:
        import difflib

        close = difflib.get_close_matches(name, [s.name for s in loaded], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"no scenario called '{name}' in {source}{hint}")
    reports = []
    for scenario in chosen:
        result, engine = _run_keeping_engine(scenario_module, scenario, definitions)
        instances = []
        if engine is not None and result.instance_id is not None:
            family = _family(engine, result.instance_id)
            others = [v.id for v in engine.instances() if v.id not in family]
            instances = [explain_instance(engine, iid) for iid in family + others]
        reports.append(
            {
                "scenario": scenario.name,
                "file": scenario.file,
                "line": scenario.line,
                "passed": result.passed,
                "failures": [str(f) for f in result.failures],
                "instances": instances,
            }
        )
    return reports, problems


def _run_keeping_engine(module: Any, scenario: Any, definitions: Definitions) -> tuple[Any, Any]:
    """``run_scenario``, keeping hold of the Engine it creates (for the instances' deadline views).

    ``run_scenario`` builds its own ``Engine(definitions)`` and returns only histories; a recording
    subclass is swapped in for the duration of the call (the CLI runs one scenario at a time).
    """
    created: list[Any] = []
    base = module.Engine

    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    module.Engine = Recording
    try:
        result = module.run_scenario(scenario, definitions)
    finally:
        module.Engine = base
    engine = getattr(result, "engine", None) or (created[-1] if created else None)
    return result, engine


# --------------------------------------------------------------------------- due dates


def rules_from_config(root: str | Path | None) -> RulesCompiler:
    """The rules of a configuration as far as they can be read, even when other files have errors."""
    from .config.loader import default_config_dir, read_documents
    from .config.rules import RulesCompiler

    folder = Path(root) if root is not None else default_config_dir()
    rules = RulesCompiler()
    if folder.is_dir():
        docs, _ = read_documents(folder, "rules")
        for doc in docs:
            try:
                rules.add(doc)
            except Exception:  # a broken rules file must not stop a date calculation
                continue
    return rules


def _anchor(text: str) -> dt.date:
    value = str(text).strip()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--from: {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-18") from None
    return (moment.astimezone(LONDON) if moment.tzinfo else moment).date()


def explain_due(duration: str, start: str | dt.date, calendar: str, calendars: Mapping[str, Calendar],
                timescales: Mapping[str, Timescale] | None = None) -> dict[str, Any]:
    """The due date of ``duration`` from ``start`` in ``calendar``, with its explanation lines.

    ``duration`` may also name one of ``timescales`` (the rules' shared durations). A duration that
    cannot be read raises DurationError (listing the accepted forms); an unknown calendar or
    unreadable date raises UsageError.
    """
    timescale = (timescales or {}).get(str(duration).strip())
    if timescale is not None:
        result = explain_due(timescale.duration.text, start, calendar, calendars)
        note = f"timescale '{timescale.name}' (config rules): {timescale.duration.text}"
        return {**result, "timescale": timescale.name, "source": timescale.source,
                "explanation": [note + (f"; source: {timescale.source}" if timescale.source else ""), *result["explanation"]]}
    anchor = start if isinstance(start, dt.date) else _anchor(start)
    if calendar not in calendars:
        import difflib

        close = difflib.get_close_matches(calendar, list(calendars), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"unknown calendar '{calendar}'; {hint}known: {', '.join(sorted(calendars))}")
    try:
        parsed = parse_duration(str(duration))
    except DurationError:
        import difflib

        close = difflib.get_close_matches(str(duration).strip(), list(timescales or {}), n=1)
        if close:
            raise DurationError(f"'{duration}' is neither a duration nor a timescale of the rules; "
                                f"did you mean the timescale '{close[0]}'?") from None
        raise
    try:
        due = parsed.apply(anchor, calendars[calendar])
    except OverflowError:
        raise DurationError(f"{parsed.text} after {anchor.isoformat()} is past the last date qaflow can handle") from None
    return {
        "due": due.date.isoformat(),
        "due_at": due.due_at.isoformat(),
        "from": anchor.isoformat(),
        "duration": parsed.text,
        "calendar": calendar,
        "explanation": due.explanation(),
    }


# --------------------------------------------------------------------------- text


def report_lines(report: Mapping[str, Any]) -> list[str]:
    """An instance report (from :func:`explain_instance`) as indented text lines."""
    head = f"{report['instance']} ({report['workflow']}, version {report['version']}), now in state '{report['state']}'"
    if report.get("terminal"):
        head += " (finished)"
    lines = [head]
    if report.get("parent"):
        lines.append(f"  started by {report['parent']}")
    if report.get("children"):
        lines.append(f"  started {', '.join(report['children'])}")
    for number, event in enumerate(report.get("events") or (), start=1):
        lines.append(f"  {number}. {event['text']}")
    if report.get("deadlines"):
        lines.append("  How the deadlines were worked out:")
        for d in report["deadlines"]:
            about = [d["title"]] if d.get("title") else []
            if d.get("timescale"):
                about.append(f"timescale '{d['timescale']}' in the rules")
            title = f" ({'; '.join(about)})" if about else ""
            late = ", late" if d.get("late") else ""
            lines.append(f"    {d['name']}{title}: {d['status']}{late}, due {_date(d['due'])}")
            lines.extend(f"      {line}" for line in d.get("explanation") or ())
    return lines
