"""A SQLite store: one file in WAL mode, optimistic locking, safe for several processes on one machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from ..calendar import LONDON
from ..errors import ConcurrencyConflict, StoreError, UsageError
from ..runtime.instance import REMINDER, Instance
from .base import AWAITED_STATUSES, Changes, DueItem, InstanceQuery, KpiValue, RequestCall, RequestRecord, lease_dict
from .values import dumps, refusal

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


def _clocks(inst: Instance) -> list[tuple[str, str, dt.date, list[dict[str, Any]]]]:
    """What the deadline index holds for an instance (its breaches and reminders), cheap to compare."""
    return [(ds.name, ds.status, ds.due, ds.reminders) for ds in inst.deadlines.values()]


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
    # 2: a request id is bound to its call (operation start|fire, NULL in rows from schema 1; target: the
    #    workflow started or the instance fired on; digest: sha256 of the data or payload as canonical
    #    JSON), and keeps the instance as that call committed it (snapshot). No SQL comments in ALTER
    #    TABLE: SQLite keeps the text in the table's CREATE statement.
    [
        "ALTER TABLE requests ADD COLUMN operation TEXT",
        "ALTER TABLE requests ADD COLUMN target TEXT",
        "ALTER TABLE requests ADD COLUMN trigger TEXT",
        "ALTER TABLE requests ADD COLUMN actor TEXT",
        "ALTER TABLE requests ADD COLUMN digest TEXT",
        "ALTER TABLE requests ADD COLUMN snapshot TEXT",
    ],
    # 3: due items advance could not fire (a definition that no longer compiles, a removed workflow),
    #    set aside so that everything else keeps firing; a held start keeps its schedule entry here
    [
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
    # 4: outbox leases: a deliverer claims alerts for a while (claimed_until, Unix time by the store's
    #    clock), so that several deliverers never send one alert at once; claims counts the attempts;
    #    acknowledged_by names the deliverer that acknowledged it
    [
        "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
        "ALTER TABLE outbox ADD COLUMN claimed_until REAL",
        "ALTER TABLE outbox ADD COLUMN claimed_at TEXT",
        "ALTER TABLE outbox ADD COLUMN claims INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN acknowledged_by TEXT",
    ],
    # 5: KPI values imported from outside (qaflow kpi import): one row per KPI, level and period; a value
    #    for the same key replaces the row. Dates are ISO text; numbers as given (NULL: not given)
    [
        """CREATE TABLE kpi_values (
            kpi TEXT NOT NULL,
            level TEXT NOT NULL,             -- department | service | team | ... (a report level)
            level_id TEXT NOT NULL,          -- '' at department level
            period_from TEXT NOT NULL,
            period_to TEXT NOT NULL,
            period TEXT NOT NULL,            -- the period's code: 2026-10, FY2026/27-Q3, ...
            value REAL,
            numerator REAL,
            denominator REAL,
            england REAL,
            statistical_neighbours REAL,
            region REAL,
            benchmark_period TEXT NOT NULL,
            source TEXT NOT NULL,
            note TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            imported_from TEXT NOT NULL,
            PRIMARY KEY (kpi, level, level_id, period_from, period_to)
        ) WITHOUT ROWID""",
    ],
]

#: The SQL of the kpi_values filters, shared with PostgreSQL (its placeholders are %s: format with "?" or "%s")
KPI_COLUMNS = ", ".join(KpiValue.FIELDS)


def kpi_filters(kpi: str | None, level: str | None, level_id: str | None, start: Any, end: Any, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") and its arguments for ``kpi_values``: a period overlapping start..end."""
    where, args = [], []
    for column, value in (("kpi", kpi), ("level", level), ("level_id", level_id)):
        if value is not None:
            where.append(f"{column} = {mark}")
            args.append(value)
    if start is not None:
        where.append(f"period_to >= {mark}")
        args.append(start)
    if end is not None:
        where.append(f"period_from <= {mark}")
        args.append(end)
    return (" WHERE " + " AND ".join(where)) if where else "", args

