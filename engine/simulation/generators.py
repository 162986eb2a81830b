"""Payload and data generators of the behaviour model: small compiled objects that build JSON values at random.

Each generator is written in YAML as a plain value (a constant) or a mapping with one generator key
(docs/simulation.md lists them). Compiled once; ``value(ctx)`` draws from ``ctx.rng`` and evaluates
expressions against ``ctx.env``.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ..expressions import Expression, Template
from ..runtime.actions import to_json
from .distributions import Dist

__all__ = ["GenContext", "Generator", "GENERATOR_KEYS"]

#: Every generator key the language knows (the schema lists the same).
GENERATOR_KEYS = (
    "const", "expr", "text", "choice", "pick", "chance", "if", "switch", "person", "number", "integer",
    "date", "object", "repeat", "scale_map", "scale_pick", "perturb", "clamp", "blend", "cases",
)


class GenContext(Protocol):
    """What a generator may use while it runs."""

    rng: random.Random
    env: dict[str, Any]
    now: dt.datetime

    def people(self, roles: Sequence[str], exclude: Sequence[Any], count: int) -> list[str]: ...

    def cases(self, count: int, scope: Any) -> list[dict[str, Any]]: ...

    def add_days(self, day: dt.date, n: int, working: bool) -> dt.date: ...


class Generator(ABC):
    """A payload value generator; each kind says how it draws its value."""

    __slots__ = ()

    @abstractmethod
    def value(self, ctx: GenContext) -> Any:
        """The value drawn for this context."""


class Const(Generator):
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def value(self, ctx: GenContext) -> Any:
        v = self.v
        if isinstance(v, (dict, list)):
            return _copy(v)
        return v


_IMMUTABLE = (str, int, float, bool, type(None))


def _copy(v: Any) -> Any:
    """A deep copy of a constant read from YAML (plain dicts, lists and scalars) without ``copy.deepcopy``'s memo."""
    t = type(v)
    if t is dict:
        return {k: _copy(x) for k, x in v.items()}
    if t is list:
        return [_copy(x) for x in v]
    if t in _IMMUTABLE:
        return v
    return copy.deepcopy(v)


class Expr(Generator):
    __slots__ = ("e",)

    def __init__(self, e: Expression) -> None:
        self.e = e

    def value(self, ctx: GenContext) -> Any:
        return to_json(self.e.evaluate(ctx.env))


class Text(Generator):
    __slots__ = ("t",)

    def __init__(self, t: Template) -> None:
        self.t = t

    def value(self, ctx: GenContext) -> Any:
        return self.t.render(ctx.env)


class Choice(Generator):
    __slots__ = ("values", "cum", "total")

    def __init__(self, pairs: Sequence[tuple[Generator, float]]) -> None:
        self.values = tuple(g for g, _ in pairs)
        acc, cum = 0.0, []
        for _, w in pairs:
            acc += w
            cum.append(acc)
        self.cum = tuple(cum)
        self.total = acc

    def value(self, ctx: GenContext) -> Any:
        x = ctx.rng.random() * self.total
        for g, c in zip(self.values, self.cum, strict=True):
            if x < c:
                return g.value(ctx)
        return self.values[-1].value(ctx)


class Pick(Generator):
    """One item of a list, uniformly (``count``: that many distinct items, as a list)."""

    __slots__ = ("of", "count")

    def __init__(self, of: Generator, count: Dist | None) -> None:
        self.of, self.count = of, count

    def value(self, ctx: GenContext) -> Any:
        items = self.of.value(ctx)
        if isinstance(items, dict):
            items = list(items.values())
        if not items:
            return [] if self.count is not None else None
        if self.count is None:
            return items[ctx.rng.randrange(len(items))]
        n = max(0, min(len(items), round(self.count.sample(ctx.rng))))
        return ctx.rng.sample(list(items), n)


class Chance(Generator):
    __slots__ = ("p", "then", "other")

    def __init__(self, p: float, then: Generator, other: Generator) -> None:
        self.p, self.then, self.other = p, then, other

    def value(self, ctx: GenContext) -> Any:
        return self.then.value(ctx) if ctx.rng.random() < self.p else self.other.value(ctx)


class If(Generator):
    __slots__ = ("cond", "then", "other")

    def __init__(self, cond: Expression, then: Generator, other: Generator) -> None:
        self.cond, self.then, self.other = cond, then, other

    def value(self, ctx: GenContext) -> Any:
        return self.then.value(ctx) if self.cond.test(ctx.env) else self.other.value(ctx)


