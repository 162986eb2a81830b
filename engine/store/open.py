"""Open a store from a path or URL: the one place that turns a user's ``--db`` into a Store."""

from __future__ import annotations

import os

from .base import Store

DEFAULT_PATH = "qaflow.db"


def open_store(target: str | os.PathLike[str] | None = None) -> Store:
    """``None``: ``$QAFLOW_DB`` or ``qaflow.db`` in the working directory; ``postgresql://...``:
    PostgreSQL (needs psycopg); ``:memory:``: an in-memory store; anything else: a SQLite file."""
    if target is None:
        target = os.environ.get("QAFLOW_DB") or DEFAULT_PATH
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # psycopg is imported only here

        return PostgresStore(text)
    if text == ":memory:":
        from .memory import MemoryStore

        return MemoryStore()
    from .sqlite import SQLiteStore

    return SQLiteStore(text)
