"""The condition language: safe Python-style expressions, checked against an allow-list and compiled once."""

# How it works: the text is parsed with `ast`, every node is checked against an
# allow-list (never a deny-list), and the tree is rewritten so that field access
# is key lookup only (never getattr), and '*', '%' and '**' go through guarded
# helpers. The rewritten tree is compiled by Python into one function per
# expression, which runs with empty builtins and sees only the helper table.
#
# Budgets: MAX_REPEAT bounds each value '*' builds (counted through nesting, so
# shared references cannot multiply it), and MAX_STEPS bounds the work of one
# evaluation wherever work can multiply: a loop inside a loop charges the items
# it goes through when it starts, str() and messages charge the items they write
# out, and inside a loop the operators and functions that walk the same list or
# text on every item charge its length. Work that only grows with the size of the
# data (one pass of an outermost loop) is not charged, and code that charges
# nothing carries no budget at all, so simple conditions cost what they did.
#
# Semantics in brief: `data.lead.overall` looks up keys in mappings; a missing
# key, or any lookup on null, gives null; null counts as empty for `in`, `len`,
# `any`/`all`/`count` and `for`; ordering comparisons between different kinds
# (null < 3, a date with text) raise EvaluationError. docs/conditions.md is the
# language as service managers read it.

from __future__ import annotations

import ast
import difflib
import functools
import inspect
import re
import warnings
from calendar import monthrange as _monthrange
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date as _date
from datetime import datetime as _datetime
from datetime import time as _time
from datetime import timedelta as _timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from engine.errors import EvaluationError, ExpressionError

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "MAX_REPEAT",
    "MAX_STEPS",
    "Expression",
    "Reference",
    "Template",
    "compile_expression",
    "compile_template",
]

MAX_LENGTH = 2000  # characters in one expression
MAX_NODES = 400  # AST expression nodes in one expression
MAX_DEPTH = 24  # nesting depth of the AST (and of brackets)
MAX_REPEAT = 10_000  # largest value '*' may build: characters of text, items of lists (counted through nesting)
MAX_STEPS = 1_000_000  # work one evaluation may do: items gone through by loops, str() and messages (see above)
MAX_INT_BITS = 100_000  # largest whole number '*' and '**' may build (about 30,000 digits)
MAX_EXPONENT = 64

try:  # naive date-times read by datetime() are local time in England
    from zoneinfo import ZoneInfo

    _LONDON: Any = ZoneInfo("Europe/London")
except Exception:  # pragma: no cover - no tz database on this machine
    _LONDON = None


# --------------------------------------------------------------------------------------
# Describing values in error messages
# --------------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    """A service manager's word for the kind of a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, _datetime):
        return "a date and time"
    if isinstance(value, _date):
        return "a date"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


_PY_KINDS = {
    "NoneType": "null",
    "int": "a number",
    "float": "a number",
    "bool": "true/false",
    "str": "text",
    "list": "a list",
    "tuple": "a list",
    "dict": "a mapping",
    "date": "a date",
    "datetime": "a date and time",
    "datetime.date": "a date",
    "datetime.datetime": "a date and time",
}


def _py_kind(type_name: str) -> str:
    return _PY_KINDS.get(type_name, type_name)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_NOT_SUPPORTED = re.compile(r"'(.+?)' not supported between instances of '([\w.]+)' and '([\w.]+)'")
_OPERAND = re.compile(r"unsupported operand type\(s\) for (.+?): '([\w.]+)' and '([\w.]+)'")
_CANT_COMPARE = re.compile(r"can't compare ([\w.]+) to ([\w.]+)")
_NOT_ITERABLE = re.compile(r"argument of type '([\w.]+)' is not iterable")
_OBJ_NOT_ITERABLE = re.compile(r"'([\w.]+)' object is not iterable")
_UNHASHABLE = re.compile(r"unhashable type: '([\w.]+)'")
_BAD_UNARY = re.compile(r"bad operand type for unary (.+?): '([\w.]+)'")
_CONCAT = re.compile(r'can only concatenate (\w+) \(not "([\w.]+)"\) to \w+')


def _explain(exc: BaseException) -> str:
    """Turn a Python exception raised while evaluating into plain English."""
    message = str(exc)
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, OverflowError):
        if "date" in message or "year" in message:
            return "a date went beyond the calendar (years 1 to 9999)"
        return "a number became too large"
    if isinstance(exc, InvalidOperation):
        return "a number cannot be worked out exactly (it is too large or too precise)"
    if isinstance(exc, RecursionError):
        return "the data is nested too deeply (or refers to itself)"
    if isinstance(exc, MemoryError):
        return "ran out of memory"
    if m := _NOT_SUPPORTED.search(message):
        return f"cannot compare {_py_kind(m[2])} with {_py_kind(m[3])} using '{m[1]}'"
    if m := _CANT_COMPARE.search(message):
        return f"cannot compare {_py_kind(m[1])} with {_py_kind(m[2])}"
    if "offset-naive and offset-aware" in message:
        return "cannot compare a date and time without a time zone with one that has a time zone"
    if m := _OPERAND.search(message):
        return f"cannot use '{m[1]}' on {_py_kind(m[2])} and {_py_kind(m[3])}"
    if m := _CONCAT.search(message):
        return f"cannot use '+' on {_py_kind(m[1])} and {_py_kind(m[2])}"
    if m := _BAD_UNARY.search(message):
        return f"cannot use '{m[1]}' on {_py_kind(m[2])}"
    if m := _NOT_ITERABLE.search(message):
        return f"'in' needs a list, text or mapping on its right, not {_py_kind(m[1])}"
    if m := _OBJ_NOT_ITERABLE.search(message):
        return f"cannot go through {_py_kind(m[1])} item by item"
    if m := _UNHASHABLE.search(message):
        return f"{_py_kind(m[1])} cannot be used as a key"
    if isinstance(exc, TypeError) and "'in <string>' requires string" in message:
        return "'in' on text needs text on its left"
    return f"{type(exc).__name__}: {message}"


# --------------------------------------------------------------------------------------
# Runtime helpers the compiled code calls (names start with '_q' so no expression can)
# --------------------------------------------------------------------------------------


def _q_step(obj: Any, key: Any) -> Any:
    """One lookup: a key on a mapping, a whole-number position on a list or text; null stays null."""
    if type(obj) is dict:
        return obj.get(key)
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    if isinstance(obj, (list, tuple, str)):
        if type(key) is int:
            try:
                return obj[key]
            except IndexError:
                return None
        raise EvaluationError(
            f"cannot look up {_short(key)} on {_kind(obj)}; lists and text take a whole-number position"
        )
    raise EvaluationError(f"cannot look up {_short(key)} on {_kind(obj)} ({_short(obj)})")


def _q_at(obj: Any, *keys: Any) -> Any:
    """Follow a path of keys: ``data.lead.overall`` is ``_q_at(data, "lead", "overall")``."""
    for key in keys:
        if type(obj) is dict:
            obj = obj.get(key)
        else:
            obj = _q_step(obj, key)
    return obj


def _q_slice(obj: Any, lower: Any, upper: Any, step: Any, budget: list[int] | None = None) -> Any:
    if budget is not None:
        _q_w(obj, budget)
    if obj is None:
        return None
    if not isinstance(obj, (list, tuple, str)):
        raise EvaluationError(f"only lists and text can be sliced, not {_kind(obj)}")
    for part in (lower, upper, step):
        if part is not None and type(part) is not int:
            raise EvaluationError(f"slice positions must be whole numbers, not {_kind(part)}")
    if step == 0:
        raise EvaluationError("a slice step cannot be zero")
    return obj[lower:upper:step]


class _LimitError(EvaluationError):
    """A size limit or the evaluation budget refused the work (also reported at compile time when constant)."""


def _spent() -> _LimitError:
    return _LimitError(
        f"the evaluation budget of {MAX_STEPS:,} steps is used up: it would go through too many items, "
        "in its loops or in what it writes out (see 'Limits' in docs/conditions.md)"
    )


# the values whose length is the work of walking them; host mappings (deadlines, parent) are not charged
_SIZED = (str, list, tuple, dict)


