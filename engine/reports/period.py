"""Report periods: a month (2026-10), a calendar quarter (2026Q3), a financial quarter (2026/27Q3), a financial year (2026/27) or a range."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..clock import FIRST_YEAR, LAST_YEAR
from ..errors import UsageError

__all__ = ["Period", "month_periods", "months_before", "parse_period"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_FY_QUARTER = re.compile(r"^(\d{4})/(\d{2})-?Q([1-4])$", re.IGNORECASE)
_FY_YEAR = re.compile(r"^(?:FY\s*)?(\d{4})/(\d{2})$", re.IGNORECASE)
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})$")

PERIOD_HELP = (
    "2026-10 (a month), 2026Q3 (a calendar quarter: Q1 Jan-Mar ... Q3 Jul-Sep 2026), "
    "2026/27Q3 (a financial-year quarter: Q1 Apr-Jun ... Q3 Oct-Dec 2026), 2026/27 (a financial year: Apr 2026-Mar 2027) "
    "or 2026-10-01..2026-12-31 (inclusive)"
)


@dataclass(frozen=True)
class Period:
    """An inclusive range of days, with how it was asked for (month, quarter or range)."""

    start: dt.date
    end: dt.date
    kind: str = "range"  # month | quarter | year | range
    label: str = ""

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    @property
    def months(self) -> list[str]:
        """The calendar months the period touches, as YYYY-MM."""
        return [f"{y:04d}-{m:02d}" for y, m in _month_range(self.start, self.end)]

    def to_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "kind": self.kind, "label": self.label or _range_label(self.start, self.end)}


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _month_range(start: dt.date, end: dt.date) -> Iterator[tuple[int, int]]:
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def _range_label(start: dt.date, end: dt.date) -> str:
    return f"{start.strftime('%-d %b %Y')} to {end.strftime('%-d %b %Y')}"


def month_period(year: int, month: int) -> Period:
    start = dt.date(year, month, 1)
    return Period(start, _month_end(year, month), "month", start.strftime("%B %Y"))


def parse_period(text: str) -> Period:
    """Read a period as people write it; raise UsageError (exit 2) saying what is accepted."""
    return _checked(_parse_period(text), text)


def _parse_period(text: str) -> Period:
    value = (text or "").strip()
    try:
        if m := _MONTH.match(value):
            year, month = int(m[1]), int(m[2])
            if not 1 <= month <= 12:
                raise ValueError(f"month {month} does not exist")
            return month_period(year, month)
        if m := _QUARTER.match(value):
            year, q = int(m[1]), int(m[2])
            first = 3 * (q - 1) + 1
            start = dt.date(year, first, 1)
            end = _month_end(year, first + 2)
            return Period(start, end, "quarter", f"Q{q} {year} ({start.strftime('%b')}-{end.strftime('%b %Y')})")
        if m := _FY_QUARTER.match(value):
            year, short, q = int(m[1]), int(m[2]), int(m[3])
            if short != (year + 1) % 100:
                raise ValueError(f"financial year {year}/{short:02d} should be {year}/{(year + 1) % 100:02d}")
            first_month = 4 + 3 * (q - 1)  # April is month 1 of the financial year
            y = year + (first_month > 12)
            first_month = (first_month - 1) % 12 + 1
            start = dt.date(y, first_month, 1)
            end = _month_end(y, first_month + 2)
            return Period(start, end, "quarter", f"Q{q} {year}/{short:02d} ({start.strftime('%b')}-{end.strftime('%b %Y')})")
        if m := _FY_YEAR.match(value):
            year, short = int(m[1]), int(m[2])
            if short != (year + 1) % 100:
                raise ValueError(f"financial year {year}/{short:02d} should be {year}/{(year + 1) % 100:02d}")
            return financial_year(year)
        if m := _RANGE.match(value):
            start, end = dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])
            if end < start:
                raise ValueError(f"the range ends ({end}) before it starts ({start})")
            return period_between(start, end)
    except ValueError as exc:
        raise UsageError(f"bad period '{text}': {exc}; write {PERIOD_HELP}") from None
    raise UsageError(f"bad period '{text}': write {PERIOD_HELP}")


def financial_year(year: int) -> Period:
    """The financial year that starts on 1 April of ``year`` (2026 -> 1 Apr 2026 to 31 Mar 2027)."""
    return Period(dt.date(year, 4, 1), dt.date(year + 1, 3, 31), "year", f"Financial year {year}/{(year + 1) % 100:02d} (Apr {year}-Mar {year + 1})")


def _checked(period: Period, text: str) -> Period:
    if not (period.start.year >= FIRST_YEAR and period.end.year <= LAST_YEAR):
        raise UsageError(f"bad period '{text}': it is outside the years qaflow works with ({FIRST_YEAR}-{LAST_YEAR})")
    return period


def period_between(start: dt.date, end: dt.date) -> Period:
    """A Period for two dates, recognising a whole month, a whole quarter or a whole financial year."""
    if start.day == 1 and end == _month_end(start.year, start.month):
        return month_period(start.year, start.month)
    if (start.month, start.day) == (4, 1) and end == dt.date(start.year + 1, 3, 31):
        return financial_year(start.year)
    if start.day == 1 and start.month in (1, 4, 7, 10) and end == _month_end(start.year, start.month + 2):
        return Period(start, end, "quarter", f"{start.strftime('%b')}-{end.strftime('%b %Y')}")
    return Period(start, end, "range", _range_label(start, end))


def months_before(period: Period, count: int) -> list[Period]:
    """The ``count`` calendar months before the period, then every month the period touches."""
    y, m = period.start.year, period.start.month
    earlier = []
    for _ in range(max(0, count)):
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        earlier.append(month_period(y, m))
    return list(reversed(earlier)) + [month_period(y2, m2) for y2, m2 in _month_range(period.start, period.end)]


def month_periods(start: dt.date, end: dt.date) -> list[Period]:
    return [month_period(y, m) for y, m in _month_range(start, end)]
