"""What a host asks across instances: pages of instances by workflow, state, data field and due date, and worklists."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..clock import as_time
from ..errors import UsageError
from ..store.base import AWAITED_STATUSES, InstanceQuery, Reach
from .inputs import check_id, check_key, json_problem

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import WorkflowDef
    from .engine import Engine
    from .instance import Instance

T = TypeVar("T")

MAX_LIMIT = 1000  # instances or items on one page
MAX_VALUES = 1000  # values in all the where filters of one query
MAX_CLAIM = 1000  # alerts in one claim
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a top-level data field, safe in a SQLite JSON path
_CURSOR = "i1:"  # what a cursor holds: a version tag, then the instance id to go on after


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results in instance id order.

    ``next`` is the cursor for the page after this one (pass it as ``after=``), or None when nothing
    after this page matches. Iterating a page iterates its items.
    """

    items: tuple[T, ...]
    next: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class WorkItem:
    """An instance on an actor's worklist: what they may fire on it now, and when it is next due.

    ``triggers`` holds (name, title) pairs in the workflow's order; ``deadline`` and ``due`` name the
    instance's earliest deadline still awaited (running, or breached and not yet met), or are None.
    """

    instance_id: str
    workflow: str
    state: str
    triggers: tuple[tuple[str, str], ...]
    deadline: str | None = None
    due: dt.date | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.instance_id,
            "workflow": self.workflow,
            "state": self.state,
            "triggers": [{"name": name, "title": title} for name, title in self.triggers],
            "deadline": self.deadline,
            "due": self.due.isoformat() if self.due is not None else None,
        }


def cursor_after(instance_id: str) -> str:
    """An opaque cursor that resumes after ``instance_id``."""
    return base64.urlsafe_b64encode((_CURSOR + instance_id).encode("utf-8")).decode("ascii").rstrip("=")


def _position(cursor: Any) -> str:
    """The instance id a cursor resumes after; UsageError for anything that is not a cursor a page gave."""
    wrong = UsageError(f"{cursor!r} is not a cursor: pass the 'next' of a page as it was given")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 1000:
        raise wrong
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise wrong from None
    if not text.startswith(_CURSOR):
        raise wrong
    try:
        return check_key(text[len(_CURSOR):], "the cursor's instance id")
    except UsageError:
        raise wrong from None


