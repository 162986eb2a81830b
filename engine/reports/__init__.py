"""Reports from workflow history: metrics (``compute_report``), trends, comparisons and renderers.

Names are imported lazily: the command line reads ``reports.period`` and ``reports.render`` to build
its help, and should not pay for the metrics and the report-definition loader to do so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# Imported now, not lazily: the module shares the function's name, and importing it later (as the
# command line does) would leave the module where the function should be. It is light.
from .render import FORMATS, render

_EXPORTS = {
    "Period": "engine.reports.period",
    "ReportDef": "engine.reports.definition",
    "compare_reports": "engine.reports.metrics",
    "compute_report": "engine.reports.metrics",
    "kpi_trend": "engine.reports.metrics",
    "load_report": "engine.reports.definition",
    "monthly_trend": "engine.reports.metrics",
    "programme_kpi_months": "engine.reports.metrics",
    "parse_period": "engine.reports.period",
}

__all__ = [
    "FORMATS",
    "Period",
    "ReportDef",
    "compare_reports",
    "compute_report",
    "kpi_trend",
    "load_report",
    "monthly_trend",
    "programme_kpi_months",
    "parse_period",
    "render",
]

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .definition import ReportDef, load_report
    from .metrics import compare_reports, compute_report, kpi_trend, monthly_trend, programme_kpi_months
    from .period import Period, parse_period

__getattr__, __dir__ = lazy_exports("engine.reports", _EXPORTS, globals())
