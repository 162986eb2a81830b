"""Periods: financial and calendar quarters and years, months, ranges, and the bare 2026Q3 that says neither."""

from __future__ import annotations

import datetime as dt

import pytest

from engine import UsageError
from engine.periods import describe_period, parse_period


def span(text: str, **kw) -> tuple[str, str]:
    p = parse_period(text, **kw)
    return p.start.isoformat(), p.end.isoformat()


@pytest.mark.parametrize("text", ["FY2026/27-Q3", "FY2026/27Q3", "fy2026/27 q3", "FY 2026/27 - Q3", "2026/27Q3", "2026/27-Q3"])
def test_financial_quarter_forms(text):
    p = parse_period(text)
    assert (p.start, p.end) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert (p.kind, p.quarters, p.code) == ("quarter", "financial", "FY2026/27-Q3")
    assert p.label == "Q3 2026/27 (Oct-Dec 2026)"


def test_financial_q4_is_in_the_next_calendar_year():
    assert span("FY2026/27-Q4") == ("2027-01-01", "2027-03-31")
    assert span("FY2026/27-Q1") == ("2026-04-01", "2026-06-30")


@pytest.mark.parametrize("text", ["CY2026-Q3", "CY2026Q3", "cy 2026 q3"])
def test_calendar_quarter_forms(text):
    p = parse_period(text)
    assert (p.start, p.end, p.quarters, p.code) == (dt.date(2026, 7, 1), dt.date(2026, 9, 30), "calendar", "CY2026-Q3")


def test_years():
    assert span("FY2026/27") == ("2026-04-01", "2027-03-31")
    assert span("2026/27") == ("2026-04-01", "2027-03-31")
    assert span("CY2026") == ("2026-01-01", "2026-12-31")
    assert parse_period("FY2026/27").kind == "year"


def test_a_bare_quarter_is_read_as_asked():
    assert span("2026Q3") == ("2026-07-01", "2026-09-30")  # as before: calendar
    assert span("2026Q3", bare_quarter="calendar") == ("2026-07-01", "2026-09-30")
    assert span("2026-Q3", bare_quarter="financial") == ("2026-10-01", "2026-12-31")
    with pytest.raises(UsageError, match=r"write FY2026/27-Q3 for Q3 2026/27 \(Oct-Dec 2026\) or CY2026-Q3"):
        parse_period("2026Q3", bare_quarter=None)


def test_describe_says_which_reading_was_used():
    line = describe_period("2026Q3", parse_period("2026Q3", bare_quarter="financial"))
    assert line.startswith("period FY2026/27-Q3: the financial quarter 2026-10-01 to 2026-12-31")
    assert "write CY2026-Q3 for the calendar quarter 2026-07-01 to 2026-09-30" in line
    line = describe_period("2026Q3", parse_period("2026Q3"))
    assert "read as a calendar quarter" in line and "write FY2026/27-Q3 for the financial quarter 2026-10-01" in line
    assert describe_period("FY2026/27-Q3", parse_period("FY2026/27-Q3")) == "period FY2026/27-Q3: the financial quarter 2026-10-01 to 2026-12-31"
    assert describe_period("2026-10", parse_period("2026-10")) == "period 2026-10: the month 2026-10-01 to 2026-10-31"


@pytest.mark.parametrize("text", ["2026/28Q1", "FY2026/28", "FY2026-Q3", "2026Q5", "CY2026/27-Q1", "2026-13", "Q3"])
def test_bad_periods(text):
    with pytest.raises(UsageError, match="bad period"):
        parse_period(text)


def test_codes_of_ranges_and_recognised_ranges():
    assert parse_period("2026-10-01..2026-10-31").code == "2026-10"
    assert parse_period("2026-07-01..2026-09-30").code == "CY2026-Q3"
    assert parse_period("2026-10-05..2026-11-04").code == "2026-10-05..2026-11-04"