class Switch(Generator):
    __slots__ = ("on", "cases", "default")

    def __init__(self, on: Expression, cases: Mapping[str, Generator], default: Generator) -> None:
        self.on, self.cases, self.default = on, dict(cases), default

    def value(self, ctx: GenContext) -> Any:
        key = self.on.evaluate(ctx.env)
        return self.cases.get(str(key) if key is not None else "null", self.default).value(ctx)


class Person(Generator):
    """Someone (or ``count`` different people) from the population holding one of ``roles``."""

    __slots__ = ("roles", "exclude", "count")

    def __init__(self, roles: tuple[str, ...], exclude: tuple[Expression, ...], count: Dist | None) -> None:
        self.roles, self.exclude, self.count = roles, exclude, count

    def value(self, ctx: GenContext) -> Any:
        excluded: list[Any] = []
        for e in self.exclude:
            v = e.evaluate(ctx.env)
            excluded.extend(v if isinstance(v, list) else [v])
        n = 1 if self.count is None else max(0, round(self.count.sample(ctx.rng)))
        chosen = ctx.people(self.roles, excluded, n)
        if self.count is None:
            return chosen[0] if chosen else None
        return chosen


class Number(Generator):
    __slots__ = ("dist", "integer")

    def __init__(self, dist: Dist, integer: bool) -> None:
        self.dist, self.integer = dist, integer

    def value(self, ctx: GenContext) -> Any:
        v = self.dist.sample(ctx.rng)
        return round(v) if self.integer else round(v, 6)


class DateGen(Generator):
    """A date ``days``/``working_days`` after ``from`` (default: today), as ISO text."""

    __slots__ = ("base", "dist", "working")

    def __init__(self, base: Expression | None, dist: Dist | None, working: bool) -> None:
        self.base, self.dist, self.working = base, dist, working

    def value(self, ctx: GenContext) -> Any:
        if self.base is None:
            day = ctx.now.date()
        else:
            v = self.base.evaluate(ctx.env)
            if v is None:
                return None
            day = v.date() if isinstance(v, dt.datetime) else v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])
        if self.dist is not None:
            day = ctx.add_days(day, round(self.dist.sample(ctx.rng)), self.working)
        return day.isoformat()


class ObjectGen(Generator):
    """A mapping built field by field; later fields see the earlier ones as ``payload.FIELD``."""

    __slots__ = ("fields", "top")

    def __init__(self, fields: Sequence[tuple[str, Generator]], top: bool = False) -> None:
        self.fields, self.top = tuple(fields), top

    def value(self, ctx: GenContext) -> Any:
        out: dict[str, Any] = {}
        env = ctx.env
        saved = env.get("payload")
        if self.top:
            env["payload"] = out
        try:
            for name, g in self.fields:
                v = g.value(ctx)
                if v is not None:
                    out[name] = v
        finally:
            if self.top:
                env["payload"] = saved
        return out


class ListGen(Generator):
    __slots__ = ("items",)

    def __init__(self, items: Sequence[Generator]) -> None:
        self.items = tuple(items)

    def value(self, ctx: GenContext) -> Any:
        return [g.value(ctx) for g in self.items]


class Repeat(Generator):
    __slots__ = ("count", "item")

    def __init__(self, count: Dist, item: Generator) -> None:
        self.count, self.item = count, item

    def value(self, ctx: GenContext) -> Any:
        n = max(0, round(self.count.sample(ctx.rng)))
        return [self.item.value(ctx) for _ in range(n)]


class Cases(Generator):
    """``count`` distinct case ids from the population (the arrival's programme, or the whole authority)."""

    __slots__ = ("count", "scope")

    def __init__(self, count: Generator, scope: Expression | None) -> None:
        self.count, self.scope = count, scope

    def value(self, ctx: GenContext) -> Any:
        n = self.count.value(ctx)
        n = max(1, int(n)) if isinstance(n, (int, float)) else 1
        scope = self.scope.evaluate(ctx.env) if self.scope is not None else None
        return [c["case_id"] for c in ctx.cases(n, scope)]


# --------------------------------------------------------------------------- grading scales


class ScaleGen(Generator):
    __slots__ = ("keys", "rank")

    def __init__(self, levels: Sequence[str]) -> None:
        self.keys = tuple(levels)  # lowest rank first
        self.rank = {k: i for i, k in enumerate(self.keys)}

    def shift(self, level: Any, step: int) -> Any:
        i = self.rank.get(level)
        if i is None:
            return level
        j = i + step
        if j < 0 or j >= len(self.keys):
            j = i - step  # at the end of the scale a move can only go the other way
        return self.keys[max(0, min(len(self.keys) - 1, j))]


