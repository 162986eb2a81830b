"""The exceptions qaflow raises, each knowing its CLI exit code.

    QaflowError                      base; exit code 3 (internal) unless overridden
    ├── ConfigError                  configuration is invalid; carries every Problem (exit 1)
    ├── ExpressionError              a condition does not compile; carries its position (exit 1)
    ├── DurationError                a duration or anchor cannot be read (exit 1)
    ├── UsageError                   a call was malformed: unknown workflow, bad time (exit 2)
    │   └── UnknownAlert             no alert has that id (acknowledge)
    ├── EvaluationFailed             the configuration could not decide a call (a condition failed to evaluate); nothing changed (exit 1)
    ├── StoreError                   the store could not carry out a read or write: damaged, locked,
    │                                read-only, connection lost; nothing was changed (exit 2)
    ├── ImportRefused                KPI values (a file, or a host's list) were refused whole; carries every
    │                                problem by row and column; nothing was stored (exit 1)
    └── Refused                      a start/fire was refused; nothing changed (exit 1)
        ├── UnknownInstance
        ├── UnknownTrigger           no such trigger, or not available in this state
        ├── RoleRefused              the actor lacks every role the trigger allows
        ├── PayloadInvalid           the payload fails the trigger's JSON Schema
        ├── DataInvalid              start data lacks a required field or has a wrong type
        ├── GuardFailed              no transition's guard held
        ├── ActionFailed             an action raised while being applied
        ├── OutOfOrder               dated before the instance's last event, with no reason to backdate it
        ├── ConcurrencyConflict      another writer changed the instance first
        └── RequestIdReused          the request id was already used for a different call
"""

from __future__ import annotations

from typing import Any


class QaflowError(Exception):
    """Base of every error qaflow raises on purpose."""

    exit_code = 3

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.details}


class ConfigError(QaflowError):
    """The configuration has problems; ``problems`` lists every one of them."""

    exit_code = 1

    def __init__(self, problems: list[Any]) -> None:
        self.problems = sorted(problems, key=lambda p: p.sort_key())
        errors = [p for p in self.problems if p.severity == "error"]
        lines = "\n".join(str(p) for p in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} configuration error(s):\n{lines}{more}")

    def to_dict(self) -> dict[str, Any]:
        return {"error": "ConfigError", "problems": [p.to_dict() for p in self.problems]}


class ExpressionError(QaflowError):
    """A condition or template expression does not compile.

    ``line`` and ``column`` are 1-based positions inside the expression text.
    """

    exit_code = 1

    def __init__(self, message: str, *, code: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message, code=code, line=line, column=column)
        self.code = code
        self.line = line
        self.column = column


class EvaluationError(QaflowError):
    """An expression failed while being evaluated (e.g. comparing a date with text)."""

    exit_code = 1


class DurationError(QaflowError):
    """A duration or deadline anchor cannot be read."""

    exit_code = 1


class UsageError(QaflowError):
    """A call was malformed: unknown workflow, unreadable time, bad argument."""

    exit_code = 2


class UnknownAlert(UsageError):
    """No alert in the outbox has that id."""


class EvaluationFailed(QaflowError):
    """A condition, value or message of the configuration could not be evaluated for this call
    (a date compared with text, a budget spent, a missing table); nothing changed.

    Not a ``Refused``: the person did nothing wrong, the configuration needs fixing. Show the person
    that the call could not be made, and tell whoever maintains the configuration.
    """

    exit_code = 1


class Refused(QaflowError):
    """A start or fire was refused; the instance is exactly as it was."""

    exit_code = 1


class UnknownInstance(Refused):
    """No instance has that id."""


class UnknownTrigger(Refused):
    """The workflow has no such trigger, or it cannot be fired in the current state."""


class RoleRefused(Refused):
    """The actor holds none of the roles allowed to fire the trigger."""


class PayloadInvalid(Refused):
    """The payload does not match the trigger's JSON Schema."""


class DataInvalid(Refused):
    """The data given to start an instance lacks a required field or has a wrong type."""


class GuardFailed(Refused):
    """Every transition for the trigger had a guard that did not hold."""


class ActionFailed(Refused):
    """An action raised while being applied; everything was rolled back."""


class OutOfOrder(Refused):
    """The event is dated before the instance's last recorded event and no backdating reason was given."""


class ConcurrencyConflict(Refused):
    """Another writer changed the instance since it was read."""



class RequestIdReused(Refused):
    """The request id was first used for another call (operation, instance or workflow, trigger, payload or actor).

    A request id names one call: a retry of that call returns its first result, any other call with
    the same id is refused. ``details["first"]`` says what the id was used for.
    """


class StoreError(QaflowError):
    """The store could not carry out a read or write: nothing was changed.

    The database file is damaged, locked by another process beyond the timeout, read-only, or the
    connection to the server was lost. The message names the store and what to do. ``retry`` is true
    when the same call may succeed later (a lock, a lost connection) and false when someone must act
    first (a damaged or read-only file). Exit code 2: the operator, not qaflow, has to put it right.
    """

    exit_code = 2

    def __init__(self, message: str, *, retry: bool = False, **details: Any) -> None:
        super().__init__(message, retry=retry, **details)
        self.retry = retry


class ImportRefused(QaflowError):
    """KPI values were refused whole (``qaflow kpi import``, ``engine.kpis``): nothing was stored.

    ``problems`` lists every reason, each with its row (or item) and column (engine.kpis.ImportProblem).
    """

    exit_code = 1
    MAX_SHOWN = 50

    def __init__(self, origin: str, problems: list[Any]) -> None:
        self.origin = origin
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[: self.MAX_SHOWN])
        more = f"\n  ... and {len(self.problems) - self.MAX_SHOWN} more" if len(self.problems) > self.MAX_SHOWN else ""
        super().__init__(f"{origin}: refused, nothing was stored ({len(self.problems)} problem(s)):\n{shown}{more}")

    def to_dict(self) -> dict[str, Any]:
        return {"error": "ImportRefused", "origin": self.origin, "message": f"{self.origin}: refused, nothing was stored",
                "problems": [p.to_dict() for p in self.problems]}
