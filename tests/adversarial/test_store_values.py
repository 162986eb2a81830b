"""F7/F9 store rows: values and database failures behave alike on every SQL store.

NaN, Infinity, NUL and lone surrogates are refused by SQLite and PostgreSQL alike with ``DataInvalid``
(PostgreSQL raised raw UntranslatableCharacter/InvalidTextRepresentation, exit 3; SQLite stored NaN and
printed invalid JSON). The engine's own boundary check refuses them in payloads and data before they
reach a store; these tests drive the stores' last line of defence. Raw sqlite3/psycopg errors (a
damaged file, a lock held beyond the timeout, a lost connection, a read-only server) leave the store as
``StoreError`` (exit 2) with a message that says what to do.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine import ConcurrencyConflict, DataInvalid, Engine, Refused, StoreError, UnknownInstance, load_config
from engine.cli import main
from engine.runtime.unit import UnitOfWork
from engine.store.sqlite import SQLiteStore
from engine.store.values import dumps

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
REVIEW = {"case_id": "C-1", "reviewer": "R-01"}


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


def start_review(eng: Engine, **data: Any):
    return eng.start("review", {**REVIEW, **data}, actor="QA-01", at="2026-12-18T09:00")


def snapshot_with(store: Any, iid: str, extra: Any) -> UnitOfWork:
    """A unit of work that puts ``extra`` into the instance's data, as an action's result could."""
    uow = UnitOfWork(store)
    uow.get(iid).data["extra"] = extra
    return uow


# ----------------------------------------------------------------------------- values no store can hold alike

UNSTORABLE = [
    ({"x": math.nan}, "extra.x is NaN, which JSON has no number for"),
    ({"x": [1, math.inf]}, "extra.x.1 is Infinity, which JSON has no number for"),
    ({"x": -math.inf}, "extra.x is -Infinity"),
    ({"x": "a\x00b"}, "extra.x is text containing NUL (U+0000)"),
    ({"a\x00b": 1}, "extra.a\x00b is text containing NUL"),
    ({"x": "\ud800"}, "extra.x is text that is not valid Unicode (a lone surrogate)"),
    ({"x": object()}, "extra.x is a object, which is not a JSON value"),
    ({("a", 1): 1}, "extra has a key that is not text"),
]


@pytest.mark.parametrize(("extra", "says"), UNSTORABLE, ids=["nan", "inf-in-list", "minus-inf", "nul", "nul-key", "surrogate", "object", "tuple-key"])
def test_a_value_no_store_can_hold_is_refused_alike_and_nothing_changes(definitions, durable, extra, says):
    eng = Engine(definitions, durable.open())
    review = start_review(eng)
    before = (eng.get(review.id).to_dict(), eng.outbox(include_acknowledged=True))
    with pytest.raises(DataInvalid) as refused:
        snapshot_with(eng.store, review.id, extra).commit()
    assert f"cannot store {review.id} data: " in refused.value.message
    assert says in refused.value.message and "nothing was changed" in refused.value.message
    assert refused.value.exit_code == 1
    again = Engine(definitions, durable.open())
    assert (again.get(review.id).to_dict(), again.outbox(include_acknowledged=True)) == before


@pytest.mark.parametrize("kind", ["nan", "nul", "surrogate"])
def test_start_and_fire_with_such_values_are_refused_on_every_sql_store(definitions, durable, kind):
    bad = {"nan": math.nan, "nul": "a\x00b", "surrogate": "\ud800"}[kind]
    eng = Engine(definitions, durable.open())
    with pytest.raises(Refused):  # DataInvalid here, or the engine's own boundary check first
        start_review(eng, extra={"x": bad})
    assert eng.instances() == []
    review = start_review(eng)
    with pytest.raises(Refused):
        eng.fire(review.id, "note", {"text": bad, "ok": True}, actor="R-01", at="2026-12-21")
    assert eng.get(review.id).rev == 1 and len(eng.history(review.id)) == 1


def test_text_that_only_quotes_a_backslash_u0000_is_stored(definitions, backend):
    eng = Engine(definitions, backend.open())
    review = start_review(eng, extra={"x": "C:\\u0000\\path"})
    assert Engine(definitions, backend.open()).get(review.id).data["extra"] == {"x": "C:\\u0000\\path"}


def test_the_encoder_refuses_nan_and_nul():
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps({"x": math.nan})
    with pytest.raises(ValueError, match="NUL"):
        dumps({"x": "\x00"})
    assert json.loads(dumps({"x": "\\u0000"})) == {"x": "\\u0000"}


def test_an_id_with_nul_is_simply_unknown_on_every_store(definitions, backend):
    eng = Engine(definitions, backend.open())
    with pytest.raises(UnknownInstance):
        eng.get("review-000001\x00")
    assert eng.instances(workflow="re\x00view") == []


# ----------------------------------------------------------------------------- the command line: exit 1, not 3

DATA = '{"case_id": "C-1", "team": "t1", "service": "assessment", "lead_auditor": "TM-01", "peer_auditor": "IRO-02"'


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    ("field", "text"),
    [("data", ', "discussion": {"x": NaN}}'), ("data", ', "discussion": {"x": Infinity}}'), ("payload", None)],
    ids=["nan-data", "infinity-data", "nul-payload"],
)
def test_the_cli_refuses_nan_and_nul_without_an_internal_error_on_every_sql_store(durable, field, text):
    db = durable.target
    start = ["start", "case_audit", "--db", db, "--actor", "QA-01", "--role", "qa_team", "--at", "2026-10-01T09:00"]
    if field == "data":  # NaN and Infinity are not JSON: the argument cannot be read (a usage error)
        result = cli(*start, "--data", DATA + text)
        assert result.exit_code == 2, result.output
        assert "is not a JSON number" in result.stderr and "internal error" not in result.output
        listed = cli("list", "--db", db, "--format", "json")
        assert listed.exit_code == 0 and json.loads(listed.stdout) == []  # nothing stored, and the output is JSON
        return
    assert cli(*start, "--data", DATA + "}").exit_code == 0
    before = cli("show", "case_audit-000001", "--db", db, "--format", "json").stdout
    result = cli("fire", "case_audit-000001", "record_file_review", "--db", db, "--actor", "TM-01", "--at", "2026-10-02T09:00",
                 "--payload", '{"notes": "a\\u0000b"}')
    assert result.exit_code == 1, result.output
    assert "NUL" in result.stderr and "internal error" not in result.output
    shown = cli("show", "case_audit-000001", "--db", db, "--format", "json")
    assert shown.exit_code == 0 and shown.stdout == before


# ----------------------------------------------------------------------------- SQLite failures as StoreError


def test_a_damaged_sqlite_row_is_a_store_error_that_says_what_to_do(definitions, tmp_path):
    path = tmp_path / "damaged.db"
    with SQLiteStore(path) as store:
        review = start_review(Engine(definitions, store))
    with sqlite3.connect(path) as raw:  # bytes that are not UTF-8 where qaflow wrote JSON text
        raw.execute("UPDATE history SET entry = CAST(X'7B22FF22' AS TEXT)")
    eng = Engine(definitions, SQLiteStore(path))
    with pytest.raises(StoreError) as damaged:
        eng.history(review.id)
    assert f"the SQLite store {path} is damaged" in damaged.value.message
    assert f"sqlite3 {path} 'PRAGMA integrity_check'" in damaged.value.message and not damaged.value.retry
    shown = cli("show", review.id, "--db", str(path))  # the review: exit 3, "OperationalError: Could not decode to UTF-8"
    assert shown.exit_code == 2 and "is damaged" in shown.stderr and "internal error" not in shown.output


def test_damaged_pages_are_a_store_error_with_exit_2(definitions, tmp_path):
    path = tmp_path / "pages.db"
    with SQLiteStore(path) as store:
        eng = Engine(definitions, store)
        for k in range(200):
            start_review(eng, case_id=f"C-{k}", extra={"padding": "x" * 500})
    raw = bytearray(path.read_bytes())
    page = int.from_bytes(raw[16:18], "big")
    raw[2 * page:] = bytes((i * 7 + 3) % 256 for i in range(len(raw) - 2 * page))  # every page after the schema's
    path.write_bytes(bytes(raw))
    for command in (["list"], ["show", "review-000001"]):
        result = cli(*command, "--db", str(path))
        assert result.exit_code == 2, result.output
        assert "damaged" in result.stderr and "internal error" not in result.output


def test_a_lock_held_beyond_the_timeout_is_a_store_error_to_retry(definitions, tmp_path):
    path = tmp_path / "locked.db"
    eng = Engine(definitions, SQLiteStore(path, timeout=0.05))
    review = start_review(eng)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in a long write transaction
    try:
        with pytest.raises(StoreError, match=r"stayed locked by another process for more than 0\.05 s") as locked:
            eng.fire(review.id, "note", {"text": "x", "ok": True}, actor="R-01", at="2026-12-21")
        assert locked.value.retry
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert eng.fire(review.id, "note", {"text": "x", "ok": True}, actor="R-01", at="2026-12-21").rev == 2


# ----------------------------------------------------------------------------- PostgreSQL failures as StoreError


class CutBeforeCommit:
    """A PostgreSQL store whose connection the server ends just before the next commit."""

    def __init__(self, inner: Any, admin_url: str) -> None:
        self._inner, self._admin_url, self._armed = inner, admin_url, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def commit(self, changes: Any) -> None:
        if self._armed:
            import psycopg

            self._armed = False
            pid = self._inner._conn.info.backend_pid
            with psycopg.connect(self._admin_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
                    pass
        self._inner.commit(changes)


def test_a_connection_lost_at_commit_is_a_store_error_and_a_retry_with_the_request_id_is_safe(definitions, pg):
    eng = Engine(definitions, pg.open())
    review = start_review(eng)
    cut = Engine(definitions, CutBeforeCommit(pg.open(), pg._base))
    with pytest.raises(StoreError) as lost:
        cut.fire(review.id, "note", {"text": "x", "ok": True}, actor="R-01", at="2026-12-21", request_id="form-7")
    assert "lost the connection to the PostgreSQL store" in lost.value.message
    assert "may or may not have been saved: retry it with the same request id" in lost.value.message and lost.value.retry
    again = cut.fire(review.id, "note", {"text": "x", "ok": True}, actor="R-01", at="2026-12-21", request_id="form-7")
    assert again.data["notes"] == ["x"] and again.rev == 2
    assert cut.fire(review.id, "note", {"text": "x", "ok": True}, actor="R-01", at="2026-12-21", request_id="form-7").rev == 2


def test_a_read_only_postgresql_session_is_a_store_error(definitions, pg):
    store = pg.open()
    eng = Engine(definitions, store)
    review = start_review(eng)
    store._conn.execute("SET default_transaction_read_only = on")  # as on a standby server
    with pytest.raises(StoreError, match="is read-only here"):
        eng.fire(review.id, "note", {"text": "x", "ok": True}, actor="R-01", at="2026-12-21")
    assert eng.get(review.id).rev == 1


def test_conflicts_are_still_conflicts_not_store_errors(definitions, durable):
    eng = Engine(definitions, durable.open())
    review = start_review(eng)
    uow = UnitOfWork(durable.open())
    uow.get(review.id)
    eng.fire(review.id, "note", {"text": "x", "ok": True}, actor="R-01", at="2026-12-21")
    with pytest.raises(ConcurrencyConflict):
        uow.commit()