def _size(value: Any, limit: int) -> int:
    """Characters of text plus items of lists and mappings, counted through nesting; stops once past ``limit``.

    A list that holds one list 10,000 times counts that list 10,000 times: that is what
    str() or a comparison would go through.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            total += len(item)
        elif kind is list or kind is tuple:
            total += len(item)
            if total > limit:
                return total
            stack.extend(x for x in item if type(x) in _SIZED)
        elif kind is dict:
            total += len(item)
            if total > limit:
                return total
            stack.extend(x for x in item.values() if type(x) in _SIZED)
        if total > limit:
            return total
    return total


def _q_iter(items: Any, budget: list[int] | None = None) -> Any:
    """What a ``for`` goes through: null is empty, a mapping gives its keys.

    With a budget, every item is charged when the loop starts (also when any()/all() stop early).
    """
    if items is None:
        return ()
    if isinstance(items, (bool, int, float, _date)):
        raise EvaluationError(f"cannot go through {_kind(items)} item by item")
    if budget is not None:
        try:
            budget[0] -= len(items)
        except TypeError:  # a host function's iterator: charge item by item
            return _counted(items, budget)
        if budget[0] < 0:
            raise _spent()
    return items


def _counted(items: Iterable[Any], budget: list[int]) -> Iterable[Any]:
    for item in items:
        budget[0] -= 1
        if budget[0] < 0:
            raise _spent()
        yield item


def _q_w(value: Any, budget: list[int]) -> Any:
    """Inside a loop: charge the length of a list, text or mapping an operator or function will walk."""
    if type(value) in _SIZED:
        budget[0] -= len(value)
        if budget[0] < 0:
            raise _spent()
    return value


def _q_in(container: Any) -> Any:
    """The right side of ``in``: null counts as empty."""
    return () if container is None else container


def _q_inw(container: Any, budget: list[int]) -> Any:
    """The right side of ``in`` inside a loop: a list or text is charged by its length."""
    if container is None:
        return ()
    kind = type(container)
    if kind is list or kind is tuple or kind is str:
        budget[0] -= len(container)
        if budget[0] < 0:
            raise _spent()
    return container


def _q_mul(a: Any, b: Any, budget: list[int] | None = None) -> Any:
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        if ta is int and tb is int and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise _LimitError("a number became too large")
        return a * b
    for seq, count in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            times = max(count, 0)
            built = len(seq) * times
            if built <= MAX_REPEAT and times and not isinstance(seq, str):
                built = _size(seq, MAX_REPEAT // times + 1) * times  # items inside the items count too
            if built > MAX_REPEAT:
                what = ("characters" if isinstance(seq, str) else
                        "items (counting the items of the lists inside it and the characters of its text)")
                raise _LimitError(f"repeating {_kind(seq)} {times} times would make more than {MAX_REPEAT:,} {what}")
            if budget is not None:  # inside a loop: building it is work for each item
                budget[0] -= built
                if budget[0] < 0:
                    raise _spent()
            return seq * times
    return a * b  # raises TypeError for anything else, explained by evaluate()


def _q_mod(a: Any, b: Any) -> Any:
    if isinstance(a, str):  # '%' formatting can build huge text and read mappings
        raise EvaluationError("'%' works on numbers only")
    return a % b


def _q_pow(a: Any, b: int) -> Any:
    if isinstance(a, int) and a.bit_length() * b > MAX_INT_BITS:
        raise _LimitError("a number became too large")
    return a**b


def _q_str(value: Any, budget: list[int]) -> str:
    """str() in an expression: the items written out are charged to the budget."""
    return _to_text(value, budget)


# --------------------------------------------------------------------------------------
# The fixed function table
# --------------------------------------------------------------------------------------


def _to_text(value: Any, budget: list[int] | None = None) -> str:
    """How a value reads in a message: null is empty, dates are ISO 8601, lists are joined with ', '.

    With a budget, each item of a list or mapping written out is one step.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, _date):  # datetime too
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        if budget is not None:
            budget[0] -= len(value)
            if budget[0] < 0:
                raise _spent()
        return ", ".join(_to_text(item, budget) for item in value)
    if isinstance(value, Mapping):
        if budget is not None:
            budget[0] -= len(value)
            if budget[0] < 0:
                raise _spent()
        return ", ".join(f"{_to_text(k, budget)}: {_to_text(v, budget)}" for k, v in value.items())
    return str(value)


def _need_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise EvaluationError(f"{name}() needs text, not {_kind(value)}")
    return value


def fn_len(value: Any) -> int:
    """Number of items in a list or mapping, or characters in text; null counts as 0."""
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value)
    raise EvaluationError(f"len() needs text, a list or a mapping, not {_kind(value)}")


def fn_any(items: Any) -> bool:
    """True if at least one item is true; false for an empty list or null."""
    return any(_q_iter(items))


def fn_all(items: Any) -> bool:
    """True if every item is true; true for an empty list or null."""
    return all(_q_iter(items))


def fn_count(items: Any) -> int:
    """Number of items that are true."""
    return sum(1 for item in _q_iter(items) if item)


def fn_sum(items: Any) -> Any:
    """Total of the numbers; 0 for an empty list or null."""
    total: Any = 0
    for item in _q_iter(items):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise EvaluationError(f"sum() adds numbers, not {_kind(item)}")
        total = total + item
    return total


def _extreme(name: str, pick: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    items = list(_q_iter(args[0])) if len(args) == 1 else list(args)
    if not items:
        raise EvaluationError(f"{name}() of nothing: the list is empty")
    return pick(items)


def fn_min(*args: Any) -> Any:
    """Smallest of a list, or of several values."""
    return _extreme("min", min, args)


def fn_max(*args: Any) -> Any:
    """Largest of a list, or of several values."""
    return _extreme("max", max, args)


def fn_abs(value: Any) -> Any:
    """Size of a number without its sign."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvaluationError(f"abs() needs a number, not {_kind(value)}")
    return abs(value)


def fn_round(value: Any, places: Any = 0) -> Any:
    """Round to a number of decimal places (default 0); halves round away from zero (2.5 -> 3)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvaluationError(f"round() needs a number, not {_kind(value)}")
    if type(places) is not int or not -12 <= places <= 12:
        raise EvaluationError("round() takes a whole number of places from -12 to 12")
    if value != value or value in (float("inf"), float("-inf")):  # noqa: PLR0124 - NaN is the one value not equal to itself
        return value
    try:  # enough digits for any float (up to 1e308) to 12 places; the default context has 28
        rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=_ROUNDING)
    except InvalidOperation:  # pragma: no cover - the context above is wide enough for every number
        raise EvaluationError(f"round() cannot round {_short(value)} to {places} places") from None
    return int(rounded) if places <= 0 else float(rounded)


_ROUNDING = Context(prec=400, Emax=999, Emin=-999)


def fn_lower(text: Any) -> Any:
    """Text in lower case; null stays null."""
    return None if text is None else _need_text("lower", text).lower()


def fn_upper(text: Any) -> Any:
    """Text in upper case; null stays null."""
    return None if text is None else _need_text("upper", text).upper()


def fn_trim(text: Any) -> Any:
    """Text without spaces at either end; null stays null."""
    return None if text is None else _need_text("trim", text).strip()


def fn_contains(container: Any, item: Any) -> bool:
    """True if text contains a piece of text, a list contains an item, or a mapping has a key."""
    if container is None:
        return False
    if isinstance(container, str):
        return _need_text("contains", item) in container
    if isinstance(container, (list, tuple, Mapping)):
        return item in container
    raise EvaluationError(f"contains() needs text, a list or a mapping, not {_kind(container)}")


def fn_startswith(text: Any, prefix: Any) -> bool:
    """True if the text starts with the prefix; false for null."""
    if text is None:
        return False
    return _need_text("startswith", text).startswith(_need_text("startswith", prefix))


