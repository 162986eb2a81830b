"""The store interface: what the engine needs from any persistence (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..calendar import LONDON
from ..runtime.instance import Instance


@dataclass(frozen=True, slots=True, order=True)
class DueItem:
    """Something the clock will fire: a deadline breach or a scheduled start."""

    at: dt.datetime
    kind: str  # "breach" | "start"
    key: str  # instance id (breach) or schedule id (start)
    name: str  # deadline name (breach) or workflow (start)


@dataclass(frozen=True, slots=True)
class RequestCall:
    """What a request id was first used for: a retry must be this call again."""

    operation: str  # "start" | "fire"
    target: str  # the workflow started, or the instance fired on
    trigger: str | None  # the trigger fired; None for a start
    actor: str | None
    digest: str  # sha256 of the start data or the payload as canonical JSON


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A request id as a store keeps it: the call, and the instance as that call committed it."""

    request_id: str
    call: RequestCall | None  # None: recorded before request ids were bound to their call (schema 1)
    instance_id: str
    state: str  # the instance's state when the call committed
    snapshot: Instance | None  # the instance as the call left it; None in records from schema 1


#: Deadline statuses a due-date filter and a worklist look at: running, or breached and still awaited.
#: A paused clock is left out: its due date is worked out again when it resumes.
AWAITED_STATUSES = ("open", "breached")


@dataclass(frozen=True, slots=True)
class Reach:
    """Where a caller may fire anything in one version of a workflow, so that a worklist reads only those instances.

    An instance of ``workflow`` at ``version`` can offer the caller a trigger only in one of ``states``
    (a role the caller asserts has a trigger there), or in one of ``bound_states`` when one of
    ``fields`` names the caller (the field is their id, or a list holding it): a bound role has a
    trigger there. The engine works it out from the definition; a store only applies it.
    """

    workflow: str
    version: int
    states: tuple[str, ...]
    bound_states: tuple[str, ...]
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InstanceQuery:
    """What ``Store.query`` selects: every filter given must hold; at most ``limit`` instances after ``after``, by id.

    ``where`` holds ``(field, values)`` pairs, checked by the engine (``engine.runtime.query``): the
    top-level data field equals one of ``values``, JSON scalars compared as JSON compares them (a
    number equals a number of the same value, ``True`` is not ``1``, text is compared exactly) and
    ``None`` matching a field that is null or not set. ``due_before`` keeps instances with a deadline
    in ``AWAITED_STATUSES`` that falls due at or before it. ``reach`` (for worklists) keeps, of the
    instances of each ``Reach``'s workflow version, only those that reach lets ``person`` act on.
    """

    workflow: str | None = None
    state: str | None = None
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    due_before: dt.datetime | None = None
    after: str | None = None  # an instance id: only ids sorting after it (code point order)
    limit: int = 50
    reach: tuple[Reach, ...] = ()
    person: str | None = None  # whom reach's fields must name


def lease_dict(worker: str, at: str | None, until: float | dt.datetime, claims: int) -> dict[str, Any]:
    """A claimed alert's ``lease``; ``until`` (Unix time or a datetime, by the store's clock) in ISO 8601, London."""
    if not isinstance(until, dt.datetime):
        until = dt.datetime.fromtimestamp(until, dt.UTC)
    return {"worker": worker, "at": at, "until": until.astimezone(LONDON).isoformat(), "claims": claims}


