"""What routes depend on: the caller's identity (from credentials only), a role for an operation, the Idempotency-Key,
and query strings that hold only what a route takes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

import anyio
from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .auth import Identity
from .context import context
from .schemas import refuse_identity_and_time

bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="oidc",
    description="An access token from the council's OpenID Connect provider (Entra ID): its roles claim is mapped to qaflow roles.",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey",
    description="A service account's key (qfk_...); the server keeps only its sha256.",
)


async def identity(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Identity:
    """The caller. Verifying a token is quick and done here; fetching the provider's keys blocks, so it runs in a thread.

    A query string that names who is asking (``?actor=``, ``?roles=``, ``?worker=``) is refused with 403,
    one that dates the call with 400, whatever the route: the caller is who the credentials say.
    """
    auth = context(request).auth
    token = bearer.credentials if bearer is not None else None
    if token and auth.fetch_due(token):
        await anyio.to_thread.run_sync(auth.fetch, token)
    who = auth.identify(token, api_key)
    refuse_identity_and_time(request.query_params.keys(), "query string")
    return who


Caller = Annotated[Identity, Depends(identity)]


def require(operation: str) -> Callable[..., Awaitable[Identity]]:
    """A dependency: the caller, who must hold a role the settings' ``[access]`` asks for ``operation``."""

    async def allowed(request: Request, who: Caller) -> Identity:
        context(request).auth.authorize(who, operation)
        return who

    return allowed


Reader = Annotated[Identity, Depends(require("read"))]


def refuse_unknown_query(request: Request, names: Sequence[str]) -> None:
    """422 RequestInvalid for a query parameter the route does not take (``due-before`` for ``due_before``,
    say), rather than an answer that silently left the filter out."""
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in names]
    if unknown:
        raise RequestValidationError([
            {"loc": ("query", name), "type": "extra_forbidden",
             "msg": f"this route takes no query parameter '{name}' (it takes {', '.join(names) or 'none'})"}
            for name in unknown
        ])


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Names this call: a retry returns the first result and changes nothing; "
                                                "the same key for another call is refused (422 RequestIdReused)."),
]