#: The deadline filter of instance queries: a deadline still awaited that falls due by then (shared with PostgreSQL)
DUE_BY = (
    "EXISTS (SELECT 1 FROM deadlines d WHERE d.instance_id = instances.id"
    f" AND d.status IN ({', '.join(repr(s) for s in AWAITED_STATUSES)}) AND d.due_key <= {{due}}"
    f" AND {{position}}(d.name, '{REMINDER}') = 0)"  # a reminder's row is not a deadline (instr / strpos)
)

# a deadline row that advance set aside at that due time: next_due passes over it
NOT_HELD = (
    "NOT EXISTS (SELECT 1 FROM held h WHERE h.kind = 'breach' AND h.key = deadlines.instance_id"
    " AND h.name = deadlines.name AND h.due_key = deadlines.due_key)"
)


CACHE_SIZE = 4096  # snapshots kept per connection
LEASE_SECONDS = 60.0  # how long a claim from next_due holds if its process lives but never fires it

_PEEK_DUE = (
    f"SELECT * FROM (SELECT due_key FROM deadlines WHERE status = 'open' AND due_key <= ?1 AND {NOT_HELD} ORDER BY due_key LIMIT 1)"
    " UNION ALL SELECT * FROM (SELECT due_key FROM schedules WHERE due_key <= ?1 ORDER BY due_key LIMIT 1)"
)

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _guarded(method: _Method) -> _Method:
    """sqlite3's own errors leave the store as StoreError, naming the file and what to do."""

    @functools.wraps(method)
    def guarded(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._store_error(exc) from exc
        except json.JSONDecodeError as exc:  # a row whose text is not the JSON qaflow wrote
            raise self._store_error(sqlite3.DatabaseError(f"a stored value is not JSON ({exc.msg})")) from exc

    return guarded  # type: ignore[return-value]


def _cannot_write_here(exc: sqlite3.Error) -> bool:
    """An error that says the file can be read but not written by this process."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly database" in str(exc)


class _Connection:
    """One thread's connection, with the snapshots it read or wrote and its claimant name.

    Held by the thread's ``threading.local``: when the thread ends, nothing else holds it and the
    connection is closed, so a host that starts a thread per request does not pile up connections.
    """

    __slots__ = ("db", "cache", "seen_version", "worker", "__weakref__")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        # Snapshots this connection read or wrote, trusted while PRAGMA data_version says no other
        # connection has committed since (it does not move for our own commits): a load is then one
        # cheap PRAGMA instead of a query and a JSON parse. Callers never mutate what load returns.
        self.cache: dict[str, Instance] = {}
        self.seen_version = -1
        self.worker = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # closing at interpreter exit
            self.db.close()


class SQLiteStore:
    """Instances, history, deadlines, schedules and the outbox in one SQLite file.

    Every commit is one ``BEGIN IMMEDIATE`` transaction that first checks the revision of every instance
    it read, so several processes can share the file: the loser of a race gets ``ConcurrencyConflict``
    and the winner's write stands. ``next_due`` claims what it hands out, so that two processes
    advancing the clock together never fire the same deadline twice. Threads may share one store:
    each thread gets its own connection (and its own snapshot cache) on first use. Open stores after
    forking, not before.

    ``synchronous="FULL"`` (the default) fsyncs every commit, so an accepted change survives a power
    cut or OS crash as well as a killed process: nothing a caller was told happened may be lost.
    ``synchronous="NORMAL"`` under WAL skips that fsync (about 1.7x more fires per second, measured by
    benchmarks/store_throughput.py); a commit then survives the process being killed and the file is
    never corrupted, but the last commits before a power cut may be lost.

    ``readonly=True`` opens the file for reading only (a backup, a replica, a file this user may not
    write): nothing is migrated and every write raises ``StoreError``. A file this process cannot
    write is opened that way by itself. Errors from SQLite itself (a damaged file, a lock held beyond
    ``timeout``, a full disk) are raised as ``StoreError``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "qaflow.db",
        *,
        synchronous: str = "FULL",
        timeout: float = 30.0,
        lease_seconds: float = LEASE_SECONDS,
        readonly: bool = False,
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise UsageError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = os.fspath(path)
        self.synchronous = synchronous.upper()
        self.timeout = timeout
        self.lease_seconds = lease_seconds
        self.readonly = readonly
        self.readonly_reason = "it was opened read-only" if readonly else ""
        self._local = threading.local()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()  # every live thread's, for close()
        self._connections_lock = threading.Lock()
        self._closed = False
        if not readonly and os.path.isfile(self.path) and not os.access(self.path, os.W_OK):
            self.readonly, self.readonly_reason = True, "the file is not writable by this user"
        try:
            self._connect(migrate=True)
        except sqlite3.Error as exc:
            if self.readonly or not _cannot_write_here(exc) or not os.path.isfile(self.path):
                raise
            # the file is there but this process cannot write beside it (a read-only folder): read it
            self.readonly, self.readonly_reason = True, f"it cannot be written here ({exc})"
            self._connect(migrate=True)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close every thread's connection."""
        self._closed = True
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            conn.db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}{', readonly=True' if self.readonly else ''})"

    def _c(self) -> _Connection:
        """This thread's connection, opened on its first use."""
        try:
            return self._local.conn
        except AttributeError:
            return self._connect(migrate=False)

    def _connect(self, *, migrate: bool) -> _Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        if self.readonly:
            db = self._open_readonly()
        else:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves; timeout: racing processes wait for the lock;
            # check_same_thread=False only so that close() may close every thread's connection
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, cached_statements=256, check_same_thread=False)
            try:
                db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(f"PRAGMA synchronous = {self.synchronous}")
                if migrate:
                    self._migrate(db)
            except BaseException:
                db.close()
                raise
        conn = _Connection(db)
        with self._connections_lock:
            self._connections.add(conn)
        self._local.conn = conn
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        uri = f"file:{quote(os.path.abspath(self.path))}?mode=ro"
        options: dict[str, Any] = {"timeout": self.timeout, "isolation_level": None, "check_same_thread": False, "uri": True}
        db = sqlite3.connect(uri, **options)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._check_schema(db)  # the first read: in WAL mode it needs the shared-memory index beside the file
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if not _cannot_write_here(exc):
                raise
        # The folder is not writable, so SQLite cannot make the WAL index it reads through. Read the file
        # as it is on disk ("immutable"); that is only right when no write-ahead log holds newer changes.
        wal = f"{self.path}-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise StoreError(
                f"cannot read the SQLite store {self.path}: its folder is not writable and its write-ahead log {wal} "
                f"holds changes not yet in the file; open it once where it can be written (or copy the file and "
                f"its -wal file to a writable folder) and try again",
                store=self.path,
            )
        db = sqlite3.connect(uri + "&immutable=1", **options)
        try:
            self._check_schema(db)
        except BaseException:
            db.close()
            raise
        return db

    def _check_schema(self, db: sqlite3.Connection) -> None:
        """A store opened read-only is not migrated: refuse a newer schema, and a file that holds none."""
        current = db.execute("PRAGMA user_version").fetchone()[0]
        if current > len(MIGRATIONS):
            raise UsageError(
                f"{self.path} has schema version {current}, newer than this qaflow knows ({len(MIGRATIONS)}): upgrade qaflow"
            )
        if current == 0:
            raise UsageError(f"{self.path} is not a qaflow store (it has no qaflow tables)")

    @property
    def worker(self) -> str:
        """This thread's claimant name in the claims next_due makes: "pid:token"."""
        return self._c().worker

    @property
    @_guarded
    def schema_version(self) -> int:
        return self._c().db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self, db: sqlite3.Connection) -> None:
        wanted = len(MIGRATIONS)
        if db.execute("PRAGMA user_version").fetchone()[0] == wanted:
            return
        db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file: look again under the lock
        try:
            current = db.execute("PRAGMA user_version").fetchone()[0]
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

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(
                f"the SQLite store {self.path} is open read-only ({self.readonly_reason}); nothing was changed: "
                f"run the command where the file and its folder can be written",
                store=self.path,
            )

    def _store_error(self, exc: sqlite3.Error) -> StoreError:
        name = getattr(exc, "sqlite_errorname", None) or ""
        text = " ".join(str(exc).split()) or type(exc).__name__
        where = f"the SQLite store {self.path}"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
            return StoreError(
                f"{where} stayed locked by another process for more than {self.timeout:g} s; nothing was changed: "
                f"try again, and look for a process that keeps a long transaction open on it",
                retry=True, store=self.path,
            )
        if _cannot_write_here(exc):
            return StoreError(
                f"{where} cannot be written ({text}); nothing was changed: check the permissions of the file and "
                f"its folder (SQLite writes {os.path.basename(self.path)}-wal and -shm beside it)",
                store=self.path,
            )
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or any(
            sign in text for sign in ("malformed", "Could not decode", "not a database", "not JSON")
        ):
            return StoreError(
                f"{where} is damaged ({text}): check it with  sqlite3 {self.path} 'PRAGMA integrity_check'  and "
                f"restore it from a backup (sqlite3's .recover command may save what is left)",
                store=self.path,
            )
        if name.startswith("SQLITE_FULL"):
            return StoreError(f"the disk holding {self.path} is full; nothing was changed: free some space and try again", retry=True, store=self.path)
        if name.startswith("SQLITE_IOERR"):
            return StoreError(f"{where} could not be read or written ({text}): check the disk", retry=True, store=self.path)
        if isinstance(exc, sqlite3.ProgrammingError) and "closed" in text:
            return StoreError(f"{where} was closed: open it again", store=self.path)
        return StoreError(f"{where} failed: {text}", store=self.path)

    # -- reads -----------------------------------------------------------------------------
    @staticmethod
    def _instance(rev: int, snapshot: str) -> Instance:
        inst = Instance.from_dict(json.loads(snapshot))
        inst.rev = rev
        return inst

    @staticmethod
    def _fresh_cache(conn: _Connection) -> dict[str, Instance]:
        version = conn.db.execute("PRAGMA data_version").fetchone()[0]
        if version != conn.seen_version:
            conn.seen_version = version
            conn.cache.clear()
        return conn.cache

    @staticmethod
    def _remember(conn: _Connection, inst: Instance) -> None:
        cache = conn.cache
        if len(cache) >= CACHE_SIZE:
            del cache[next(iter(cache))]  # the oldest
        cache[inst.id] = inst

    @_guarded
    def load(self, instance_id: str) -> Instance | None:
        conn = self._c()
        inst = self._fresh_cache(conn).get(instance_id)
        if inst is not None:
            return inst
        row = conn.db.execute("SELECT rev, snapshot FROM instances WHERE id = ?", (instance_id,)).fetchone()
        if row is None:
            return None
        inst = self._instance(*row)
        self._remember(conn, inst)
        return inst

    @_guarded
    def history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._c().db.execute("SELECT entry FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    @_guarded
    def find(self, workflow: str | None = None, state: str | None = None) -> Iterable[Instance]:
        where, args = [], []
        if workflow is not None:
            where.append("workflow = ?")
            args.append(workflow)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        sql = "SELECT rev, snapshot FROM instances" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [self._instance(*row) for row in self._c().db.execute(sql, args).fetchall()]

    @_guarded
    def query(self, query: InstanceQuery) -> list[Instance]:
        """Matching instances in id order, a page at a time (keyset: ``id > after``, never OFFSET).

        Data fields are read from the snapshot with ``json_type``/``json_extract`` (no index: the
        fields are configuration, and a page of 50 from 10,000 instances reads in milliseconds,
        measured by benchmarks/queries.py); the due-date filter looks in the deadline index.
        """
        where, args = self._filters(query)
        sql = "SELECT rev, snapshot FROM instances" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id LIMIT ?"
        return [self._instance(*row) for row in self._c().db.execute(sql, [*args, query.limit]).fetchall()]

    @staticmethod
    def _filters(query: InstanceQuery) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if query.workflow is not None:
            where.append("workflow = ?")
            args.append(query.workflow)
        if query.state is not None:
            where.append("state = ?")
            args.append(query.state)
        if query.after is not None:
            where.append("id > ?")
            args.append(query.after)
        for name, values in query.where:
            path = f'$.data."{name}"'  # the engine lets only letters, digits and _ into a field name
            any_of = []
            texts = [v for v in values if isinstance(v, str)]
            numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            kinds = sorted({"true" if v else "false" for v in values if isinstance(v, bool)} | ({"null"} if None in values else set()))
            # json_extract gives text for a JSON string, but also JSON text for an array or object and 1/0
            # for true/false: the type is checked with it, so that only like compares with like
            if texts:
                any_of.append(f"(json_type(snapshot, ?) = 'text' AND json_extract(snapshot, ?) IN ({', '.join('?' * len(texts))}))")
                args += [path, path, *texts]
            if numbers:
                any_of.append(
                    f"(json_type(snapshot, ?) IN ('integer', 'real') AND json_extract(snapshot, ?) IN ({', '.join('?' * len(numbers))}))"
                )
                args += [path, path, *numbers]
            if kinds:  # a field not set has no type: it matches None as null does
                any_of.append(f"COALESCE(json_type(snapshot, ?), 'null') IN ({', '.join('?' * len(kinds))})")
                args += [path, *kinds]
            where.append("(" + " OR ".join(any_of) + ")" if any_of else "0")
        if query.due_before is not None:
            where.append(DUE_BY.format(due="?", position="instr"))
            args.append(time_key(query.due_before))
        for reach in query.reach:  # see Reach: of this workflow version, only the instances the person may act on
            clause = ["workflow != ?", "version != ?"]
            args += [reach.workflow, reach.version]
            if reach.states:
                clause.append(f"state IN ({', '.join('?' * len(reach.states))})")
                args += reach.states
            if reach.bound_states and reach.fields:
                named, named_args = [], []
                for field in reach.fields:  # the field is the person's id, or a list holding it
                    path = f'$.data."{field}"'
                    named.append(
                        "(json_type(snapshot, ?) = 'text' AND json_extract(snapshot, ?) = ?"
                        " OR json_type(snapshot, ?) = 'array' AND EXISTS (SELECT 1 FROM json_each(snapshot, ?) WHERE type = 'text' AND value = ?))"
                    )
                    named_args += [path, path, query.person, path, path, query.person]
                clause.append(f"state IN ({', '.join('?' * len(reach.bound_states))}) AND ({' OR '.join(named)})")
                args += [*reach.bound_states, *named_args]
            where.append("(" + " OR ".join(clause) + ")")
        return where, args

    @_guarded
    def outbox(self, include_acknowledged: bool = False) -> list[dict[str, Any]]:
        by = "acknowledged_by" if self._leases_kept() else "NULL"
        sql = f"SELECT entry, acknowledged_at, {by} FROM outbox" + ("" if include_acknowledged else " WHERE acknowledged_at IS NULL") + " ORDER BY seq"
        out = []
        for entry, ack, ack_by in self._c().db.execute(sql).fetchall():
            alert = json.loads(entry)
            alert["acknowledged_at"] = ack
            alert["acknowledged_by"] = ack_by
            out.append(alert)
        return out

    def _leases_kept(self) -> bool:
        """Whether the outbox has the lease columns: always, except in an older file opened read-only."""
        return not self.readonly or self.schema_version >= 4

    @_guarded
    def claim_alerts(self, worker: str, limit: int, lease_seconds: float, at: str | None) -> list[dict[str, Any]]:
        """Lease the oldest unacknowledged alerts under no live lease; the lease runs on this machine's clock.

        One ``BEGIN IMMEDIATE`` transaction finds and marks them, so two processes claiming at once
        are served one after the other and never get the same alert while its lease runs.
        """
        self._writable()
        db = self._c().db
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            until = now + lease_seconds
            rows = db.execute(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ?, claimed_at = ?, claims = claims + 1"
                " WHERE seq IN (SELECT seq FROM outbox WHERE acknowledged_at IS NULL"
                "   AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY seq LIMIT ?)"
                " RETURNING seq, entry, claims",
                (worker, until, at, now, limit),
            ).fetchall()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        claimed = []
        for _, entry, claims in sorted(rows):  # RETURNING gives no order
            alert = json.loads(entry)
            alert["acknowledged_at"] = alert["acknowledged_by"] = None
            alert["lease"] = lease_dict(worker, at, until, claims)
            claimed.append(alert)
        return claimed

    @_guarded
    def request(self, request_id: str) -> RequestRecord | None:
        row = self._c().db.execute(
            "SELECT result, operation, target, trigger, actor, digest, snapshot FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return None
        result, operation, target, trigger, actor, digest, snapshot = row
        result = json.loads(result)
        call = None if operation is None else RequestCall(operation, target, trigger, actor, digest)
        first = None if snapshot is None else Instance.from_dict(json.loads(snapshot))
        return RequestRecord(request_id, call, result["id"], result["state"], first)

    @_guarded
    def schedule(self, schedule_id: str) -> dict[str, Any] | None:
        row = self._c().db.execute("SELECT entry FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
        return None if row is None else schedule_from_json(json.loads(row[0]))

    @_guarded
    def definition(self, workflow: str, version: int) -> dict[str, Any] | None:
        row = self._c().db.execute("SELECT entry FROM definitions WHERE workflow = ? AND version = ?", (workflow, version)).fetchone()
        return None if row is None else json.loads(row[0])

    @_guarded
    def next_id(self, prefix: str) -> str:
        self._writable()
        # one statement in autocommit mode is its own write transaction: unique across processes
        (value,) = self._c().db.execute(
            "INSERT INTO counters (prefix, value) VALUES (?, 1)"
            " ON CONFLICT (prefix) DO UPDATE SET value = value + 1 RETURNING value",
            (prefix,),
        ).fetchall()[0]
        return f"{prefix}-{value:06d}"

    @_guarded
    def next_due(self, until: dt.datetime) -> DueItem | None:
        """The earliest due item that no other live store holds, claimed for this one.

        Several processes may advance the same file. The engine reads the instance only after
        ``next_due``, so if two of them were handed the same deadline, the second could read the
        instance after the first had breached it and breach it again; the claim stops that. A claim
        ends when the commit that fires the item changes its row, when ``lease_seconds`` pass, or at
        once when the claiming process is dead (SQLite in WAL mode is one machine, so a pid says).
        """
        conn = self._c()
        db, key = conn.db, time_key(until)
        if db.execute(_PEEK_DUE, (key,)).fetchone() is None:  # usually nothing is due: no lock taken
            return None
        self._writable()
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            best = self._first_free(
                conn,
                "SELECT due_key, 'breach', instance_id, name, claimed_by, claimed_until FROM deadlines"
                f" WHERE status = 'open' AND due_key <= ? AND {NOT_HELD} ORDER BY due_key, instance_id, name",
                key,
                now,
            )
            sched = self._first_free(
                conn,
                "SELECT due_key, 'start', id, workflow, claimed_by, claimed_until FROM schedules"
                " WHERE due_key <= ? ORDER BY due_key, id",
                key,
                now,
            )
            if sched is not None and (best is None or sched < best):
                best = sched
            if best is not None:
                claim = (conn.worker, now + self.lease_seconds)
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

    def _first_free(self, conn: _Connection, sql: str, key: int, now: float) -> tuple[int, str, str, str] | None:
        cur = conn.db.execute(sql, (key,))
        try:
            for due_key, kind, item, name, claimed_by, claimed_until in cur:
                if self._claim_lapsed(conn, claimed_by, claimed_until, now):
                    return due_key, kind, item, name
            return None
        finally:
            cur.close()

    @staticmethod
    def _claim_lapsed(conn: _Connection, claimed_by: str | None, claimed_until: float | None, now: float) -> bool:
        if claimed_by is None or claimed_by == conn.worker or claimed_until is None or claimed_until < now:
            return True
        try:
            pid = int(claimed_by.split(":", 1)[0])
        except ValueError:
            return False  # not ours to judge: wait for the lease
        if pid == os.getpid():
            return False  # another store object or thread of this process: alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True  # the claimant died before firing it
        except (PermissionError, OSError):
            return False
        return False

    # -- writes ----------------------------------------------------------------------------
    @_guarded
    def commit(self, changes: Changes) -> None:
        self._writable()
        conn = self._c()
        db = conn.db
        db.execute("BEGIN IMMEDIATE")
        try:
            revs = self._write(changes)
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, (ValueError, TypeError, RecursionError)):  # NaN, NUL, a lone surrogate, a host type
                refused = refusal(changes)
                if refused is not None:
                    raise refused from None
            raise
        for iid, inst in changes.instances.items():
            inst.rev = revs[iid]
            self._remember(conn, inst)

    def _write(self, changes: Changes) -> dict[str, int]:
        """Check and write everything inside the open transaction; any raise rolls all of it back."""
        conn = self._c()
        db = conn.db
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
            request_id, call, iid = changes.request
            result = dumps({"id": iid, "state": changes.instances[iid].state, "rev": revs[iid]})
            try:  # the result is the snapshot just written above
                db.execute(
                    "INSERT INTO requests (request_id, result, operation, target, trigger, actor, digest, snapshot)"
                    " SELECT ?, ?, ?, ?, ?, ?, ?, snapshot FROM instances WHERE id = ?",
                    (request_id, result, call.operation, call.target, call.trigger, call.actor, call.digest, iid),
                )
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
        cache = conn.cache
        for iid, inst in changes.instances.items():
            base = base_revs.get(iid)
            before = cache.get(iid)
            if before is not None and before.rev == base and _clocks(before) == _clocks(inst):
                continue
            self._index_deadlines(db, iid, inst, existing=base is not None)
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
            self._hold(db, item)
        return revs

    @staticmethod
    def _hold(db: sqlite3.Connection, item: dict[str, Any]) -> None:
        due = time_key(item["at"])
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

    @_guarded
    def schedules(self) -> list[dict[str, Any]]:
        rows = self._c().db.execute("SELECT entry FROM schedules ORDER BY due_key, id").fetchall()
        return [schedule_from_json(json.loads(r[0])) for r in rows]

    @_guarded
    def held(self) -> list[dict[str, Any]]:
        if self.schema_version < 3:  # an older file read without migrating: nothing can be held in it
            return []
        rows = self._c().db.execute("SELECT kind, key, name, due_key, error, held_at FROM held ORDER BY due_key, kind, key, name").fetchall()
        return [held_item(*row) for row in rows]

    @_guarded
    def release(self, kind: str, key: str, name: str) -> bool:
        self._writable()
        db = self._c().db
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

    @staticmethod
    def _index_deadlines(db: sqlite3.Connection, iid: str, inst: Instance, *, existing: bool) -> None:
        rows = [(iid, name, time_key(at), status) for name, status, at in inst.clocks()]
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

    @_guarded
    def acknowledge(self, alert_id: str, at: dt.datetime, worker: str | None = None) -> bool:
        self._writable()
        cur = self._c().db.execute(  # the first acknowledgement stands (SET reads the row as it was)
            "UPDATE outbox SET acknowledged_at = COALESCE(acknowledged_at, ?),"
            " acknowledged_by = CASE WHEN acknowledged_at IS NULL THEN ? ELSE acknowledged_by END WHERE id = ?",
            (at.isoformat(), worker, alert_id),
        )
        return cur.rowcount > 0

    # -- imported KPI values -------------------------------------------------------------------
    @_guarded
    def put_kpi_values(self, values: Sequence[KpiValue]) -> list[KpiValue]:
        self._writable()
        db = self._c().db
        key = "kpi = ? AND level = ? AND level_id = ? AND period_from = ? AND period_to = ?"
        db.execute("BEGIN IMMEDIATE")
        try:
            replaced = []
            for v in values:
                row = db.execute(f"SELECT {KPI_COLUMNS} FROM kpi_values WHERE {key}", v.row()[:5]).fetchone()
                if row is not None:
                    replaced.append(KpiValue.from_row(row))
            db.executemany(f"INSERT OR REPLACE INTO kpi_values ({KPI_COLUMNS}) VALUES ({', '.join('?' * len(KpiValue.FIELDS))})",
                           [v.row() for v in values])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return replaced

    @_guarded
    def kpi_values(self, kpi: str | None = None, *, level: str | None = None, level_id: str | None = None,
                   start: dt.date | None = None, end: dt.date | None = None) -> list[KpiValue]:
        if self.schema_version < 5:  # an older file read without migrating: nothing was imported into it
            return []
        where, args = kpi_filters(kpi, level, level_id, start and start.isoformat(), end and end.isoformat(), "?")
        sql = f"SELECT {KPI_COLUMNS} FROM kpi_values{where} ORDER BY kpi, level, level_id, period_from, period_to"
        return [KpiValue.from_row(row) for row in self._c().db.execute(sql, args).fetchall()]
