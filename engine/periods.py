"""Periods as people write them: a month, a financial or calendar quarter or year, or a range of days.

A council counts its quarters from April (financial year 2026/27: Q1 Apr-Jun ... Q3 Oct-Dec 2026,
Q4 Jan-Mar 2027), as the programmes of config/programmes/ do; statistics and calendars count them
from January. ``FY2026/27-Q3`` and ``CY2026-Q3`` say which; a bare ``2026Q3`` does not, so whoever
reads it says how (``bare_quarter``) and ``describe_period`` tells the person which reading was used.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .clock import FIRST_YEAR, LAST_YEAR
from .errors import UsageError

__all__ = [
    "PERIOD_HELP",
    "Period",
    "describe_period",
    "month_period",
    "month_periods",
    "months_before",
    "parse_period",
    "period_between",
]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_BARE_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_CY_QUARTER = re.compile(r"^CY\s*(\d{4})\s*-?\s*Q([1-4])$", re.IGNORECASE)
_FY_QUARTER = re.compile(r"^(?:FY\s*)?(\d{4})/(\d{2})\s*-?\s*Q([1-4])$", re.IGNORECASE)
_FY_YEAR = re.compile(r"^(?:FY\s*)?(\d{4})/(\d{2})$", re.IGNORECASE)
_CY_YEAR = re.compile(r"^CY\s*(\d{4})$", re.IGNORECASE)
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})$")

PERIOD_HELP = (
    "2026-10 (a month), FY2026/27-Q3 or 2026/27Q3 (a financial-year quarter, from April: Q1 Apr-Jun ... Q3 Oct-Dec 2026), "
    "CY2026-Q3 (a calendar quarter, from January: Q3 Jul-Sep 2026), FY2026/27 or CY2026 (a year) "
    "or 2026-10-01..2026-12-31 (inclusive); a bare 2026Q3 is read as a calendar quarter unless the "
    "configuration has programmes, which count quarters from April"
)

#: How a bare ``2026Q3`` may be read: as a calendar or a financial quarter, or refused as ambiguous (None).
BARE_QUARTER_READINGS = ("calendar", "financial", None)


@dataclass(frozen=True)
class Period:
    """An inclusive range of days, with how it was asked for.

    ``kind``: month | quarter | year | range; ``quarters``: for a quarter or a year, ``financial``
    (from April) or ``calendar`` (from January); ``code``: the period written unambiguously
    (``2026-10``, ``FY2026/27-Q3``, ``CY2026-Q3``, ``FY2026/27``, ``CY2026``, ``2026-10-01..2026-10-15``).
    """

    start: dt.date
    end: dt.date
    kind: str = "range"  # month | quarter | year | range
    label: str = ""
    quarters: str = ""  # financial | calendar, for a quarter or a year
    code: str = ""

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
    return Period(start, _month_end(year, month), "month", start.strftime("%B %Y"), code=f"{year:04d}-{month:02d}")


def _calendar_quarter(year: int, q: int) -> Period:
    first = 3 * (q - 1) + 1
    start, end = dt.date(year, first, 1), _month_end(year, first + 2)
    return Period(start, end, "quarter", f"Q{q} {year} ({start.strftime('%b')}-{end.strftime('%b %Y')})", "calendar", f"CY{year}-Q{q}")


def _fy(year: int) -> str:
    return f"{year}/{(year + 1) % 100:02d}"


def _financial_quarter(year: int, q: int) -> Period:
    first_month = 4 + 3 * (q - 1)  # April is month 1 of the financial year
    y = year + (first_month > 12)
    first_month = (first_month - 1) % 12 + 1
    start, end = dt.date(y, first_month, 1), _month_end(y, first_month + 2)
    return Period(start, end, "quarter", f"Q{q} {_fy(year)} ({start.strftime('%b')}-{end.strftime('%b %Y')})", "financial", f"FY{_fy(year)}-Q{q}")


def _financial_year(year: int) -> Period:
    start, end = dt.date(year, 4, 1), dt.date(year + 1, 3, 31)
    return Period(start, end, "year", f"Financial year {_fy(year)} (Apr {year}-Mar {year + 1})", "financial", f"FY{_fy(year)}")


def _calendar_year(year: int) -> Period:
    return Period(dt.date(year, 1, 1), dt.date(year, 12, 31), "year", f"Calendar year {year} (Jan-Dec {year})", "calendar", f"CY{year}")


def _check_fy(year: int, short: int) -> None:
    if short != (year + 1) % 100:
        raise ValueError(f"financial year {year}/{short:02d} should be {_fy(year)}")


def parse_period(text: str, *, bare_quarter: str | None = "calendar") -> Period:
    """Read a period as people write it; raise UsageError (exit 2) saying what is accepted.

    ``bare_quarter``: how to read ``2026Q3``, which does not say whether its quarters count from
    January or April: ``"calendar"`` (Jul-Sep 2026, the default, as before), ``"financial"`` (Oct-Dec
    2026, as the programmes count them) or ``None`` (refused as ambiguous, e.g. in a data file).
    """
    if bare_quarter not in BARE_QUARTER_READINGS:
        raise ValueError(f"bare_quarter must be one of {BARE_QUARTER_READINGS}, not {bare_quarter!r}")
    return _checked(_parse_period(text, bare_quarter), text)


def _parse_period(text: str, bare_quarter: str | None) -> Period:
    value = (text or "").strip()
    try:
        if m := _MONTH.match(value):
            year, month = int(m[1]), int(m[2])
            if not 1 <= month <= 12:
                raise ValueError(f"month {month} does not exist")
            return month_period(year, month)
        if m := _BARE_QUARTER.match(value):
            year, q = int(m[1]), int(m[2])
            if bare_quarter is None:
                raise ValueError(f"it does not say whether quarters count from April or January: write "
                                 f"FY{_fy(year)}-Q{q} for {_financial_quarter(year, q).label} or CY{year}-Q{q} for {_calendar_quarter(year, q).label}")
            return _financial_quarter(year, q) if bare_quarter == "financial" else _calendar_quarter(year, q)
        if m := _CY_QUARTER.match(value):
            return _calendar_quarter(int(m[1]), int(m[2]))
        if m := _FY_QUARTER.match(value):
            year, short, q = int(m[1]), int(m[2]), int(m[3])
            _check_fy(year, short)
            return _financial_quarter(year, q)
        if m := _FY_YEAR.match(value):
            year, short = int(m[1]), int(m[2])
            _check_fy(year, short)
            return _financial_year(year)
        if m := _CY_YEAR.match(value):
            return _calendar_year(int(m[1]))
        if m := _RANGE.match(value):
            start, end = dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])
            if end < start:
                raise ValueError(f"the range ends ({end}) before it starts ({start})")
            return period_between(start, end)
    except ValueError as exc:
        raise UsageError(f"bad period '{text}': {exc}; write {PERIOD_HELP}") from None
    raise UsageError(f"bad period '{text}': write {PERIOD_HELP}")


def _checked(period: Period, text: str) -> Period:
    if not (period.start.year >= FIRST_YEAR and period.end.year <= LAST_YEAR):
        raise UsageError(f"bad period '{text}': it is outside the years qaflow works with ({FIRST_YEAR}-{LAST_YEAR})")
    return period


def describe_period(text: str, period: Period) -> str:
    """One line saying how ``text`` was read, naming the other reading of a bare quarter."""
    what = {"month": "the month", "quarter": f"the {period.quarters} quarter", "year": f"the {period.quarters} year",
            "range": "the days"}[period.kind]
    line = f"period {period.code or text.strip()}: {what} {period.start.isoformat()} to {period.end.isoformat()}"
    m = _BARE_QUARTER.match((text or "").strip())
    if m:
        year, q = int(m[1]), int(m[2])
        if period.quarters == "financial":
            other = _calendar_quarter(year, q)
            line += (f" ({text.strip()} read as a financial quarter, from April, as the programmes count them; "
                     f"write {other.code} for the calendar quarter {other.start.isoformat()} to {other.end.isoformat()})")
        else:
            other = _financial_quarter(year, q)
            line += (f" ({text.strip()} read as a calendar quarter, from January; "
                     f"write {other.code} for the financial quarter {other.start.isoformat()} to {other.end.isoformat()})")
    return line


def period_between(start: dt.date, end: dt.date) -> Period:
    """A Period for two dates, recognising a whole month, a whole calendar quarter or a whole financial year."""
    if start.day == 1 and end == _month_end(start.year, start.month):
        return month_period(start.year, start.month)
    if (start.month, start.day) == (4, 1) and end == dt.date(start.year + 1, 3, 31):
        return _financial_year(start.year)
    if start.day == 1 and start.month in (1, 4, 7, 10) and end == _month_end(start.year, start.month + 2):
        q = (start.month - 1) // 3 + 1
        return Period(start, end, "quarter", f"{start.strftime('%b')}-{end.strftime('%b %Y')}", "calendar", f"CY{start.year}-Q{q}")
    return Period(start, end, "range", _range_label(start, end), code=f"{start.isoformat()}..{end.isoformat()}")


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
