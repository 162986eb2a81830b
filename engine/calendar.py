"""Working days, durations, deadline anchors and the explanations of computed due dates."""

from __future__ import annotations

import datetime as _dt
import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from engine.errors import DurationError

__all__ = [
    "LONDON",
    "Calendar",
    "london_date",
    "Due",
    "Duration",
    "DURATION_FORMS",
    "parse_duration",
    "remaining",
    "resume",
]

LONDON = ZoneInfo("Europe/London")


def london_date(value: object) -> date | None:
    """The day ``value`` falls on in England, or None if it is not a date.

    A date is taken as it is; a date-time is read in Europe/London (a naive one is taken as London
    time already), so 23:30 UTC on a summer evening is the next day; ISO text of either is read
    the same way.
    """
    if isinstance(value, datetime):
        return (value.astimezone(LONDON) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) <= 10 else london_date(datetime.fromisoformat(text))
        except ValueError:
            return None
    return None

# The largest N a duration may carry: ten years of days.  Anything bigger is a
# typo in configuration, not a real timescale.
_MAX_N = 3660

# Our own names, so output never depends on the process locale (%a/%b do).
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKEND_NAMES = {5: "Saturday", 6: "Sunday"}
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


def _full(d: date) -> str:
    """``Fri 18 Dec 2026``."""
    return f"{_DAY_NAMES[d.weekday()]} {d.day} {_MONTH_ABBR[d.month - 1]} {d.year}"


def _short(d: date, with_year: bool = False) -> str:
    """``25 Dec`` (or ``25 Dec 2026`` when the short form would be ambiguous)."""
    s = f"{d.day} {_MONTH_ABBR[d.month - 1]}"
    return f"{s} {d.year}" if with_year else s


def _month_name(year: int, month: int) -> str:
    return f"{_MONTH_NAMES[month - 1]} {year}"


def _join(items: list[str]) -> str:
    """English list joining: ``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    # Not stdlib ``calendar.monthrange``: this module is itself called calendar,
    # and a two-line table is clearer than guarding the import.
    if month == 2 and _is_leap(year):
        return 29
    return _MONTH_DAYS[month - 1]


def _add_months(d: date, months: int) -> tuple[date, bool]:
    """``d`` plus whole months, clamped to the month's end; also says whether it clamped."""
    y, m0 = divmod(d.year * 12 + d.month - 1 + months, 12)
    if not 1 <= y <= 9999:
        raise DurationError(f"{months} months after {d.isoformat()} is outside the dates Python can represent")
    last = _days_in_month(y, m0 + 1)
    if d.day > last:
        return date(y, m0 + 1, last), True
    return date(y, m0 + 1, d.day), False


# ---------------------------------------------------------------------------
# Calendar
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tables:
    """Precomputed per-day facts over the calendar's year range.

    Index ``i`` is ``ordinal - base``.  ``cum[i]`` counts the working days on or
    before that day, so every question (N-th working day after, count between)
    is a couple of list lookups rather than a walk over days.
    """

    base: int                 # ordinal of 1 Jan of first_year
    size: int                 # number of days covered
    cum: list[int]            # working days with ordinal <= base + i
    working: bytearray        # 1 if base + i is a working day
    work: list[int]           # sorted ordinals of working days
    off: list[int]            # sorted ordinals of non-working days
    off_pairs: tuple[tuple[date, str], ...]  # (date, reason) for each entry of ``off``
    reasons: dict[int, str]   # ordinal -> reason, for non-working days


#: (country, subdiv, first_year, last_year) -> {ordinal: name}: answers of the ``holidays`` package,
#: given once, or handed over by a cached configuration load (engine/config/cache.py) so that a command
#: run again on the same configuration does not import and expand it.
_KNOWN_HOLIDAYS: dict[tuple[str, str | None, int, int], Mapping[int, str]] = {}


