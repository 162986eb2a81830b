"""What callers hand the engine, checked once at the boundary: ids, actors, roles, data and payloads.

Everything a host or the command line passes to ``start``, ``fire``, ``schedule_start`` and
``migrate`` goes through here before anything is read or written, so that the same input gets the
same answer on every store (PostgreSQL refuses NUL and NaN that SQLite would keep), and nothing a
caller sends can reach a store as something it cannot write back out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..errors import RoleRefused, UsageError

#: Roles only the engine holds: it fires timers and signals from child workflows with them. A caller
#: that asserts one is refused, so triggers that list only these are fired by the engine alone.
RESERVED_ROLES = frozenset({"system"})
#: The actor the engine records for what it does itself ("system", or "system:<child id>").
SYSTEM_ACTOR = "system"

MAX_ID_LENGTH = 200  # an actor, role, instance, trigger or request id
MAX_DEPTH = 64  # nesting of objects and arrays in data and payloads
MAX_ITEMS = 100_000  # values (objects, arrays, strings, numbers...) in one payload or start data
MAX_TEXT = 1_000_000  # characters, over every key and string in one payload or start data
MAX_INT = 2**63 - 1  # integers beyond 64 bits are not portable (PostgreSQL jsonb, JavaScript hosts)



# Ids already found good: the same actors, roles and triggers come back on every call, and a set
# lookup costs a tenth of the pattern match. Bounded, so that a stream of new ids cannot grow it.
_GOOD: set[str] = set()
_GOOD_ACTORS: set[str] = set()
_GOOD_MAX = 65_536
_NONE: frozenset[str] = frozenset()


def check_id(value: Any, what: str, *, remember: bool = True) -> str:
    """``value`` if it is a usable id (non-empty printable text, at most MAX_ID_LENGTH), else UsageError.

    ``remember=False`` for ids seldom seen twice (instances, requests), which would crowd the others out.
    """
    if type(value) is str and value in _GOOD:
        return value
    # printable: no control characters (a newline would forge a line in `qaflow show` or `outbox`), no
    # line separators, no invisible format characters, no unpaired surrogates (not writable as UTF-8)
    if isinstance(value, str) and value.isprintable() and 0 < len(value) <= MAX_ID_LENGTH and value.strip():
        if remember and len(_GOOD) < _GOOD_MAX:
            _GOOD.add(value)
        return value
    if not isinstance(value, str):
        raise UsageError(f"{what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise UsageError(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise UsageError(f"{what} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed")
    raise UsageError(f"{what} {value!r} contains a control character, an invisible character or an unpaired surrogate")


def check_actor(actor: Any) -> str:
    """The caller's id: never empty, never one the engine uses for itself."""
    if type(actor) is str and actor in _GOOD_ACTORS:
        return actor
    check_id(actor, "actor")
    if actor == SYSTEM_ACTOR or actor.startswith(SYSTEM_ACTOR + ":"):
        raise UsageError(f"the actor '{actor}' is reserved for the engine's own entries in the history")
    if len(_GOOD_ACTORS) < _GOOD_MAX:
        _GOOD_ACTORS.add(actor)
    return actor


def check_roles(roles: Iterable[str] | None, actor: str) -> frozenset[str]:
    """The roles a caller asserts; a reserved role is refused (RoleRefused), whoever asks."""
    if not roles:
        return _NONE
    if isinstance(roles, str):
        raise UsageError(f"roles must be a list of role names, not the text {roles!r}")
    try:
        held = roles if type(roles) is frozenset else frozenset(roles)
    except TypeError:
        raise UsageError(f"roles must be a list of role names, not {type(roles).__name__}") from None
    for role in held:
        if role not in _GOOD:
            check_id(role, "a role")
    if not RESERVED_ROLES.isdisjoint(held):
        reserved = held & RESERVED_ROLES
        raise RoleRefused(
            f"{actor} asserted the role '{min(reserved)}', which is reserved for the engine itself"
            " (timers and signals from child workflows); a caller can never hold it"
        )
    return held


