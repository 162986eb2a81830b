"""Compiled, immutable definitions: workflows, states, triggers, transitions, deadlines, actions, rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .problems import Location

if TYPE_CHECKING:  # pragma: no cover
    from .calendar import Calendar, Duration
    from .expressions import Expression, Template

EMPTY: Mapping[Any, Any] = MappingProxyType({})
#: The name a ``start`` with ``for_each`` gives each item of its list, in the child's ``data`` expressions.
ITEM_NAME = "item"

# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Action:
    """Base of every action; ``condition`` (YAML ``if:``) limits when it runs."""

    location: Location
    condition: Expression | None

    kind = "action"


@dataclass(frozen=True, slots=True)
class SetData(Action):
    assignments: tuple[tuple[tuple[str, ...], Expression], ...]
    kind = "set"


@dataclass(frozen=True, slots=True)
class Evaluate(Action):
    rule: str
    inputs: tuple[tuple[str, Expression], ...]
    into: tuple[str, ...]
    kind = "evaluate"


@dataclass(frozen=True, slots=True)
class Alert(Action):
    name: str
    roles: tuple[str, ...]
    people: tuple[Expression, ...]
    message: Template
    severity: str
    kind = "alert"


@dataclass(frozen=True, slots=True)
class StartChild(Action):
    workflow: str
    data: tuple[tuple[str, Expression], ...]
    # ``for_each``: one child per item of this list, the item named ``item`` in ``data``; None: one child
    for_each: Expression | None = None
    kind = "start"


@dataclass(frozen=True, slots=True)
class SignalParent(Action):
    trigger: str
    payload: tuple[tuple[str, Expression], ...]
    kind = "signal_parent"


@dataclass(frozen=True, slots=True)
class DeadlineAction(Action):
    """start / satisfy / cancel / extend / pause / resume a named deadline."""

    op: str
    deadline: str
    anchor: Expression | None = None  # start: overrides the deadline's own anchor
    to: Duration | None = None  # extend: new total from the original anchor
    by: Duration | None = None  # extend: extra time after the current due date
    reason: Expression | None = None  # extend, pause

    @property
    def kind(self) -> str:  # type: ignore[override]
        return f"{self.op}_deadline"


# --------------------------------------------------------------------------- workflow parts


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str = "any"
    required: bool = False
    description: str = ""
    enum: tuple[Any, ...] | None = None
    default: Any = None
    owned: bool = False  # set only by the workflow's own actions: a caller's start data may not give it


@dataclass(frozen=True, slots=True)
class RoleDef:
    name: str
    from_data: str | None = None  # bound role: whoever data[from_data] names
    description: str = ""


@dataclass(frozen=True, slots=True)
class StateDef:
    name: str
    initial: bool = False
    terminal: bool = False
    title: str = ""
    description: str = ""
    on_enter: tuple[Action, ...] = ()
    on_exit: tuple[Action, ...] = ()
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class TriggerDef:
    name: str
    roles: frozenset[str]
    title: str = ""
    description: str = ""
    payload_schema: Mapping[str, Any] | None = None
    validator: Any = None  # a prebuilt jsonschema validator, or None
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class TransitionDef:
    index: int  # position in the YAML list: the order guards are tried
    event: str  # "trigger" | "auto" | "breach"
    name: str  # trigger name, deadline name (breach) or "" (auto)
    sources: tuple[str, ...]
    dest: str | None  # None: stay in the same state
    guard: Expression | None
    actions: tuple[Action, ...]
    title: str = ""
    location: Location | None = None
    because: str = ""  # shown when the trigger is refused because the guard did not hold

    @property
    def event_key(self) -> str:
        """The event name the state machine knows this transition by."""
        return event_key(self.event, self.name)


def event_key(event: str, name: str) -> str:
    if event == "trigger":
        return name
    if event == "auto":
        return "(auto)"
    return f"(breach) {name}"


@dataclass(frozen=True, slots=True)
class Timescale:
    """A named duration in the rules (``timescales:``), shared by the deadlines that name it."""

    name: str
    duration: Duration
    source: str = ""
    description: str = ""
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """A named list of terms in the rules (``vocabularies:``), e.g. the audit themes. A payload schema or a
    data field that says ``vocabulary: NAME`` accepts exactly its keys (an ``enum`` made when it is compiled)."""

    name: str
    terms: tuple[tuple[str, str], ...]  # (key, label) in the order written
    location: Location | None = None
    descriptions: Mapping[str, str] = field(default_factory=lambda: EMPTY)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.terms)

    def label(self, key: Any) -> str | None:
        for k, label in self.terms:
            if k == key:
                return label
        return None


@dataclass(frozen=True, slots=True)
class DeadlineDef:
    name: str
    duration: Duration
    anchor: Expression | None
    calendar: str
    title: str = ""
    description: str = ""
    source: str = ""
    on_breach: tuple[Action, ...] = ()
    location: Location | None = None
    timescale: str = ""  # the rules' timescale it takes its duration from, if any
    reminders: tuple[ReminderDef, ...] = ()  # alerts before the due date (or after the start), not breaches


@dataclass(frozen=True, slots=True)
class ReminderDef:
    """A reminder on a deadline: an alert sent by ``advance`` at a time worked out from the clock,
    while the clock is open. It changes nothing else: the deadline is not breached by it."""

    name: str
    alert: Alert
    before: Duration | None = None  # before the due date: days, weeks or working days
    after: Duration | None = None  # after the anchor (the day the clock started from)
    location: Location | None = None


@dataclass(frozen=True)
class WorkflowDef:
    """One workflow definition at one version, ready to run."""

    id: str
    version: int
    title: str
    description: str
    file: str
    calendar: str
    fields: Mapping[str, FieldDef]
    roles: Mapping[str, RoleDef]
    states: Mapping[str, StateDef]
    initial: str
    triggers: Mapping[str, TriggerDef]
    transitions: tuple[TransitionDef, ...]
    deadlines: Mapping[str, DeadlineDef]
    # (event key, state) -> transitions in YAML order; derived at compile time
    by_event: Mapping[tuple[str, str], tuple[TransitionDef, ...]] = field(default_factory=lambda: EMPTY)
    machine: Any = field(default=None, repr=False, compare=False)
    source: str = field(default="", repr=False, compare=False)  # the YAML text it was compiled from
    # a fingerprint of what the YAML says (not its comments or layout): catches a changed
    # definition whose version was not raised
    digest: str = field(default="", compare=False)
    # who may start it (`start: roles:`, roles the host asserts); None: anyone (a warning in validate).
    # The engine's own starts (children, schedules checked when they were made) are not limited by it.
    start_roles: frozenset[str] | None = None

    @cached_property
    def terminals(self) -> frozenset[str]:
        return frozenset(n for n, s in self.states.items() if s.terminal)

    @cached_property
    def alert_addresses(self) -> dict[int, tuple[Any, tuple[tuple[str, str | None], ...]]]:
        """Filled as alerts are sent (engine/runtime/actions.py): id of an alert action -> (it, whom it addresses)."""
        return {}

    @cached_property
    def bound_roles(self) -> Mapping[str, str]:
        """Bound role -> the data field naming its holder."""
        return MappingProxyType({n: r.from_data for n, r in self.roles.items() if r.from_data})


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class ScaleLevel:
    key: str
    label: str
    rank: int


@dataclass(frozen=True)
class Scale:
    """An ordered grading scale (e.g. Outstanding > Good > Requires improvement > Inadequate)."""

    name: str
    levels: tuple[ScaleLevel, ...]
    location: Location | None = None

    @cached_property
    def _ranks(self) -> dict[Any, int]:
        return {level.key: level.rank for level in reversed(self.levels)}  # the first of a repeated key wins, as in a scan

    def rank(self, key: Any) -> int | None:
        try:
            return self._ranks.get(key)
        except TypeError:  # a list or a mapping is no level
            return None

    def label(self, key: Any) -> str | None:
        for level in self.levels:
            if level.key == key:
                return level.label
        return None


@dataclass(frozen=True, slots=True)
class TableInput:
    name: str
    values: tuple[Any, ...] | None  # enumerated values (for overlap/gap checks), or None


@dataclass(frozen=True, slots=True)
class TableRow:
    cells: Mapping[str, Any]  # input -> literal | tuple of literals (any of) | ANY
    outputs: Mapping[str, Any]
    location: Location | None = None


ANY = "-"


@dataclass(frozen=True)
class DecisionTable:
    """A decision table with a declared hit policy: first, unique, any or collect."""

    name: str
    hit_policy: str
    inputs: tuple[TableInput, ...]
    outputs: tuple[str, ...]
    rows: tuple[TableRow, ...]
    default: Mapping[str, Any] | None = None
    location: Location | None = None


@dataclass(frozen=True)
class Definitions:
    """Everything loaded from one configuration directory."""

    root: str
    workflows: Mapping[str, WorkflowDef]
    calendars: Mapping[str, Calendar]
    scales: Mapping[str, Scale]
    tables: Mapping[str, DecisionTable]
    alert_groups: Mapping[str, tuple[str, ...]]
    extra: Mapping[str, Any]  # rule sections the engine carries but does not interpret
    documents: Mapping[str, Any] = field(default_factory=lambda: EMPTY, repr=False, compare=False)
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=lambda: EMPTY, repr=False, compare=False)
    timescales: Mapping[str, Timescale] = field(default_factory=lambda: EMPTY)  # the rules' shared durations
    vocabularies: Mapping[str, Vocabulary] = field(default_factory=lambda: EMPTY)  # the rules' named term lists

    def workflow(self, name: str) -> WorkflowDef:
        from .errors import UsageError

        try:
            return self.workflows[name]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, self.workflows, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(
                f"unknown workflow '{name}'{hint} (known: {', '.join(sorted(self.workflows)) or 'none'})"
            ) from None
