"""The context of one event on one instance: who, when, what payload, and a log of what was decided."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ActionFailed, EvaluationError, EvaluationFailed, QaflowError
from .instance import OPEN_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    from ..definitions import Action, TransitionDef, WorkflowDef
    from ..expressions import Expression
    from .engine import Engine
    from .instance import Instance
    from .unit import UnitOfWork


class _Deadlines(Mapping):
    """``deadlines.NAME.status`` / ``.due`` / ``.open`` / ``.late`` / ``.duration`` in conditions, built on access.

    ``duration`` is the deadline's time allowed as written ("5 working days"), from the workflow
    definition until the clock starts, so a message can say it even where a timescale names it.
    """

    __slots__ = ("_inst", "_wf")

    def __init__(self, inst: Instance, wf: WorkflowDef | None = None) -> None:
        self._inst = inst
        self._wf = wf

    def __getitem__(self, name: str) -> Any:
        ds = self._inst.deadlines.get(name)
        if ds is None:
            defn = self._wf.deadlines.get(name) if self._wf is not None else None
            return {"status": "not_started", "due": None, "open": False, "late": False,
                    "duration": defn.duration.text if defn is not None else None}
        return {"status": ds.status, "due": ds.due, "open": ds.status in OPEN_STATUSES, "late": ds.late,
                "duration": ds.duration}

    def __iter__(self) -> Iterator[str]:
        return iter(self._inst.deadlines)

    def __len__(self) -> int:
        return len(self._inst.deadlines)


class _Parent(Mapping):
    """The parent's data, read lazily (most conditions never look).

    It holds the unit of work and the instance, not the Context: a Context whose env pointed back at
    it would be a reference cycle, left for the cyclic garbage collector on every event.
    """

    __slots__ = ("_uow", "_inst", "_data")

    def __init__(self, uow: UnitOfWork, inst: Instance) -> None:
        self._uow = uow
        self._inst = inst
        self._data: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            pid = self._inst.parent_id
            self._data = self._uow.get(pid).data if pid else {}
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._load().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class Context:
    """One event being applied. Guards and actions log into ``conditions`` and ``actions``."""

    __slots__ = ("engine", "uow", "inst", "wf", "at", "actor", "roles", "payload", "conditions", "actions", "_env")

    def __init__(
        self,
        engine: Engine,
        uow: UnitOfWork,
        inst: Instance,
        wf: WorkflowDef,
        *,
        at: dt.datetime,
        actor: str,
        roles: frozenset[str],
        payload: Any,
    ) -> None:
        self.engine = engine
        self.uow = uow
        self.inst = inst
        self.wf = wf
        self.at = at
        self.actor = actor
        self.roles = roles
        self.payload = payload
        self.conditions: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self._env: dict[str, Any] | None = None

    @property
    def env(self) -> dict[str, Any]:
        """The names conditions can read, built on first use (many events evaluate nothing)."""
        env = self._env
        if env is None:
            inst = self.inst
            env = self._env = {
                "data": inst.data,
                "payload": self.payload if self.payload is not None else {},
                "now": self.at,
                "today": self.at.date(),
                "actor": self.actor,
                "roles": sorted(self.roles),
                "state": inst.state,
                "deadlines": _Deadlines(inst, self.wf),
                "parent": _Parent(self.uow, inst),
                "instance_id": inst.id,
            }
        return env

    # evaluate, check_guard and run_actions read ``_env`` before the ``env`` property: they run about a
    # dozen times an event in the simulation, and the property call showed in its profile.
    def evaluate(self, expression: Any, what: str) -> Any:
        env = self._env or self.env
        env["state"] = self.inst.state
        try:
            return expression.evaluate(env)
        except EvaluationError as exc:
            raise EvaluationFailed(f"{what}: {exc.message}", instance=self.inst.id) from None

    def check_guard(self, transition: TransitionDef) -> bool:
        env = self._env or self.env
        env["state"] = self.inst.state
        # only transitions that have a guard come here (machine.py, Engine._auto): a None check would cost every event
        guard: Expression = transition.guard  # type: ignore[assignment]
        try:
            result = bool(guard.test(env))
        except EvaluationError as exc:
            raise EvaluationFailed(
                f"the condition of transition {transition.index + 1} could not be evaluated: {exc.message}",
                instance=self.inst.id,
            ) from None
        self.conditions.append({"transition": transition.index, "when": guard.source, "result": result})
        return result

    def run_actions(self, actions: tuple[Action, ...], where: str) -> None:
        handlers = _APPLY[0] if _APPLY else _load_apply()
        for action in actions:
            if action.condition is not None:
                env = self._env or self.env
                env["state"] = self.inst.state
                try:
                    holds = bool(action.condition.test(env))
                except EvaluationError as exc:
                    raise EvaluationFailed(f"{where}: the 'if' of a {action.kind} action: {exc.message}", instance=self.inst.id) from None
                self.conditions.append({"action": action.kind, "where": where, "if": action.condition.source, "result": holds})
                if not holds:
                    continue
            try:
                handlers[type(action)](self, action)  # actions.apply_action, without its extra call
            except (ActionFailed, EvaluationFailed):
                raise
            except QaflowError as exc:
                raise ActionFailed(f"{where}: {action.kind} failed: {exc.message}", instance=self.inst.id) from None


_APPLY: list = []


def _load_apply():  # imported on first use (as before), then kept: an import statement per call showed in profiles
    from .actions import _HANDLERS

    _APPLY.append(_HANDLERS)
    return _HANDLERS
