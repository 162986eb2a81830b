"""Reports from workflow history: metrics (``compute_report``), trends, comparisons and renderers."""

from __future__ import annotations

from .definition import ReportDef, load_report
from .metrics import compare_reports, compute_report, monthly_trend
from .period import Period, parse_period
from .render import FORMATS, render

__all__ = [
    "FORMATS",
    "Period",
    "ReportDef",
    "compare_reports",
    "compute_report",
    "load_report",
    "monthly_trend",
    "parse_period",
    "render",
]
