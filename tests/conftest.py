"""Fixtures shared by the store tests: every store (memory, SQLite, PostgreSQL) behind one ``Backend``.

PostgreSQL runs against the server in $QAFLOW_TEST_PG (tests/store/start_postgres.sh starts one), each
test in a schema of its own; without it those cases are skipped, unless $CI is set, when they fail.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine import MemoryStore
from engine.store.open import open_store
from engine.store.sqlite import SQLiteStore

PG_URL = os.environ.get("QAFLOW_TEST_PG")


@pytest.fixture(autouse=True, scope="session")
def _own_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The command line keeps clean configuration checks in a per-user cache: the tests keep theirs apart
    (and so run every command both ways: a first load of a configuration fills it, the next ones read it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QAFLOW_CACHE_DIR", str(tmp_path_factory.mktemp("qaflow-cache")))
        patch.delenv("QAFLOW_CACHE", raising=False)
        yield


def pg_url_or_skip() -> str:
    """The PostgreSQL test server's URL; skip without one, except in CI, where its absence is a failure."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CI is set but QAFLOW_TEST_PG is not: start PostgreSQL with tests/store/start_postgres.sh", pytrace=False)
        pytest.skip("no PostgreSQL: set QAFLOW_TEST_PG=postgresql://... (tests/store/start_postgres.sh prints one)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("QAFLOW_TEST_PG is set but psycopg is not installed", pytrace=False)
        pytest.skip("psycopg is not installed")
    return PG_URL


def with_schema(url: str, schema: str) -> str:
    """The URL with a search_path, so that each test gets tables of its own."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


class Backend:
    """Opens store objects on one database: ``open()`` twice gives two connections to the same data."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.durable = kind != "memory"
        self._opened: list[Any] = []
        self._memory = MemoryStore()
        self.path = tmp_path / "qaflow.db"
        self.url = ""
        if kind == "postgres":
            import psycopg

            base = pg_url_or_skip()
            self.schema = "t_" + uuid.uuid4().hex[:12]
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            self._base = base
            self.url = with_schema(base, self.schema)

    @property
    def target(self) -> str:
        """What ``--db`` or ``open_store`` takes for this store (a fresh process can open it)."""
        return {"memory": ":memory:", "sqlite": str(self.path), "postgres": self.url}[self.kind]

    def open(self, **options: Any) -> Any:
        if self.kind == "memory":
            return self._memory
        if self.kind == "sqlite":
            store = SQLiteStore(self.path, **options)
        else:
            store = open_store(self.url) if not options else __import__("engine.store.postgres", fromlist=["x"]).PostgresStore(self.url, **options)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self._base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request, tmp_path):
    b = Backend(request.param, tmp_path)
    yield b
    b.close()


@pytest.fixture(params=["sqlite", "postgres"])
def durable(request, tmp_path):
    """Only the stores that outlive their object (the memory store does not, so it is not asked)."""
    b = Backend(request.param, tmp_path)
    yield b
    b.close()


@pytest.fixture
def pg(tmp_path):
    """PostgreSQL alone, in a schema of its own."""
    b = Backend("postgres", tmp_path)
    yield b
    b.close()
