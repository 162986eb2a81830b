"""F12: a store that may not be written can still be listed and shown.

The review: on a read-only SQLite file even ``list`` and ``show`` exited 2 ("attempt to write a readonly
database"), because opening ran the WAL pragma and the migrations. Reading commands now open the store
read-only (no migration, no write lock), a file this process cannot write is opened read-only by
itself, and every write is refused with ``StoreError``.

Root ignores file permissions, so the permission cases run the command line as ``nobody`` when the tests
run as root (as here), and as the current user otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, StoreError, load_config
from engine.store.open import open_store
from engine.store.sqlite import MIGRATIONS, SQLiteStore

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
NOBODY = 65534
DATA = '{"case_id": "C-1", "team": "t1", "service": "assessment", "lead_auditor": "TM-01", "peer_auditor": "IRO-02"}'


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fill(definitions: Any, store: Any) -> tuple[str, str]:
    """A breached review (with an alert in the outbox) and an open one, due later."""
    eng = Engine(definitions, store)
    review = eng.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", at="2026-12-18T09:00")
    eng.advance("2027-01-08")
    later = eng.start("review", {"case_id": "C-2", "reviewer": "R-01"}, actor="QA-01", at="2027-01-04T09:00")
    return review.id, later.id


def test_a_store_opened_read_only_reads_everything_and_refuses_every_write(definitions, durable):
    writer = durable.open()
    iid, later = fill(definitions, writer)
    writer.close()
    before = digest(durable.path) if durable.kind == "sqlite" else None

    store = durable.open(readonly=True)
    eng = Engine(definitions, store)
    assert eng.get(iid).state == "escalated" and len(eng.history(iid)) == 2
    assert len(eng.instances()) == 2 and len(eng.outbox()) == 1
    assert eng.advance("2027-01-10") == []  # nothing due: nothing to write
    writes = [
        lambda: eng.fire(later, "note", {"text": "x", "ok": True}, actor="R-01", at="2027-01-09"),
        lambda: eng.start("review", {"case_id": "C-3", "reviewer": "R-01"}, actor="QA-01", at="2027-01-09"),
        lambda: eng.acknowledge(eng.outbox()[0]["id"], at="2027-01-09"),
        lambda: eng.advance("2027-03-01"),  # the second review is due by then
        lambda: eng.schedule_start("review", {"case_id": "C-4", "reviewer": "R-01"}, at="2027-02-01", actor="QA-01"),
    ]
    for write in writes:
        with pytest.raises(StoreError, match="is open read-only") as refused:
            write()
        assert refused.value.exit_code == 2 and not refused.value.retry
    if durable.kind == "sqlite":
        store.close()
        assert digest(durable.path) == before  # not a byte written
    assert len(Engine(definitions, durable.open()).instances()) == 2


def test_reading_does_not_migrate_an_older_sqlite_file(definitions, tmp_path):
    path = tmp_path / "v1.db"
    with SQLiteStore(path) as store:
        iid, _ = fill(definitions, store)
    with sqlite3.connect(path) as raw:  # as a schema-1 file has it
        for column in ("operation", "target", "trigger", "actor", "digest", "snapshot"):
            raw.execute(f"ALTER TABLE requests DROP COLUMN {column}")
        raw.execute("DROP TABLE held")
        raw.execute("DROP TABLE kpi_values")
        for column in ("claimed_by", "claimed_until", "claimed_at", "claims", "acknowledged_by"):
            raw.execute(f"ALTER TABLE outbox DROP COLUMN {column}")
        raw.execute("PRAGMA user_version = 1")
    reader = open_store(path, readonly=True)
    assert Engine(definitions, reader).get(iid).state == "escalated"
    assert Engine(definitions, reader).held() == []
    assert reader.kpi_values() == []  # nothing can have been imported into it
    assert [a["acknowledged_by"] for a in Engine(definitions, reader).outbox(include_acknowledged=True)] == [None]
    assert reader.schema_version == 1  # read as it is
    assert open_store(path).schema_version == len(MIGRATIONS)  # a writer migrates it


def test_readonly_needs_an_existing_store(tmp_path):
    from engine import UsageError

    with pytest.raises(UsageError, match="no store at"):
        open_store(tmp_path / "missing.db", readonly=True)
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(UsageError, match="is not a qaflow store"):
        open_store(tmp_path / "empty.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


# ----------------------------------------------------------------------------- a file this user may not write


@pytest.fixture
def locked_folder(definitions):
    """A folder holding a qaflow.db that the user the commands run as may read but not write."""
    runner: list[str] = []
    if os.geteuid() == 0:  # root may write anything: run the commands as nobody, without capabilities
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux): cannot run a command as an unprivileged user")
        runner = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all"]
        probe = subprocess.run([*runner, sys.executable, "-c", "import engine.cli"], cwd="/", capture_output=True, text=True,
                               timeout=60, check=False)
        if probe.returncode != 0:  # e.g. a checkout under a folder only root may enter (mktemp -d makes them 0700)
            pytest.skip(f"the unprivileged user cannot run this checkout's qaflow: {probe.stderr.strip()[-200:]}")
    folder = Path(tempfile.mkdtemp(prefix="qaflow-ro-"))
    path = folder / "qaflow.db"
    eng = Engine(load_config(), SQLiteStore(path))
    eng.start("case_audit", __import__("json").loads(DATA), actor="QA-01", roles=["qa_team"], at="2026-10-01T09:00")
    eng.store.close()
    path.chmod(0o444)
    folder.chmod(0o555)
    if not runner and (os.access(path, os.W_OK) or os.access(folder, os.W_OK)):
        folder.chmod(0o755)
        shutil.rmtree(folder)
        pytest.skip("this user can write the file even after chmod (file capabilities?)")
    yield folder, runner
    folder.chmod(0o755)
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()


def qaflow(folder: Path, runner: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "NO_COLOR": "1", "HOME": str(folder)}
    command = [*runner, sys.executable, "-m", "engine", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_list_show_and_report_work_on_a_file_this_user_may_not_write(locked_folder):
    folder, runner = locked_folder
    before = digest(folder / "qaflow.db")
    for command in (["list"], ["show", "case_audit-000001"], ["outbox"], ["instances", "--outdated"],
                    ["report", "--period", "2026Q4"], ["explain", "case_audit-000001"]):
        result = qaflow(folder, runner, *command, "--db", "qaflow.db")
        assert result.returncode == 0, (command, result.stderr)
        assert "case_audit-000001" in result.stdout or command[0] in ("outbox", "instances", "report")
    fire = qaflow(folder, runner, "fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--payload", '{"notes": "x"}',
                  "--db", "qaflow.db", "--at", "2026-10-02T09:00")
    assert fire.returncode == 2, fire.stderr
    assert "the SQLite store qaflow.db is open read-only" in fire.stderr and "internal error" not in fire.stderr
    assert digest(folder / "qaflow.db") == before
    assert sorted(p.name for p in folder.iterdir()) == ["qaflow.db"]  # no -wal or -shm left behind


@pytest.mark.parametrize("index", ["kept", "gone"])
def test_changes_still_in_the_write_ahead_log_are_read_or_refused_never_missed(locked_folder, index):
    """A writer elsewhere has committed a change that is only in qaflow.db-wal. With its index (-shm)
    there, SQLite reads the log; without it (and no right to make one) the file alone would be stale,
    so the read is refused rather than answered from the file."""
    folder, runner = locked_folder
    folder.chmod(0o755)
    (folder / "qaflow.db").chmod(0o644)
    writer = sqlite3.connect(folder / "qaflow.db", isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("UPDATE instances SET state = 'changed', snapshot = json_set(snapshot, '$.state', 'changed')")
        for suffix in ("-wal", "-shm"):
            os.chmod(folder / f"qaflow.db{suffix}", 0o644)
        if index == "gone":
            (folder / "qaflow.db-shm").unlink()
        (folder / "qaflow.db").chmod(0o444)
        folder.chmod(0o555)
        result = qaflow(folder, runner, "list", "--db", "qaflow.db")
    finally:
        writer.close()
    if index == "kept":
        assert result.returncode == 0 and "changed" in result.stdout, result.stdout + result.stderr
    else:
        assert result.returncode == 2, result.stdout
        assert "its write-ahead log qaflow.db-wal holds changes not yet in the file" in result.stderr


def test_a_writable_file_in_a_folder_this_user_may_not_write_is_read_and_not_written(locked_folder):
    folder, runner = locked_folder
    folder.chmod(0o755)
    (folder / "qaflow.db").chmod(0o666)  # the file may be written, but SQLite's -wal and -shm cannot be made beside it
    folder.chmod(0o555)
    assert qaflow(folder, runner, "show", "case_audit-000001", "--db", "qaflow.db").returncode == 0
    fire = qaflow(folder, runner, "fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--payload", '{"notes": "x"}',
                  "--db", "qaflow.db", "--at", "2026-10-02T09:00")
    assert fire.returncode == 2 and "is open read-only (it cannot be written here" in fire.stderr, fire.stderr
