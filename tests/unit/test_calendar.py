"""Tests for engine.calendar: working days, durations, due dates and their explanations."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import (
    DURATION_FORMS,
    LONDON,
    Calendar,
    Due,
    Duration,
    parse_duration,
    remaining,
    resume,
)
from engine.errors import DurationError

ENGLAND = Calendar.england()

# An independent reference: the holidays package asked directly, one day at a
# time, so the precomputed tables are checked against something they did not
# produce.
_REFERENCE_HOLIDAYS = holidays.country_holidays("GB", subdiv="ENG", years=range(1990, 2081))


def _naive_is_working(d: date) -> bool:
    return d.weekday() < 5 and d not in _REFERENCE_HOLIDAYS


def _naive_add(d: date, n: int) -> date:
    while n > 0:
        d += timedelta(days=1)
        if _naive_is_working(d):
            n -= 1
    return d


def apply(text: str, anchor: date, calendar: Calendar = ENGLAND) -> Due:
    return parse_duration(text).apply(anchor, calendar)


# ---------------------------------------------------------------------------
# Worked examples
# ---------------------------------------------------------------------------


def test_ten_working_days_over_christmas_2026():
    due = apply("10 working days", date(2026, 12, 18))
    assert due.date == date(2027, 1, 6)
    holidays_skipped = [(d, r) for d, r in due.skipped if d.weekday() < 5]
    assert holidays_skipped == [
        (date(2026, 12, 25), "Christmas Day"),
        (date(2026, 12, 28), "Boxing Day (observed)"),
        (date(2027, 1, 1), "New Year's Day"),
    ]
    assert due.summary() == (
        "due Wed 6 Jan 2027: 10 working days after Fri 18 Dec 2026, skipping "
        "25 Dec (Christmas Day), 28 Dec (Boxing Day observed) and 1 Jan (New Year's Day), "
        "plus 6 weekend days"
    )
    lines = due.explanation()
    assert lines[0] == due.summary()
    assert lines[1] == "10 working days after Fri 18 Dec 2026 (day 0), calendar england"
    assert "skipped Fri 25 Dec 2026: Christmas Day" in lines
    assert "skipped Sat 26 Dec 2026: Saturday (Boxing Day)" in lines
    assert "skipped Mon 28 Dec 2026: Boxing Day (observed)" in lines
    assert "skipped Fri 1 Jan 2027: New Year's Day" in lines
    assert "skipped Sat 19 Dec 2026: Saturday" in lines
    assert lines[-1] == "due by the end of Wed 6 Jan 2027 (23:59 Europe/London)"
    # 4 weekdays of holidays/weekends: every skipped day is between anchor and due.
    assert all(date(2026, 12, 18) < d <= date(2027, 1, 6) for d, _ in due.skipped)
    assert len(due.skipped) == 9


def test_twenty_working_days_over_christmas_2026():
    assert apply("20 working days", date(2026, 12, 18)).date == date(2027, 1, 20)


def test_easter_2027_is_skipped():
    assert ENGLAND.non_working_reason(date(2027, 3, 26)) == "Good Friday"
    assert ENGLAND.non_working_reason(date(2027, 3, 29)) == "Easter Monday"
    # Thu 25 Mar 2027 + 1 working day jumps Good Friday, the weekend and Easter Monday.
    due = apply("1 working day", date(2027, 3, 25))
    assert due.date == date(2027, 3, 30)
    assert [d for d, _ in due.skipped] == [date(2027, 3, d) for d in (26, 27, 28, 29)]


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2022, 6, 3), "Platinum Jubilee"),
        (date(2022, 9, 19), "State Funeral"),
        (date(2023, 5, 8), "Coronation"),
        (date(2020, 5, 8), "May Day"),  # moved for VE Day
    ],
)
def test_one_off_bank_holidays_are_skipped(day: date, name: str):
    assert not ENGLAND.is_working_day(day)
    assert name in (ENGLAND.non_working_reason(day) or "")
    before = ENGLAND.add_working_days(day - timedelta(days=1), 1)
    assert before > day


def test_late_summer_bank_holiday_proves_england_subdivision():
    # Without subdiv="ENG" the holidays package omits this day.
    assert ENGLAND.non_working_reason(date(2026, 8, 31)) == "Late Summer Bank Holiday"
    assert ENGLAND.add_working_days(date(2026, 8, 28), 1) == date(2026, 9, 1)
    assert ENGLAND.non_working_reason(date(2026, 4, 6)) == "Easter Monday"


def test_non_working_reasons():
    assert ENGLAND.non_working_reason(date(2026, 12, 19)) == "Saturday"
    assert ENGLAND.non_working_reason(date(2026, 12, 20)) == "Sunday"
    assert ENGLAND.non_working_reason(date(2026, 12, 25)) == "Christmas Day"
    assert ENGLAND.non_working_reason(date(2026, 12, 28)) == "Boxing Day (observed)"
    assert ENGLAND.non_working_reason(date(2026, 12, 21)) is None
    assert ENGLAND.is_working_day(date(2026, 12, 21))


def test_holidays_between_lists_weekday_holidays_only():
    assert ENGLAND.holidays_between(date(2026, 12, 1), date(2027, 1, 31)) == [
        (date(2026, 12, 25), "Christmas Day"),
        (date(2026, 12, 28), "Boxing Day (observed)"),
        (date(2027, 1, 1), "New Year's Day"),
    ]
    assert ENGLAND.holidays_between(date(2026, 12, 25), date(2026, 12, 25)) == [
        (date(2026, 12, 25), "Christmas Day")
    ]


# ---------------------------------------------------------------------------
# Calendar arithmetic
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "anchor", "expected"),
    [
        ("3 weeks", date(2026, 10, 1), date(2026, 10, 22)),
        ("6 weeks", date(2026, 10, 1), date(2026, 11, 12)),
        ("end of week 4", date(2026, 10, 1), date(2026, 10, 28)),
        ("end of week 1", date(2026, 10, 1), date(2026, 10, 7)),
        ("1 month", date(2027, 1, 31), date(2027, 2, 28)),
        ("1 month", date(2028, 1, 31), date(2028, 2, 29)),
        ("3 months", date(2026, 11, 30), date(2027, 2, 28)),
        ("1 year", date(2028, 2, 29), date(2029, 2, 28)),
        ("1st of next month", date(2026, 12, 15), date(2027, 1, 1)),
        ("start of next month", date(2026, 10, 31), date(2026, 11, 1)),
        ("end of month", date(2027, 2, 3), date(2027, 2, 28)),
        ("end of next month", date(2028, 1, 31), date(2028, 2, 29)),
        ("28 days", date(2026, 10, 1), date(2026, 10, 29)),
        ("28 calendar days", date(2026, 10, 1), date(2026, 10, 29)),
        ("0 days", date(2026, 12, 25), date(2026, 12, 25)),
    ],
)
def test_calendar_durations(text: str, anchor: date, expected: date):
    due = apply(text, anchor)
    assert due.date == expected
    assert due.skipped == ()
    assert due.rolled_from is None


def test_month_clamping_is_explained():
    lines = apply("3 months", date(2026, 11, 30)).explanation()
    assert "February 2027 has no day 30, so the last day of the month is used" in lines


def test_roll_forward_to_next_working_day():
    # Sat 5 Dec 2026 + 3 weeks = Sat 26 Dec (Boxing Day); Sun; Mon 28 observed.
    due = apply("3 weeks, next working day", date(2026, 12, 5))
    assert due.date == date(2026, 12, 29)
    assert due.rolled_from == date(2026, 12, 26)
    assert [d for d, _ in due.skipped] == [date(2026, 12, 26), date(2026, 12, 27), date(2026, 12, 28)]
    text = "\n".join(due.explanation())
    assert "Sat 26 Dec 2026 is not a working day" in text
    assert "skipped Mon 28 Dec 2026: Boxing Day (observed)" in text
    # No roll needed: nothing recorded.
    plain = apply("3 weeks, roll forward", date(2026, 10, 1))
    assert plain.date == date(2026, 10, 22) and plain.rolled_from is None and plain.skipped == ()


def test_zero_working_days_is_the_anchor_day():
    assert apply("0 working days", date(2026, 12, 18)).date == date(2026, 12, 18)
    assert apply("0 working days", date(2026, 12, 25)).date == date(2026, 12, 25)
    rolled = apply("0 working days, next working day", date(2026, 12, 25))
    assert rolled.date == date(2026, 12, 29)
    assert rolled.skipped[0] == (date(2026, 12, 25), "Christmas Day")


def test_end_of_week_before_the_anchor_says_so():
    due = apply("end of week 1", date(2026, 10, 20))
    assert due.date == date(2026, 10, 7)
    assert any("before the anchor" in line for line in due.explanation())


def test_local_closures_are_skipped_and_named():
    cal = Calendar.england(
        name="herefordshire",
        closures={date(2026, 12, 29): "Council shutdown", date(2026, 12, 30): "Council shutdown",
                  date(2026, 12, 31): "Council shutdown"},
    )
    assert cal.non_working_reason(date(2026, 12, 29)) == "local closure: Council shutdown"
    due = apply("10 working days", date(2026, 12, 18), cal)
    assert due.date == date(2027, 1, 11)
    assert due.calendar == "herefordshire"
    lines = due.explanation()
    assert "skipped Tue 29 Dec 2026: local closure: Council shutdown" in lines
    assert "29 Dec (local closure: Council shutdown)" in due.summary()
    assert (date(2026, 12, 30), "local closure: Council shutdown") in cal.holidays_between(
        date(2026, 12, 1), date(2026, 12, 31)
    )
    # The statutory calendar is untouched.
    assert ENGLAND.is_working_day(date(2026, 12, 29))


def test_calendars_with_the_same_closures_are_equal():
    a = Calendar.england(closures={date(2026, 12, 29): "x", date(2026, 12, 30): "y"})
    b = Calendar.england(closures={date(2026, 12, 30): "y", date(2026, 12, 29): "x"})
    assert a == b and hash(a) == hash(b)
    assert a != ENGLAND


def test_closure_outside_the_range_is_refused():
    with pytest.raises(DurationError, match="2099-12-29"):
        Calendar.england(closures={date(2099, 12, 29): "typo"})


def test_results_do_not_depend_on_call_order():
    from engine.calendar import _build_tables

    closures = {date(2026, 12, 29): "Council shutdown"}
    probes = [(date(2026, 12, 18), 10), (date(2027, 3, 25), 3), (date(1995, 1, 1), 200)]

    def run(first: str) -> dict[str, list[date]]:
        _build_tables.cache_clear()
        cals = {"plain": Calendar.england(), "local": Calendar.england(closures=closures)}
        order = ["plain", "local"] if first == "plain" else ["local", "plain"]
        return {k: [cals[k].add_working_days(d, n) for d, n in probes] for k in order}

    assert run("plain") == run("local")


# ---------------------------------------------------------------------------
# Range, due_at, pauses
# ---------------------------------------------------------------------------


def test_out_of_range_dates_raise_duration_error():
    with pytest.raises(DurationError, match="outside calendar 'england'"):
        ENGLAND.add_working_days(date(1989, 12, 31), 1)
    with pytest.raises(DurationError, match="outside calendar"):
        ENGLAND.add_working_days(date(2080, 12, 20), 30)
    with pytest.raises(DurationError, match="outside calendar"):
        ENGLAND.is_working_day(date(2081, 1, 1))
    with pytest.raises(DurationError, match="outside calendar"):
        ENGLAND.working_days_between(date(2026, 1, 1), date(2200, 1, 1))
    with pytest.raises(DurationError, match="outside calendar"):
        ENGLAND.add_working_days(date(1990, 1, 2), -5)


def test_due_at_is_the_next_london_midnight_across_dst():
    before = apply("0 days", date(2026, 10, 24)).due_at
    assert before.isoformat() == "2026-10-25T00:00:00+01:00"
    after = apply("0 days", date(2026, 10, 25)).due_at
    assert after.isoformat() == "2026-10-26T00:00:00+00:00"
    spring = apply("0 days", date(2027, 3, 27)).due_at
    assert spring.isoformat() == "2027-03-28T00:00:00+00:00"
    assert before.tzinfo is LONDON
    assert isinstance(before, datetime)


def test_remaining_and_resume_working_days():
    due = apply("10 working days", date(2026, 12, 18))  # Wed 6 Jan 2027
    left = remaining(due, date(2026, 12, 22), ENGLAND)
    assert left == ("working_days", 8)
    resumed = resume(left, date(2027, 1, 4), ENGLAND)
    assert resumed.date == date(2027, 1, 14)
    assert resumed.resumed
    assert resumed.anchor == date(2027, 1, 4)
    assert resumed.explanation()[1] == (
        "resumed Mon 4 Jan 2027 with 8 working days left (day 0), calendar england"
    )
    assert remaining(due, date(2027, 2, 1), ENGLAND) == ("working_days", 0)


def test_remaining_and_resume_calendar_days():
    due = apply("3 weeks", date(2026, 10, 1))  # Thu 22 Oct
    left = remaining(due, date(2026, 10, 12), ENGLAND)
    assert left == ("days", 10)
    assert resume(left, date(2026, 10, 19), ENGLAND).date == date(2026, 10, 29)
    assert remaining(due, date(2026, 11, 1), ENGLAND) == ("days", 0)
    rolled = resume(("days", 6), date(2026, 12, 20), ENGLAND, roll=True)
    assert rolled.date == date(2026, 12, 29)


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "n", "roll", "normalised"),
    [
        ("10 working days", "working_days", 10, False, "10 working days"),
        ("  10   Working   DAYS ", "working_days", 10, False, "10 working days"),
        ("1 working day", "working_days", 1, False, "1 working day"),
        ("0 working days", "working_days", 0, False, "0 working days"),
        ("28 days", "days", 28, False, "28 days"),
        ("28 calendar days", "days", 28, False, "28 days"),
        ("1 week", "weeks", 1, False, "1 week"),
        ("3 months", "months", 3, False, "3 months"),
        ("2 years", "years", 2, False, "2 years"),
        ("End of week 4", "end_of_week", 4, False, "end of week 4"),
        ("end of the month", "end_of_month", 0, False, "end of month"),
        ("1st of next month", "start_of_next_month", 0, False, "1st of next month"),
        ("Start of next month", "start_of_next_month", 0, False, "1st of next month"),
        ("end of next month", "end_of_next_month", 0, False, "end of next month"),
        ("3 weeks, next working day", "weeks", 3, True, "3 weeks, next working day"),
        ("3 weeks ,  roll forward", "weeks", 3, True, "3 weeks, next working day"),
        ("3660 days", "days", 3660, False, "3660 days"),
    ],
)
def test_parse_accepted_forms(text: str, kind: str, n: int, roll: bool, normalised: str):
    d = Duration.parse(text)
    assert (d.kind, d.n, d.roll, d.text) == (kind, n, roll, normalised)
    assert Duration.parse(d.text) == d  # normalised text reads back the same


@pytest.mark.parametrize(
    "text", ["ten days", "-3 days", "3 fortnights", "99999 days", "", "   ", "3.5 days",
             "end of week 5", "end of week 0", "3 weeks next", "+3 days"]
)
def test_parse_refuses_bad_text_and_names_it(text: str):
    with pytest.raises(DurationError) as info:
        Duration.parse(text)
    assert repr(text) in info.value.message


def test_parse_errors_list_the_accepted_forms():
    with pytest.raises(DurationError) as info:
        Duration.parse("3 fortnights")
    assert "working days" in info.value.message and "end of week" in info.value.message
    with pytest.raises(DurationError, match="impossible duration"):
        Duration.parse("99999 days")
    with pytest.raises(DurationError, match="impossible duration"):
        Duration.parse("-3 days")
    with pytest.raises(DurationError):
        Duration.parse(None)  # type: ignore[arg-type]


def test_parse_duration_is_cached():
    assert parse_duration("10 working days") is parse_duration("10 working days")


def test_describe_and_flags():
    assert Duration.parse("10 working days").describe() == "10 working days"
    assert Duration.parse("end of week 4").describe() == "the end of week 4 of the month"
    assert Duration.parse("1 month").describe() == "1 month"
    assert Duration.parse("3 weeks, next working day").describe().startswith("3 weeks")
    assert Duration.parse("10 working days").uses_working_days
    assert not Duration.parse("3 weeks").uses_working_days
    assert len(DURATION_FORMS) >= 9


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

dates = st.dates(min_value=date(1995, 1, 1), max_value=date(2075, 12, 31))
counts = st.integers(min_value=0, max_value=300)


@settings(deadline=None, max_examples=300)
@given(dates, counts)
def test_property_working_day_arithmetic(anchor: date, n: int):
    due = ENGLAND.add_working_days(anchor, n)
    if n > 0:
        assert ENGLAND.is_working_day(due)
    else:
        assert due == anchor
    assert ENGLAND.add_working_days(anchor, n + 1) > due
    assert due >= anchor + timedelta(days=n)
    assert ENGLAND.working_days_between(anchor, due) == n
    assert due == _naive_add(anchor, n)


@settings(deadline=None, max_examples=200)
@given(dates, counts)
def test_property_backwards_is_the_inverse(anchor: date, n: int):
    back = ENGLAND.add_working_days(anchor, -n)
    assert back <= anchor
    if n > 0:
        assert ENGLAND.is_working_day(back)
        assert ENGLAND.working_days_between(anchor, back) == -n
        # Forward again lands on the anchor, or on the first working day after
        # it when the anchor itself is not a working day.
        assert ENGLAND.add_working_days(back, n) == ENGLAND.next_working_day_on_or_after(anchor)


@settings(deadline=None, max_examples=200)
@given(dates)
def test_property_working_day_flags_match_reference(day: date):
    assert ENGLAND.is_working_day(day) == _naive_is_working(day)
    assert (ENGLAND.non_working_reason(day) is None) == _naive_is_working(day)
    nxt = ENGLAND.next_working_day_on_or_after(day)
    assert nxt >= day and _naive_is_working(nxt)
    assert all(not _naive_is_working(day + timedelta(days=k)) for k in range((nxt - day).days))


@settings(deadline=None, max_examples=200)
@given(dates, counts)
def test_property_due_skipped_is_every_non_working_day(anchor: date, n: int):
    due = parse_duration(f"{n} working days").apply(anchor, ENGLAND)
    expected = [
        anchor + timedelta(days=k)
        for k in range(1, (due.date - anchor).days + 1)
        if not _naive_is_working(anchor + timedelta(days=k))
    ]
    assert [d for d, _ in due.skipped] == expected
    assert due.explanation()[-1].startswith("due by the end of")


@settings(deadline=None, max_examples=300)
@given(dates, st.integers(min_value=0, max_value=1200))
def test_property_months_land_in_the_right_month(anchor: date, n: int):
    due = parse_duration(f"{n} months").apply(anchor, ENGLAND)
    months = anchor.year * 12 + anchor.month - 1 + n
    assert (due.date.year * 12 + due.date.month - 1) == months
    assert due.date.day == min(anchor.day, due.date.day)
    assert due.date.day == anchor.day or (due.date + timedelta(days=1)).day == 1
    due.summary()
    due.explanation()


@settings(deadline=None, max_examples=100)
@given(dates, st.sampled_from(["end of month", "1st of next month", "end of next month",
                               "end of week 4", "3 weeks, next working day"]))
def test_property_anchor_forms_never_raise(anchor: date, text: str):
    due = parse_duration(text).apply(anchor, ENGLAND)
    if text.endswith("next working day"):
        assert ENGLAND.is_working_day(due.date)
    assert due.summary().startswith("due ")


def test_london_date_reads_dates_and_times_as_days_in_england():
    import datetime as dt

    from engine.calendar import LONDON, london_date
    from engine.runtime.deadlines import to_date

    # 23:30 UTC on a summer evening is already the next day in London (BST); in winter it is not
    assert london_date("2026-06-18T23:30:00+00:00") == dt.date(2026, 6, 19)
    assert london_date("2026-12-18T23:30:00+00:00") == dt.date(2026, 12, 18)
    assert london_date(dt.datetime(2026, 6, 18, 23, 30, tzinfo=dt.UTC)) == dt.date(2026, 6, 19)
    assert london_date(dt.datetime(2026, 6, 18, 23, 30)) == dt.date(2026, 6, 18)  # naive: London time already
    assert london_date(dt.datetime(2026, 6, 19, 0, 30, tzinfo=LONDON)) == dt.date(2026, 6, 19)
    assert london_date("2026-06-18") == dt.date(2026, 6, 18)
    assert [london_date(v) for v in (None, True, 20260618, "", "18/06/2026", "2026-02-30")] == [None] * 6
    # a deadline anchored on such a time counts from the London day
    assert to_date("2026-06-18T23:30:00+00:00", "anchor") == dt.date(2026, 6, 19)


# --------------------------------------------------------------------------- rolling back


def test_roll_back_moves_a_date_that_is_not_a_working_day_to_the_one_before():
    due = Duration.parse("end of week 4, previous working day").apply(date(2026, 12, 1), ENGLAND)
    assert due.date == date(2026, 12, 24) and due.rolled_from == date(2026, 12, 28)
    assert due.summary().startswith("due Thu 24 Dec 2026: the end of week 4 of December 2026")
    assert "rolled back to the previous working day" in due.summary()
    assert "Mon 28 Dec 2026 is not a working day (Boxing Day observed), so the deadline rolls back to the previous working day" in due.explanation()
    assert [d for d, _ in due.skipped] == [date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 27), date(2026, 12, 28)]
    assert Duration.parse("end of week 4, roll back") == Duration.parse("end of week 4, previous working day")
    assert Duration.parse("3 weeks").with_roll("previous").text == "3 weeks, previous working day"
    assert Duration(text="3 weeks, next working day", kind="weeks", n=3, roll=True).rolls == "next"  # as before


@settings(max_examples=300)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2070, 12, 31)), st.sampled_from(["next", "previous"]))
def test_a_rolled_due_date_is_the_nearest_working_day_in_its_direction(day, roll):
    due = Duration.parse("0 days").with_roll(roll).apply(day, ENGLAND)
    assert ENGLAND.is_working_day(due.date)
    step = timedelta(days=1 if roll == "next" else -1)
    walk = day
    while not _naive_is_working(walk):  # the naive answer, a day at a time, from the holidays package
        walk += step
    assert due.date == walk
    assert (due.rolled_from is None) == (walk == day)


@settings(deadline=None, max_examples=400)
@given(dates, st.integers(min_value=0, max_value=400),
       st.sampled_from(["{n} working days", "{n} days", "{n} weeks", "{n} months", "{n} years", "end of month",
                        "1st of next month", "end of next month", "end of week 4"]),
       st.sampled_from(["", ", next working day", ", previous working day"]))
def test_property_the_runtime_due_date_is_the_explained_one(anchor: date, n: int, form: str, roll: str):
    duration = parse_duration(form.format(n=min(n, 40) if "year" in form else n) + roll)
    try:
        explained = duration.apply(anchor, ENGLAND).date
    except DurationError as exc:  # beyond the calendar's years: the same refusal
        with pytest.raises(DurationError, match=re.escape(str(exc))):
            duration.due_date(anchor, ENGLAND)
        return
    assert duration.due_date(anchor, ENGLAND) == explained


def test_public_holidays_are_those_of_the_holidays_package_read_without_its_other_countries() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from engine.calendar import public_holidays\n"
        "ours = public_holidays('GB', 'ENG', 1990, 2080)\n"
        "alone = 'holidays.countries' not in sys.modules\n"
        "import holidays\n"
        "import holidays.countries.united_kingdom\n"
        "theirs = holidays.country_holidays('GB', subdiv='ENG', years=range(1990, 2081), observed=True, language='en_GB')\n"
        "print(alone, ours == {d.toordinal(): str(n) for d, n in theirs.items()}, len(ours) > 700)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "True"]