def _as_date(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, _datetime):
        if value.tzinfo is not None and _LONDON is not None:
            try:
                value = value.astimezone(_LONDON)
            except OverflowError:
                raise EvaluationError(
                    f"{name}() cannot give the UK date of {value.isoformat()}: in UK time it falls outside "
                    "the calendar (years 1 to 9999)"
                ) from None
        return value.date()
    if isinstance(value, _date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return _date.fromisoformat(text)
        except ValueError:
            pass
        try:
            return _as_date(name, _datetime.fromisoformat(text))
        except ValueError:
            raise EvaluationError(f"{name}() could not read {_short(value)} as a date (write YYYY-MM-DD)") from None
    raise EvaluationError(f"{name}() needs a date or text like '2024-05-31', not {_kind(value)}")


def fn_date(value: Any) -> Any:
    """The date in ISO text ('2024-05-31'), or the date part of a date and time; null stays null."""
    return _as_date("date", value)


def fn_datetime(value: Any) -> Any:
    """A date and time from ISO text ('2024-05-31T14:30'); without a zone it is UK local time."""
    if value is None:
        return None
    if isinstance(value, _datetime):
        result = value
    elif isinstance(value, _date):
        result = _datetime.combine(value, _time())
    elif isinstance(value, str):
        try:
            result = _datetime.fromisoformat(value.strip())
        except ValueError:
            raise EvaluationError(
                f"datetime() could not read {_short(value)} as a date and time (write YYYY-MM-DDTHH:MM)"
            ) from None
    else:
        raise EvaluationError(f"datetime() needs text like '2024-05-31T14:30', not {_kind(value)}")
    if result.tzinfo is None and _LONDON is not None:
        result = result.replace(tzinfo=_LONDON)
    return result


def fn_days_between(start: Any, end: Any) -> Any:
    """Calendar days from start to end (end - start); dates, date-times or ISO text; null if either is null."""
    first, second = _as_date("days_between", start), _as_date("days_between", end)
    if first is None or second is None:
        return None
    return (second - first).days


def fn_add_days(day: Any, n: Any) -> Any:
    """The date n calendar days after day (before it if n is negative); null if day is null."""
    first = _as_date("add_days", day)
    if first is None:
        return None
    if not isinstance(n, int) or isinstance(n, bool):
        raise EvaluationError(f"add_days() needs a whole number of days, not {_kind(n)}")
    try:
        return first + _timedelta(days=n)
    except OverflowError:
        raise EvaluationError(f"add_days() went beyond the calendar with {n} days") from None


def fn_add_months(day: Any, n: Any) -> Any:
    """The same day n months later (earlier if negative), kept within the month: 31 Jan + 1 month = 28 or 29 Feb."""
    first = _as_date("add_months", day)
    if first is None:
        return None
    if not isinstance(n, int) or isinstance(n, bool):
        raise EvaluationError(f"add_months() needs a whole number of months, not {_kind(n)}")
    index = first.year * 12 + first.month - 1 + n
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise EvaluationError(f"add_months() went beyond the calendar with {n} months")
    last = _monthrange(year, month + 1)[1]
    return _date(year, month + 1, min(first.day, last))


def fn_keys(mapping: Any) -> list[Any]:
    """The keys of a mapping as a list; null gives an empty list."""
    if mapping is None:
        return []
    if isinstance(mapping, Mapping):
        return list(mapping)
    raise EvaluationError(f"keys() needs a mapping, not {_kind(mapping)}")


def fn_values(mapping: Any) -> list[Any]:
    """The values of a mapping as a list; null gives an empty list."""
    if mapping is None:
        return []
    if isinstance(mapping, Mapping):
        return list(mapping.values())
    raise EvaluationError(f"values() needs a mapping, not {_kind(mapping)}")


def fn_coalesce(*values: Any) -> Any:
    """The first value that is not null (null if all are)."""
    for value in values:
        if value is not None:
            return value
    return None


def fn_is_null(value: Any) -> bool:
    """True if the value is null (missing)."""
    return value is None


def fn_str(value: Any) -> str:
    """The value as text, written as a message would show it (null is empty, dates ISO)."""
    return _to_text(value)


def fn_int(value: Any) -> int:
    """A whole number from a number (dropping any fraction) or from text like '12'."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise EvaluationError(f"int() could not read {_short(value)} as a whole number") from None
    raise EvaluationError(f"int() needs a number or text, not {_kind(value)}")


def fn_float(value: Any) -> float:
    """A number with a fraction from a number or from text like '2.5'."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise EvaluationError(f"float() could not read {_short(value)} as a number") from None
    raise EvaluationError(f"float() needs a number or text, not {_kind(value)}")


FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        "len": fn_len,
        "any": fn_any,
        "all": fn_all,
        "sum": fn_sum,
        "count": fn_count,
        "min": fn_min,
        "max": fn_max,
        "abs": fn_abs,
        "round": fn_round,
        "lower": fn_lower,
        "upper": fn_upper,
        "trim": fn_trim,
        "contains": fn_contains,
        "startswith": fn_startswith,
        "date": fn_date,
        "datetime": fn_datetime,
        "days_between": fn_days_between,
        "add_days": fn_add_days,
        "add_months": fn_add_months,
        "keys": fn_keys,
        "values": fn_values,
        "coalesce": fn_coalesce,
        "is_null": fn_is_null,
        "str": fn_str,
        "int": fn_int,
        "float": fn_float,
    }
)

# (fewest, most) arguments; None = any number
_ARITY: dict[str, tuple[int, int | None]] = {
    **dict.fromkeys(FUNCTIONS, (1, 1)),
    "min": (1, None),
    "max": (1, None),
    "round": (1, 2),
    "contains": (2, 2),
    "startswith": (2, 2),
    "days_between": (2, 2),
    "add_days": (2, 2),
    "add_months": (2, 2),
    "coalesce": (1, None),
}

# the functions that may take a generator: any(x > 1 for x in items)
GENERATOR_FUNCTIONS = frozenset({"any", "all", "sum", "count", "min", "max"})

_HELPERS: dict[str, Any] = {
    "__builtins__": {},
    "_q_at": _q_at,
    "_q_step": _q_step,
    "_q_any": any,  # any/all over a generator: the generator already handles null
    "_q_all": all,
    "_q_slice": _q_slice,
    "_q_iter": _q_iter,
    "_q_in": _q_in,
    "_q_inw": _q_inw,
    "_q_w": _q_w,
    "_q_str": _q_str,
    "_q_mul": _q_mul,
    "_q_mod": _q_mod,
    "_q_pow": _q_pow,
    "_q_type": type,
    "_q_unset": object(),
    "_q_dict": dict,
}


def _arity_of(function: Callable[..., Any]) -> tuple[int, int | None]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return (0, None)
    fewest, most = 0, 0
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            return (fewest, None)
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            if parameter.default is parameter.empty:
                fewest += 1
    return (fewest, most)


# --------------------------------------------------------------------------------------
# Positions
# --------------------------------------------------------------------------------------


