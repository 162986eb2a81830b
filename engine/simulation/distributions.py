"""Random numbers for the behaviour model: distributions, Poisson counts and delays on the working-day calendar."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..calendar import LONDON, Calendar

__all__ = ["Dist", "Delay", "Late", "poisson", "parse_dist", "DistError"]


class DistError(ValueError):
    """A distribution written in a way the model does not understand (reported as a config problem)."""


@dataclass(frozen=True, slots=True)
class Dist:
    """A number drawn at random: a constant, uniform, triangular, lognormal, exponential or normal; clamped."""

    kind: str
    a: float = 0.0
    b: float = 0.0
    c: float = 0.0
    low: float | None = None
    high: float | None = None

    def sample(self, rng: random.Random) -> float:
        kind = self.kind
        if kind == "const":
            value = self.a
        elif kind == "uniform":
            value = rng.uniform(self.a, self.b)
        elif kind == "triangular":
            value = rng.triangular(self.a, self.c, self.b)  # (low, high, mode)
        elif kind == "lognormal":
            value = rng.lognormvariate(self.a, self.b)
        elif kind == "exponential":
            value = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        else:  # normal
            value = rng.gauss(self.a, self.b)
        if self.low is not None and value < self.low:
            value = self.low
        if self.high is not None and value > self.high:
            value = self.high
        return value

    def mean(self) -> float:
        """Roughly what to expect (for documentation and checks)."""
        if self.kind == "const":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "triangular":
            return (self.a + self.b + self.c) / 3
        if self.kind == "lognormal":
            return math.exp(self.a + self.b**2 / 2)
        return self.a


def parse_dist(spec: Any) -> Dist:
    """``3`` | ``{uniform: [a, b]}`` | ``{triangular: [low, mode, high]}`` | ``{lognormal: {median, sigma}}``
    | ``{exponential: {mean}}`` | ``{normal: {mean, sd}}``, each optionally with ``min`` / ``max``."""
    if isinstance(spec, bool):
        raise DistError(f"expected a number or a distribution, found {spec!r}")
    if isinstance(spec, (int, float)):
        return Dist("const", float(spec))
    if not isinstance(spec, dict):
        raise DistError(f"expected a number or a distribution, found {spec!r}")
    low, high = spec.get("min"), spec.get("max")
    kinds = [k for k in ("uniform", "triangular", "lognormal", "exponential", "normal") if k in spec]
    if len(kinds) != 1:
        raise DistError("a distribution needs exactly one of uniform, triangular, lognormal, exponential, normal")
    kind = kinds[0]
    args = spec[kind]
    if kind == "uniform":
        a, b = (float(x) for x in args)
        if b < a:
            raise DistError(f"uniform [{a}, {b}]: the second number must not be smaller than the first")
        return Dist("uniform", a, b, low=low, high=high)
    if kind == "triangular":
        lo, mode, hi = (float(x) for x in args)
        if not lo <= mode <= hi:
            raise DistError(f"triangular [{lo}, {mode}, {hi}]: expected low <= mode <= high")
        return Dist("triangular", lo, hi, mode, low=low, high=high)
    if kind == "lognormal":
        median, sigma = float(args["median"]), float(args["sigma"])
        if median <= 0 or sigma < 0:
            raise DistError("lognormal: median must be above 0 and sigma not negative")
        return Dist("lognormal", math.log(median), sigma, low=low, high=high)
    if kind == "exponential":
        mean = float(args["mean"])
        if mean < 0:
            raise DistError("exponential: the mean must not be negative")
        return Dist("exponential", mean, low=low, high=high)
    mean, sd = float(args["mean"]), float(args["sd"])
    if sd < 0:
        raise DistError("normal: sd must not be negative")
    return Dist("normal", mean, sd, low=low if low is not None else 0.0, high=high)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson count (Knuth's method, split for large means so it stays exact and fast)."""
    if lam <= 0:
        return 0
    total = 0
    while lam > 0:
        step = min(lam, 30.0)
        lam -= step
        limit, k, p = math.exp(-step), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        total += k
    return total


@dataclass(frozen=True, slots=True)
class Delay:
    """How long after an event (or after an ``anchor`` date) someone acts: working days, days or hours."""

    unit: str  # "working_days" | "days" | "hours"
    dist: Dist
    anchor: Any = None  # an Expression giving a date/datetime, or None: from now

    def target(self, now: dt.datetime, rng: random.Random, clock: WorkingTime, anchor_value: Any = None) -> dt.datetime:
        value = self.dist.sample(rng)
        if anchor_value is not None:
            base = anchor_value if isinstance(anchor_value, dt.datetime) else None
            base_day = anchor_value.date() if isinstance(anchor_value, dt.datetime) else anchor_value
        else:
            base, base_day = now, now.date()
        if self.unit == "hours":
            start = base if base is not None else dt.datetime(base_day.year, base_day.month, base_day.day, 9, tzinfo=LONDON)
            when = start + dt.timedelta(hours=value)
        else:
            n = round(value)
            n = max(n, 0)
            if self.unit == "working_days":
                day = clock.calendar.add_working_days(base_day, n) if n else base_day
            else:
                day = base_day + dt.timedelta(days=n)
            when = clock.at_working_time(day, rng)
        if when <= now:
            when = clock.soon(now, rng)
        return when


@dataclass(frozen=True, slots=True)
class Late:
    """A chance of being late: the action slips by a further ``extra`` delay."""

    chance: float
    extra: Delay


class WorkingTime:
    """Turns dates into times people act: a working day, between the working hours (Europe/London)."""

    __slots__ = ("calendar", "start_hour", "end_hour", "_minutes", "_first")

    def __init__(self, calendar: Calendar, hours: tuple[float, float] = (9.0, 17.0)) -> None:
        self.calendar = calendar
        self.start_hour, self.end_hour = hours
        self._minutes = int((self.end_hour - self.start_hour) * 60)
        self._first = int(self.start_hour * 60)

    def at_working_time(self, day: dt.date, rng: random.Random) -> dt.datetime:
        cal = self.calendar
        if not cal.is_working_day(day):
            day = cal.next_working_day_on_or_after(day)
        minute = self._first + rng.randrange(self._minutes)
        return dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=LONDON)

    def soon(self, now: dt.datetime, rng: random.Random) -> dt.datetime:
        """Shortly after ``now`` within working hours: 10 minutes to 2 hours later, or the next working day."""
        day = now.date()
        if self.calendar.is_working_day(day):
            when = now + dt.timedelta(minutes=10 + rng.randrange(110))
            end = dt.datetime(day.year, day.month, day.day, int(self.end_hour), int(self.end_hour % 1 * 60), tzinfo=LONDON)
            start = dt.datetime(day.year, day.month, day.day, int(self.start_hour), int(self.start_hour % 1 * 60), tzinfo=LONDON)
            if start <= when <= end:
                return when
            if when < start:
                return start + dt.timedelta(minutes=rng.randrange(60))
        nxt = self.calendar.add_working_days(day, 1)
        return self.at_working_time(nxt, rng)


Sampler = Callable[[random.Random], float]