def public_holidays(country: str, subdiv: str | None, first_year: int, last_year: int) -> dict[int, str]:
    """The public holidays (observed days included) in ``first_year``..``last_year``: ordinal -> name."""
    known = _KNOWN_HOLIDAYS.get((country, subdiv, first_year, last_year))
    if known is not None:
        return dict(known)
    # Imported here, not at module top: ``holidays`` costs ~50 ms to import
    # and ~80 ms to expand 91 years, which ``import engine.calendar`` and
    # commands that never touch a deadline should not pay.
    import holidays

    years = range(first_year, last_year + 1)
    # observed=True keeps substitute days (e.g. "Boxing Day (observed)" on
    # Mon 28 Dec 2026); subdiv="ENG" is required for Easter Monday and the
    # Late Summer bank holiday, which are not UK-wide.
    country_class = _country_class(country)
    if country_class is not None:  # what country_holidays does, with the class it would find
        public = country_class(years=years, subdiv=subdiv, expand=True, observed=True, prov=None, state=None,
                               language="en_GB", categories=None)
    else:
        public = holidays.country_holidays(country, subdiv=subdiv, years=years, observed=True, language="en_GB")
    named = {d.toordinal(): str(name) for d, name in public.items()}
    _KNOWN_HOLIDAYS[(country, subdiv, first_year, last_year)] = named
    return dict(named)


@lru_cache(maxsize=8)
def _country_class(country: str) -> Any:
    """The ``holidays`` class of ``country`` (``GB``), from its own module; None: let ``holidays`` find it.

    ``holidays.country_holidays`` imports the package ``holidays.countries``, which imports the modules
    of all ~250 countries (~70 ms) to use one. Each country's module imports nothing from that package,
    so it is run here by itself, then taken out of ``sys.modules``: code that imports the package later
    gets the package, with its own copy of the module.
    """
    import importlib.util
    import sys
    from pathlib import Path

    try:
        import holidays
        from holidays.registry import COUNTRIES

        module = next((name for name, codes in COUNTRIES.items() if country in codes), None)
        if module is None or not module.isidentifier():
            return None
        qualified = f"holidays.countries.{module}"
        loaded = sys.modules.get(qualified)
        if loaded is None:
            path = Path(holidays.__file__).parent / "countries" / f"{module}.py"
            spec = importlib.util.spec_from_file_location(qualified, path)
            if spec is None or spec.loader is None or not path.is_file():
                return None
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[qualified] = loaded  # while it runs, as an import would have it
            try:
                spec.loader.exec_module(loaded)
            finally:
                sys.modules.pop(qualified, None)
        return getattr(loaded, country, None)
    except Exception:  # another layout of the package: its own way
        return None


def remember_public_holidays(country: str, subdiv: str | None, first_year: int, last_year: int,
                             named: Mapping[int, str]) -> None:
    """Take ``named`` as what :func:`public_holidays` would answer (from a cache keyed by the holidays package)."""
    _KNOWN_HOLIDAYS[(country, subdiv, first_year, last_year)] = dict(named)


@lru_cache(maxsize=32)
def _build_tables(
    country: str,
    subdiv: str | None,
    closures: tuple[tuple[date, str], ...],
    first_year: int,
    last_year: int,
) -> _Tables:
    # The cache means equal calendars share one set of tables and the answer
    # never depends on which call happened first.
    named = public_holidays(country, subdiv, first_year, last_year)
    closed = {d.toordinal(): reason for d, reason in closures}

    base = date(first_year, 1, 1).toordinal()
    end = date(last_year, 12, 31).toordinal()
    size = end - base + 1
    cum: list[int] = [0] * size
    working = bytearray(size)
    work: list[int] = []
    off: list[int] = []
    off_pairs: list[tuple[date, str]] = []
    reasons: dict[int, str] = {}
    count = 0
    weekday = date.fromordinal(base).weekday()
    for i in range(size):
        o = base + i
        reason: str | None = None
        holiday = named.get(o)
        if weekday >= 5:
            # A holiday falling on a weekend is still a weekend day; naming the
            # holiday too explains why a substitute day follows.
            reason = _WEEKEND_NAMES[weekday] + (f" ({holiday})" if holiday else "")
        elif holiday is not None:
            reason = holiday
        elif o in closed:
            reason = f"local closure: {closed[o]}"
        if reason is None:
            count += 1
            working[i] = 1
            work.append(o)
        else:
            off.append(o)
            # Kept as ready-made pairs so a Due's ``skipped`` is one tuple slice.
            off_pairs.append((date.fromordinal(o), reason))
            reasons[o] = reason
        cum[i] = count
        weekday = 0 if weekday == 6 else weekday + 1
    return _Tables(base, size, cum, working, work, off, tuple(off_pairs), reasons)


