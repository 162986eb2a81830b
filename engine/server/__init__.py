"""qaflow's HTTP API: a thin FastAPI layer over the Engine (``pip install 'qaflow[server]'``, ``qaflow serve``).

Embedding it in your own ASGI deployment::

    from engine import Engine, SystemClock, load_config
    from engine.server import create_app, load_settings
    from engine.store.open import open_store

    engine = Engine(load_config("/etc/qaflow/config"), store=open_store("postgresql://..."), clock=SystemClock())
    app = create_app(engine, load_settings("/etc/qaflow/server.toml"))   # run with any ASGI server

Names are imported lazily: ``engine.server.settings`` (and ``qaflow api-key``) work without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "create_app": "engine.server.app",
    "serve": "engine.server.run",
    "load_settings": "engine.server.settings",
    "ServerSettings": "engine.server.settings",
    "Identity": "engine.server.auth",
}

__all__ = ["create_app", "serve", "load_settings", "ServerSettings", "Identity"]

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .app import create_app
    from .auth import Identity
    from .run import serve
    from .settings import ServerSettings, load_settings

__getattr__, __dir__ = lazy_exports("engine.server", _EXPORTS, globals())
