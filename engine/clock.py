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


def as_time(value: Any) -> dt.datetime:
    """An aware datetime in Europe/London from a datetime (naive means London), a date (its start) or ISO text."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=LONDON) if value.tzinfo is None else value.astimezone(LONDON)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=LONDON)
    if isinstance(value, str):
        return _parse_time(value)
    raise UsageError(f"expected a date or time, got {type(value).__name__}")


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