class _Text:
    """The expression text, with conversions between offsets and 1-based (line, column)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def position(self, index: int) -> tuple[int, int]:
        line = max(i for i, start in enumerate(self.starts) if start <= index)
        return line + 1, index - self.starts[line] + 1

    def node_position(self, lineno: int, byte_col: int) -> tuple[int, int]:
        """An AST position (in the wrapped text, byte column) as a 1-based source position."""
        line = lineno - 1  # the wrapper puts "(" on a line of its own
        if line < 1:
            return 1, 1
        if line > len(self.lines):
            return self.end()
        text = self.lines[line - 1]
        column = len(text.encode("utf-8")[:byte_col].decode("utf-8", "ignore"))
        return line, column + 1

    def index(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1

    def end(self) -> tuple[int, int]:
        return len(self.lines), len(self.lines[-1]) + 1


_PAIRS = {"(": ")", "[": "]", "{": "}"}
_NAMES_OF = {"(": "'('", "[": "'['", "{": "'{'"}


def _skip_string(text: str, i: int) -> int | None:
    """Index just after the string literal starting at text[i], or None if it is not closed."""
    quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else text[i]
    j = i + len(quote)
    while j < len(text):
        char = text[j]
        if char == "\\":
            j += 2
            continue
        if text.startswith(quote, j):
            return j + len(quote)
        if len(quote) == 1 and char == "\n":
            return None
        j += 1
    return None


def _check_brackets(source: _Text) -> None:
    """Report unmatched brackets at their own position, and nesting deeper than MAX_DEPTH."""
    text = source.text
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "'\"":
            after = _skip_string(text, i)
            if after is None:
                return  # the parser reports the unclosed quote
            i = after
            continue
        if char == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if char in _PAIRS:
            stack.append((char, i))
            if len(stack) > MAX_DEPTH:
                raise ExpressionError(
                    f"brackets are nested more than {MAX_DEPTH} deep; split the condition up",
                    code="too-complex",
                    **_at(source.position(i)),
                )
        elif char in ")]}":
            if not stack:
                raise ExpressionError(f"'{char}' has no matching opening bracket", code="syntax", **_at(source.position(i)))
            opener, where = stack.pop()
            if _PAIRS[opener] != char:
                line, column = source.position(where)
                raise ExpressionError(
                    f"'{char}' does not match '{opener}' at line {line}, column {column}",
                    code="syntax",
                    **_at(source.position(i)),
                )
        i += 1
    if stack:
        opener, where = stack[-1]
        raise ExpressionError(f"'{opener}' is never closed", code="syntax", **_at(source.position(where)))


def _at(position: tuple[int, int]) -> dict[str, int]:
    return {"line": position[0], "column": position[1]}


_TOKEN = re.compile(r"[A-Za-z_]\w*|&&|\|\||==|!=|<=|>=|\*\*|//|\S")
_STATEMENT_WORDS = frozenset(
    "import from def class return while with del global nonlocal pass raise try except finally "
    "assert break continue async await yield elif".split()
)


def _syntax_error(error: SyntaxError, source: _Text) -> ExpressionError:
    message = error.msg or "invalid syntax"
    if "too many nested" in message or "too complex" in message:
        return ExpressionError("the condition is nested too deeply", code="too-complex", line=1, column=1)
    line = (error.lineno or 2) - 1
    if line > len(source.lines):
        return ExpressionError("unexpected end of expression", code="syntax", **_at(source.end()))
    if line < 1:
        line, column = 1, 1
    else:
        column = min(max(error.offset or 1, 1), len(source.lines[line - 1]) + 1)
    text = source.lines[line - 1]
    match = _TOKEN.match(text, column - 1) if column <= len(text) else None
    token = match.group() if match else ""
    if text[column - 1 : column + 1] in ("=>", "=<"):
        better = ">=" if text[column] == ">" else "<="
        plain = f"'{text[column - 1 : column + 1]}' is not an operator; use '{better}'"
    elif "Generator expression must be parenthesized" in message:
        plain = "a 'for' must be the only thing inside the function's brackets, as in any(x > 1 for x in items)"
    elif "unterminated" in message:
        plain = "a quoted text is not closed: a quote mark is missing"
    elif "Maybe you meant '==' or ':='" in message or "cannot assign" in message or "maybe you meant '=='" in message.lower():
        found = re.search(r"(?<![=!<>])=(?!=)", text[column - 1 :])
        if found:
            column += found.start()
        plain = "invalid syntax near '=' (use '==' to compare)"
    elif token == "=" or (token == "==" and text[column - 1 : column + 2] == "==="):
        plain = "invalid syntax near '=' (use '==' to compare)"
    elif token == "&&" or (token == "&" and text[column - 2 : column] == "&&"):
        plain = "'&&' is not part of the language; use 'and'"
    elif token == "||" or (token == "|" and text[column - 2 : column] == "||"):
        plain = "'||' is not part of the language; use 'or'"
    elif token == "!":
        plain = "'!' is not part of the language; use 'not' (or '!=' to compare)"
    elif token in _STATEMENT_WORDS:
        plain = f"'{token}' is not allowed: a condition is a single expression, not a statement"
    elif "expected 'else'" in message:
        plain = "'x if condition' needs an 'else' part: 'x if condition else y'"
    elif "forgot a comma" in message:
        plain = "two values stand next to each other with nothing between them (a missing operator or comma?)"
    elif token == "":
        plain = "unexpected end of line"
    elif message.startswith("invalid syntax"):
        plain = f"invalid syntax near '{token}'"
    else:
        plain = re.sub(r"\s*\(.*?line \d+\)", "", message)
    if line == len(source.lines) and not source.lines[-1][column - 1 :].strip():
        plain = "unexpected end of expression"
    return ExpressionError(plain, code="syntax", line=line, column=column)


# --------------------------------------------------------------------------------------
# Validation and rewriting
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A name path an expression reads, e.g. ``("data", "lead", "overall")``, for linting fields.

    The path stops at the first subscript that is not a constant string
    (``data.lead.domains[d]`` reads ``("data", "lead", "domains")``).
    ``line`` and ``column`` are 1-based positions of the root name.
    """

    path: tuple[str, ...]
    line: int
    column: int


_LITERAL_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}

_FORBIDDEN_NODES = {
    "Lambda": "'lambda' is not allowed: conditions cannot define functions",
    "NamedExpr": "assignment ':=' is not allowed (use '==' to compare)",
    "JoinedStr": "f-strings are not allowed; use a message template with {placeholders} instead",
    "ListComp": "list comprehensions are not allowed; use any(...), all(...), count(...), sum(...), min(...) or max(...) with a 'for'",
    "SetComp": "set comprehensions are not allowed; use any(...), all(...), count(...), sum(...), min(...) or max(...) with a 'for'",
    "DictComp": "dict comprehensions are not allowed; use any(...), all(...), count(...), sum(...), min(...) or max(...) with a 'for'",
    "GeneratorExp": "a 'for' is only allowed as the only argument of any(), all(), count(), sum(), min() or max()",
    "Set": "set literals {a, b} are not allowed; use a list [a, b]",
    "Starred": "'*' unpacking is not allowed",
    "Await": "'await' is not allowed",
    "Yield": "'yield' is not allowed",
    "YieldFrom": "'yield' is not allowed",
}

_BINARY = {ast.Add: None, ast.Sub: None, ast.Div: None, ast.FloorDiv: None, ast.Mult: "_q_mul", ast.Mod: "_q_mod"}
_BAD_BINARY = {
    ast.BitAnd: ("&", "'&' is not allowed; use 'and'"),
    ast.BitOr: ("|", "'|' is not allowed; use 'or'"),
    ast.BitXor: ("^", "'^' is not allowed; for powers use '**'"),
    ast.LShift: ("<<", "bit shifts '<<' are not allowed"),
    ast.RShift: (">>", "bit shifts '>>' are not allowed"),
    ast.MatMult: ("@", "'@' is not allowed"),
}
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)


def _call(name: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[])


