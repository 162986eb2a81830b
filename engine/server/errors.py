"""How errors become HTTP responses: each class its status code, the body ``QaflowError.to_dict()``.

    QaflowError                     (engine/errors.py)
    ├── Unauthenticated      401    no credentials, or credentials that do not verify
    ├── Forbidden            403    authenticated, but not allowed: a reserved actor, a role the
    │                               operation needs, a body that claims who is asking
    ├── SettingsError        2      (exit code) the server's own settings file is wrong
    ├── UsageError           400
    │   └── UnknownAlert     404    no alert has that id (POST /outbox/{id}/ack)
    ├── StoreError           503    with Retry-After when ``retry`` is true
    ├── ConfigError          500    a report definition that does not load (at startup: refuse to start)
    ├── EvaluationFailed     500    the configuration could not decide the call (a condition failed to
    │                               evaluate): nothing changed; its message is shown, for the maintainers
    └── Refused
        ├── UnknownInstance  404
        ├── RoleRefused      403
        ├── PayloadInvalid   422
        ├── DataInvalid      422
        ├── ActionFailed     422    the configuration's actions could not be applied to this instance
        ├── RequestIdReused  422    as the Idempotency-Key draft says for a key reused with another request
        ├── UnknownTrigger   409    refused given the instance as it is now: reload it and look again
        ├── GuardFailed      409
        ├── OutOfOrder       409
        └── ConcurrencyConflict 409 another request changed the instance first: retry with the same key

Anything else is a bug: 500 ``InternalError``, logged with its traceback, its text not shown.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    ActionFailed,
    ConcurrencyConflict,
    ConfigError,
    DataInvalid,
    EvaluationFailed,
    GuardFailed,
    OutOfOrder,
    PayloadInvalid,
    QaflowError,
    Refused,
    RequestIdReused,
    RoleRefused,
    StoreError,
    UnknownAlert,
    UnknownInstance,
    UnknownTrigger,
    UsageError,
)


class Unauthenticated(QaflowError):
    """No credentials, or credentials that do not verify (expired, forged, another issuer or audience)."""

    exit_code = 2

    def __init__(self, message: str, *, challenge: str = "", **details: Any) -> None:
        super().__init__(message, **details)
        self.challenge = challenge  # the error= of the WWW-Authenticate header (RFC 6750), if any


class Forbidden(QaflowError):
    """The caller is known but may not do this: the operation needs a role they lack, or the body claims an identity."""

    exit_code = 1


class SettingsError(UsageError):
    """The server's settings (auth, webhooks, limits) have problems; ``problems`` lists every one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"{source}: {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the server settings:\n{lines}", problems=problems)


#: The status of each error class; the most specific class listed wins (see ``status_for``).
STATUS: dict[type[QaflowError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    UnknownInstance: 404,
    UnknownAlert: 404,
    RoleRefused: 403,
    PayloadInvalid: 422,
    DataInvalid: 422,
    ActionFailed: 422,
    RequestIdReused: 422,
    UnknownTrigger: 409,
    GuardFailed: 409,
    OutOfOrder: 409,
    ConcurrencyConflict: 409,
    Refused: 409,
    UsageError: 400,
    StoreError: 503,
    ConfigError: 500,
    EvaluationFailed: 500,
    QaflowError: 500,
}


def status_for(exc: QaflowError) -> int:
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def headers_for(exc: QaflowError) -> dict[str, str]:
    """Headers an error response carries: Retry-After for a store that may recover, a challenge for a 401."""
    if isinstance(exc, StoreError):
        return {"Retry-After": "1"} if exc.retry else {}
    if isinstance(exc, ConcurrencyConflict):
        return {"Retry-After": "0"}
    if isinstance(exc, Unauthenticated):
        challenge = 'Bearer realm="qaflow"'
        if exc.challenge:
            challenge += f', error="{exc.challenge}"'
        return {"WWW-Authenticate": challenge}
    return {}
