"""The FastAPI application: ``create_app(engine, settings)`` wires the routes, errors, limits and background work.

The routes live in one module per family (instances, queries, outbox, operations, system), each an
``APIRouter`` listed in ``routers()``; adding a family is a module and one line here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import QaflowError, UsageError
from ..runtime.engine import Engine
from . import instances, operations, outbox, queries, system
from .auth import Authenticator
from .context import JSON, ServerContext, iso
from .errors import headers_for, status_for
from .settings import ServerSettings

log = logging.getLogger("qaflow.server")

DESCRIPTION = """\
The qaflow engine over HTTP: start workflow instances, fire triggers, read instances, their history and
explanations, page through instances and the caller's worklist, claim and acknowledge the outbox's alerts,
advance the clock, compute reports and check configuration changes.

**Who is asking** comes from the credentials only: an OpenID Connect bearer token (its roles claim mapped
to qaflow roles) or a service account's `X-API-Key`. A body or query string that names an `actor`, `roles`
or `worker` is refused.
Roles bound to an instance (`lead_auditor`) come from the instance's data. **When** is the server's clock.

**Errors** are JSON: `{"error": ClassName, "message": ..., ...details}`; 401 unauthenticated, 403 not
allowed (RoleRefused, Forbidden), 404 UnknownInstance or UnknownAlert, 409 refused given the instance's current state
(GuardFailed, UnknownTrigger, OutOfOrder, ConcurrencyConflict: retry), 422 invalid input (PayloadInvalid,
DataInvalid, ActionFailed, RequestIdReused, RequestInvalid), 400 UsageError, 413 BodyTooLarge, 503 StoreError.

**Idempotency-Key** on start and fire names the call: a retry returns the first result and changes nothing;
the same key with another call is 422 RequestIdReused.
"""


# --------------------------------------------------------------------------- errors


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSON:
    return JSON(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def qaflow_error(request: Request, exc: Exception) -> JSON:
        assert isinstance(exc, QaflowError)
        status = status_for(exc)
        if status >= 500:
            log.error("qaflow serve: %s %s: %s", request.method, request.url.path, exc.message)
        return _error(status, _safe(exc.to_dict()), headers_for(exc))

    async def invalid_request(request: Request, exc: Exception) -> JSON:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append({"where": where, "message": str(error.get("msg", "invalid"))})
        first = problems[0] if problems else {"where": "request", "message": "invalid"}
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _error(422, {"error": "RequestInvalid", "message": f"{first['where']}: {first['message']}{more}", "problems": problems})

    async def http_error(request: Request, exc: Exception) -> JSON:
        assert isinstance(exc, StarletteHTTPException)
        names = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "BodyTooLarge", 415: "UnsupportedMediaType"}
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path} (GET /openapi.json lists them)"
        return _error(exc.status_code, {"error": names.get(exc.status_code, "HTTPError"), "message": message},
                      dict(exc.headers) if exc.headers else None)

    async def internal_error(request: Request, exc: Exception) -> JSON:
        log.error("qaflow serve: %s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, {"error": "InternalError", "message": "internal error; the server's log says where"})

    app.add_exception_handler(QaflowError, qaflow_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)


def _safe(body: dict[str, Any]) -> dict[str, Any]:
    """An error body that JSON can hold whatever its details carry."""
    try:
        json.dumps(body, allow_nan=False, default=iso)
    except (TypeError, ValueError):
        return {"error": body.get("error"), "message": body.get("message")}
    return body


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or as they stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        seen = 0
        over = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _TooLarge
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:  # the app's answer to a body it could not read: ours instead
                if not started and message["type"] == "http.response.start":
                    started = True
                    await self._refuse(send)
                return
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": "BodyTooLarge", "message": f"the request body is larger than {self.max_bytes:,} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


# --------------------------------------------------------------------------- the application


def routers() -> list[APIRouter]:
    """Every family of routes, in the order the OpenAPI document lists them."""
    return [instances.router, queries.router, outbox.router, operations.router, system.router]


def create_app(engine: Engine, settings: ServerSettings, *, store_label: str = "the store", background: bool = True) -> FastAPI:
    """The HTTP API over ``engine``. ``background=False`` leaves out the clock and webhook threads.

    The engine must have a clock (``Engine(..., clock=SystemClock())``): no request can give a time.
    With ``settings.webhook`` the outbox is delivered, and a listener added to ``engine`` wakes the
    deliverer when a request raises alerts. Routes that call the engine run in a pool of
    ``settings.threads`` threads (on PostgreSQL, each holds a database connection).
    """
    if engine.clock is None:
        raise UsageError("the Engine needs a clock (Engine(..., clock=SystemClock())): requests never carry a time")
    auth = Authenticator(settings)
    ctx = ServerContext(engine=engine, settings=settings, auth=auth, store_label=store_label)
    if background:
        from .background import AdvanceTicker
        from .webhooks import WebhookDeliverer

        if settings.advance_every_seconds > 0:
            ctx.background.append(AdvanceTicker(engine, settings.advance_every_seconds))
        if settings.webhook is not None:
            deliverer = WebhookDeliverer(engine, settings.webhook)
            engine.listeners.append(deliverer.on_change)
            ctx.background.append(deliverer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        if auth.keys is not None and settings.oidc is not None and settings.oidc.jwks_url:
            await anyio.to_thread.run_sync(auth.keys.refresh, None)  # fetch the keys before the first request
        for worker in ctx.background:
            worker.start()
        try:
            yield
        finally:
            for worker in ctx.background:
                worker.stop()

    app = FastAPI(title="qaflow", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  default_response_class=JSON)
    app.state.qaflow = ctx
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    for router in routers():
        app.include_router(router)
    return app