class _Compiler:
    """Checks a parsed expression against the allow-list and rewrites it for compilation."""

    def __init__(self, source: _Text, names: frozenset[str] | None, functions: Mapping[str, Callable[..., Any]],
                 arity: Mapping[str, tuple[int, int | None]]) -> None:
        self.source = source
        self.names = names
        self.functions = functions
        self.arity = arity
        self.roots: set[str] = set()
        self.references: list[Reference] = []
        self.scope: list[str] = []  # loop variables of the enclosing generators
        self.in_iterable = False  # inside a generator's 'in ...' part, where ':=' is not allowed
        self.temporaries = 0
        self.cached: dict[tuple[Any, ...], str] = {}  # constant paths looked up once per evaluation
        self.budgeted = False  # the code reads the per-evaluation budget _q_b

    # the budget ------------------------------------------------------------------------

    def budget(self) -> ast.expr:
        self.budgeted = True
        return ast.Name(id="_q_b", ctx=ast.Load())

    def charged(self, rewritten: ast.expr, original: ast.AST) -> ast.expr:
        """Inside a loop, a value an operator or function walks is charged by its length on every item.

        Only values that are the same on every item (``x in data.cases``): those are walked in full
        again and again. A value that depends on the loop's variable (``d.grade``, ``data.m[d]``) is a
        different part of the data each time, and the charge would cost more than it guards.
        """
        if not self.scope or _is_literal(original) or self.varies(original):
            return rewritten
        return ast.copy_location(_call("_q_w", [rewritten, self.budget()]), original)

    def varies(self, original: ast.AST) -> bool:
        """True if the expression reads a variable of an enclosing loop."""
        return any(isinstance(n, ast.Name) and n.id in self.scope for n in ast.walk(original))

    # errors ---------------------------------------------------------------------------

    def position(self, node: ast.AST) -> tuple[int, int]:
        return self.source.node_position(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def fail(self, message: str, node: ast.AST, code: str = "forbidden",
             position: tuple[int, int] | None = None) -> ExpressionError:
        return ExpressionError(message, code=code, **_at(position or self.position(node)))

    def operator_position(self, left: ast.AST, right: ast.AST, symbol: str) -> tuple[int, int]:
        """Where an operator sits between two operands (the AST does not keep it)."""
        start = self.source.index(*self.source.node_position(left.end_lineno, left.end_col_offset))  # type: ignore[attr-defined]
        end = self.source.index(*self.source.node_position(right.lineno, right.col_offset))  # type: ignore[attr-defined]
        found = self.source.text.find(symbol, start, max(end, start))
        return self.source.position(found) if found >= 0 else self.position(right)

    def attribute_position(self, node: ast.Attribute) -> tuple[int, int]:
        if node.end_lineno is None or node.end_col_offset is None:
            return self.position(node)
        line, column = self.source.node_position(node.end_lineno, node.end_col_offset)
        return line, max(1, column - len(node.attr))

    def check_identifier(self, name: str, node: ast.AST, position: tuple[int, int] | None = None) -> None:
        if name.startswith("_") or "__" in name:
            raise self.fail(f"'{name}' is not allowed: names starting with '_' or containing '__' are reserved",
                            node, position=position)

    def unknown(self, kind: str, name: str, node: ast.AST, candidates: Iterable[str], code: str) -> ExpressionError:
        close = difflib.get_close_matches(name, sorted(set(candidates)), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return self.fail(f"unknown {kind} '{name}'{hint}", node, code=code)

    # dispatch ---------------------------------------------------------------------------

    def expr(self, node: ast.AST) -> ast.expr:
        kind = type(node).__name__
        handler = getattr(self, "on_" + kind, None)
        if handler is None:
            message = _FORBIDDEN_NODES.get(kind, f"'{kind}' is not allowed in a condition")
            raise self.fail(message, node)
        result: ast.expr = handler(node)
        return ast.copy_location(result, node)

    # leaves -----------------------------------------------------------------------------

    def on_Constant(self, node: ast.Constant) -> ast.expr:
        value = node.value
        if value is None or isinstance(value, (bool, int, float, str)):
            return ast.Constant(value=value)
        if isinstance(value, bytes):
            raise self.fail("byte strings b'...' are not allowed; use plain text", node)
        if isinstance(value, complex):
            raise self.fail("imaginary numbers are not allowed", node)
        raise self.fail(f"{value!r} is not allowed", node)

    def on_Name(self, node: ast.Name) -> ast.expr:
        return self.name(node, record=True)

    def name(self, node: ast.Name, *, record: bool) -> ast.expr:
        name = node.id
        self.check_identifier(name, node)
        if name in _LITERAL_NAMES:
            return ast.Constant(value=_LITERAL_NAMES[name])
        if name in self.scope:
            return ast.Name(id=name, ctx=ast.Load())
        if (self.names is not None and name in self.names) or (self.names is None and name not in self.functions):
            self.roots.add(name)
            if record:
                self.references.append(Reference((name,), *self.position(node)))
            return ast.Name(id=name, ctx=ast.Load())
        if name in self.functions:
            raise self.fail(f"'{name}' is a function: call it, as in {name}(...)", node)
        raise self.unknown("name", name, node, [*(self.names or ()), *self.functions, *self.scope], "unknown-name")

    # field access -----------------------------------------------------------------------

    def on_Attribute(self, node: ast.Attribute) -> ast.expr:
        return self.chain(node)

    def on_Subscript(self, node: ast.Subscript) -> ast.expr:
        if isinstance(node.slice, ast.Slice):
            part = node.slice
            bounds = [self.expr(p) if p is not None else ast.Constant(value=None)
                      for p in (part.lower, part.upper, part.step)]
            extra = [self.budget()] if self.scope and not self.varies(node.value) else []
            return _call("_q_slice", [self.expr(node.value), *bounds, *extra])
        return self.chain(node)

    def chain(self, node: ast.expr) -> ast.expr:
        """``a.b[c]`` becomes key lookups only, never ``getattr``.

        Each step is written inline so a lookup costs about as much as in plain
        Python: ``(t.get(k) if type(t := PREVIOUS) is dict else _q_step(t, k))``.
        In a generator's iterable, where ':=' is not allowed, the path is one
        call ``_q_at(a, "b", c)`` instead (it runs once per loop, not per item).
        """
        steps: list[ast.expr] = []  # outermost first
        has_attribute = False
        while isinstance(node, ast.Attribute) or (isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice)):
            steps.append(node)
            has_attribute = has_attribute or isinstance(node, ast.Attribute)
            node = node.value
        steps.reverse()
        base = node
        if has_attribute and not isinstance(base, ast.Name):
            first = next(s for s in steps if isinstance(s, ast.Attribute))
            assert isinstance(first, ast.Attribute)
            self.check_identifier(first.attr, first, self.attribute_position(first))
            raise self.fail("'.' is only allowed on a data path such as data.lead.overall", first,
                            position=self.attribute_position(first))
        keys: list[ast.expr] = []
        path: list[str] | None = None
        if isinstance(base, ast.Name):
            rewritten_base = self.name(base, record=False)
            if isinstance(rewritten_base, ast.Name) and base.id not in self.scope:
                path = [base.id]
        else:
            rewritten_base = self.expr(base)
        for step in steps:
            if isinstance(step, ast.Attribute):
                self.check_identifier(step.attr, step, self.attribute_position(step))
                key: ast.expr = ast.Constant(value=step.attr)
                if path is not None:
                    path.append(step.attr)
            else:
                key = self.expr(step.slice)  # type: ignore[attr-defined]
                if path is not None:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        path.append(key.value)
                    else:
                        self.record(path, base)
                        path = None
            keys.append(ast.copy_location(key, step))
        if path is not None:
            self.record(path, base)
        if self.in_iterable:
            return _call("_q_at", [rewritten_base, *keys])
        current = rewritten_base
        constant = 0  # leading keys that are constants
        while constant < len(keys) and isinstance(keys[constant], ast.Constant):
            constant += 1
        if self.scope and constant and isinstance(base, ast.Name) and base.id in self.roots and base.id not in self.scope:
            # Inside a loop, a path that depends on no loop variable (data.lead.domains in
            # data.lead.domains[d]) is looked up once per evaluation, on first use.
            signature = (base.id, *((type(k.value).__name__, k.value) for k in keys[:constant]))  # type: ignore[attr-defined]
            slot = self.cached.setdefault(signature, f"_q_c{len(self.cached) + 1}")
            for key in keys[:constant]:
                current = self.lookup(current, key)
            current = ast.IfExp(
                test=ast.Compare(left=ast.Name(id=slot, ctx=ast.Load()), ops=[ast.IsNot()],
                                 comparators=[ast.Name(id="_q_unset", ctx=ast.Load())]),
                body=ast.Name(id=slot, ctx=ast.Load()),
                orelse=ast.NamedExpr(target=ast.Name(id=slot, ctx=ast.Store()), value=current),
            )
            keys = keys[constant:]
        for key in keys:
            current = self.lookup(current, key)
        return current

    def lookup(self, previous: ast.expr, key: ast.expr) -> ast.expr:
        if not isinstance(key, (ast.Constant, ast.Name)):
            # a computed key would be written into both branches: one call keeps the code linear
            return _call("_q_step", [previous, key])
        if isinstance(previous, ast.Name):
            target: ast.expr = previous
            tested: ast.expr = ast.Name(id=previous.id, ctx=ast.Load())
        else:
            self.temporaries += 1
            name = f"_q_t{self.temporaries}"
            target = ast.Name(id=name, ctx=ast.Load())
            tested = ast.NamedExpr(target=ast.Name(id=name, ctx=ast.Store()), value=previous)
        def load() -> ast.expr:
            return ast.Name(id=target.id, ctx=ast.Load())  # type: ignore[attr-defined]
        return ast.IfExp(
            test=ast.Compare(left=_call("_q_type", [tested]), ops=[ast.Is()],
                             comparators=[ast.Name(id="_q_dict", ctx=ast.Load())]),
            body=ast.Call(func=ast.Attribute(value=load(), attr="get", ctx=ast.Load()), args=[key], keywords=[]),
            orelse=_call("_q_step", [load(), key]),
        )

    def record(self, path: list[str], base: ast.AST) -> None:
        self.references.append(Reference(tuple(path), *self.position(base)))

    # operators ----------------------------------------------------------------------------

    def on_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        return ast.BoolOp(op=node.op, values=[self.expr(v) for v in node.values])

    def on_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        if isinstance(node.op, ast.Invert):
            raise self.fail("'~' is not allowed; use 'not'", node)
        return ast.UnaryOp(op=node.op, operand=self.expr(node.operand))

    def on_BinOp(self, node: ast.BinOp) -> ast.expr:
        op = type(node.op)
        if op in _BAD_BINARY:
            symbol, message = _BAD_BINARY[op]
            raise self.fail(message, node, position=self.operator_position(node.left, node.right, symbol))
        if op is ast.Pow:
            exponent = node.right
            if not (isinstance(exponent, ast.Constant) and type(exponent.value) is int
                    and 0 <= exponent.value <= MAX_EXPONENT):
                raise self.fail(f"huge exponent: '**' takes a whole number from 0 to {MAX_EXPONENT} "
                                "written directly after it", exponent)
            return _call("_q_pow", [self.expr(node.left), ast.Constant(value=exponent.value)])
        helper = _BINARY.get(op, "missing")
        left, right = self.expr(node.left), self.expr(node.right)
        if helper is None:
            if op is ast.Add and not _is_number(node.left) and not _is_number(node.right):
                left, right = self.charged(left, node.left), self.charged(right, node.right)  # '+' copies lists and text
            return ast.BinOp(left=left, op=node.op, right=right)
        if helper == "missing":  # pragma: no cover - every operator is listed above
            raise self.fail(f"'{op.__name__}' is not allowed", node)
        if helper == "_q_mul" and self.scope:
            return _call(helper, [left, right, self.budget()])
        return _call(helper, [left, right])

    def on_Compare(self, node: ast.Compare) -> ast.expr:
        comparators: list[ast.expr] = []
        previous: ast.expr = node.left
        # Inside a loop, '==' or '<' between two values that are not literals may walk two lists: charge them.
        operands = [node.left, *node.comparators]
        walks = bool(self.scope) and sum(not _is_literal(o) for o in operands) >= 2 and all(
            isinstance(op, (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in node.ops)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if not isinstance(op, _COMPARE):  # pragma: no cover - Python has no others
                raise self.fail("this comparison is not allowed", node)
            if isinstance(op, (ast.Is, ast.IsNot)):
                is_null = (isinstance(comparator, ast.Constant) and comparator.value is None) or (
                    isinstance(comparator, ast.Name) and comparator.id in ("null", "None"))
                if not is_null:
                    raise self.fail("'is' only works with null (as in 'x is null'); use '==' to compare values",
                                    node, position=self.operator_position(previous, comparator, "is"))
            rewritten = self.expr(comparator)
            if isinstance(op, (ast.In, ast.NotIn)):
                if self.scope and not self.varies(comparator):
                    rewritten = _call("_q_inw", [rewritten, self.budget()])
                else:
                    rewritten = _call("_q_in", [rewritten])
                rewritten = ast.copy_location(rewritten, comparator)
            elif walks:
                rewritten = self.charged(rewritten, comparator)
            comparators.append(rewritten)
            previous = comparator
        left = self.expr(node.left)
        if walks:
            left = self.charged(left, node.left)
        return ast.Compare(left=left, ops=node.ops, comparators=comparators)

    def on_IfExp(self, node: ast.IfExp) -> ast.expr:
        return ast.IfExp(test=self.expr(node.test), body=self.expr(node.body), orelse=self.expr(node.orelse))

    # containers -------------------------------------------------------------------------

    def on_List(self, node: ast.List) -> ast.expr:
        return ast.List(elts=[self.expr(e) for e in node.elts], ctx=ast.Load())

    def on_Tuple(self, node: ast.Tuple) -> ast.expr:
        return ast.Tuple(elts=[self.expr(e) for e in node.elts], ctx=ast.Load())

    def on_Dict(self, node: ast.Dict) -> ast.expr:
        keys: list[ast.expr | None] = []
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise self.fail("'**' unpacking is not allowed", value)
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise self.fail("keys in {...} must be quoted text, as in {\"overall\": \"good\"}", key)
            keys.append(self.expr(key))
        return ast.Dict(keys=keys, values=[self.expr(v) for v in node.values])

    # calls --------------------------------------------------------------------------------

    def on_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if isinstance(func, ast.Attribute):
            position = self.attribute_position(func)
            self.check_identifier(func.attr, func, position)
            hint = f"; write {func.attr}(...) with the value as its first argument" if func.attr in self.functions else ""
            raise self.fail(f"calls are only allowed to listed functions: '.{func.attr}(...)' is a method call{hint}",
                            func, position=position)
        if not isinstance(func, ast.Name):
            self.expr(func)  # a lambda or the like reports its own error
            raise self.fail("calls are only allowed to listed functions, by name", func)
        name = func.id
        self.check_identifier(name, func)
        if name not in self.functions:
            raise self.unknown("function", name, func, self.functions, "unknown-function")
        for keyword in node.keywords:
            raise self.fail(f"{name}() takes no named arguments (name=value)", keyword)
        fewest, most = self.arity.get(name, (0, None))
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            wanted = (f"{fewest}" if fewest == most else
                      f"at least {fewest}" if most is None else f"{fewest} to {most}")
            plural = "" if wanted == "1" else "s"
            raise self.fail(f"{name}() takes {wanted} argument{plural}, not {count}", node, code="arguments")
        args: list[ast.expr] = []
        for arg in node.args:
            if isinstance(arg, ast.GeneratorExp):
                if name not in GENERATOR_FUNCTIONS or count != 1:
                    raise self.fail(_FORBIDDEN_NODES["GeneratorExp"], arg)
                args.append(ast.copy_location(self.generator(arg), arg))
                if name in ("any", "all"):
                    return _call("_q_" + name, args)
            elif name == "str" and self.functions.get(name) is fn_str:
                args.append(self.expr(arg))  # charged item by item as it is written out
            else:
                args.append(self.charged(self.expr(arg), arg))
        if name == "str" and self.functions.get(name) is fn_str:
            return _call("_q_str", [*args, self.budget()])
        return _call("_qf_" + name, args)

    def generator(self, node: ast.GeneratorExp) -> ast.expr:
        if len(node.generators) != 1:
            raise self.fail("only one 'for' is allowed in a generator", node.generators[1].target)
        clause = node.generators[0]
        if clause.is_async:
            raise self.fail("'async for' is not allowed", node)
        target = clause.target
        names: list[ast.Name] = []
        if isinstance(target, ast.Name):
            names = [target]
        elif isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
            names = list(target.elts)  # type: ignore[arg-type]
        else:
            raise self.fail("the variable after 'for' must be a plain name, as in 'for d in data.domains'", target)
        for variable in names:
            self.check_identifier(variable.id, variable)
            if variable.id in _LITERAL_NAMES:
                raise self.fail(f"'{variable.id}' cannot be used as a loop variable", variable)
        saved, self.in_iterable = self.in_iterable, True
        try:
            # Evaluated outside the loop's scope. A loop inside another loop runs once per outer item:
            # it charges all its items to the budget when it starts. An outermost loop goes through its
            # list once, work in proportion to the data, and charges nothing (so costs nothing extra).
            iterable = self.expr(clause.iter)
            iterable = _call("_q_iter", [iterable, self.budget()] if self.scope else [iterable])
        finally:
            self.in_iterable = saved
        self.scope.extend(v.id for v in names)
        try:
            conditions = [self.expr(condition) for condition in clause.ifs]
            element = self.expr(node.elt)
        finally:
            del self.scope[len(self.scope) - len(names):]
        rewritten_target: ast.expr
        if isinstance(target, ast.Name):
            rewritten_target = ast.Name(id=target.id, ctx=ast.Store())
        else:
            rewritten_target = ast.Tuple(elts=[ast.Name(id=v.id, ctx=ast.Store()) for v in names], ctx=ast.Store())
        ast.copy_location(rewritten_target, target)
        ast.copy_location(iterable, clause.iter)
        return ast.GeneratorExp(
            elt=element,
            generators=[ast.comprehension(target=rewritten_target, iter=iterable, ifs=conditions, is_async=0)],
        )


def _is_literal(node: ast.AST) -> bool:
    """A number, text, true/false or null written in the expression: comparing with it walks nothing."""
    return isinstance(node, ast.Constant) or (isinstance(node, ast.Name) and node.id in _LITERAL_NAMES)


def _is_number(node: ast.AST) -> bool:
    """A number, true/false or null written in the expression: '+' with it copies nothing."""
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, ast.Name):
        return node.id in _LITERAL_NAMES
    return isinstance(node, ast.Constant) and not isinstance(node.value, str)


def _is_constant(node: ast.AST, functions: Mapping[str, Callable[..., Any]]) -> bool:
    """True if the value depends on nothing but the text (no names, no loops, only the fixed functions)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            if child.id not in _LITERAL_NAMES and not (child.id in FUNCTIONS and functions.get(child.id) is FUNCTIONS[child.id]):
                return False
        elif isinstance(child, (ast.GeneratorExp, ast.Attribute, ast.NamedExpr, ast.Lambda, ast.comprehension)) or (
                isinstance(child, ast.Call) and not isinstance(child.func, ast.Name)):
            return False
    return True


def _check_constants(tree: ast.Expression, source: _Text, allowed: frozenset[str] | None,
                     table: Mapping[str, Callable[..., Any]], arity: Mapping[str, tuple[int, int | None]]) -> None:
    """Work out each constant '*' and '**' (innermost first) so that a value over a limit is refused now.

    ``[[0] * 10000] * 10000`` can only ever fail; each try is bounded by the limits themselves.
    """
    candidates = [node for node in ast.walk(tree.body)
                  if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Pow))
                  and _is_constant(node, table)]
    if not candidates:
        return
    candidates.reverse()  # ast.walk is breadth-first: inner nodes come later
    for node in candidates:
        compiler = _Compiler(source, allowed, table, arity)
        try:
            function = _build(compiler.expr(node), [], [], table, compiler.budgeted)
            function({})
        except _LimitError as error:
            position = compiler.operator_position(node.left, node.right, "**" if isinstance(node.op, ast.Pow) else "*")
            raise ExpressionError(error.message, code="too-large", **_at(position)) from None
        except Exception:  # any other failure is reported when it runs, with the data it runs on
            continue


def _measure(tree: ast.Expression, source: _Text) -> None:
    """Refuse trees with too many nodes or too deep, without recursing (the tree may be deep)."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (ast.expr, ast.comprehension, ast.keyword)):
            count += 1
            if count > MAX_NODES:
                raise ExpressionError(f"the condition has more than {MAX_NODES} parts; split it up",
                                      code="too-complex", line=1, column=1)
        if depth > MAX_DEPTH:
            position = source.node_position(node.lineno, node.col_offset) if hasattr(node, "lineno") and hasattr(node, "col_offset") else (1, 1)
            raise ExpressionError(f"the condition is nested more than {MAX_DEPTH} deep; split it up",
                                  code="too-complex", **_at(position))
        for name in node._fields:  # the children ast.iter_child_nodes gives, in its order, without its generators
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                if not isinstance(value, _NO_PARTS):
                    stack.append((value, depth + 1))
            elif isinstance(value, list):
                for child in value:
                    if isinstance(child, ast.AST) and not isinstance(child, _NO_PARTS):
                        stack.append((child, depth + 1))


#: Nodes that only qualify their parent (a context, an operator): not counted and not walked into.
_NO_PARTS = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


class Expression:
    """A compiled condition or value. Immutable; evaluate it as often as you like."""

    __slots__ = ("source", "references", "_function", "_names", "_functions")

    source: str
    references: tuple[Reference, ...]
    _function: Callable[..., Any]
    _names: frozenset[str] | None
    _functions: tuple[tuple[str, Callable[..., Any]], ...]

    def __init__(self, source: str, references: tuple[Reference, ...], function: Callable[..., Any] | _Unbuilt,
                 names: frozenset[str] | None, functions: tuple[tuple[str, Callable[..., Any]], ...]) -> None:
        set_ = object.__setattr__
        set_(self, "source", source)
        set_(self, "references", references)
        if isinstance(function, _Unbuilt):  # compiled in building_later(): made on the first call, then kept
            def first(env: Any, _q_b: Any = None, unbuilt: _Unbuilt = function) -> Any:
                built = unbuilt.build()  # two threads here build equal functions; either may be kept
                set_(self, "_function", built)
                return built(env, _q_b)

            function = first
        set_(self, "_function", function)
        set_(self, "_names", names)
        set_(self, "_functions", functions)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Expression is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Expression is immutable")

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.source, self._names, dict(self._functions) or None))

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        """The value of the expression; names missing from ``env`` are null.

        Raises :class:`EvaluationError` (never another exception) naming the expression.
        """
        try:
            return self._function(env)
        except Exception as exc:
            raise self._failed(exc) from (None if isinstance(exc, EvaluationError) else exc)

    def _failed(self, exc: Exception) -> EvaluationError:
        reason = exc.message if isinstance(exc, EvaluationError) else _explain(exc)
        return EvaluationError(f"cannot evaluate {self.source!r}: {reason}", expression=self.source)

    def test(self, env: Mapping[str, Any]) -> bool:
        """Evaluate and take the truth of the result (null, 0, empty text and empty lists are false)."""
        try:  # ``evaluate`` inlined: a condition is tested several times an event
            value = self._function(env)
        except Exception as exc:
            raise self._failed(exc) from (None if isinstance(exc, EvaluationError) else exc)
        try:
            return bool(value)
        except Exception as exc:  # a host object with a broken __bool__
            raise EvaluationError(f"cannot evaluate {self.source!r}: {_explain(exc)}", expression=self.source) from exc