class ScaleMap(ScaleGen):
    """A level for each key: a shared ``centre`` level moved by a step drawn from ``shift`` weights."""

    __slots__ = ("names", "centre", "steps", "cum", "total")

    def __init__(self, levels: Sequence[str], names: Generator, centre: Generator, shift: Mapping[int, float]) -> None:
        super().__init__(levels)
        self.names, self.centre = names, centre
        items = sorted(shift.items())
        self.steps = tuple(s for s, _ in items)
        acc, cum = 0.0, []
        for _, w in items:
            acc += w
            cum.append(acc)
        self.cum, self.total = tuple(cum), acc

    def value(self, ctx: GenContext) -> Any:
        names = self.names.value(ctx) or []
        centre = self.centre.value(ctx)
        i = self.rank.get(centre, 0)
        top = len(self.keys) - 1
        out = {}
        rng = ctx.rng
        for name in names:
            x = rng.random() * self.total
            step = self.steps[-1]
            for s, c in zip(self.steps, self.cum, strict=True):
                if x < c:
                    step = s
                    break
            out[str(name)] = self.keys[max(0, min(top, i + step))]
        return out


class ScalePick(ScaleGen):
    """One level summarising the levels of a mapping or list: median, lowest, highest, mode or random."""

    __slots__ = ("of", "how")

    def __init__(self, levels: Sequence[str], of: Generator, how: str) -> None:
        super().__init__(levels)
        self.of, self.how = of, how

    def value(self, ctx: GenContext) -> Any:
        items = self.of.value(ctx)
        values = list(items.values()) if isinstance(items, dict) else list(items or [])
        ranks = sorted(self.rank[v] for v in values if v in self.rank)
        if not ranks:
            return None
        how = self.how
        if how == "lowest":
            r = ranks[0]
        elif how == "highest":
            r = ranks[-1]
        elif how == "random":
            r = ranks[ctx.rng.randrange(len(ranks))]
        elif how == "mode":
            r = max(sorted(set(ranks)), key=ranks.count)
        else:  # median; an even count takes the lower middle half the time
            mid = len(ranks) // 2
            r = ranks[mid] if len(ranks) % 2 else ranks[mid - (ctx.rng.random() < 0.5)]
        return self.keys[r]


class Perturb(ScaleGen):
    """A copy of a level (or of each level in a mapping or list), each moved one step with probability ``p``."""

    __slots__ = ("of", "p", "otherwise")

    def __init__(self, levels: Sequence[str], of: Expression, p: float, otherwise: Generator | None) -> None:
        super().__init__(levels)
        self.of, self.p, self.otherwise = of, p, otherwise

    def _move(self, level: Any, rng: random.Random) -> Any:
        if rng.random() < self.p:
            return self.shift(level, 1 if rng.random() < 0.5 else -1)
        return level

    def value(self, ctx: GenContext) -> Any:
        src = self.of.evaluate(ctx.env)
        if src is None:
            return self.otherwise.value(ctx) if self.otherwise is not None else None
        rng = ctx.rng
        if isinstance(src, dict):
            return {k: self._move(v, rng) for k, v in src.items()}
        if isinstance(src, list):
            return [self._move(v, rng) for v in src]
        return self._move(src, rng)


class Clamp(ScaleGen):
    """A level kept between the lowest and highest levels of ``within`` (a mapping or list)."""

    __slots__ = ("v", "within")

    def __init__(self, levels: Sequence[str], v: Generator, within: Generator) -> None:
        super().__init__(levels)
        self.v, self.within = v, within

    def value(self, ctx: GenContext) -> Any:
        level = self.v.value(ctx)
        items = self.within.value(ctx)
        values = list(items.values()) if isinstance(items, dict) else list(items or [])
        ranks = [self.rank[v] for v in values if v in self.rank]
        if not ranks or level not in self.rank:
            return level
        r = max(min(ranks), min(max(ranks), self.rank[level]))
        return self.keys[r]


class Blend(Generator):
    """For each key, the value of one of several mappings chosen at random (e.g. a moderator's agreed grades)."""

    __slots__ = ("sources",)

    def __init__(self, sources: Sequence[Expression]) -> None:
        self.sources = tuple(sources)

    def value(self, ctx: GenContext) -> Any:
        maps = [s.evaluate(ctx.env) for s in self.sources]
        maps = [m for m in maps if isinstance(m, dict)]
        if not maps:
            return None
        rng = ctx.rng
        return {k: maps[rng.randrange(len(maps))].get(k, maps[0][k]) for k in maps[0]}


Compiler = Callable[[Any, tuple], Generator]
