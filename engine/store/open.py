"""Open a store from a path or URL: the one place that turns a user's ``--db`` into a Store."""

from __future__ import annotations

import os

from ..errors import QaflowError, UsageError
from .base import Store
from .urls import shown as _shown

DEFAULT_PATH = "qaflow.db"


def open_store(target: str | os.PathLike[str] | None = None, *, create: bool = True, readonly: bool = False) -> Store:
    """``None``: ``$QAFLOW_DB`` or ``qaflow.db`` in the working directory; ``postgresql://...``:
    PostgreSQL (needs psycopg); ``:memory:``: an in-memory store; anything else: a SQLite file,
    made if it does not exist unless ``create`` is false (for reading: a mistyped name is then an
    error rather than a new, empty store).

    ``readonly=True`` (commands that only read: show, list, report...) never writes: no schema
    migration, no WAL set-up, every write refused with ``StoreError``; so a backup, a replica or a
    file the user may not write can still be read. A SQLite file this process cannot write is
    opened read-only even without it. ``readonly`` implies ``create=False``.

    A store that cannot be opened (no such file or folder, a server that does not answer) raises
    UsageError naming it and why.
    """
    if target is None:
        target = os.environ.get("QAFLOW_DB") or DEFAULT_PATH
    text = os.fspath(target)
    if text == ":memory:":
        from .memory import MemoryStore

        return MemoryStore()
    try:
        if text.startswith(("postgresql://", "postgres://")):
            from .postgres import PostgresStore  # psycopg is imported only here

            return PostgresStore(text, readonly=readonly)
        from .sqlite import SQLiteStore

        if (readonly or not create) and not os.path.isfile(text):
            raise UsageError(f"no store at '{text}': give --db (or set QAFLOW_DB) with the SQLite file or "
                             f"postgresql:// URL that holds the instances")
        return SQLiteStore(text, readonly=readonly)
    except QaflowError:
        raise
    except Exception as exc:  # sqlite3.Error, psycopg.Error, OSError: the place given cannot be used
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UsageError(f"cannot open the store '{_shown(text)}': {reason}") from exc


def display_target(target: str | os.PathLike[str] | None) -> str:
    """How a store is named to people: its file, or its URL without a password."""
    if target is None:
        target = os.environ.get("QAFLOW_DB") or DEFAULT_PATH
    return _shown(os.fspath(target))
