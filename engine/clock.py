"""Clocks: time is always passed in or read from an injected clock, never from the wall behind a caller's back."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, Protocol

from .calendar import LONDON
from .errors import UsageError


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""


class SystemClock:
    """The wall clock, in Europe/London. Only the CLI and hosts that ask for it use this."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(LONDON)


class FixedClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: Any) -> None:
        self._now = as_time(start)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: Any) -> None:
        self._now = as_time(when)

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self._now = self._now + delta
        return self._now


# The history's and the outbox's "at" text. Calls fired at one moment share one datetime object (``as_time`` caches
# parsed text, the simulator reuses its tick), and isoformat on a zoneinfo time costs over a
# microsecond, a tenth of the engine's own work per event. Keyed on identity, the last object is
# kept alive (so its id is not reused), and datetimes are immutable, so the remembered text cannot go stale.
_last_text: tuple[Any, str] = (None, "")


def iso_text(at: dt.datetime) -> str:
    """``at.isoformat()``, remembered for the last time asked about."""
    global _last_text  # noqa: PLW0603 - a one-entry cache for every engine, replaced whole
    last = _last_text  # one tuple, replaced whole: safe if threads share the engine
    if last[0] is at:
        return last[1]
    text = at.isoformat()
    _last_text = (at, text)
    return text


#: The years times may fall in: those the calendars cover by default (working days are known for them).
FIRST_YEAR, LAST_YEAR = 1990, 2080


def as_time(value: Any) -> dt.datetime:
    """An aware datetime in Europe/London from a datetime (naive means London), a date (its start) or ISO text.

    A naive local time that does not exist in London (the hour the clocks go forward) or that happens
    twice (the hour they go back) is refused: give its UTC offset. So is a time outside FIRST_YEAR to
    LAST_YEAR.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            result = _local(value)
        else:
            if not FIRST_YEAR <= value.year <= LAST_YEAR:
                raise _out_of_range(value)
            result = value.astimezone(LONDON)
    elif isinstance(value, dt.date):
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise _out_of_range(value)
        result = dt.datetime(value.year, value.month, value.day, tzinfo=LONDON)
    elif isinstance(value, str):
        return _parse_time(value)
    else:
        raise UsageError(f"expected a date or time, got {type(value).__name__}")
    if not FIRST_YEAR <= result.year <= LAST_YEAR:
        raise _out_of_range(value)
    return result


def _out_of_range(value: Any) -> UsageError:
    return UsageError(f"{value} is outside the years qaflow works with ({FIRST_YEAR}-{LAST_YEAR})")


def _local(value: dt.datetime) -> dt.datetime:
    """A naive wall-clock time read in London, refused where it is not one moment."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise _out_of_range(value)
    first, second = value.replace(tzinfo=LONDON, fold=0), value.replace(tzinfo=LONDON, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    shown = value.isoformat(timespec="minutes")
    if first.astimezone(dt.UTC).astimezone(LONDON).replace(tzinfo=None) != value:
        raise UsageError(
            f"{shown} does not exist in Europe/London: the clocks go forward an hour that night; "
            f"give the UTC offset (e.g. {shown}+00:00) or a time outside the gap"
        )
    raise UsageError(
        f"{shown} happens twice in Europe/London: the clocks go back an hour that night; "
        f"give the UTC offset: {shown}+01:00 (the first, BST) or {shown}+00:00 (the second, GMT)"
    )


@lru_cache(maxsize=4096)
def _parse_time(value: str) -> dt.datetime:
    text = value.strip()
    try:
        if len(text) == 10:
            return as_time(dt.date.fromisoformat(text))
        return as_time(dt.datetime.fromisoformat(text))
    except ValueError:
        pass
    raise UsageError(f"'{value}' is not an ISO 8601 date or time (e.g. 2026-10-01 or 2026-10-01T09:30)")
