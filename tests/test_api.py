"""The public API is exactly what the package root exports, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import engine

PUBLIC = {
    "Engine", "Occurrence", "InstanceView", "DeadlineView", "load_config", "check_config", "bundled_config_dir",
    "Definitions", "Calendar", "Duration", "Due", "parse_duration", "compile_expression", "Clock", "FixedClock",
    "SystemClock", "Store", "MemoryStore", "Problem", "Location", "QaflowError", "ConfigError", "ExpressionError",
    "EvaluationError", "DurationError", "UsageError", "Refused", "UnknownInstance", "UnknownTrigger", "RoleRefused",
    "PayloadInvalid", "DataInvalid", "GuardFailed", "ActionFailed", "ConcurrencyConflict",
    "RequestIdReused", "StoreError",
}


def test_exports_are_exactly_the_public_api():
    assert set(engine.__all__) == PUBLIC
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_refusals_share_a_base_and_carry_exit_codes():
    for name in ("UnknownInstance", "UnknownTrigger", "RoleRefused", "PayloadInvalid", "DataInvalid", "GuardFailed", "ActionFailed", "ConcurrencyConflict",
                 "RequestIdReused"):
        cls = getattr(engine, name)
        assert issubclass(cls, engine.Refused) and cls.exit_code == 1
    assert engine.UsageError.exit_code == 2
    assert engine.StoreError.exit_code == 2 and not issubclass(engine.StoreError, engine.Refused)
    assert engine.QaflowError.exit_code == 3


def test_import_engine_is_light():
    # the runtime, jsonschema and holidays load only when first used
    code = "import sys, engine; print(sorted(m for m in ('jsonschema', 'holidays', 'transitions', 'yaml') if m in sys.modules))"
    out = subprocess.check_output([sys.executable, "-c", code], text=True).strip()
    assert out == "[]"