@dataclass(frozen=True)
class Calendar:
    """Which days are working days: weekends, bank holidays and local closures.

    Build the English calendar with :meth:`Calendar.england`.  Lookup tables
    are built on first use and shared between equal calendars.
    """

    name: str
    closures: tuple[tuple[date, str], ...] = ()
    first_year: int = 1990
    last_year: int = 2080
    country: str = "GB"
    subdiv: str | None = "ENG"
    _t: _Tables | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.first_year, int) or not isinstance(self.last_year, int) \
                or not 1 <= self.first_year <= self.last_year <= 9998:
            raise DurationError(
                f"calendar {self.name!r}: year range {self.first_year}..{self.last_year} is not valid"
            )
        raw = self.closures
        items = raw.items() if isinstance(raw, Mapping) else raw
        norm: dict[date, str] = {}
        for entry in items:
            try:
                d, reason = entry
            except (TypeError, ValueError):
                raise DurationError(
                    f"calendar {self.name!r}: a closure must be a date and a reason, got {entry!r}"
                ) from None
            if isinstance(d, datetime) or not isinstance(d, date):
                raise DurationError(f"calendar {self.name!r}: closure {d!r} is not a date")
            if not self.first_year <= d.year <= self.last_year:
                # Checked here rather than ignored: a closure outside the range
                # is almost always a typo in the year.
                raise DurationError(
                    f"calendar {self.name!r}: closure {d.isoformat()} is outside the years "
                    f"{self.first_year}-{self.last_year} the calendar covers"
                )
            norm[d] = str(reason).strip() or "closed"
        # Sorted tuple: hashable, and two calendars with the same closures
        # given in a different order are equal and share tables.
        object.__setattr__(self, "closures", tuple(sorted(norm.items())))

    @classmethod
    def england(
        cls,
        name: str = "england",
        closures: Mapping[date, str] | None = None,
        first_year: int = 1990,
        last_year: int = 2080,
    ) -> Calendar:
        """England: weekends, bank holidays (``holidays`` GB/ENG) and local closure days."""
        return cls(name=name, closures=tuple((closures or {}).items()),
                   first_year=first_year, last_year=last_year, country="GB", subdiv="ENG")

    # -- internals ---------------------------------------------------------

    def _tables(self) -> _Tables:
        t = self._t
        if t is None:
            t = _build_tables(self.country, self.subdiv, self.closures, self.first_year, self.last_year)
            # A memo on a frozen instance; two threads racing here store the
            # same cached object, so no lock is needed.
            object.__setattr__(self, "_t", t)
        return t

    def _index(self, t: _Tables, d: date) -> int:
        i = d.toordinal() - t.base
        if 0 <= i < t.size:
            return i
        raise DurationError(
            f"{d.isoformat()} is outside calendar {self.name!r}, which covers "
            f"{self.first_year}-01-01 to {self.last_year}-12-31"
        )

    def _past_range(self, what: str) -> DurationError:
        return DurationError(
            f"{what} falls outside calendar {self.name!r}, which covers "
            f"{self.first_year}-01-01 to {self.last_year}-12-31"
        )

    def _off_between(self, first: date, last: date) -> tuple[tuple[date, str], ...]:
        """Every non-working day in ``[first, last]`` with its reason, in date order."""
        t = self._t or self._tables()
        off = t.off
        lo = bisect_left(off, first.toordinal())
        hi = bisect_right(off, last.toordinal(), lo)
        return t.off_pairs[lo:hi]

    # -- public ------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        t = self._t or self._tables()
        return bool(t.working[self._index(t, d)])

    def non_working_reason(self, d: date) -> str | None:
        """Why ``d`` is not a working day (``"Saturday"``, ``"Christmas Day"``, ...), or None."""
        t = self._t or self._tables()
        self._index(t, d)
        return t.reasons.get(d.toordinal())

    def add_working_days(self, d: date, n: int) -> date:
        """The ``n``-th working day after ``d`` (``d`` is day 0); before ``d`` when ``n`` < 0.

        ``n == 0`` returns ``d`` itself, working day or not.
        """
        # The hot path of every deadline: the range check is inlined rather
        # than calling _index, which costs a third of the time.
        t = self._t or self._tables()
        i = d.toordinal() - t.base
        if not 0 <= i < t.size:
            self._index(t, d)  # raises with the full message
        if n > 0:
            k = t.cum[i] + n - 1
        elif n == 0:
            return d
        else:
            # Working days strictly before d, then step back.
            k = t.cum[i] - t.working[i] + n
        work = t.work
        if 0 <= k < len(work):
            return date.fromordinal(work[k])
        raise self._past_range(f"{n} working days from {d.isoformat()}")

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]``; negative (working days in ``[end, start)``) if end < start.

        So ``add_working_days(start, k) == end`` for ``k = working_days_between(start, end)``
        whenever ``end`` is a working day, in either direction.
        """
        t = self._t or self._tables()
        i = self._index(t, start)
        j = self._index(t, end)
        if j >= i:
            return t.cum[j] - t.cum[i]
        return (t.cum[j] - t.working[j]) - (t.cum[i] - t.working[i])

    def previous_working_day_on_or_before(self, d: date) -> date:
        t = self._t or self._tables()
        i = self._index(t, d)
        if t.working[i]:
            return d
        k = t.cum[i] - 1  # cum counts working days on or before d; d is not one
        if k >= 0:
            return date.fromordinal(t.work[k])
        raise self._past_range(f"the previous working day on or before {d.isoformat()}")

    def next_working_day_on_or_after(self, d: date) -> date:
        t = self._t or self._tables()
        i = self._index(t, d)
        if t.working[i]:
            return d
        k = t.cum[i]
        if k < len(t.work):
            return date.fromordinal(t.work[k])
        raise self._past_range(f"the next working day on or after {d.isoformat()}")

    def holidays_between(self, start: date, end: date) -> list[tuple[date, str]]:
        """Non-working days in ``[start, end]`` that are not weekends, with reasons."""
        t = self._t or self._tables()
        self._index(t, start)
        self._index(t, end)
        return [(d, r) for d, r in self._off_between(start, end) if d.weekday() < 5]


# ---------------------------------------------------------------------------
# Due dates
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A computed due date that can explain itself.

    A date-only deadline is due by the *end* of ``date``.  ``skipped`` lists the
    non-working days passed over (weekends included), each with its reason.
    """

    date: date
    # _dt.date below: inside this class body the name ``date`` is the field above
    anchor: _dt.date
    duration: Duration
    calendar: str
    skipped: tuple[tuple[_dt.date, str], ...] = ()
    # Set when ``roll`` moved a date that was not a working day.
    rolled_from: _dt.date | None = None
    # Set on the Due that ``resume`` builds after a stop-the-clock pause.
    resumed: bool = False

    @property
    def due_at(self) -> datetime:
        """The instant the deadline passes: midnight in London at the start of the next day."""
        # Midnight always exists in Europe/London (the clocks change at 01:00
        # and 02:00), so combining with the zone is DST-safe.
        return datetime.combine(self.date + timedelta(days=1), time(0), tzinfo=LONDON)

    def _rolled(self) -> str:
        if self.rolled_from is not None and self.date < self.rolled_from:
            return "rolled back to the previous working day"
        return "rolled forward to the next working day"

    def skipped_reason(self, d: _dt.date) -> str | None:
        """Why ``d``, a day this deadline passed over, is not a working day."""
        return next((r for day, r in self.skipped if day == d), None)

    def _phrase(self) -> str:
        if self.resumed:
            d = self.duration
            unit = _plural(d.n, "working day") if d.kind == "working_days" else _plural(d.n, "calendar day")
            return f"resumed {_full(self.anchor)} with {unit} left"
        return self.duration._phrase(self.anchor)

    def summary(self) -> str:
        """One sentence: the due date, the rule, and the holidays and closures skipped."""
        head = f"due {_full(self.date)}: {self._phrase()}"
        if self.rolled_from is not None:
            head += f" is {_full(self.rolled_from)}, {self._rolled()}"
        with_year = (self.date - self.anchor).days >= 365
        # "28 Dec (Boxing Day observed)" reads better than nested brackets
        named = [f"{_short(d, with_year)} ({r.replace(' (', ' ').replace(')', '')})" for d, r in self.skipped if d.weekday() < 5]
        weekend = sum(1 for d, _ in self.skipped if d.weekday() >= 5)
        if named and weekend:
            return f"{head}, skipping {_join(named)}, plus {_plural(weekend, 'weekend day')}"
        if named:
            return f"{head}, skipping {_join(named)}"
        if weekend:
            return f"{head}, skipping {_plural(weekend, 'weekend day')}"
        return head

    def explanation(self) -> list[str]:
        """The summary, the rule, every day skipped and the end-of-day rule, one per line."""
        dur = self.duration
        lines = [self.summary()]
        phrase = self._phrase()
        if dur.kind == "working_days":
            phrase += " (day 0)"
        lines.append(f"{phrase}, calendar {self.calendar}")
        note = dur._note(self.anchor)
        if note:
            lines.append(note)
        if self.rolled_from is not None:
            reason = (self.skipped_reason(self.rolled_from) or "").replace(" (", " ").replace(")", "")
            lines.append(
                f"{_full(self.rolled_from)} is not a working day{f' ({reason})' if reason else ''}, "
                f"so the deadline {self._rolled().replace('rolled', 'rolls')}"
            )
        lines.extend(f"skipped {_full(d)}: {r}" for d, r in self.skipped)
        if self.date < self.anchor:
            lines.append(
                f"{_full(self.date)} is before the anchor {_full(self.anchor)}: "
                f"the deadline had already passed when it started"
            )
        lines.append(f"due by the end of {_full(self.date)} (23:59 Europe/London)")
        return lines


