"""Report periods: kept here for code that imports them from ``engine.reports.period`` (they live in ``engine.periods``)."""

from __future__ import annotations

from ..periods import (
    PERIOD_HELP,
    Period,
    describe_period,
    month_period,
    month_periods,
    months_before,
    parse_period,
    period_between,
)

__all__ = ["PERIOD_HELP", "Period", "describe_period", "month_period", "month_periods", "months_before", "parse_period", "period_between"]
