"""Compile schema-checked workflow documents into frozen WorkflowDefs, yielding every problem found."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal, overload

from ..calendar import Duration
from ..definitions import (
    ITEM_NAME,
    Action,
    Alert,
    DeadlineAction,
    DeadlineDef,
    Evaluate,
    FieldDef,
    ReminderDef,
    RoleDef,
    SetData,
    SignalParent,
    StartChild,
    StateDef,
    Timescale,
    TransitionDef,
    TriggerDef,
    Vocabulary,
    WorkflowDef,
)
from ..errors import DurationError, ExpressionError
from ..expressions import Expression, Template, compile_expression, compile_template
from ..patterns import iter_pattern_problems, payload_validator
from ..problems import Problem
from .yamlsource import Document

#: Names every condition may read; the runtime supplies them.
EXPRESSION_NAMES = frozenset(
    {"data", "payload", "now", "today", "actor", "roles", "state", "deadlines", "parent", "instance_id"}
)
SYSTEM_ROLE = "system"
#: What a reminder's ``before:`` may count back in.
REMINDER_BEFORE = ("days", "weeks", "working_days")
#: A deadline's ``roll:``: where a due date that is not a working day moves.
ROLL_VALUES = {"next_working_day": "next", "previous_working_day": "previous", "none": ""}
DEFAULT_CALENDAR = "england"


def _value_at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _did_you_mean(name: str, options: Any) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class WorkflowCompiler:
    """Turns one workflow Document into a WorkflowDef; problems accumulate in ``self.problems``."""

    def __init__(self, doc: Document, *, functions: Mapping[str, Callable[..., Any]], known: Known,
                 checked: bool = False) -> None:
        self.doc = doc
        self.functions = functions
        self.known = known
        self.checked = checked
        self.problems: list[Problem] = []
        self.raw: dict[str, Any] = doc.data

    # -- problem helpers ---------------------------------------------------------------
    def error(self, path: tuple, code: str, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(self.doc.location(path, key=key), "error", code, message))

    def warning(self, path: tuple, code: str, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(self.doc.location(path, key=key), "warning", code, message))

    @overload
    def expression(self, path: tuple, *, template: Literal[False] = False,
                   names: frozenset[str] = EXPRESSION_NAMES) -> Expression | None: ...
    @overload
    def expression(self, path: tuple, *, template: Literal[True],
                   names: frozenset[str] = EXPRESSION_NAMES) -> Template | None: ...

    def expression(self, path: tuple, *, template: bool = False,
                   names: frozenset[str] = EXPRESSION_NAMES) -> Expression | Template | None:
        source = _value_at(self.raw, path)
        if not isinstance(source, str):
            source = str(source).lower() if isinstance(source, bool) else repr(source)
        compiled: Expression | Template
        try:
            if template:
                compiled = compile_template(source, names=names, functions=self.functions)
            else:
                compiled = compile_expression(source, names=names, functions=self.functions)
        except ExpressionError as exc:
            loc = self.doc.scalar_location(path, exc.line, exc.column)
            message = exc.message
            if exc.code == "unknown-name" and ITEM_NAME not in names and f"'{ITEM_NAME}'" in message:
                message += f" ('{ITEM_NAME}' is the item of a list in the data of a 'start' with 'for_each')"
            self.problems.append(Problem(loc, "error", f"expression-{exc.code}", message))
            return None
        self._check_references(path, compiled)
        return compiled

    def _check_references(self, path: tuple, compiled: Expression | Template) -> None:
        fields = self.fields
        if not fields:
            return  # the workflow declares no data fields: nothing to check against
        for ref in compiled.references:
            if len(ref.path) >= 2 and ref.path[0] == "data":
                name = ref.path[1]
                if name not in fields:
                    loc = self.doc.scalar_location(path, ref.line, ref.column)
                    self.problems.append(
                        Problem(
                            loc,
                            "error",
                            "unknown-data-field",
                            f"'data.{name}' is not a declared data field{_did_you_mean(name, fields)}",
                        )
                    )

    def duration(self, path: tuple) -> Duration | None:
        text = _value_at(self.raw, path)
        try:
            return Duration.parse(str(text))
        except DurationError as exc:
            self.error(path, "bad-duration", exc.message)
            return None

    # -- the workflow ----------------------------------------------------------------
    def compile(self) -> WorkflowDef | None:
        raw = self.raw
        wid = raw["workflow"]
        self.fields = self._fields()
        self.roles = self._roles()
        self.deadline_names = set(raw.get("deadlines") or {})
        self.trigger_names = set(raw.get("triggers") or {})
        self.state_names = list(raw.get("states") or {})
        states = self._states()
        triggers = self._triggers()
        deadlines = self._deadlines()
        transitions = self._transitions()
        initials = [s.name for s in states.values() if s.initial]
        if len(initials) != 1:
            where = ("states", initials[1]) if len(initials) > 1 else ("states",)
            self.error(
                where,
                "initial-state",
                "a workflow needs exactly one initial state (mark it 'initial: true'); found "
                + (", ".join(initials) if initials else "none"),
                key=len(initials) > 1,
            )
        if not any(s.terminal for s in states.values()):
            self.warning(("states",), "no-terminal-state", "no state is marked 'terminal: true'")
        if any(p.severity == "error" for p in self.problems):
            return None
        by_event: dict[tuple[str, str], list[TransitionDef]] = {}
        for t in transitions:
            for source in t.sources:
                by_event.setdefault((t.event_key, source), []).append(t)
        return WorkflowDef(
            id=wid,
            version=raw["version"],
            title=raw.get("title", wid.replace("_", " ").capitalize()),
            description=raw.get("description", ""),
            file=self.doc.file,
            calendar=raw.get("calendar", DEFAULT_CALENDAR),
            fields=MappingProxyType(self.fields),
            roles=MappingProxyType(self.roles),
            states=MappingProxyType(states),
            initial=initials[0],
            triggers=MappingProxyType(triggers),
            transitions=tuple(transitions),
            deadlines=MappingProxyType(deadlines),
            by_event=MappingProxyType({k: tuple(v) for k, v in by_event.items()}),
            source=self.doc.source,
            start_roles=self._start_roles(),
            digest=hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16],
        )

    def vocabulary(self, path: tuple, name: Any, *, beside_enum: bool) -> tuple[str, ...] | None:
        """The keys of the rules' vocabulary ``name`` (at ``path``), or None with an error."""
        if beside_enum:
            self.error(path, "vocabulary-and-enum", "give 'vocabulary:' or 'enum:', not both (the vocabulary is the enum)", key=True)
            return None
        found = self.known.vocabularies.get(name) if isinstance(name, str) else None
        if found is None:
            known = sorted(self.known.vocabularies)
            self.error(path, "unknown-vocabulary",
                       f"unknown vocabulary {name!r}{_did_you_mean(str(name), known)}"
                       + (f" (the rules define: {', '.join(known)})" if known else " (the rules define no vocabularies)"))
            return None
        return found.keys

    def _expand_vocabularies(self, schema: Any, path: tuple) -> Any:
        """A payload schema with each ``{vocabulary: NAME}`` made ``{enum: [its keys]}``, walking only the
        places JSON Schema (draft-07) keeps schemas, so a property that is itself named 'vocabulary' is left alone."""
        if not isinstance(schema, Mapping):
            return schema
        out = dict(schema)
        if isinstance(out.get("vocabulary"), str):
            name = out.pop("vocabulary")
            keys = self.vocabulary(path + ("vocabulary",), name, beside_enum="enum" in out)
            if keys is not None:
                out["enum"] = list(keys)
        for key in ("properties", "patternProperties", "definitions", "dependencies"):
            if isinstance(out.get(key), Mapping):
                out[key] = {k: self._expand_vocabularies(v, path + (key, k)) for k, v in out[key].items()}
        for key in ("additionalProperties", "additionalItems", "contains", "propertyNames", "if", "then", "else", "not"):
            if isinstance(out.get(key), Mapping):
                out[key] = self._expand_vocabularies(out[key], path + (key,))
        for key in ("items", "allOf", "anyOf", "oneOf"):
            value = out.get(key)
            if isinstance(value, Mapping):
                out[key] = self._expand_vocabularies(value, path + (key,))
            elif isinstance(value, list):
                out[key] = [self._expand_vocabularies(v, path + (key, i)) for i, v in enumerate(value)]
        return out

    def _fields(self) -> dict[str, FieldDef]:
        out = {}
        for name, given in (self.raw.get("data") or {}).items():
            spec = given or {}
            enum = spec.get("enum")
            if "vocabulary" in spec:
                keys = self.vocabulary(("data", name, "vocabulary"), spec["vocabulary"], beside_enum=enum is not None)
                enum = list(keys) if keys is not None else None
            out[name] = FieldDef(
                name=name,
                type=spec.get("type", "any"),
                required=bool(spec.get("required", False)),
                description=spec.get("description", ""),
                enum=tuple(enum) if enum is not None else None,
                default=spec.get("default"),
                owned=bool(spec.get("owned", False)),
            )
            if out[name].owned and out[name].required:
                self.error(
                    ("data", name, "owned"),
                    "owned-required",
                    f"field '{name}' is owned by the workflow, so start data may not give it, yet it is required at the start",
                )
        return out

    def _start_roles(self) -> frozenset[str] | None:
        spec = self.raw.get("start")
        if spec is None:
            self.warning(
                ("workflow",),
                "open-start",
                f"workflow '{self.raw['workflow']}' does not say who may start it, so anyone may: "
                "add 'start: {roles: [...]}' ([system] if only the engine starts it)",
            )
            return None
        roles = spec.get("roles") or []
        for i, role in enumerate(roles):
            if role != SYSTEM_ROLE and role not in self.roles:
                self.error(
                    ("start", "roles", i),
                    "unknown-role",
                    f"start names role '{role}', which is not in this workflow's roles"
                    + _did_you_mean(role, list(self.roles) + [SYSTEM_ROLE]),
                )
            elif role in self.roles and self.roles[role].from_data:
                self.error(
                    ("start", "roles", i),
                    "bound-start-role",
                    f"role '{role}' is bound to data.{self.roles[role].from_data}, which the starter fills in "
                    "themselves, so it would let anyone start: name a role the host asserts",
                )
        return frozenset(roles)

    def _roles(self) -> dict[str, RoleDef]:
        out = {}
        for name, given in (self.raw.get("roles") or {}).items():
            spec = given or {}
            if name == SYSTEM_ROLE:
                self.error(
                    ("roles", name),
                    "reserved-role",
                    f"the role '{SYSTEM_ROLE}' is reserved for the engine itself; name the role another way",
                    key=True,
                )
                continue
            bound = spec.get("from_data")
            if bound and self.fields and bound not in self.fields:
                self.error(
                    ("roles", name, "from_data"),
                    "unknown-data-field",
                    f"role '{name}' is bound to data field '{bound}', which is not declared"
                    + _did_you_mean(bound, self.fields),
                )
            out[name] = RoleDef(name=name, from_data=bound, description=spec.get("description", ""))
        return out

    def _states(self) -> dict[str, StateDef]:
        out = {}
        for name, given in (self.raw.get("states") or {}).items():
            spec = given or {}
            base = ("states", name)
            out[name] = StateDef(
                name=name,
                initial=bool(spec.get("initial", False)),
                terminal=bool(spec.get("terminal", False)),
                title=spec.get("title", ""),
                description=spec.get("description", ""),
                on_enter=self._actions(base + ("on_enter",), spec.get("on_enter")),
                on_exit=self._actions(base + ("on_exit",), spec.get("on_exit")),
                location=self.doc.location(base, key=True),
            )
        return out

    def _triggers(self) -> dict[str, TriggerDef]:
        out = {}
        for name, given in (self.raw.get("triggers") or {}).items():
            spec = given or {}
            base = ("triggers", name)
            roles = spec.get("roles") or []
            for i, role in enumerate(roles):
                if role != SYSTEM_ROLE and role not in self.roles:
                    self.error(
                        base + ("roles", i),
                        "unknown-role",
                        f"trigger '{name}' names role '{role}', which is not in this workflow's roles"
                        + _did_you_mean(role, list(self.roles) + [SYSTEM_ROLE]),
                    )
            if not roles:
                self.warning(base, "no-roles", f"trigger '{name}' lists no roles, so nobody may fire it", key=True)
            schema = spec.get("payload")
            if schema is not None:
                schema = self._expand_vocabularies(schema, base + ("payload",))
            validator = None
            if schema is not None and self.checked:
                validator = payload_validator(schema)  # checked before: skip the meta-schema and RE2 (and their imports)
            elif schema is not None:
                from .schemacheck import draft7_error

                exc: Any = draft7_error(schema)  # a jsonschema.SchemaError
                if exc is not None:
                    path = base + ("payload",) + tuple(exc.path)
                    self.error(path, "bad-payload-schema", f"the payload schema is not valid JSON Schema: {exc.message}")
                else:
                    validator = payload_validator(schema)
                    for where, is_key, severity, code, message in iter_pattern_problems(schema):
                        location = self.doc.location(base + ("payload",) + where, key=is_key)
                        self.problems.append(Problem(location, severity, code, message))
            out[name] = TriggerDef(
                name=name,
                roles=frozenset(roles),
                title=spec.get("title", ""),
                description=spec.get("description", ""),
                payload_schema=schema,
                validator=validator,
                location=self.doc.location(base, key=True),
            )
        return out

    def _deadlines(self) -> dict[str, DeadlineDef]:
        out = {}
        for name, spec in (self.raw.get("deadlines") or {}).items():
            base = ("deadlines", name)
            duration, source, timescale = self._deadline_duration(base, spec)
            if duration is not None and "roll" in spec:
                duration = duration.with_roll(ROLL_VALUES[spec["roll"]])  # the schema allows only these
            anchor = self.expression(base + ("from",)) if "from" in spec else None
            calendar = spec.get("calendar", self.raw.get("calendar", DEFAULT_CALENDAR))
            if calendar not in self.known.calendars:
                self.error(
                    base + ("calendar",) if "calendar" in spec else ("calendar",),
                    "unknown-calendar",
                    f"unknown calendar '{calendar}'{_did_you_mean(calendar, self.known.calendars)}",
                )
            on_breach = self._actions(base + ("on_breach",), spec.get("on_breach"))
            reminders = self._reminders(base, name, spec.get("remind"))
            if duration is not None:
                out[name] = DeadlineDef(
                    name=name,
                    duration=duration,
                    anchor=anchor,
                    calendar=calendar,
                    title=spec.get("title", ""),
                    description=spec.get("description", ""),
                    source=source,
                    on_breach=on_breach,
                    location=self.doc.location(base, key=True),
                    timescale=timescale,
                    reminders=reminders,
                )
        return out

    def _deadline_duration(self, base: tuple, spec: Mapping[str, Any]) -> tuple[Duration | None, str, str]:
        """(duration, source, timescale name) from ``due:`` or from a named ``timescale:`` in the rules."""
        source = spec.get("source", "")
        if "timescale" not in spec:
            if "due" not in spec:
                self.error(base, "missing-due", "a deadline needs 'due:' (a duration) or 'timescale:' (a name from the rules' timescales)")
                return None, source, ""
            return self.duration(base + ("due",)), source, ""
        name = spec["timescale"]
        if "due" in spec:
            self.error(base + ("due",), "due-and-timescale",
                       f"give 'due:' or 'timescale:', not both (timescale '{name}' already says how long)", key=True)
            return None, source, ""
        timescale = self.known.timescales.get(name)
        if timescale is None:
            known = sorted(self.known.timescales)
            self.error(base + ("timescale",), "unknown-timescale",
                       f"unknown timescale '{name}'{_did_you_mean(name, known)}"
                       + (f" (the rules define: {', '.join(known)})" if known else " (the rules define no timescales)"))
            return None, source, ""
        return timescale.duration, source or timescale.source, name

    def _state_ref(self, path: tuple, name: str) -> bool:
        if name in self.state_names:
            return True
        self.error(path, "unknown-state", f"unknown state '{name}'{_did_you_mean(name, self.state_names)}")
        return False

    def _transitions(self) -> list[TransitionDef]:
        out = []
        for i, spec in enumerate(self.raw.get("transitions") or []):
            base = ("transitions", i)
            if "trigger" in spec:
                event, name = "trigger", spec["trigger"]
                if name not in self.trigger_names:
                    self.error(
                        base + ("trigger",),
                        "unknown-trigger",
                        f"unknown trigger '{name}' (declare it under 'triggers:')"
                        + _did_you_mean(name, self.trigger_names),
                    )
            elif "breach" in spec:
                event, name = "breach", spec["breach"]
                if name not in self.deadline_names:
                    self.error(
                        base + ("breach",),
                        "unknown-deadline",
                        f"unknown deadline '{name}'{_did_you_mean(name, self.deadline_names)}",
                    )
            else:
                event, name = "auto", ""
                if "when" not in spec:
                    self.error(base, "auto-without-condition", "an automatic transition needs a 'when' condition")
            raw_from = spec["from"]
            if raw_from == "*":
                sources = tuple(s for s in self.state_names if not (self.raw["states"][s] or {}).get("terminal"))
            else:
                listed = [raw_from] if isinstance(raw_from, str) else list(raw_from)
                sources = tuple(
                    s
                    for j, s in enumerate(listed)
                    if self._state_ref(base + ("from",) + (() if isinstance(raw_from, str) else (j,)), s)
                )
            dest = spec.get("to")
            if dest is not None:
                self._state_ref(base + ("to",), dest)
            guard = self.expression(base + ("when",)) if "when" in spec else None
            out.append(
                TransitionDef(
                    index=i,
                    event=event,
                    name=name,
                    sources=sources,
                    dest=dest,
                    guard=guard,
                    actions=self._actions(base + ("actions",), spec.get("actions")),
                    title=spec.get("title", ""),
                    location=self.doc.location(base),
                    because=spec.get("because", ""),
                )
            )
        return out

    # -- actions -----------------------------------------------------------------------
    def _actions(self, path: tuple, raw: Any) -> tuple[Action, ...]:
        out = []
        for i, spec in enumerate(raw or []):
            action = self._action(path + (i,), spec)
            if action is not None:
                out.append(action)
        return tuple(out)

    def _data_path(self, path: tuple, text: str) -> tuple[str, ...]:
        parts = tuple(text.split("."))
        if parts[0] == "data":
            parts = parts[1:]
        if self.fields and parts and parts[0] not in self.fields:
            self.error(
                path,
                "unknown-data-field",
                f"'{parts[0]}' is not a declared data field{_did_you_mean(parts[0], self.fields)}",
                key=True,
            )
        return parts

    def _exprs(self, path: tuple, mapping: Mapping[str, Any] | None,
               names: frozenset[str] = EXPRESSION_NAMES) -> tuple[tuple[str, Expression], ...]:
        out = []
        for key in mapping or {}:
            compiled = self.expression(path + (key,), names=names)
            if compiled is not None:
                out.append((key, compiled))
        return tuple(out)

    def _deadline_ref(self, path: tuple, name: str) -> None:
        if name not in self.deadline_names:
            self.error(path, "unknown-deadline", f"unknown deadline '{name}'{_did_you_mean(name, self.deadline_names)}")

    def _action(self, path: tuple, spec: Mapping[str, Any]) -> Action | None:
        condition = self.expression(path + ("if",)) if "if" in spec else None
        loc = self.doc.location(path)
        kind = next(k for k in spec if k != "if")
        body = spec[kind]
        p = path + (kind,)
        if kind == "set":
            assignments = []
            for key in body:
                target = self._data_path(p + (key,), key)
                value = self.expression(p + (key,))
                if value is not None:
                    assignments.append((target, value))
            return SetData(loc, condition, tuple(assignments))
        if kind == "evaluate":
            if body["rule"] not in self.known.tables:
                self.error(
                    p + ("rule",),
                    "unknown-rule",
                    f"unknown decision table '{body['rule']}'{_did_you_mean(body['rule'], self.known.tables)}",
                )
            return Evaluate(
                loc,
                condition,
                rule=body["rule"],
                inputs=self._exprs(p + ("with",), body.get("with")),
                into=self._data_path(p + ("into",), body["into"]),
            )
        if kind == "alert":
            return self._alert(p, body, loc, condition)
        if kind == "start":
            if body["workflow"] not in self.known.workflows:
                self.error(
                    p + ("workflow",),
                    "unknown-workflow",
                    f"unknown workflow '{body['workflow']}'{_did_you_mean(body['workflow'], self.known.workflows)}",
                )
            for_each = self.expression(p + ("for_each",)) if "for_each" in body else None
            names = EXPRESSION_NAMES | {ITEM_NAME} if "for_each" in body else EXPRESSION_NAMES
            return StartChild(loc, condition, body["workflow"], self._exprs(p + ("data",), body.get("data"), names),
                              for_each=for_each)
        if kind == "signal_parent":
            return SignalParent(loc, condition, body["trigger"], self._exprs(p + ("payload",), body.get("payload")))
        # deadline actions
        op = kind.removesuffix("_deadline")
        if isinstance(body, str):
            name, body = body, {}
            self._deadline_ref(p, name)
        else:
            name = body["deadline"]
            self._deadline_ref(p + ("deadline",), name)
        anchor = self.expression(p + ("from",)) if "from" in body else None
        reason = self.expression(p + ("reason",)) if "reason" in body else None
        to = self.duration(p + ("to",)) if "to" in body else None
        by = self.duration(p + ("by",)) if "by" in body else None
        if op == "extend" and (to is None) == (by is None) and ("to" in body) == ("by" in body):
            self.error(p, "extend-needs-one", "extend_deadline needs exactly one of 'to' or 'by'")
        return DeadlineAction(loc, condition, op=op, deadline=name, anchor=anchor, to=to, by=by, reason=reason)


    def _alert(self, p: tuple, body: Mapping[str, Any], loc: Any, condition: Expression | None, *,
               default_name: str = "alert") -> Alert | None:
        """An alert action, or the alert of a reminder: ``to`` roles or groups, ``people``, ``message``."""
        for j, role in enumerate(body.get("to") or []):
            if role not in self.roles and role not in self.known.alert_groups:
                self.error(
                    p + ("to", j),
                    "unknown-alert-target",
                    f"alert target '{role}' is neither a role of this workflow nor an alert group"
                    + _did_you_mean(role, list(self.roles) + list(self.known.alert_groups)),
                )
        people = tuple(
            e for j in range(len(body.get("people") or [])) if (e := self.expression(p + ("people", j)))
        )
        if not body.get("to") and not people:
            self.error(p, "alert-without-recipients", "an alert needs 'to' (roles) or 'people'")
        message = self.expression(p + ("message",), template=True)
        if message is None:
            return None
        return Alert(
            loc,
            condition,
            name=body.get("name", default_name),
            roles=tuple(body.get("to") or ()),
            people=people,
            message=message,
            severity=body.get("severity", "info"),
        )

    def _reminders(self, base: tuple, deadline: str, raw: Any) -> tuple[ReminderDef, ...]:
        out: list[ReminderDef] = []
        seen: set[str] = set()
        for i, spec in enumerate(raw or []):
            p = base + ("remind", i)
            name = spec.get("name") or (f"{deadline}_reminder" if i == 0 else f"{deadline}_reminder_{i + 1}")
            if name in seen:
                self.error(p + ("name",) if "name" in spec else p, "duplicate-reminder",
                           f"deadline '{deadline}' has two reminders named '{name}': give each its own 'name'")
            seen.add(name)
            before = self.duration(p + ("before",)) if "before" in spec else None
            after = self.duration(p + ("after",)) if "after" in spec else None
            if before is not None and (before.kind not in REMINDER_BEFORE or before.roll):
                self.error(p + ("before",), "bad-reminder-time",
                           f"a reminder counts back from the due date in days, weeks or working days, not '{before.text}'")
                before = None
            alert = self._alert(p, spec, self.doc.location(p), None, default_name=name)
            if alert is not None and (before is not None or after is not None):
                out.append(ReminderDef(name=name, alert=alert, before=before, after=after, location=self.doc.location(p)))
        return tuple(out)


