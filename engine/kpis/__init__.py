"""KPIs: what the configuration defines (computed from workflow history, or imported) and the figures brought in.

    from engine import load_config
    from engine.kpis import import_kpi_file, import_kpi_values
    from engine.store.open import open_store
    definitions, store = load_config("config"), open_store("qaflow.db")
    result = import_kpi_file(store, definitions, "extract.csv")        # all or nothing: ImportRefused names each row
    result = import_kpi_values(store, definitions, [{"kpi": "assessments_within_45_working_days", "period": "2026-10",
                                                     "level": "service", "level_id": "assessment",
                                                     "numerator": 41, "denominator": 45}], origin="mosaic")
    result.summary(), result.replacements()
    store.kpi_values("assessments_within_45_working_days")            # what is stored (KpiValue)
    check_indicators(engine, at="2027-01-05T09:00", kpis={"assessments_within_45_working_days"})  # indicator rules -> proposed audits

docs/kpis.md describes the definitions and the import format. Names are imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "BENCHMARKS": "engine.kpis.catalogue",
    "UNITS": "engine.kpis.catalogue",
    "Benchmark": "engine.kpis.catalogue",
    "KpiSpec": "engine.kpis.catalogue",
    "kpi_catalogue": "engine.kpis.catalogue",
    "COLUMNS": "engine.kpis.importer",
    "ImportProblem": "engine.kpis.importer",
    "ImportResult": "engine.kpis.importer",
    "import_kpi_file": "engine.kpis.importer",
    "import_kpi_values": "engine.kpis.importer",
    "ImportRefused": "engine.kpis.importer",  # defined in engine.errors
    "KpiValue": "engine.kpis.importer",  # defined in engine.store.base
    "IndicatorRule": "engine.kpis.watch",
    "WatchResult": "engine.kpis.watch",
    "check_indicators": "engine.kpis.watch",
    "indicator_rules": "engine.kpis.watch",
}

__all__ = [
    "BENCHMARKS", "UNITS", "Benchmark", "KpiSpec", "kpi_catalogue", "COLUMNS", "ImportProblem", "ImportResult", "import_kpi_file",
    "import_kpi_values", "ImportRefused", "KpiValue", "IndicatorRule", "WatchResult", "check_indicators", "indicator_rules",
]

if TYPE_CHECKING:  # the same names, for type checkers and editors (tests/test_api.py keeps the two in step)
    from .catalogue import BENCHMARKS, UNITS, Benchmark, KpiSpec, kpi_catalogue
    from .importer import COLUMNS, ImportProblem, ImportRefused, ImportResult, KpiValue, import_kpi_file, import_kpi_values
    from .watch import IndicatorRule, WatchResult, check_indicators, indicator_rules


__getattr__, __dir__ = lazy_exports("engine.kpis", _EXPORTS, globals())