def _rebuild(source: str, names: frozenset[str] | None, functions: dict[str, Callable[..., Any]] | None) -> Expression:
    return compile_expression(source, names=names, functions=functions)


def _function_table(functions: Mapping[str, Callable[..., Any]] | None) -> tuple[
        dict[str, Callable[..., Any]], dict[str, tuple[int, int | None]], tuple[tuple[str, Callable[..., Any]], ...]]:
    table = dict(FUNCTIONS)
    arity = dict(_ARITY)
    extra: tuple[tuple[str, Callable[..., Any]], ...] = ()
    if functions:
        for name, function in functions.items():
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_") or "__" in name:
                raise ValueError(f"function name {name!r} must be an identifier not starting with '_'")
            if name in FUNCTIONS:
                raise ValueError(f"function {name!r} is already in the fixed table")
            if name in _LITERAL_NAMES:
                raise ValueError(f"{name!r} is a literal, not a function name")
            if not callable(function):
                raise ValueError(f"function {name!r} is not callable")
            table[name] = function
            arity[name] = _arity_of(function)
        extra = tuple(functions.items())
    return table, arity, extra


def compile_expression(source: str, *, names: Collection[str] | None = None,
                       functions: Mapping[str, Callable[..., Any]] | None = None) -> Expression:
    """Check ``source`` against the allow-list and compile it once.

    ``names`` are the root names the expression may read (None: any name);
    ``functions`` are extra host functions added to :data:`FUNCTIONS`.
    Raises :class:`ExpressionError` with a code (``syntax``, ``forbidden``,
    ``unknown-name``, ``unknown-function``, ``arguments``, ``too-complex``)
    and a 1-based line and column within ``source``.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be text, not {_kind(source)}", code="syntax")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(source):,} characters long; the limit is {MAX_LENGTH:,}",
                              code="too-complex", line=1, column=1)
    allowed = None if names is None else frozenset(names)
    extra = tuple(functions.items()) if functions else ()
    try:
        hash(extra)
    except TypeError:  # an unhashable host function: compile without the cache
        return _compile(source, allowed, extra)
    return _compile_cached(source, allowed, extra)


@functools.lru_cache(maxsize=2048)
def _compile_cached(source: str, allowed: frozenset[str] | None,
                    extra: tuple[tuple[str, Callable[..., Any]], ...]) -> Expression:
    # Expressions are immutable, so the same condition in several workflow versions is compiled once.
    return _compile(source, allowed, extra, tables=_function_table_cached(extra))


@functools.lru_cache(maxsize=16)
def _function_table_cached(extra: tuple[tuple[str, Callable[..., Any]], ...]) -> tuple[
        dict[str, Callable[..., Any]], dict[str, tuple[int, int | None]], tuple[tuple[str, Callable[..., Any]], ...]]:
    # One configuration's functions for all of its expressions: their arity (inspect.signature) is read once.
    return _function_table(dict(extra))


def _compile(source: str, allowed: frozenset[str] | None,
             extra: tuple[tuple[str, Callable[..., Any]], ...], *, tables: Any = None) -> Expression:
    table, arity, extra = tables if tables is not None else _function_table(dict(extra))
    text = _Text(source.replace("\r\n", "\n").replace("\r", "\n"))
    if not text.text.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in text.lines):
        raise ExpressionError("the expression is empty", code="syntax", line=1, column=1)
    if "\x00" in text.text:
        raise ExpressionError("the expression contains a NUL character", code="syntax",
                              **_at(text.position(text.text.index("\x00"))))
    _check_brackets(text)
    # The wrapper lets an expression span lines and start with spaces; _check_brackets
    # has made sure the text cannot close the wrapper's bracket early.
    wrapped = "(\n" + text.text + "\n)"
    try:
        tree = parse_wrapped(wrapped)
    except SyntaxError as error:
        raise _syntax_error(error, text) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the condition is nested too deeply", code="too-complex", line=1, column=1) from None
    except ValueError as error:
        raise ExpressionError(f"the expression cannot be read: {error}", code="syntax", line=1, column=1) from None
    _measure(tree, text)
    compiler = _Compiler(text, allowed, table, arity)
    body = compiler.expr(tree.body)
    if "*" in text.text:  # only '*' and '**' are worked out: most expressions have neither
        _check_constants(tree, text, allowed, table, arity)
    roots, slots = sorted(compiler.roots), sorted(compiler.cached.values())
    function: Callable[..., Any] | _Unbuilt
    if _LATER.get():
        function = _Unbuilt(body, roots, slots, table, compiler.budgeted)
    else:
        function = _build(body, roots, slots, table, compiler.budgeted)
    references = tuple(sorted(compiler.references, key=lambda r: (r.line, r.column)))
    return Expression(source, references, function, allowed, extra)


#: Inside ``building_later()``: an expression's Python code is made when it is first evaluated.
_LATER: ContextVar[bool] = ContextVar("qaflow_expressions_later", default=False)
#: Inside ``building_later()``: wrapped text -> its parsed tree, for the checks that read it again.
_PARSED: ContextVar[dict[str, ast.Expression] | None] = ContextVar("qaflow_expressions_parsed", default=None)


@contextmanager
def building_later() -> Iterator[None]:
    """Within this block, compiling checks an expression as always but makes its code on first evaluation.

    For checking a configuration, which evaluates none of its expressions (``qaflow validate``):
    making the code was about two fifths of compiling. An expression compiled here keeps its checked
    tree until it is first evaluated, then is the same as any other. The trees ``parse_wrapped``
    makes in the block are kept for the block's other readers (the checks of quoted terms).
    """
    later, parsed = _LATER.set(True), _PARSED.set({} if _PARSED.get() is None else _PARSED.get())
    try:
        yield
    finally:
        _PARSED.reset(parsed)
        _LATER.reset(later)


def parse_wrapped(wrapped: str) -> ast.Expression:
    """``ast.parse(wrapped, mode="eval")`` with warnings silenced; raises as it does.

    The tree is shared with others that parse the same text inside ``building_later()``: read it, never change it.
    """
    parsed = _PARSED.get()
    if parsed is not None:
        tree = parsed.get(wrapped)
        if tree is not None:
            return tree
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(wrapped, mode="eval")
    if parsed is not None:
        parsed[wrapped] = tree
    return tree


class _Unbuilt:
    """What ``_build`` needs to make an expression's function, kept until it is first evaluated.

    The tree is allow-listed and within the limits (MAX_NODES, MAX_DEPTH): building it later cannot
    fail where building it at once would not.
    """

    __slots__ = ("body", "roots", "slots", "table", "budgeted")

    def __init__(self, body: ast.expr, roots: list[str], slots: list[str],
                 table: Mapping[str, Callable[..., Any]], budgeted: bool) -> None:
        self.body, self.roots, self.slots, self.table, self.budgeted = body, roots, slots, table, budgeted

    def build(self) -> Callable[..., Any]:
        return _build(self.body, self.roots, self.slots, self.table, self.budgeted)


def _build(body: ast.expr, roots: list[str], slots: list[str],
           table: Mapping[str, Callable[..., Any]], budgeted: bool = False) -> Callable[..., Any]:
    """Compile ``def _q_fn(_q_env, _q_b=None): data = _q_env.get("data"); ...; return BODY``.

    Root names become locals of one function, so generators close over them;
    ``slots`` are the per-evaluation caches of constant paths used in loops.
    ``_q_b`` is the budget, ``[steps left]``: a message shares one among its placeholders;
    only code that charges it (``budgeted``) starts a fresh one.
    """
    statements: list[ast.stmt] = []
    if budgeted:
        statements.append(ast.If(
            test=ast.Compare(left=ast.Name(id="_q_b", ctx=ast.Load()), ops=[ast.Is()],
                             comparators=[ast.Constant(value=None)]),
            body=[ast.Assign(targets=[ast.Name(id="_q_b", ctx=ast.Store())],
                             value=ast.List(elts=[ast.Constant(value=MAX_STEPS)], ctx=ast.Load()))],
            orelse=[],
        ))
    if roots:
        statements.append(ast.Assign(targets=[ast.Name(id="_q_get", ctx=ast.Store())],
                                     value=ast.Attribute(value=ast.Name(id="_q_env", ctx=ast.Load()),
                                                         attr="get", ctx=ast.Load())))
    for root in roots:
        statements.append(ast.Assign(targets=[ast.Name(id=root, ctx=ast.Store())],
                                     value=_call("_q_get", [ast.Constant(value=root)])))
    for slot in slots:
        statements.append(ast.Assign(targets=[ast.Name(id=slot, ctx=ast.Store())],
                                     value=ast.Name(id="_q_unset", ctx=ast.Load())))
    statements.append(ast.Return(value=body))
    function = ast.FunctionDef(
        name="_q_fn",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="_q_env"), ast.arg(arg="_q_b")], vararg=None,
                           kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[ast.Constant(value=None)]),
        body=statements,
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    module = ast.Module(body=[function], type_ignores=[])
    _place_generated(module)
    namespace: dict[str, Any] = dict(_HELPERS)
    namespace.update({"_qf_" + name: f for name, f in table.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = compile(module, "<expression>", "exec")
    exec(code, namespace)  # the code was built from an allow-listed tree
    return namespace["_q_fn"]


def _place_generated(module: ast.Module) -> None:
    """Put every generated node (it has no position) at the first line, as compile() needs.

    ast.walk's generators were most of the cost of building an expression; this walks the same nodes.
    """
    stack: list[Any] = [module]
    pop, push, AST = stack.pop, stack.append, ast.AST
    while stack:
        node = pop()
        if "lineno" in node._attributes and not hasattr(node, "lineno"):
            node.lineno = node.end_lineno = 1
            node.col_offset = node.end_col_offset = 0
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, AST):
                if value._fields:  # not a context or an operator (Load, Add): nothing to place
                    push(value)
            elif type(value) is list:
                for item in value:
                    if isinstance(item, AST) and item._fields:
                        push(item)


class Template:
    """A message with ``{expression}`` placeholders; ``{{`` and ``}}`` are literal braces."""

    __slots__ = ("source", "references", "_parts")

    source: str
    references: tuple[Reference, ...]
    _parts: tuple[str | Expression, ...]

    def __init__(self, source: str, parts: tuple[str | Expression, ...], references: tuple[Reference, ...]) -> None:
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "references", references)
        object.__setattr__(self, "_parts", parts)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Template is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Template is immutable")

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    @property
    def expressions(self) -> tuple[Expression, ...]:
        return tuple(p for p in self._parts if isinstance(p, Expression))

    def render(self, env: Mapping[str, Any]) -> str:
        """The message text: null renders as '', dates as ISO 8601, lists joined with ', '.

        The placeholders share one budget of MAX_STEPS, which also pays for writing their values out.
        """
        out: list[str] = []
        budget = [MAX_STEPS]
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                value = part._function(env, budget)
            except Exception as exc:
                raise part._failed(exc) from (None if isinstance(exc, EvaluationError) else exc)
            try:
                out.append(_to_text(value, budget))
            except EvaluationError as exc:
                raise EvaluationError(f"cannot show {{{part.source}}}: {exc.message}", expression=part.source) from None
            except Exception as exc:
                raise EvaluationError(f"cannot show {{{part.source}}}: {_explain(exc)}", expression=part.source) from exc
        return "".join(out)


def _placeholder_end(text: str, start: int) -> int | None:
    """Index of the '}' closing the placeholder whose expression starts at ``start``."""
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char in "'\"":
            after = _skip_string(text, i)
            if after is None:
                return None
            i = after
            continue
        if char in "([{":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return None


def compile_template(source: str, *, names: Collection[str] | None = None,
                     functions: Mapping[str, Callable[..., Any]] | None = None) -> Template:
    """Compile a message template; errors are located at their position within the template."""
    if not isinstance(source, str):
        raise ExpressionError(f"a message template must be text, not {_kind(source)}", code="syntax")
    where = _Text(source)
    parts: list[str | Expression] = []
    references: list[Reference] = []
    literal: list[str] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "{" and source.startswith("{{", i):
            literal.append("{")
            i += 2
        elif char == "}":
            if not source.startswith("}}", i):
                raise ExpressionError("a single '}' in a message; write '}}' for a literal brace",
                                      code="syntax", **_at(where.position(i)))
            literal.append("}")
            i += 2
        elif char == "{":
            end = _placeholder_end(source, i + 1)
            if end is None:
                raise ExpressionError("'{' is never closed; write '{{' for a literal brace",
                                      code="syntax", **_at(where.position(i)))
            inner = source[i + 1 : end]
            line0, column0 = where.position(i + 1)
            if not inner.strip():
                raise ExpressionError("an empty placeholder {}; write '{{}}' for literal braces",
                                      code="syntax", **_at(where.position(i)))
            try:
                expression = compile_expression(inner, names=names, functions=functions)
            except ExpressionError as error:
                line, column = _shift(line0, column0, error.line, error.column)
                raise ExpressionError(error.message, code=error.code, line=line, column=column) from None
            references.extend(Reference(r.path, *_shift(line0, column0, r.line, r.column)) for r in expression.references)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(expression)
            i = end + 1
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Template(source, tuple(parts), tuple(references))


def _shift(line0: int, column0: int, line: int, column: int) -> tuple[int, int]:
    """A position inside a placeholder as a position inside the whole template."""
    return (line0, column0 + column - 1) if line == 1 else (line0 + line - 1, column)
