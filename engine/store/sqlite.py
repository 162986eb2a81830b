"""A SQLite store: one file in WAL mode, optimistic locking, safe for several processes on one machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable
from typing import Any

from ..calendar import LONDON
from ..errors import ConcurrencyConflict, UsageError
from ..runtime.instance import Instance
from .base import Changes, DueItem

# -- shared with the PostgreSQL store --------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)


def time_key(at: dt.datetime) -> int:
    """Microseconds since 1970 UTC: a sortable integer, so due times compare as instants whatever their zone."""
    if at.tzinfo is None:  # naive means London, as everywhere in qaflow
        at = at.replace(tzinfo=LONDON)
    return (at - _EPOCH) // _MICRO


def from_time_key(key: int) -> dt.datetime:
    """The instant back as an aware Europe/London datetime (every time the engine hands a store is London)."""
    return (_EPOCH + dt.timedelta(microseconds=key)).astimezone(LONDON)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


# one encoder, built once: json.dumps with options builds a new one on every call
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default).encode


def schedule_to_json(sched: dict[str, Any]) -> dict[str, Any]:
    return {**sched, "at": sched["at"].isoformat()}


def schedule_from_json(d: dict[str, Any]) -> dict[str, Any]:
    return {**d, "at": dt.datetime.fromisoformat(d["at"]).astimezone(LONDON)}


def held_item(kind: str, key: str, name: str, due_key: int, error: str, held_at: str) -> dict[str, Any]:
    return {"kind": kind, "key": key, "name": name, "at": from_time_key(due_key), "error": error, "held_at": held_at}


def snapshot_of(inst: Instance, rev: int) -> dict[str, Any]:
    d = inst.to_dict()
    d["rev"] = rev
    return d


def _clocks(inst: Instance) -> list[tuple[str, str, dt.date]]:
    """What the deadline index holds for an instance."""
    return [(ds.name, ds.status, ds.due) for ds in inst.deadlines.values()]


def conflict_rev(iid: str, read: int, found: int | None) -> ConcurrencyConflict:
    if found is None:
        return ConcurrencyConflict(f"instance {iid} is no longer in the store (it was read at revision {read})", instance=iid)
    return ConcurrencyConflict(
        f"instance {iid} was changed by someone else since it was read (read at revision {read}, now at {found});"
        " reload and try again",
        instance=iid,
    )


# -- schema ----------------------------------------------------------------------------------

# Each step is a list of single SQL statements, applied in order and recorded in PRAGMA user_version.
# Never edit a step that has shipped: append a new one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE instances (
            id TEXT PRIMARY KEY,
            workflow TEXT NOT NULL,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,
            rev INTEGER NOT NULL,
            hist INTEGER NOT NULL,           -- history entries so far: the next seq is hist + 1
            snapshot TEXT NOT NULL,          -- Instance.to_dict() as JSON
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX instances_workflow ON instances (workflow, id)  -- not state: a fire would rewrite it",
        # appended at the end of the table (cheap), found through the small (instance_id, seq) index
        """CREATE TABLE history (
            id INTEGER PRIMARY KEY,          -- commit order across instances
            instance_id TEXT NOT NULL,
            seq INTEGER NOT NULL,            -- 1, 2, 3 ... within the instance
            entry TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX history_instance ON history (instance_id, seq)",
        """CREATE TABLE deadlines (
            instance_id TEXT NOT NULL,
            name TEXT NOT NULL,
            due_key INTEGER NOT NULL,        -- microseconds since 1970 UTC (see time_key)
            status TEXT NOT NULL,
            claimed_by TEXT,                 -- the store object that next_due handed it to ("pid:token")
            claimed_until REAL,              -- until then (Unix time) nobody else is handed it
            PRIMARY KEY (instance_id, name)
        ) WITHOUT ROWID""",
        "CREATE INDEX deadlines_open_due ON deadlines (due_key, instance_id, name) WHERE status = 'open'",
        """CREATE TABLE schedules (
            id TEXT PRIMARY KEY,
            due_key INTEGER NOT NULL,
            workflow TEXT NOT NULL,
            entry TEXT NOT NULL,
            claimed_by TEXT,
            claimed_until REAL
        )""",
        "CREATE INDEX schedules_due ON schedules (due_key, id)",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            entry TEXT NOT NULL,
            acknowledged_at TEXT
        )""",
        "CREATE INDEX outbox_pending ON outbox (seq) WHERE acknowledged_at IS NULL",
        "CREATE TABLE requests (request_id TEXT PRIMARY KEY, result TEXT NOT NULL)",
        "CREATE TABLE counters (prefix TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        # the text of each workflow version instances started on, kept once (the first writer wins)
        """CREATE TABLE definitions (
            workflow TEXT NOT NULL,
            version INTEGER NOT NULL,
            digest TEXT NOT NULL,
            entry TEXT NOT NULL,             -- {workflow, version, digest, source} as JSON
            PRIMARY KEY (workflow, version)
        )""",
    ],
    [
        # due items advance could not fire (a definition that no longer compiles, a removed workflow),
        # set aside so that everything else keeps firing; a held start keeps its schedule entry here
        """CREATE TABLE held (
            kind TEXT NOT NULL,              -- 'breach' | 'start'
            key TEXT NOT NULL,               -- instance id | schedule id
            name TEXT NOT NULL,              -- deadline | workflow
            due_key INTEGER NOT NULL,
            error TEXT NOT NULL,
            held_at TEXT NOT NULL,
            entry TEXT,                      -- the schedule entry of a held start
            PRIMARY KEY (kind, key, name)
        )""",
    ],
]

# a deadline row that advance set aside at that due time: next_due passes over it
NOT_HELD = (
    "NOT EXISTS (SELECT 1 FROM held h WHERE h.kind = 'breach' AND h.key = deadlines.instance_id"
    " AND h.name = deadlines.name AND h.due_key = deadlines.due_key)"
)


CACHE_SIZE = 4096  # snapshots kept per store object
LEASE_SECONDS = 60.0  # how long a claim from next_due holds if its process lives but never fires it

_PEEK_DUE = (
    f"SELECT * FROM (SELECT due_key FROM deadlines WHERE status = 'open' AND due_key <= ?1 AND {NOT_HELD} ORDER BY due_key LIMIT 1)"
    " UNION ALL SELECT * FROM (SELECT due_key FROM schedules WHERE due_key <= ?1 ORDER BY due_key LIMIT 1)"
)


class SQLiteStore:
    """Instances, history, deadlines, schedules and the outbox in one SQLite file.

    Every commit is one ``BEGIN IMMEDIATE`` transaction that first checks the revision of every instance
    it read, so several processes can share the file: the loser of a race gets ``ConcurrencyConflict``
    and the winner's write stands. ``next_due`` claims what it hands out, so that two processes
    advancing the clock together never fire the same deadline twice. One connection per store object;
    use one store per thread, and open stores after forking, not before.

    ``synchronous="FULL"`` (the default) fsyncs every commit, so an accepted change survives a power
    cut or OS crash as well as a killed process: nothing a caller was told happened may be lost.
    ``synchronous="NORMAL"`` under WAL skips that fsync (about 1.7x more fires per second, measured by
    benchmarks/store_throughput.py); a commit then survives the process being killed and the file is
    never corrupted, but the last commits before a power cut may be lost.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "qaflow.db",
        *,
        synchronous: str = "FULL",
        timeout: float = 30.0,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise UsageError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = os.fspath(path)
        self.worker = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; timeout: racing processes wait for the lock
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, cached_statements=256)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            self._migrate()
        except BaseException:
            self._db.close()
            raise
        # Snapshots this connection read or wrote, trusted while PRAGMA data_version says no other
        # connection has committed since (it does not move for our own commits): a load is then one
        # cheap PRAGMA instead of a query and a JSON parse. Callers never mutate what load returns.
        self._cache: dict[str, Instance] = {}
        self._seen_version = -1

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        db = self._db
        wanted = len(MIGRATIONS)
        if self.schema_version == wanted:
            return
        db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file: look again under the lock
        try:
            current = self.schema_version
            if current > wanted:
                raise UsageError(
                    f"{self.path} has schema version {current}, newer than this qaflow knows ({wanted}): upgrade qaflow"
                )
            for steps in MIGRATIONS[current:]:
                for sql in steps:
                    db.execute(sql)
            db.execute(f"PRAGMA user_version = {wanted}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- reads -----------------------------------------------------------------------------
    @staticmethod
    def _instance(rev: int, snapshot: str) -> Instance:
        inst = Instance.from_dict(json.loads(snapshot))
        inst.rev = rev
        return inst

    def _fresh_cache(self) -> dict[str, Instance]:
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._seen_version:
            self._seen_version = version
            self._cache.clear()
        return self._cache

    def _remember(self, inst: Instance) -> None:
        cache = self._cache
        if len(cache) >= CACHE_SIZE:
            del cache[next(iter(cache))]  # the oldest
        cache[inst.id] = inst

    def load(self, instance_id: str) -> Instance | None:
        inst = self._fresh_cache().get(instance_id)
        if inst is not None:
            return inst
        row = self._db.execute("SELECT rev, snapshot FROM instances WHERE id = ?", (instance_id,)).fetchone()
        if row is None:
            return None
        inst = self._instance(*row)
        self._remember(inst)
        return inst

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT entry FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def find(self, workflow: str | None = None, state: str | None = None) -> Iterable[Instance]:
        where, args = [], []
        if workflow is not None:
            where.append("workflow = ?")
            args.append(workflow)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        sql = "SELECT rev, snapshot FROM instances" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [self._instance(*row) for row in self._db.execute(sql, args).fetchall()]

    def outbox(self, include_acknowledged: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT entry, acknowledged_at FROM outbox" + ("" if include_acknowledged else " WHERE acknowledged_at IS NULL") + " ORDER BY seq"
        out = []
        for entry, ack in self._db.execute(sql).fetchall():
            alert = json.loads(entry)
            alert["acknowledged_at"] = ack
            out.append(alert)
        return out

    def request_result(self, request_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT result FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def schedule(self, schedule_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT entry FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
        return None if row is None else schedule_from_json(json.loads(row[0]))

    def definition(self, workflow: str, version: int) -> dict[str, Any] | None:
        row = self._db.execute("SELECT entry FROM definitions WHERE workflow = ? AND version = ?", (workflow, version)).fetchone()
        return None if row is None else json.loads(row[0])

    def next_id(self, prefix: str) -> str:
        # one statement in autocommit mode is its own write transaction: unique across processes
        (value,) = self._db.execute(
            "INSERT INTO counters (prefix, value) VALUES (?, 1)"
            " ON CONFLICT (prefix) DO UPDATE SET value = value + 1 RETURNING value",
            (prefix,),
        ).fetchall()[0]
        return f"{prefix}-{value:06d}"

    def next_due(self, until: dt.datetime) -> DueItem | None:
        """The earliest due item that no other live store holds, claimed for this one.

        Several processes may advance the same file. The engine reads the instance only after
        ``next_due``, so if two of them were handed the same deadline, the second could read the
        instance after the first had breached it and breach it again; the claim stops that. A claim
        ends when the commit that fires the item changes its row, when ``lease_seconds`` pass, or at
        once when the claiming process is dead (SQLite in WAL mode is one machine, so a pid says).
        """
        db, key = self._db, time_key(until)
        if db.execute(_PEEK_DUE, (key,)).fetchone() is None:  # usually nothing is due: no lock taken
            return None
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            best = self._first_free(
                "SELECT due_key, 'breach', instance_id, name, claimed_by, claimed_until FROM deadlines"
                f" WHERE status = 'open' AND due_key <= ? AND {NOT_HELD} ORDER BY due_key, instance_id, name",
                key,
                now,
            )
            sched = self._first_free(
                "SELECT due_key, 'start', id, workflow, claimed_by, claimed_until FROM schedules"
                " WHERE due_key <= ? ORDER BY due_key, id",
                key,
                now,
            )
            if sched is not None and (best is None or sched < best):
                best = sched
            if best is not None:
                claim = (self.worker, now + self.lease_seconds)
                if best[1] == "breach":
                    db.execute("UPDATE deadlines SET claimed_by = ?, claimed_until = ? WHERE instance_id = ? AND name = ?", (*claim, best[2], best[3]))
                else:
                    db.execute("UPDATE schedules SET claimed_by = ?, claimed_until = ? WHERE id = ?", (*claim, best[2]))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return None if best is None else DueItem(from_time_key(best[0]), best[1], best[2], best[3])

    def _first_free(self, sql: str, key: int, now: float) -> tuple[int, str, str, str] | None:
        cur = self._db.execute(sql, (key,))
        try:
            for due_key, kind, item, name, claimed_by, claimed_until in cur:
                if self._claim_lapsed(claimed_by, claimed_until, now):
                    return due_key, kind, item, name
            return None
        finally:
            cur.close()

    def _claim_lapsed(self, claimed_by: str | None, claimed_until: float | None, now: float) -> bool:
        if claimed_by is None or claimed_by == self.worker or claimed_until is None or claimed_until < now:
            return True
        try:
            pid = int(claimed_by.split(":", 1)[0])
        except ValueError:
            return False  # not ours to judge: wait for the lease
        if pid == os.getpid():
            return False  # another store object of this process: alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True  # the claimant died before firing it
        except (PermissionError, OSError):
            return False
        return False

    # -- writes ----------------------------------------------------------------------------
    def commit(self, changes: Changes) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            revs = self._write(changes)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        for iid, inst in changes.instances.items():
            inst.rev = revs[iid]
            self._remember(inst)

    def _write(self, changes: Changes) -> dict[str, int]:
        """Check and write everything inside the open transaction; any raise rolls all of it back."""
        db = self._db
        base_revs = changes.base_revs
        added: dict[str, int] = dict.fromkeys(changes.instances, 0)
        for entry in changes.history:
            added[entry["instance_id"]] = added.get(entry["instance_id"], 0) + 1
        hist: dict[str, int] = {}  # history entries each instance had before this commit
        revs: dict[str, int] = {}
        # 1. the instance rows: an UPDATE that matches only the revision that was read is the check
        for iid, rev in base_revs.items():
            if iid not in changes.instances:  # read but not written: still must not have moved on
                row = db.execute("SELECT rev FROM instances WHERE id = ?", (iid,)).fetchone()
                if row is None or row[0] != rev:
                    raise conflict_rev(iid, rev, None if row is None else row[0])
        for iid, inst in changes.instances.items():
            base = base_revs.get(iid)
            rev = revs[iid] = (base or 0) + 1
            snapshot = snapshot_of(inst, rev)
            snap, updated = dumps(snapshot), snapshot["updated_at"]
            if base is not None:
                rows = db.execute(
                    "UPDATE instances SET version = ?, state = ?, rev = ?, hist = hist + ?, snapshot = ?, updated_at = ?"
                    " WHERE id = ? AND rev = ? RETURNING hist",
                    (inst.version, inst.state, rev, added[iid], snap, updated, iid, base),
                ).fetchall()
                if not rows:
                    row = db.execute("SELECT rev FROM instances WHERE id = ?", (iid,)).fetchone()
                    raise conflict_rev(iid, base, None if row is None else row[0])
                hist[iid] = rows[0][0] - added[iid]
            else:
                try:
                    db.execute(
                        "INSERT INTO instances (id, workflow, version, state, rev, hist, snapshot, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (iid, inst.workflow, inst.version, inst.state, rev, added[iid], snap, updated),
                    )
                except sqlite3.IntegrityError:
                    raise ConcurrencyConflict(f"instance {iid} already exists", instance=iid) from None
                hist[iid] = 0
        # 2. the other checks: a schedule fires once, a request id is carried out once
        for sid in changes.schedules_done:
            if db.execute("DELETE FROM schedules WHERE id = ?", (sid,)).rowcount != 1:
                raise ConcurrencyConflict(f"scheduled start {sid} was already done by someone else", schedule=sid)
        if changes.request is not None:
            request_id, result = changes.request
            try:
                db.execute("INSERT INTO requests (request_id, result) VALUES (?, ?)", (request_id, dumps(result)))
            except sqlite3.IntegrityError:
                raise ConcurrencyConflict(f"request {request_id} was already carried out", request_id=request_id) from None
        # 3. history, numbered on from what each instance had
        if changes.history:
            rows = []
            for entry in changes.history:
                iid = entry["instance_id"]
                if iid not in hist:  # an entry for an instance this commit does not write (the engine never does this)
                    hist[iid] = db.execute("SELECT COALESCE(MAX(seq), 0) FROM history WHERE instance_id = ?", (iid,)).fetchone()[0]
                hist[iid] += 1
                rows.append((iid, hist[iid], dumps(entry)))
            db.executemany("INSERT INTO history (instance_id, seq, entry) VALUES (?, ?, ?)", rows)
        # 4. the deadline index, where a snapshot's deadlines changed
        for iid, inst in changes.instances.items():
            base = base_revs.get(iid)
            before = self._cache.get(iid)
            if before is not None and before.rev == base and _clocks(before) == _clocks(inst):
                continue
            self._index_deadlines(iid, inst, existing=base is not None)
        # 5. outbox and schedules
        if changes.alerts:
            db.executemany(
                "INSERT INTO outbox (id, entry, acknowledged_at) VALUES (?, ?, ?)",
                [(a["id"], dumps({k: v for k, v in a.items() if k != "acknowledged_at"}), a.get("acknowledged_at")) for a in changes.alerts],
            )
        for sched in changes.schedules_added:
            db.execute(
                "INSERT INTO schedules (id, due_key, workflow, entry) VALUES (?, ?, ?, ?)",
                (sched["id"], time_key(sched["at"]), sched["workflow"], dumps(schedule_to_json(sched))),
            )
        if changes.definitions:
            db.executemany(
                "INSERT INTO definitions (workflow, version, digest, entry) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(d["workflow"], d["version"], d["digest"], dumps(d)) for d in changes.definitions],
            )
        for item in changes.held:
            self._hold(item)
        return revs

    def _hold(self, item: dict[str, Any]) -> None:
        db, due = self._db, time_key(item["at"])
        entry = None
        if item["kind"] == "start":
            row = db.execute("DELETE FROM schedules WHERE id = ? RETURNING entry", (item["key"],)).fetchone()
            if row is None:
                raise ConcurrencyConflict(f"scheduled start {item['key']} was already done by someone else", schedule=item["key"])
            entry = row[0]
        elif db.execute(  # still due, and no longer anyone's claim
            "UPDATE deadlines SET claimed_by = NULL, claimed_until = NULL"
            " WHERE instance_id = ? AND name = ? AND status = 'open' AND due_key = ?",
            (item["key"], item["name"], due),
        ).rowcount != 1:
            raise ConcurrencyConflict(f"deadline {item['name']} of {item['key']} is no longer due", instance=item["key"])
        db.execute(
            "INSERT OR REPLACE INTO held (kind, key, name, due_key, error, held_at, entry) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item["kind"], item["key"], item["name"], due, item["error"], item["held_at"], entry),
        )

    def schedules(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT entry FROM schedules ORDER BY due_key, id").fetchall()
        return [schedule_from_json(json.loads(r[0])) for r in rows]

    def held(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT kind, key, name, due_key, error, held_at FROM held ORDER BY due_key, kind, key, name").fetchall()
        return [held_item(*row) for row in rows]

    def release(self, kind: str, key: str, name: str) -> bool:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("DELETE FROM held WHERE kind = ? AND key = ? AND name = ? RETURNING due_key, entry", (kind, key, name)).fetchone()
            if row is not None and kind == "start":
                db.execute("INSERT INTO schedules (id, due_key, workflow, entry) VALUES (?, ?, ?, ?)", (key, row[0], name, row[1]))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return row is not None

    def _index_deadlines(self, iid: str, inst: Instance, *, existing: bool) -> None:
        db = self._db
        rows = [(iid, ds.name, time_key(ds.due_at), ds.status) for ds in inst.deadlines.values()]
        if rows:
            db.executemany(
                "INSERT INTO deadlines (instance_id, name, due_key, status) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (instance_id, name) DO UPDATE SET due_key = excluded.due_key, status = excluded.status,"
                " claimed_by = NULL, claimed_until = NULL"  # a changed row is no longer anyone's to fire
                " WHERE due_key != excluded.due_key OR status != excluded.status",
                rows,
            )
        if existing:  # a deadline dropped from the snapshot leaves the index too
            names = [r[1] for r in rows]
            db.execute(
                f"DELETE FROM deadlines WHERE instance_id = ? AND name NOT IN ({', '.join('?' * len(names))})",
                (iid, *names),
            )

    def acknowledge(self, alert_id: str, at: dt.datetime) -> bool:
        cur = self._db.execute(
            "UPDATE outbox SET acknowledged_at = COALESCE(acknowledged_at, ?) WHERE id = ?", (at.isoformat(), alert_id)
        )
        return cur.rowcount > 0