class Known:
    """Names defined elsewhere in the configuration, for cross-file checks."""

    def __init__(self, *, workflows: Any, calendars: Any, tables: Any, alert_groups: Any, scales: Any,
                 timescales: Mapping[str, Timescale] | None = None,
                 vocabularies: Mapping[str, Vocabulary] | None = None) -> None:
        self.workflows = set(workflows)
        self.calendars = set(calendars)
        self.tables = set(tables)
        self.alert_groups = set(alert_groups)
        self.scales = set(scales)
        self.timescales: Mapping[str, Timescale] = timescales or {}
        self.vocabularies: Mapping[str, Vocabulary] = vocabularies or {}


def compile_workflow(
    doc: Document, *, functions: Mapping[str, Callable[..., Any]], known: Known, checked: bool = False
) -> tuple[WorkflowDef | None, list[Problem]]:
    """Compile one workflow document; ``checked``: the document is known to pass every check (a cache
    entry of a clean load says so), so the checks that only find problems in payload schemas are skipped."""
    compiler = WorkflowCompiler(doc, functions=functions, known=known, checked=checked)
    wf = compiler.compile()
    return wf, compiler.problems


def iter_workflow_cross_checks(workflows: Mapping[str, WorkflowDef]) -> Iterator[Problem]:
    """Checks that need every workflow: child starts and parent signals."""
    for wf in workflows.values():
        for action, _location in _all_actions(wf):
            if isinstance(action, SignalParent):
                parents = [
                    p for p in workflows.values() if any(isinstance(a, StartChild) and a.workflow == wf.id for a, _ in _all_actions(p))
                ]
                for parent in parents:
                    trig = parent.triggers.get(action.trigger)
                    if trig is None:
                        yield Problem(
                            action.location,
                            "error",
                            "unknown-trigger",
                            f"signal_parent fires '{action.trigger}', but parent workflow '{parent.id}' has no such trigger"
                            + _did_you_mean(action.trigger, parent.triggers),
                        )
                    elif SYSTEM_ROLE not in trig.roles:
                        yield Problem(
                            action.location,
                            "error",
                            "signal-not-allowed",
                            f"parent workflow '{parent.id}' must list role '{SYSTEM_ROLE}' on trigger "
                            f"'{action.trigger}' for a child to signal it",
                        )


def _all_actions(wf: WorkflowDef) -> Iterator[tuple[Action, Any]]:
    def walk(actions: tuple[Action, ...]) -> Iterator[tuple[Action, Any]]:
        for a in actions:
            yield a, a.location

    for s in wf.states.values():
        yield from walk(s.on_enter)
        yield from walk(s.on_exit)
    for t in wf.transitions:
        yield from walk(t.actions)
    for d in wf.deadlines.values():
        yield from walk(d.on_breach)
