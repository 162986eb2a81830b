"""The qaflow command line: one click group (``app.main``) and a module per family of commands.

Importing the package registers every command; the modules import ``app`` and nothing imports them
back, so the arrows run one way: cli -> reports/simulation -> runtime -> store -> config.
"""

from __future__ import annotations

from . import config_commands, impact, instances, kpi, programme, report, serve, simulate  # noqa: F401  (importing registers the commands)
from .app import main

__all__ = ["main"]
