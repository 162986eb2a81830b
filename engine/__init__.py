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

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Engine": "engine.runtime.engine",
    "Occurrence": "engine.runtime.engine",
    "InstanceView": "engine.runtime.view",
    "DeadlineView": "engine.runtime.view",
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
    "DurationError": "engine.errors",
    "UsageError": "engine.errors",
    "Refused": "engine.errors",
    "UnknownInstance": "engine.errors",
    "UnknownTrigger": "engine.errors",
    "RoleRefused": "engine.errors",
    "PayloadInvalid": "engine.errors",
    "DataInvalid": "engine.errors",
    "GuardFailed": "engine.errors",
    "ActionFailed": "engine.errors",
    "ConcurrencyConflict": "engine.errors",
    "RequestIdReused": "engine.errors",
    "StoreError": "engine.errors",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("engine", _EXPORTS, globals())