def check_caller(actor: Any, roles: Iterable[str] | None) -> frozenset[str]:
    """``check_actor`` and ``check_roles`` in one call, quick for the actors and roles seen before."""
    if not (type(actor) is str and actor in _GOOD_ACTORS):
        check_actor(actor)
    if not roles:
        return _NONE
    if type(roles) is list and len(roles) == 1 and roles[0] in _GOOD and roles[0] not in RESERVED_ROLES:
        return frozenset(roles)  # the usual call: one role, already known to be a good id
    return check_roles(roles, actor)


def check_key(value: Any, what: str) -> str:
    """``check_id`` for an instance or request id: not remembered, quick when it is plain text."""
    if type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable() and not value.isspace():
        return value
    return check_id(value, what, remember=False)


def json_problem(value: Any, root: str) -> str | None:
    """Why ``value`` cannot be stored as JSON the same way on every store, or None if it can.

    JSON types only (objects with text keys, arrays, text, finite numbers, booleans, null), nested at
    most MAX_DEPTH deep, at most MAX_ITEMS values and MAX_TEXT characters, integers within 64 bits,
    and text without NUL or unpaired surrogates. ``root`` names the value in the message ("payload").
    """
    budget = [MAX_ITEMS, MAX_TEXT]
    try:
        _walk(value, MAX_DEPTH, budget)
    except _Bad as bad:
        if bad.whole:
            return f"{root} {bad.args[0]}"
        steps = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in reversed(bad.path)]
        if len(steps) > 8:  # a deep path is shown by its ends
            steps = [*steps[:4], f"...({len(steps) - 6} more)...", *steps[-2:]]
        return f"{root}{''.join(steps)} {bad.args[0]}"
    return None


class _Bad(Exception):
    """What is wrong; ``path`` is filled in, innermost first, as it travels out of the walk."""

    def __init__(self, message: str, *, whole: bool = False) -> None:
        super().__init__(message)
        self.path: list[str | int] = []
        self.whole = whole  # about the value as a whole (its size), not about one place in it


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (not valid Unicode text)"
    return None


def _leaf(value: Any, budget: list[int]) -> None:
    """Check one value that is not an object or array."""
    if isinstance(value, str):
        budget[1] -= len(value)
        if budget[1] < 0:
            raise _Bad(f"has more than {MAX_TEXT:,} characters of text in all", whole=True)
        problem = _text_problem(value)
        if problem:
            raise _Bad(problem)
    elif value is None or isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise _Bad("is an integer too large to store (more than 64 bits)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"is {value!r}, which JSON cannot hold")
    else:
        raise _Bad(f"is a {type(value).__name__}, which JSON cannot hold")


def _walk(value: Any, depth: int, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Bad(f"has more than {MAX_ITEMS:,} values in all", whole=True)
    if isinstance(value, dict):
        if depth <= 0:
            raise _Bad(f"is nested more than {MAX_DEPTH} levels deep")
        for key, item in value.items():
            if type(key) is not str:
                raise _Bad(f"has a key {key!r} that is not text")
            budget[1] -= len(key)
            # the common case, ASCII text without NUL under an ASCII key, is checked without a call
            if type(item) is str and item.isascii() and key.isascii() and "\x00" not in item and "\x00" not in key:
                budget[0] -= 1
                budget[1] -= len(item)
                if budget[1] >= 0:
                    continue
            problem = _text_problem(key)
            if problem:
                raise _Bad(f"has a key that {problem}")
            try:
                _walk(item, depth - 1, budget)
            except _Bad as bad:
                bad.path.append(key)
                raise
    elif isinstance(value, list):
        if depth <= 0:
            raise _Bad(f"is nested more than {MAX_DEPTH} levels deep")
        for i, item in enumerate(value):
            try:
                _walk(item, depth - 1, budget)
            except _Bad as bad:
                bad.path.append(i)
                raise
    else:
        _leaf(value, budget)
