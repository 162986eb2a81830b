"""``qaflow serve``: open the store, build the Engine on the server's clock, and run the API under uvicorn."""

from __future__ import annotations

import logging
import sys
from typing import Any

from ..clock import SystemClock
from ..runtime.engine import Engine
from ..store.open import display_target, open_store
from .settings import ServerSettings

#: What ``qaflow serve`` needs beyond the engine's own dependencies: module -> distribution.
NEEDED = {"fastapi": "fastapi", "uvicorn": "uvicorn", "jwt": "pyjwt", "cryptography": "cryptography", "httpx": "httpx"}


def missing_packages() -> list[str]:
    """The server's packages that are not installed (``pip install 'qaflow[server]'`` brings them)."""
    import importlib.util

    return [dist for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None]


def serve(definitions: Any, settings: ServerSettings, *, db: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info", access_log: bool = True) -> None:
    """Serve the API until interrupted (Ctrl-C or SIGTERM finish the requests under way, then stop)."""
    import uvicorn

    from .app import create_app

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    qaflow_log = logging.getLogger("qaflow")
    qaflow_log.addHandler(handler)
    qaflow_log.setLevel(log_level.upper())
    store = open_store(db, create=True)
    try:
        engine = Engine(definitions, store=store, clock=SystemClock())
        app = create_app(engine, settings, store_label=display_target(db))
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, server_header=False)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
