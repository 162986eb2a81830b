"""What every route reaches: the server's context (engine, settings, authenticator) and its JSON response."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ..runtime.engine import Engine
from .auth import Authenticator
from .settings import ServerSettings


class JSON(JSONResponse):
    """JSON with dates and times written as ISO 8601."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=iso).encode("utf-8")


def iso(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:
        return isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass
class ServerContext:
    """What every route reaches through ``request.app.state.qaflow``."""

    engine: Engine
    settings: ServerSettings
    auth: Authenticator
    store_label: str = "the store"
    reports: dict[str, Any] = field(default_factory=dict)  # report id -> compiled ReportDef
    reports_lock: threading.Lock = field(default_factory=threading.Lock)
    background: list[Any] = field(default_factory=list)  # started in the lifespan, stopped after it

    @property
    def config_dir(self) -> Path:
        return Path(self.engine.definitions.root)


def context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.qaflow
    return ctx
