"""What routes depend on: the caller's identity (from credentials only), a role for an operation, the Idempotency-Key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .auth import Identity
from .context import context

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
    """The caller. Verifying a token is quick and done here; fetching the provider's keys blocks, so it runs in a thread."""
    auth = context(request).auth
    token = bearer.credentials if bearer is not None else None
    if token and auth.fetch_due(token):
        await anyio.to_thread.run_sync(auth.fetch, token)
    return auth.identify(token, api_key)


Caller = Annotated[Identity, Depends(identity)]


def require(operation: str) -> Callable[..., Awaitable[Identity]]:
    """A dependency: the caller, who must hold a role the settings' ``[access]`` asks for ``operation``."""

    async def allowed(request: Request, who: Caller) -> Identity:
        context(request).auth.authorize(who, operation)
        return who

    return allowed


Reader = Annotated[Identity, Depends(require("read"))]

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Names this call: a retry returns the first result and changes nothing; "
                                                "the same key for another call is refused (422 RequestIdReused)."),
]
