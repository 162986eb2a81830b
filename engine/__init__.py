"""qaflow: a declarative engine for children's-services quality-assurance workflows.

Typical use::

    from engine import Engine
    eng = Engine.from_config("config")            # or Engine.from_config() for ./config or the bundled one
    audit = eng.start("case_audit", {...}, actor="qa-1", roles=["qa_team"], at="2026-10-01T09:00")
    eng.fire(audit.id, "submit_lead_audit", {...}, actor="tm-7", at="2026-10-15T16:00")
    eng.advance("2026-11-01")                     # fires every breach and scheduled start due by then

Names are imported lazily so that ``import engine`` stays fast.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._lazy import lazy_exports

# The "qaflow" logger says what the engine had to decide on its own (an item set aside, a listener that
# failed); it is silent until the host configures logging.
logging.getLogger("qaflow").addHandler(logging.NullHandler())

__version__ = "0.1.0"

_EXPORTS = {
    "Engine": "engine.runtime.engine",
    "Occurrence": "engine.runtime.engine",
    "Change": "engine.runtime.changes",
    "InstanceView": "engine.runtime.view",
    "DeadlineView": "engine.runtime.view",
    "Page": "engine.runtime.query",
    "WorkItem": "engine.runtime.query",
    "load_config": "engine.config.loader",
    "check_config": "engine.config.loader",
    "bundled_config_dir": "engine.config.loader",
    "Definitions": "engine.definitions",
    "Calendar": "engine.calendar",
    "Duration": "engine.calendar",
    "Due": "engine.calendar",
    "parse_duration": "engine.calendar",
    "compile_expression": "engine.expressions",
    "Clock": "engine.clock",
    "FixedClock": "engine.clock",
    "SystemClock": "engine.clock",
    "Store": "engine.store.base",
    "MemoryStore": "engine.store.memory",
    "Problem": "engine.problems",
    "Location": "engine.problems",
    "QaflowError": "engine.errors",
    "ConfigError": "engine.errors",
    "ExpressionError": "engine.errors",
    "EvaluationError": "engine.errors",
    "EvaluationFailed": "engine.errors",
    "DurationError": "engine.errors",
    "UsageError": "engine.errors",
    "UnknownAlert": "engine.errors",
    "Refused": "engine.errors",
    "UnknownInstance": "engine.errors",
    "UnknownTrigger": "engine.errors",
    "RoleRefused": "engine.errors",
    "PayloadInvalid": "engine.errors",
    "DataInvalid": "engine.errors",
    "GuardFailed": "engine.errors",
    "ActionFailed": "engine.errors",
    "OutOfOrder": "engine.errors",
    "ConcurrencyConflict": "engine.errors",
    "RequestIdReused": "engine.errors",
    "StoreError": "engine.errors",
}

__all__ = [
    "Engine", "Occurrence", "Change", "InstanceView", "DeadlineView", "Page", "WorkItem", "load_config", "check_config",
    "bundled_config_dir", "Definitions", "Calendar", "Duration", "Due", "parse_duration",
    "compile_expression", "Clock", "FixedClock", "SystemClock", "Store", "MemoryStore", "Problem", "Location",
    "QaflowError", "ConfigError", "ExpressionError", "EvaluationError", "EvaluationFailed", "DurationError", "UsageError",
    "UnknownAlert", "Refused", "UnknownInstance", "UnknownTrigger", "RoleRefused", "PayloadInvalid", "DataInvalid",
    "GuardFailed", "ActionFailed", "OutOfOrder", "ConcurrencyConflict", "RequestIdReused", "StoreError",
]

if TYPE_CHECKING:  # the same names, for type checkers and editors (tests/test_api.py keeps the two in step)
    from .calendar import Calendar, Due, Duration, parse_duration
    from .clock import Clock, FixedClock, SystemClock
    from .config.loader import bundled_config_dir, check_config, load_config
    from .definitions import Definitions
    from .errors import (
        ActionFailed,
        ConcurrencyConflict,
        ConfigError,
        DataInvalid,
        DurationError,
        EvaluationError,
        EvaluationFailed,
        ExpressionError,
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
    from .expressions import compile_expression
    from .problems import Location, Problem
    from .runtime.changes import Change
    from .runtime.engine import Engine, Occurrence
    from .runtime.query import Page, WorkItem
    from .runtime.view import DeadlineView, InstanceView
    from .store.base import Store
    from .store.memory import MemoryStore


__getattr__, __dir__ = lazy_exports("engine", _EXPORTS, globals())