@dataclass(frozen=True, slots=True)
class KpiValue:
    """One KPI figure for one period at one level, as imported (``qaflow kpi import``) and kept by a store.

    The key is (kpi, level, level_id, period_from, period_to): a value for the same KPI, level and days
    replaces the one stored. ``period`` is the period's code as engine.periods writes it (``2026-10``,
    ``FY2026/27-Q3``, ``CY2026-Q3``, ``FY2026/27``, ``2026-10-01..2026-10-15``). ``level_id`` is "" at
    department level. Benchmarks (``england``, ``statistical_neighbours``, ``region``) are in the
    KPI's unit; ``benchmark_period`` says which period they describe when it is not the value's own.
    """

    kpi: str
    period: str
    period_from: dt.date
    period_to: dt.date
    level: str = "department"
    level_id: str = ""
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    england: float | None = None
    statistical_neighbours: float | None = None
    region: float | None = None
    benchmark_period: str = ""
    source: str = ""
    note: str = ""
    imported_at: str = ""  # ISO 8601, Europe/London
    imported_from: str = ""  # the file, or what the host named

    #: the columns a store keeps, in this order (the key first)
    FIELDS = ("kpi", "level", "level_id", "period_from", "period_to", "period", "value", "numerator", "denominator", "england",
              "statistical_neighbours", "region", "benchmark_period", "source", "note", "imported_at", "imported_from")

    @property
    def key(self) -> tuple[str, str, str, dt.date, dt.date]:
        return (self.kpi, self.level, self.level_id, self.period_from, self.period_to)

    def row(self) -> tuple[Any, ...]:
        """The value as a store's row, in FIELDS order (dates as ISO text)."""
        return tuple(v.isoformat() if isinstance(v, dt.date) else v for v in (getattr(self, f) for f in self.FIELDS))

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> KpiValue:
        """A row in FIELDS order back as a KpiValue (whole numbers of counts as int)."""
        data = dict(zip(cls.FIELDS, row, strict=True))
        for name in ("period_from", "period_to"):
            if not isinstance(data[name], dt.date):
                data[name] = dt.date.fromisoformat(data[name])
        for name in ("numerator", "denominator"):
            number = data[name]
            if isinstance(number, float) and number.is_integer():
                data[name] = int(number)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, dates as ISO text."""
        return dict(zip(self.FIELDS, self.row(), strict=True))


def kpi_value_matches(v: KpiValue, kpi: str | None, level: str | None, level_id: str | None,
                      start: dt.date | None, end: dt.date | None) -> bool:
    """The filter of ``kpi_values``: every filter given holds; a period overlapping start..end."""
    return ((kpi is None or v.kpi == kpi) and (level is None or v.level == level) and (level_id is None or v.level_id == level_id)
            and (start is None or v.period_to >= start) and (end is None or v.period_from <= end))


class KpiStore(Protocol):
    """What a store offers for imported KPI values (every bundled store does; ``engine.kpis`` uses it)."""

    def put_kpi_values(self, values: Sequence[KpiValue]) -> list[KpiValue]:
        """Store every value in one transaction, replacing any stored with the same key; return those replaced."""

    def kpi_values(self, kpi: str | None = None, *, level: str | None = None, level_id: str | None = None,
                   start: dt.date | None = None, end: dt.date | None = None) -> list[KpiValue]:
        """Stored values matching every filter given (a period overlapping start..end), in key order."""


@dataclass(slots=True)
class Changes:
    """Everything one accepted call changes, written by the store in one transaction."""

    instances: dict[str, Instance] = field(default_factory=dict)  # id -> new snapshot
    base_revs: dict[str, int] = field(default_factory=dict)  # id -> rev read (absent: new instance)
    history: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    schedules_added: list[dict[str, Any]] = field(default_factory=list)
    schedules_done: list[str] = field(default_factory=list)
    # (request id, the call, the instance whose committed snapshot is the call's result)
    request: tuple[str, RequestCall, str] | None = None
    definitions: list[dict[str, Any]] = field(default_factory=list)  # {workflow, version, digest, source} first used
    # due items ``advance`` could not fire, set aside: {kind, key, name, at, error, held_at}; next_due skips them
    held: list[dict[str, Any]] = field(default_factory=list)


class Store(Protocol):
    """Persistence for instances, their append-only history, deadlines, schedules and the outbox.

    An Engine shared by threads calls its store from all of them: the bundled stores allow that (a
    connection per thread in the SQL stores, one commit at a time in the memory store). A commit
    that carries a request id refuses, with ConcurrencyConflict, an id that is already recorded, and
    records the instance it names as it commits it.
    """

    def load(self, instance_id: str) -> Instance | None:
        """The committed snapshot, or None. Callers must not mutate it."""

    def commit(self, changes: Changes) -> None:
        """Write every change atomically; raise ConcurrencyConflict if an instance moved on."""

    def next_id(self, prefix: str) -> str:
        """A new, never reused identifier such as ``case_audit-000042``."""

    def next_due(self, until: dt.datetime) -> DueItem | None:
        """The earliest breach or scheduled start due at or before ``until``."""

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's history, oldest first."""

    def find(self, workflow: str | None = None, state: str | None = None) -> Iterable[Instance]:
        """Committed instances, optionally filtered, in id order."""

    def query(self, query: InstanceQuery) -> list[Instance]:
        """Up to ``query.limit`` committed instances that match ``query``, with ids after ``query.after``, in id order."""

    def outbox(self, include_acknowledged: bool = False) -> list[dict[str, Any]]:
        """Alerts, oldest first."""

    def claim_alerts(self, worker: str, limit: int, lease_seconds: float, at: str | None) -> list[dict[str, Any]]:
        """Lease up to ``limit`` alerts to ``worker``: unacknowledged, under no live lease, oldest first.

        Each lease runs ``lease_seconds`` by the store's own clock; while it runs, no other claim gets the
        alert. Each alert comes with ``lease``: {worker, at (the engine's time of the claim, ``at``),
        until (when the lease ends, ISO 8601), claims (how many times the alert has been claimed)}.
        """

    def acknowledge(self, alert_id: str, at: dt.datetime, worker: str | None = None) -> bool:
        """Mark an alert delivered (by ``worker``, if named); False if there is no such alert.

        The first acknowledgement is kept; another one changes nothing.
        """

    def request(self, request_id: str) -> RequestRecord | None:
        """What a call made with this request id was, and what it committed; None if no call used it."""

    def schedule(self, schedule_id: str) -> dict[str, Any] | None:
        """A pending scheduled start."""

    def definition(self, workflow: str, version: int) -> dict[str, Any] | None:
        """The workflow definition an instance started on: {workflow, version, digest, source}."""

    def schedules(self) -> list[dict[str, Any]]:
        """Pending scheduled starts, soonest first."""

    def held(self) -> list[dict[str, Any]]:
        """Due items set aside by ``advance``, oldest due first: {kind, key, name, at, error, held_at}."""

    def release(self, kind: str, key: str, name: str) -> bool:
        """Put a set-aside item back, to be fired by the next ``advance``; False if none was held."""