# ---------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------

DURATION_FORMS: tuple[str, ...] = (
    "N working days        e.g. '10 working days', '1 working day', '0 working days'",
    "N days                e.g. '28 days', '28 calendar days'",
    "N weeks               e.g. '3 weeks', '6 weeks'",
    "N months              e.g. '3 months' (31 Jan + 1 month = 28/29 Feb)",
    "N years               e.g. '1 year'",
    "end of week N         e.g. 'end of week 4' (day 28 of the anchor's month; N is 1 to 4)",
    "end of month          the last day of the anchor's month",
    "1st of next month     also 'start of next month'",
    "end of next month     the last day of the month after the anchor's",
    ("..., next working day suffix on any form: roll forward to a working day "
     "(also ', roll forward'), e.g. '3 weeks, next working day'"),
    ("..., previous working day suffix on any form: roll back to a working day "
     "(also ', roll back'), e.g. 'end of week 4, previous working day'"),
)

_KINDS = (
    "working_days", "days", "weeks", "months", "years",
    "end_of_week", "end_of_month", "start_of_next_month", "end_of_next_month",
)
_COUNTED = frozenset({"working_days", "days", "weeks", "months", "years"})

_NUM = r"(?P<n>[+-]?\d+)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), kind)
    for p, kind in (
        (rf"{_NUM} working days?", "working_days"),
        (rf"{_NUM} (?:calendar )?days?", "days"),
        (rf"{_NUM} weeks?", "weeks"),
        (rf"{_NUM} months?", "months"),
        (rf"{_NUM} years?", "years"),
        (rf"end of week {_NUM}", "end_of_week"),
        (r"end of (?:the )?month", "end_of_month"),
        (r"(?:1st|first|start) of (?:the )?next month", "start_of_next_month"),
        (r"end of (?:the )?next month", "end_of_next_month"),
    )
)
_ROLL = re.compile(r"(?:,|\s)\s*(?:then\s+)?(?:(?P<next>next working day|roll(?:ed)? forward)|previous working day|roll(?:ed)? back)$")
ROLLS = ("", "next", "previous")  # no roll; to the next working day; to the previous one (Duration.rolls)