def _where(where: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """``where`` checked: {field: value or list of values}, JSON scalars only, as (field, values) pairs by field."""
    if where is None:
        return ()
    if not isinstance(where, Mapping):
        raise UsageError(f"where must be a mapping of data fields to values, not {type(where).__name__}")
    pairs = []
    count = 0
    for name, wanted in where.items():
        if not isinstance(name, str) or not _FIELD.match(name):
            raise UsageError(f"where: {name!r} is not a data field name (letters, digits and _, not starting with a digit)")
        values = tuple(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else (wanted,)
        for value in values:
            if value is not None and not isinstance(value, (str, int, float)):
                raise UsageError(f"where: {name} can be compared with text, numbers, true/false or None, not {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"where: {name} cannot be compared with {value!r}")
            problem = json_problem(value, f"where: the value for {name}")
            if problem:
                raise UsageError(problem)
        count += len(values)
        pairs.append((name, values))
    if count > MAX_VALUES:
        raise UsageError(f"where: {count} values in all; at most {MAX_VALUES} are allowed")
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


def where_from_text(texts: Iterable[str], what: str = "--where") -> dict[str, Any] | None:
    """``where`` from FIELD=TEXT and FIELD:=JSON filters, as ``qaflow list --where`` and ``GET /instances?where=`` take them.

    FIELD=TEXT compares with the text as written; FIELD:=JSON with a number, true, false, null, or a
    list meaning any of its values. The same field twice matches either value. ``what`` names the
    option in messages. The values are checked by ``query`` itself; None when no filter is given.
    """
    where: dict[str, list[Any]] = {}
    for text in texts:
        field, sep, value = text.partition("=")
        if not sep or not field or field == ":":
            raise UsageError(f"{what} {_shown(text)}: write FIELD=TEXT, or FIELD:=JSON for a number, true, false, null or a list")
        wanted: Any = value
        if field.endswith(":"):
            field = field[:-1]
            try:
                wanted = json.loads(value, parse_constant=_not_json)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, NaN/Infinity, thousands of digits, nesting
                reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                raise UsageError(f"{what} {_shown(text)}: {_shown(value)} is not a JSON value ({reason})") from None
        where.setdefault(field, []).extend(wanted if isinstance(wanted, list) else [wanted])
    if not where:
        return None
    return {field: items[0] if len(items) == 1 else items for field, items in where.items()}


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _shown(text: str, most: int = 60) -> str:
    """``text`` quoted for a message, cut short when long (a query string can be many kilobytes)."""
    return repr(text) if len(text) <= most else repr(text[:most]) + f"... ({len(text):,} characters)"


def _limit(limit: Any, most: int = MAX_LIMIT) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise UsageError(f"limit must be a whole number from 1 to {most}, not {limit!r}")
    return limit


def instance_query(workflow: Any = None, state: Any = None, *, where: Any = None, due_before: Any = None, limit: Any = 50,
                   after: Any = None) -> InstanceQuery:
    """The store query for these filters, each checked: UsageError for anything malformed."""
    return InstanceQuery(
        workflow=None if workflow is None else check_id(workflow, "the workflow"),
        state=None if state is None else check_id(state, "the state"),
        where=_where(where),
        due_before=None if due_before is None else as_time(due_before),
        after=None if after is None else _position(after),
        limit=_limit(limit),
    )


def claim_limits(limit: Any, lease_seconds: Any) -> tuple[int, float]:
    """``claim_alerts``' limit and lease checked: 1 to MAX_CLAIM alerts, a lease of a positive number of seconds."""
    if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)) or not 0 < lease_seconds < math.inf:
        raise UsageError(f"lease_seconds must be a positive number of seconds, not {lease_seconds!r}")
    return _limit(limit, MAX_CLAIM), float(lease_seconds)


def page_of(engine: Engine, query: InstanceQuery) -> Page[Any]:
    """One page of InstanceViews: one row more than the page is read, so that ``next`` is None exactly at the end."""
    from .view import InstanceView

    found = engine.store.query(dataclasses.replace(query, limit=query.limit + 1))
    items = found[: query.limit]
    more = len(found) > query.limit
    return Page(tuple(InstanceView(engine, inst) for inst in items), cursor_after(items[-1].id) if more else None)


def worklist(engine: Engine, actor: str, roles: frozenset[str], query: InstanceQuery) -> Page[WorkItem]:
    """The instances matching ``query`` on which ``actor`` may fire something now, a page of ``query.limit``.

    The store is read in batches that grow from the page size to MAX_LIMIT, so a worklist of a large
    store never holds more than one batch of instances. The cursor is the last instance looked at, so
    the next page does not look at the ones this page passed over. The store is asked only for the
    instances the actor could act on (see ``reach``): each one read is then judged as
    ``available_triggers`` judges it.
    """
    workflows = [wf for wf in engine.definitions.workflows.values() if query.workflow in (None, wf.id)]
    query = dataclasses.replace(query, reach=tuple(r for wf in workflows if (r := reach(wf, roles)) is not None), person=actor)
    items: list[WorkItem] = []
    position = query.after
    batch_size = query.limit + 1
    while True:
        batch = engine.store.query(dataclasses.replace(query, after=position, limit=batch_size))
        for number, inst in enumerate(batch, start=1):
            position = inst.id
            item = work_item(engine, inst, actor, roles)
            if item is not None:
                items.append(item)
                if len(items) == query.limit:
                    # more may follow unless this was the store's last row; the page after may then be empty
                    more = number < len(batch) or len(batch) == batch_size
                    return Page(tuple(items), cursor_after(position) if more else None)
        if len(batch) < batch_size:
            return Page(tuple(items), None)
        batch_size = min(batch_size * 2, MAX_LIMIT)


def reach(wf: WorkflowDef, roles: frozenset[str]) -> Reach | None:
    """Where a caller asserting ``roles`` may fire anything in ``wf`` (this version), or None to read every instance.

    A superset, never less: a trigger counts in every state it has a transition from, whatever its
    guard; a bound role counts wherever one of its triggers does, for the instances whose data names
    the caller (the store checks that). As in ``Engine.effective_roles``, asserting a bound role's
    name gains nothing. None when a bound role's field cannot be named in a query (not a plain name).
    """
    bound = wf.bound_roles
    asserted = roles.difference(bound) if bound else roles
    states: set[str] = set()
    bound_states: set[str] = set()
    fields: set[str] = set()
    for event, state in wf.by_event:
        trig = wf.triggers.get(event)
        if trig is None:  # an automatic transition or a breach
            continue
        if asserted & trig.roles:
            states.add(state)
        for role in trig.roles & bound.keys():
            bound_states.add(state)
            fields.add(bound[role])
    if not all(_FIELD.match(field) for field in fields):
        return None
    return Reach(wf.id, wf.version, tuple(sorted(states)), tuple(sorted(bound_states - states)), tuple(sorted(fields)))


def work_item(engine: Engine, inst: Instance, actor: str, roles: frozenset[str]) -> WorkItem | None:
    """``inst`` as a WorkItem for ``actor``, or None when they may fire nothing on it now."""
    try:
        wf = engine._wf(inst)
    except UsageError:  # its definition version cannot be compiled: nobody can fire anything on it
        return None
    names = engine._available(inst, wf, actor, roles)
    if not names:
        return None
    awaited = [ds for ds in inst.deadlines.values() if ds.status in AWAITED_STATUSES]
    first = min(awaited, key=lambda ds: (ds.due, ds.name)) if awaited else None
    return WorkItem(
        instance_id=inst.id,
        workflow=inst.workflow,
        state=inst.state,
        triggers=tuple((name, wf.triggers[name].title) for name in names),
        deadline=first.name if first is not None else None,
        due=first.due if first is not None else None,
    )

