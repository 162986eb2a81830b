"""The public API is exactly what the package root exports, and every name resolves."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import engine

PUBLIC = {
    "Engine", "Occurrence", "Change", "InstanceView", "DeadlineView", "Page", "WorkItem", "load_config", "check_config", "bundled_config_dir",
    "Definitions", "Calendar", "Duration", "Due", "parse_duration", "compile_expression", "Clock", "FixedClock",
    "SystemClock", "Store", "MemoryStore", "Problem", "Location", "QaflowError", "ConfigError", "ExpressionError",
    "EvaluationError", "EvaluationFailed", "DurationError", "UsageError", "UnknownAlert", "Refused", "UnknownInstance", "UnknownTrigger", "RoleRefused",
    "PayloadInvalid", "DataInvalid", "GuardFailed", "ActionFailed", "OutOfOrder", "ConcurrencyConflict",
    "RequestIdReused", "StoreError",
}


def test_exports_are_exactly_the_public_api():
    assert set(engine.__all__) == PUBLIC
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def _type_checking_imports(package: str) -> dict[str, str]:
    """Each name imported under ``if TYPE_CHECKING:`` in ``package``'s __init__, with its module."""
    root = Path(importlib.import_module(package).__file__)
    found: dict[str, str] = {}
    for node in ast.parse(root.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1
                for alias in imp.names:
                    found[alias.asname or alias.name] = f"{package}.{imp.module}"
    return found


@pytest.mark.parametrize("package", ["engine", "engine.simulation", "engine.server", "engine.kpis", "engine.impact"])
def test_lazy_exports_all_and_type_checking_imports_agree(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(module._EXPORTS)
    assert _type_checking_imports(package) == module._EXPORTS


def test_report_names_are_functions_not_the_modules_they_share_a_name_with():
    """engine.reports exports lazily; importing a submodule must not put it in place of a name."""
    import types

    from engine import reports

    for module in ("definition", "metrics", "period", "render", "blocks", "html", "charts"):
        importlib.import_module(f"engine.reports.{module}")
    for name in reports.__all__:
        assert not isinstance(getattr(reports, name), types.ModuleType), name
    assert set(reports.__all__) == set(reports._EXPORTS) | {"FORMATS", "render"}


def test_refusals_share_a_base_and_carry_exit_codes():
    for name in ("UnknownInstance", "UnknownTrigger", "RoleRefused", "PayloadInvalid", "DataInvalid", "GuardFailed",
                 "ActionFailed", "OutOfOrder", "ConcurrencyConflict", "RequestIdReused"):
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