def _unreadable(text: object) -> DurationError:
    return DurationError(
        f"cannot read the duration {text!r}; accepted forms are:\n  " + "\n  ".join(DURATION_FORMS),
        text=text if isinstance(text, str) else repr(text),
    )


@dataclass(frozen=True)
class Duration:
    """A parsed, immutable duration such as ``10 working days`` or ``end of week 4``."""

    text: str
    kind: str
    n: int
    roll: bool = False  # a due date that is not a working day moves to one ...
    roll_to: str = "next"  # ... the next, or the "previous"

    def __post_init__(self) -> None:
        if self.roll_to not in ("next", "previous"):
            raise DurationError(f"unknown roll {self.roll_to!r}; expected 'next' or 'previous'")
        if self.kind not in _KINDS:
            raise DurationError(f"unknown duration kind {self.kind!r}; expected one of {', '.join(_KINDS)}")
        if not isinstance(self.n, int) or isinstance(self.n, bool) or not 0 <= self.n <= _MAX_N:
            raise DurationError(f"impossible duration {self.text!r}: N must be a whole number from 0 to {_MAX_N}")
        if self.kind == "end_of_week" and not 1 <= self.n <= 4:
            raise DurationError(
                f"impossible duration {self.text!r}: a month has weeks 1 to 4 "
                f"(week N ends on day 7*N); use 'end of month' for the last day"
            )

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Read a duration; raise :class:`DurationError` naming the text on anything else."""
        if not isinstance(text, str):
            raise _unreadable(text)
        s = re.sub(r"\s+", " ", text.strip().lower())
        s = re.sub(r"\s*,\s*", ", ", s)
        roll = ""
        m = _ROLL.search(s)
        if m:
            roll = "next" if m.group("next") else "previous"
            s = s[: m.start()].rstrip(" ,")
        for pattern, kind in _PATTERNS:
            m = pattern.fullmatch(s)
            if m is None:
                continue
            n = 0
            if "n" in pattern.groupindex:
                digits = m.group("n")
                n = int(digits)
                # A sign is refused outright: "-3 days" is not a deadline, and
                # "+3 days" suggests the writer meant something else.
                if digits[0] in "+-" or n > _MAX_N:
                    raise DurationError(
                        f"impossible duration {text!r}: N must be a whole number from 0 to {_MAX_N}",
                        text=text,
                    )
            if kind == "end_of_week" and not 1 <= n <= 4:
                raise DurationError(
                    f"impossible duration {text!r}: a month has weeks 1 to 4 "
                    f"(week N ends on day 7*N); use 'end of month' for the last day",
                    text=text,
                )
            return cls(text=_canonical(kind, n, roll), kind=kind, n=n, roll=bool(roll), roll_to=roll or "next")
        raise _unreadable(text)

    @property
    def uses_working_days(self) -> bool:
        """True when the duration counts working days (so pauses count working days too)."""
        return self.kind == "working_days"

    def describe(self) -> str:
        """Human text: ``10 working days``, ``the end of week 4 of the month``."""
        k, n = self.kind, self.n
        if k == "working_days":
            s = _plural(n, "working day")
        elif k == "days":
            s = _plural(n, "calendar day")
        elif k in ("weeks", "months", "years"):
            s = _plural(n, k[:-1])
        elif k == "end_of_week":
            s = f"the end of week {n} of the month"
        elif k == "end_of_month":
            s = "the end of the month"
        elif k == "start_of_next_month":
            s = "the 1st of next month"
        else:
            s = "the end of next month"
        if self.roll:
            s += f", or the {self.roll_to} working day if that is not one"
        return s

    @property
    def rolls(self) -> str:
        """Where a due date that is not a working day moves: "next", "previous" or "" (it stays)."""
        return self.roll_to if self.roll else ""

    def with_roll(self, roll: str) -> Duration:
        """The same duration rolling ``roll`` ("next", "previous", or "" to stay put)."""
        if roll not in ROLLS:
            raise DurationError(f"unknown roll {roll!r}; expected 'next', 'previous' or ''")
        return Duration(text=_canonical(self.kind, self.n, roll), kind=self.kind, n=self.n, roll=bool(roll), roll_to=roll or "next")

    # -- computing -----------------------------------------------------------

    def _raw(self, anchor: date) -> date:
        """The date before any rolling, computed without a calendar where possible."""
        k, n = self.kind, self.n
        if k == "days":
            return anchor + timedelta(days=n)
        if k == "weeks":
            return anchor + timedelta(weeks=n)
        if k == "months":
            return _add_months(anchor, n)[0]
        if k == "years":
            return _add_months(anchor, 12 * n)[0]
        if k == "end_of_week":
            return anchor.replace(day=7 * n)
        if k == "end_of_month":
            return anchor.replace(day=_days_in_month(anchor.year, anchor.month))
        if k == "start_of_next_month":
            return _add_months(anchor.replace(day=1), 1)[0]
        if k == "end_of_next_month":
            nxt = _add_months(anchor.replace(day=1), 1)[0]
            return nxt.replace(day=_days_in_month(nxt.year, nxt.month))
        raise AssertionError(k)  # working days are handled by the caller

    def _unrolled(self, anchor: date, calendar: Calendar) -> date:
        """The due date before any rolling."""
        if self.kind == "working_days":
            return calendar.add_working_days(anchor, self.n)
        try:
            return self._raw(anchor)
        except OverflowError:
            raise DurationError(f"{self.text} after {anchor.isoformat()} is outside the dates Python can represent") from None

    def _rolled(self, raw: date, calendar: Calendar) -> date:
        """Where ``raw`` moves when the duration rolls and it is not a working day (else ``raw`` itself)."""
        if not self.roll or calendar.is_working_day(raw):
            return raw
        if self.roll_to == "previous":
            return calendar.previous_working_day_on_or_before(raw)
        return calendar.next_working_day_on_or_after(raw)

    def due_date(self, anchor: date, calendar: Calendar) -> date:
        """``apply(anchor, calendar).date`` without working out what it skipped (the runtime's path: it keeps
        the date, and ``apply`` explains it when asked)."""
        return self._rolled(self._unrolled(anchor, calendar), calendar)

    def apply(self, anchor: date, calendar: Calendar) -> Due:
        """The due date for a deadline anchored on ``anchor``, with what it skipped."""
        raw = self._unrolled(anchor, calendar)
        skipped = calendar._off_between(anchor + timedelta(days=1), raw) if self.kind == "working_days" and raw > anchor else ()
        due = self._rolled(raw, calendar)
        if due == raw:
            return Due(raw, anchor, self, calendar.name, skipped)
        if due < raw:
            rolled = calendar._off_between(due + timedelta(days=1), raw)
        else:
            rolled = calendar._off_between(raw, due - timedelta(days=1))
        # For working days the anchor is excluded from ``skipped`` but a
        # rolled-from anchor (0 working days on a holiday) is listed.
        seen = {d for d, _ in skipped}
        skipped = skipped + tuple(x for x in rolled if x[0] not in seen)
        return Due(due, anchor, self, calendar.name, skipped, rolled_from=raw)

    # -- explaining ----------------------------------------------------------

    def _phrase(self, anchor: date) -> str:
        """``10 working days after Fri 18 Dec 2026`` and the like."""
        k, n = self.kind, self.n
        a = _full(anchor)
        if k in _COUNTED:
            unit = {"working_days": "working day", "days": "calendar day"}.get(k, k[:-1])
            return f"{_plural(n, unit)} after {a}"
        if k == "end_of_week":
            return f"the end of week {n} of {_month_name(anchor.year, anchor.month)} (day {7 * n}), from {a}"
        if k == "end_of_month":
            return f"the end of the month of {a}"
        if k == "start_of_next_month":
            return f"the 1st of the month after {a}"
        return f"the end of the month after {a}"

    def _note(self, anchor: date) -> str | None:
        """A line saying when month arithmetic had to clamp to the month's end."""
        if self.kind not in ("months", "years"):
            return None
        months = self.n if self.kind == "months" else 12 * self.n
        try:
            result, clamped = _add_months(anchor, months)
        except DurationError:
            return None
        if not clamped:
            return None
        return (
            f"{_MONTH_NAMES[result.month - 1]} {result.year} has no day {anchor.day}, "
            f"so the last day of the month is used"
        )


def _canonical(kind: str, n: int, roll: str) -> str:
    if kind == "working_days":
        s = _plural(n, "working day")
    elif kind in ("days", "weeks", "months", "years"):
        s = _plural(n, kind[:-1])
    elif kind == "end_of_week":
        s = f"end of week {n}"
    elif kind == "end_of_month":
        s = "end of month"
    elif kind == "start_of_next_month":
        s = "1st of next month"
    else:
        s = "end of next month"
    return f"{s}, {roll} working day" if roll else s


@lru_cache(maxsize=1024)
def parse_duration(text: str) -> Duration:
    """:meth:`Duration.parse`, cached: configuration repeats the same few texts."""
    return Duration.parse(text)


# ---------------------------------------------------------------------------
# Stop-the-clock pauses
# ---------------------------------------------------------------------------


def remaining(due: Due, paused_on: date, calendar: Calendar) -> tuple[str, int]:
    """What is left of a deadline paused on ``paused_on`` (day 0); never negative.

    Working-day deadlines keep counting working days (``("working_days", n)``);
    every other kind counts calendar days (``("days", n)``).
    """
    if due.duration.uses_working_days:
        return "working_days", max(0, calendar.working_days_between(paused_on, due.date))
    return "days", max(0, (due.date - paused_on).days)


def resume(
    kind_and_n: tuple[str, int], resumed_on: date, calendar: Calendar, *, roll: bool = False
) -> Due:
    """The new due date when a paused deadline restarts on ``resumed_on`` (day 0).

    ``roll`` rolls a calendar-day result forward to a working day, as the
    original duration's ``roll`` did.
    """
    kind, n = kind_and_n
    if kind == "working_days":
        text = _plural(n, "working day")
    elif kind == "days":
        text = _plural(n, "day")
    else:
        raise DurationError(f"cannot resume a deadline with {kind!r} remaining; expected 'working_days' or 'days'")
    if roll and kind == "days":
        text += ", next working day"
    due = parse_duration(text).apply(resumed_on, calendar)
    return Due(due.date, due.anchor, due.duration, due.calendar, due.skipped, due.rolled_from, resumed=True)
