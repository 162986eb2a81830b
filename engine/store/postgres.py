"""A PostgreSQL store (psycopg 3): the SQLite store's behaviour, for several workers sharing one database."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from ..errors import ConcurrencyConflict, DataInvalid, StoreError, UsageError
from ..runtime.instance import Instance
from .base import Changes, DueItem, InstanceQuery, KpiValue, RequestCall, RequestRecord, lease_dict
from .sqlite import (
    DUE_BY,
    KPI_COLUMNS,
    NOT_HELD,
    conflict_rev,
    from_time_key,
    held_item,
    kpi_filters,
    schedule_from_json,
    schedule_to_json,
    snapshot_of,
    time_key,
)
from .urls import shown
from .values import dumps, refusal

# Each step is a list of single SQL statements, applied in order and recorded in schema_migrations.
# Never edit a step that has shipped: append a new one. Text that is sorted on is COLLATE "C" so that
# the order is Python's (code points), as in the memory and SQLite stores.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE instances (
            id TEXT COLLATE "C" PRIMARY KEY,
            workflow TEXT COLLATE "C" NOT NULL,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,
            rev INTEGER NOT NULL,
            hist INTEGER NOT NULL,
            snapshot JSONB NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )""",
        "CREATE INDEX instances_workflow ON instances (workflow, id)",
        """CREATE TABLE history (
            id BIGSERIAL PRIMARY KEY,
            instance_id TEXT COLLATE "C" NOT NULL,
            seq INTEGER NOT NULL,
            entry JSONB NOT NULL,
            UNIQUE (instance_id, seq)
        )""",
        """CREATE TABLE deadlines (
            instance_id TEXT COLLATE "C" NOT NULL,
            name TEXT COLLATE "C" NOT NULL,
            due_key BIGINT NOT NULL,
            status TEXT NOT NULL,
            claimed_by TEXT,
            claimed_until TIMESTAMPTZ,
            PRIMARY KEY (instance_id, name)
        )""",
        "CREATE INDEX deadlines_open_due ON deadlines (due_key, instance_id, name) WHERE status = 'open'",
        """CREATE TABLE schedules (
            id TEXT COLLATE "C" PRIMARY KEY,
            due_key BIGINT NOT NULL,
            workflow TEXT COLLATE "C" NOT NULL,
            entry JSONB NOT NULL,
            claimed_by TEXT,
            claimed_until TIMESTAMPTZ
        )""",
        "CREATE INDEX schedules_due ON schedules (due_key, id)",
        """CREATE TABLE outbox (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            entry JSONB NOT NULL,
            acknowledged_at TEXT
        )""",
        "CREATE INDEX outbox_pending ON outbox (seq) WHERE acknowledged_at IS NULL",
        "CREATE TABLE requests (request_id TEXT PRIMARY KEY, result JSONB NOT NULL)",
        "CREATE TABLE counters (prefix TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        """CREATE TABLE definitions (
            workflow TEXT NOT NULL,
            version INTEGER NOT NULL,
            digest TEXT NOT NULL,
            entry JSONB NOT NULL,
            PRIMARY KEY (workflow, version)
        )""",
    ],
    # 2: a request id is bound to its call, and keeps the instance as that call committed it; a claim
    #    names the server process (backend pid) of the connection that made it, so that it ends with it
    [
        "ALTER TABLE requests ADD COLUMN operation TEXT",
        "ALTER TABLE requests ADD COLUMN target TEXT",
        "ALTER TABLE requests ADD COLUMN trigger TEXT",
        "ALTER TABLE requests ADD COLUMN actor TEXT",
        "ALTER TABLE requests ADD COLUMN digest TEXT",
        "ALTER TABLE requests ADD COLUMN snapshot JSONB",
        "ALTER TABLE deadlines ADD COLUMN claimed_pid INTEGER",
        "ALTER TABLE schedules ADD COLUMN claimed_pid INTEGER",
    ],
    # 3: due items advance could not fire, set aside (see the SQLite store's step 3)
    [
        """CREATE TABLE held (
            kind TEXT NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            name TEXT COLLATE "C" NOT NULL,
            due_key BIGINT NOT NULL,
            error TEXT NOT NULL,
            held_at TEXT NOT NULL,
            entry JSONB,
            PRIMARY KEY (kind, key, name)
        )""",
    ],
    # 4: outbox leases (see the SQLite store's step 4; claimed_until by the server's clock)
    [
        "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
        "ALTER TABLE outbox ADD COLUMN claimed_until TIMESTAMPTZ",
        "ALTER TABLE outbox ADD COLUMN claimed_at TEXT",
        "ALTER TABLE outbox ADD COLUMN claims INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN acknowledged_by TEXT",
    ],
    # 5: KPI values imported from outside (see the SQLite store's step 5)
    [
        """CREATE TABLE kpi_values (
            kpi TEXT COLLATE "C" NOT NULL,
            level TEXT COLLATE "C" NOT NULL,
            level_id TEXT COLLATE "C" NOT NULL,
            period_from DATE NOT NULL,
            period_to DATE NOT NULL,
            period TEXT NOT NULL,
            value DOUBLE PRECISION,
            numerator DOUBLE PRECISION,
            denominator DOUBLE PRECISION,
            england DOUBLE PRECISION,
            statistical_neighbours DOUBLE PRECISION,
            region DOUBLE PRECISION,
            benchmark_period TEXT NOT NULL,
            source TEXT NOT NULL,
            note TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            imported_from TEXT NOT NULL,
            PRIMARY KEY (kpi, level, level_id, period_from, period_to)
        )""",
    ],
]

_MIGRATION_LOCK = 0x71AF_0001  # pg_advisory_xact_lock key: one migrator at a time
LEASE_SECONDS = 60.0

# The server processes alive now (one per connection). A claim whose backend is not among them was made
# by a connection that has ended: its worker died or lost the connection, and the claim is void.
_LIVE = "live AS MATERIALIZED (SELECT pg_stat_get_backend_pid(b) AS pid FROM pg_stat_get_backend_idset() AS b)"
_FREE = (
    "(claimed_until IS NULL OR claimed_until < now() OR claimed_pid = pg_backend_pid()"
    " OR (claimed_pid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM live WHERE live.pid = claimed_pid)))"
)
_NEXT_DUE = (
    # one statement, so one transaction: find, lock (skipping rows another worker is claiming) and claim
    f"WITH {_LIVE},"
    " d AS (SELECT due_key, 'breach'::text AS kind, instance_id AS key, name FROM deadlines"
    f"   WHERE status = 'open' AND due_key <= %(until)s AND {_FREE} AND {NOT_HELD}"
    "   ORDER BY due_key, instance_id, name LIMIT 1 FOR UPDATE OF deadlines SKIP LOCKED),"
    " s AS (SELECT due_key, 'start'::text AS kind, id AS key, workflow AS name FROM schedules"
    f"   WHERE due_key <= %(until)s AND {_FREE}"
    "   ORDER BY due_key, id LIMIT 1 FOR UPDATE OF schedules SKIP LOCKED),"
    " pick AS MATERIALIZED (SELECT * FROM (SELECT * FROM d UNION ALL SELECT * FROM s) x"
    "   ORDER BY due_key, kind, key, name LIMIT 1),"
    " claim_d AS (UPDATE deadlines t SET claimed_by = %(me)s, claimed_pid = pg_backend_pid(), claimed_until = now() + %(lease)s"
    "   FROM pick WHERE pick.kind = 'breach' AND t.instance_id = pick.key AND t.name = pick.name RETURNING 1),"
    " claim_s AS (UPDATE schedules t SET claimed_by = %(me)s, claimed_pid = pg_backend_pid(), claimed_until = now() + %(lease)s"
    "   FROM pick WHERE pick.kind = 'start' AND t.id = pick.key RETURNING 1)"
    " SELECT due_key, kind, key, name FROM pick"
)

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _guarded(method: _Method) -> _Method:
    """psycopg's errors leave the store as StoreError, naming the database and what to do."""

    @functools.wraps(method)
    def guarded(self: PostgresStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if isinstance(exc, self._psycopg.Error):
                raise self._store_error(exc, method.__name__) from exc
            raise

    return guarded  # type: ignore[return-value]


def _no_nul(*texts: str | None) -> bool:
    """PostgreSQL text cannot hold NUL, so no stored id or name has one: such a lookup finds nothing."""
    return not any(t is not None and "\x00" in t for t in texts)


class _Session:
    """One thread's connection, held by its ``threading.local``: closed when the thread ends."""

    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # closing at interpreter exit
            self.conn.close()


class PostgresStore:
    """Instances, history, deadlines, schedules and the outbox in PostgreSQL, for several workers.

    Commits lock the instance rows they read (``SELECT ... FOR UPDATE``) and check their revisions, as
    the SQLite store does. ``next_due`` hands each due deadline or scheduled start to one worker only:
    it claims the row (skipping rows other workers are claiming, ``FOR UPDATE SKIP LOCKED``), and the
    commit that fires it closes the row. A claim names the server process of the connection that made
    it, and lasts while that connection does, for at most ``lease_seconds``: when a worker dies or its
    connection drops, the server ends that process and the claim is void at once; a worker that lives
    but hangs holds its claim until the lease runs out. ``worker`` names the claimant for people.

    Threads may share one store: each thread gets its own connection on first use, and a thread whose
    connection was lost connects again on its next call. ``readonly=True`` opens the database for
    reading only (a replica, a user without write rights): nothing is migrated and every write raises
    ``StoreError``. Errors from the server or the connection are raised as ``StoreError``.
    """

    def __init__(
        self,
        url: str,
        *,
        worker: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        connect_timeout: int = 10,
        readonly: bool = False,
    ) -> None:
        try:
            import psycopg
            from psycopg.types.json import Jsonb, set_json_dumps
        except ImportError:  # pragma: no cover - depends on the installation
            raise UsageError("PostgreSQL needs psycopg: pip install 'qaflow[postgres]' (or 'psycopg[binary]')") from None
        self._psycopg = psycopg
        self._jsonb = Jsonb
        self._set_json_dumps = set_json_dumps
        self.url = url
        self.shown = shown(url)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.connect_timeout = connect_timeout
        self.readonly = readonly
        self._local = threading.local()
        self._sessions: weakref.WeakSet[_Session] = weakref.WeakSet()  # every live thread's, for close()
        self._sessions_lock = threading.Lock()
        self._closed = False
        self._connect(migrate=True)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close every thread's connection."""
        self._closed = True
        with self._sessions_lock:
            sessions = list(self._sessions)
            self._sessions.clear()
        for session in sessions:
            session.conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.shown!r}{', readonly=True' if self.readonly else ''})"

    @property
    def _conn(self) -> Any:
        """This thread's connection."""
        return self._c()

    def _c(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None or session.conn.closed:  # first use in this thread, or the connection was lost: connect (again)
            return self._connect(migrate=False)
        return session.conn

    def _connect(self, *, migrate: bool) -> Any:
        if self._closed:
            raise StoreError(f"the PostgreSQL store {self.shown} was closed: open it again", store=self.shown)
        conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout)
        try:
            self._set_json_dumps(dumps, conn)
            if self.readonly:
                conn.execute("SET default_transaction_read_only = on")
                if migrate:
                    self._check_schema(conn)
            elif migrate:
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        session = _Session(conn)
        with self._sessions_lock:
            self._sessions.add(session)
        self._local.session = session  # a lost connection's session is dropped here, and closed
        return conn

    @staticmethod
    def _version(conn: Any) -> int:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]

    @property
    @_guarded
    def schema_version(self) -> int:
        return self._version(self._c())

    def _check_schema(self, conn: Any) -> None:
        """A store opened read-only is not migrated: refuse a newer schema, and a database that holds none."""
        current = self._version(conn)
        if current > len(MIGRATIONS):
            raise UsageError(f"the database has schema version {current}, newer than this qaflow knows ({len(MIGRATIONS)}): upgrade qaflow")
        if current == 0:
            raise UsageError(f"{self.shown} holds no qaflow store (no schema_migrations table on the search path)")

    def _migrate(self, conn: Any) -> None:
        wanted = len(MIGRATIONS)
        if self._version(conn) == wanted:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
            if current > wanted:
                raise UsageError(f"the database has schema version {current}, newer than this qaflow knows ({wanted}): upgrade qaflow")
            for number, steps in enumerate(MIGRATIONS[current:], start=current + 1):
                for sql in steps:
                    conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"the PostgreSQL store {self.shown} is open read-only; nothing was changed", store=self.shown)

    def _store_error(self, exc: Exception, during: str) -> StoreError:
        psycopg, errors = self._psycopg, self._psycopg.errors
        text = " ".join(str(exc).split()) or type(exc).__name__
        where = f"the PostgreSQL store {self.shown}"
        if isinstance(exc, errors.QueryCanceled):
            return StoreError(f"{where} cancelled the statement ({text}), e.g. at its statement_timeout; nothing was changed: "
                              "try again", retry=True, store=self.shown)
        if isinstance(exc, errors.LockNotAvailable):
            return StoreError(f"{where} could not take a lock in time ({text}); nothing was changed: try again", retry=True, store=self.shown)
        if isinstance(exc, errors.ReadOnlySqlTransaction):
            return StoreError(f"{where} is read-only here ({text}), e.g. a standby server; nothing was changed: write through the primary", store=self.shown)
        if isinstance(exc, errors.InsufficientPrivilege):
            return StoreError(f"{where} refused the database user ({text}); nothing was changed: grant it the rights on qaflow's tables", store=self.shown)
        if isinstance(exc, psycopg.OperationalError):
            outcome = (
                "the change may or may not have been saved: retry it with the same request id, which is then safe"
                if during == "commit" else "try again"
            )
            return StoreError(f"lost the connection to {where} ({text}); {outcome} (the next call connects again)", retry=True, store=self.shown)
        return StoreError(f"{where} failed ({getattr(exc, 'sqlstate', None) or type(exc).__name__}): {text}", store=self.shown)

    # -- reads -----------------------------------------------------------------------------
    @staticmethod
    def _instance(rev: int, snapshot: dict[str, Any]) -> Instance:
        inst = Instance.from_dict(snapshot)
        inst.rev = rev
        return inst

    @_guarded
    def load(self, instance_id: str) -> Instance | None:
        if not _no_nul(instance_id):
            return None
        row = self._c().execute("SELECT rev, snapshot FROM instances WHERE id = %s", (instance_id,)).fetchone()
        return None if row is None else self._instance(*row)

    @_guarded
    def history(self, instance_id: str) -> list[dict[str, Any]]:
        if not _no_nul(instance_id):
            return []
        rows = self._c().execute("SELECT entry FROM history WHERE instance_id = %s ORDER BY seq", (instance_id,)).fetchall()
        return [r[0] for r in rows]

    @_guarded
    def find(self, workflow: str | None = None, state: str | None = None) -> Iterable[Instance]:
        if not _no_nul(workflow, state):
            return []
        where, args = [], []
        if workflow is not None:
            where.append("workflow = %s")
            args.append(workflow)
        if state is not None:
            where.append("state = %s")
            args.append(state)
        sql = "SELECT rev, snapshot FROM instances" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [self._instance(*row) for row in self._c().execute(sql, args).fetchall()]

    @_guarded
    def query(self, query: InstanceQuery) -> list[Instance]:
        """Matching instances in id order, a page at a time (keyset: ``id > after``, never OFFSET).

        A data field is matched by jsonb containment, ``snapshot->'data' @> '{"field": value}'`` (jsonb
        compares numbers by value and never takes true for 1, as the other stores do). The store
        makes no index for it: a page of 50 from 10,000 instances reads in a few milliseconds by the
        id index, and a GIN index on ``snapshot->'data'`` (``jsonb_path_ops``), which the containment
        can use, costs every commit (the instance row loses its HOT updates) and makes paging through
        a common value slower while it makes a rare one faster (benchmarks/queries.py --pg-gin); a
        host whose queries are mostly for rare values may add one. The due-date filter reads the
        deadline index.
        """
        texts = [query.workflow, query.state, query.after, *(name for name, _ in query.where)]
        texts += [v for _, values in query.where for v in values if isinstance(v, str)]
        if not _no_nul(*texts):
            return []
        jsonb = self._jsonb
        where: list[str] = []
        args: list[Any] = []
        if query.workflow is not None:
            where.append("workflow = %s")
            args.append(query.workflow)
        if query.state is not None:
            where.append("state = %s")
            args.append(query.state)
        if query.after is not None:
            where.append("id > %s")
            args.append(query.after)
        for name, values in query.where:
            any_of = []
            for value in values:
                if value is None:  # null, or not set at all
                    any_of.append("NOT (snapshot->'data' ? %s)")
                    args.append(name)
                any_of.append("snapshot->'data' @> %s")
                args.append(jsonb({name: value}))
            where.append("(" + " OR ".join(any_of) + ")" if any_of else "false")
        if query.due_before is not None:
            where.append(DUE_BY.format(due="%s", position="strpos"))
            args.append(time_key(query.due_before))
        for reach in query.reach:  # see Reach: of this workflow version, only the instances the person may act on
            clause = ["workflow != %s", "version != %s"]
            args += [reach.workflow, reach.version]
            if reach.states:
                clause.append("state = ANY(%s)")
                args.append(list(reach.states))
            if reach.bound_states and reach.fields:
                named = " OR ".join(["snapshot->'data' @> %s"] * 2 * len(reach.fields))  # the person's id, or a list holding it
                clause.append(f"state = ANY(%s) AND ({named})")
                args.append(list(reach.bound_states))
                for field in reach.fields:
                    args += [jsonb({field: query.person}), jsonb({field: [query.person]})]
            where.append("(" + " OR ".join(clause) + ")")
        sql = "SELECT rev, snapshot FROM instances" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id LIMIT %s"
        return [self._instance(*row) for row in self._c().execute(sql, [*args, query.limit]).fetchall()]

    @_guarded
    def outbox(self, include_acknowledged: bool = False) -> list[dict[str, Any]]:
        by = "acknowledged_by" if not self.readonly or self.schema_version >= 4 else "NULL"
        sql = f"SELECT entry, acknowledged_at, {by} FROM outbox" + ("" if include_acknowledged else " WHERE acknowledged_at IS NULL") + " ORDER BY seq"
        out = []
        for entry, ack, ack_by in self._c().execute(sql).fetchall():
            entry["acknowledged_at"] = ack
            entry["acknowledged_by"] = ack_by
            out.append(entry)
        return out

    @_guarded
    def claim_alerts(self, worker: str, limit: int, lease_seconds: float, at: str | None) -> list[dict[str, Any]]:
        """Lease the oldest unacknowledged alerts under no live lease; the lease runs on the server's clock (``now()``).

        One statement finds, locks and marks them; rows another deliverer is claiming at that moment
        are skipped (``FOR UPDATE SKIP LOCKED``), and a row it has just claimed is seen with its new
        lease and passed over, so no two live leases ever hold one alert.
        """
        self._writable()
        rows = self._c().execute(
            "WITH pick AS (SELECT seq FROM outbox WHERE acknowledged_at IS NULL"
            "   AND (claimed_until IS NULL OR claimed_until <= now()) ORDER BY seq LIMIT %(n)s FOR UPDATE SKIP LOCKED)"
            " UPDATE outbox o SET claimed_by = %(w)s, claimed_until = now() + %(lease)s, claimed_at = %(at)s, claims = o.claims + 1"
            " FROM pick WHERE o.seq = pick.seq RETURNING o.seq, o.entry, o.claimed_until, o.claims",
            {"n": limit, "w": worker, "lease": dt.timedelta(seconds=lease_seconds), "at": at},
        ).fetchall()
        claimed = []
        for _, entry, until, claims in sorted(rows, key=lambda row: row[0]):  # RETURNING gives no order
            entry["acknowledged_at"] = entry["acknowledged_by"] = None
            entry["lease"] = lease_dict(worker, at, until, claims)
            claimed.append(entry)
        return claimed

    @_guarded
    def request(self, request_id: str) -> RequestRecord | None:
        if not _no_nul(request_id):
            return None
        row = self._c().execute(
            "SELECT result, operation, target, trigger, actor, digest, snapshot FROM requests WHERE request_id = %s", (request_id,)
        ).fetchone()
        if row is None:
            return None
        result, operation, target, trigger, actor, digest, snapshot = row
        call = None if operation is None else RequestCall(operation, target, trigger, actor, digest)
        first = None if snapshot is None else Instance.from_dict(snapshot)
        return RequestRecord(request_id, call, result["id"], result["state"], first)

    @_guarded
    def schedule(self, schedule_id: str) -> dict[str, Any] | None:
        if not _no_nul(schedule_id):
            return None
        row = self._c().execute("SELECT entry FROM schedules WHERE id = %s", (schedule_id,)).fetchone()
        return None if row is None else schedule_from_json(row[0])

    @_guarded
    def definition(self, workflow: str, version: int) -> dict[str, Any] | None:
        if not _no_nul(workflow):
            return None
        row = self._c().execute("SELECT entry FROM definitions WHERE workflow = %s AND version = %s", (workflow, version)).fetchone()
        return None if row is None else row[0]

    @_guarded
    def next_id(self, prefix: str) -> str:
        self._writable()
        (value,) = self._c().execute(
            "INSERT INTO counters (prefix, value) VALUES (%s, 1)"
            " ON CONFLICT (prefix) DO UPDATE SET value = counters.value + 1 RETURNING value",
            (prefix,),
        ).fetchone()
        return f"{prefix}-{value:06d}"

    @_guarded
    def next_due(self, until: dt.datetime) -> DueItem | None:
        """The earliest due item no other live worker holds, claimed for this connection.

        Asking again from the same connection hands back its own claim. A claim held by a connection
        that has ended (the worker was killed, or lost its connection and the server noticed) is void
        at once, so the next worker fires that item first, in time order; a claim held by a live
        connection lasts until the commit that fires the item, or at most ``lease_seconds``.
        """
        if self.readonly:  # nothing due needs no claim; anything due does, and a claim is a write
            peek = "SELECT 1 FROM deadlines WHERE status = 'open' AND due_key <= %(until)s UNION ALL SELECT 1 FROM schedules WHERE due_key <= %(until)s LIMIT 1"
            if self._c().execute(peek, {"until": time_key(until)}).fetchone() is None:
                return None
            self._writable()
        row = self._c().execute(_NEXT_DUE, {"until": time_key(until), "me": self.worker, "lease": self.lease}).fetchone()
        if row is None:
            return None
        return DueItem(from_time_key(row[0]), row[1], row[2], row[3])

    # -- writes ----------------------------------------------------------------------------
    @_guarded
    def commit(self, changes: Changes) -> None:
        self._writable()
        psycopg = self._psycopg
        errors = psycopg.errors
        conn = self._c()
        try:
            with conn.transaction():
                revs = self._write(changes, conn)
        except (errors.SerializationFailure, errors.DeadlockDetected) as exc:
            raise ConcurrencyConflict(f"another writer got in the way ({exc.sqlstate}); reload and try again") from None
        except (ValueError, TypeError, RecursionError, psycopg.DataError) as exc:  # NaN, NUL, a lone surrogate, a host type
            refused = refusal(changes)
            if refused is not None:
                raise refused from None
            if isinstance(exc, psycopg.DataError):
                raise DataInvalid(f"PostgreSQL refused a value ({' '.join(str(exc).split())}); nothing was changed") from None
            raise
        for iid, inst in changes.instances.items():
            inst.rev = revs[iid]

    def _write(self, changes: Changes, conn: Any) -> dict[str, int]:
        """Check and write everything inside the transaction open on ``conn``; any raise rolls all of it back."""
        jsonb = self._jsonb
        base_revs = changes.base_revs
        added: dict[str, int] = dict.fromkeys(changes.instances, 0)
        for entry in changes.history:
            added[entry["instance_id"]] = added.get(entry["instance_id"], 0) + 1
        hist: dict[str, int] = {}
        indexed: dict[str, dict[str, tuple[str, int]]] = {}  # what the deadline index holds now
        revs: dict[str, int] = {}
        # 1. each instance row: an UPDATE that matches only the revision that was read is the check (and
        #    takes the row lock); in id order, so that two commits cannot deadlock on each other's rows
        for iid in sorted(base_revs):
            base = base_revs[iid]
            inst = changes.instances.get(iid)
            if inst is None:  # read but not written: lock it and check it has not moved on
                row = conn.execute("SELECT rev FROM instances WHERE id = %s FOR UPDATE", (iid,)).fetchone()
                if row is None or row[0] != base:
                    raise conflict_rev(iid, base, None if row is None else row[0])
                continue
            rev = revs[iid] = base + 1
            row = conn.execute(
                "UPDATE instances i SET version = %s, state = %s, rev = %s, hist = hist + %s, snapshot = %s, updated_at = %s"
                " WHERE id = %s AND rev = %s RETURNING hist,"
                " (SELECT json_agg(json_build_array(name, status, due_key)) FROM deadlines d WHERE d.instance_id = i.id)",
                (inst.version, inst.state, rev, added[iid], jsonb(snapshot_of(inst, rev)), inst.updated_at, iid, base),
            ).fetchone()
            if row is None:
                found = conn.execute("SELECT rev FROM instances WHERE id = %s", (iid,)).fetchone()
                raise conflict_rev(iid, base, None if found is None else found[0])
            hist[iid] = row[0] - added[iid]
            indexed[iid] = {name: (status, int(key)) for name, status, key in (row[1] or [])}
        for iid, inst in changes.instances.items():
            if iid in base_revs:
                continue
            rev = revs[iid] = 1
            cur = conn.execute(
                "INSERT INTO instances (id, workflow, version, state, rev, hist, snapshot, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (iid, inst.workflow, inst.version, inst.state, rev, added[iid], jsonb(snapshot_of(inst, rev)), inst.updated_at),
            )
            if cur.rowcount != 1:
                raise ConcurrencyConflict(f"instance {iid} already exists", instance=iid)
            hist[iid] = 0
        # 2. the other checks: a schedule fires once, a request id is carried out once (an insert of the
        #    same id as another open transaction waits for it, then finds the row if that one committed)
        for sid in changes.schedules_done:
            if conn.execute("DELETE FROM schedules WHERE id = %s", (sid,)).rowcount != 1:
                raise ConcurrencyConflict(f"scheduled start {sid} was already done by someone else", schedule=sid)
        if changes.request is not None:
            request_id, call, iid = changes.request
            result = {"id": iid, "state": changes.instances[iid].state, "rev": revs[iid]}
            cur = conn.execute(  # the result is the snapshot just written above
                "INSERT INTO requests (request_id, result, operation, target, trigger, actor, digest, snapshot)"
                " SELECT %s, %s, %s, %s, %s, %s, %s, snapshot FROM instances WHERE id = %s ON CONFLICT (request_id) DO NOTHING",
                (request_id, jsonb(result), call.operation, call.target, call.trigger, call.actor, call.digest, iid),
            )
            if cur.rowcount != 1:
                raise ConcurrencyConflict(f"request {request_id} was already carried out", request_id=request_id)
        many = functools.partial(self._many, conn)
        # 3. history, numbered on from what each instance had
        if changes.history:
            rows = []
            for entry in changes.history:
                iid = entry["instance_id"]
                if iid not in hist:  # an entry for an instance this commit does not write (the engine never does this)
                    hist[iid] = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history WHERE instance_id = %s", (iid,)).fetchone()[0]
                hist[iid] += 1
                rows.append((iid, hist[iid], jsonb(entry)))
            many("INSERT INTO history (instance_id, seq, entry) VALUES (%s, %s, %s)", rows)
        # 4. the deadline index where it changed; a changed row loses any claim on it
        index_rows: list[tuple[str, str, int, str]] = []
        dropped: list[tuple[str, str]] = []
        for iid, inst in changes.instances.items():
            before = indexed.get(iid, {})
            names = set()
            for name, status, at in inst.clocks():
                key = time_key(at)
                names.add(name)
                if before.get(name) != (status, key):
                    index_rows.append((iid, name, key, status))
            dropped += [(iid, name) for name in before if name not in names]
        if index_rows:
            many(
                "INSERT INTO deadlines (instance_id, name, due_key, status) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (instance_id, name) DO UPDATE SET due_key = EXCLUDED.due_key, status = EXCLUDED.status,"
                " claimed_by = NULL, claimed_pid = NULL, claimed_until = NULL",
                index_rows,
            )
        if dropped:
            many("DELETE FROM deadlines WHERE instance_id = %s AND name = %s", dropped)
        # 5. outbox and schedules
        if changes.alerts:
            many(
                "INSERT INTO outbox (id, entry, acknowledged_at) VALUES (%s, %s, %s)",
                [(a["id"], jsonb({k: v for k, v in a.items() if k != "acknowledged_at"}), a.get("acknowledged_at")) for a in changes.alerts],
            )
        if changes.schedules_added:
            many(
                "INSERT INTO schedules (id, due_key, workflow, entry) VALUES (%s, %s, %s, %s)",
                [(s["id"], time_key(s["at"]), s["workflow"], jsonb(schedule_to_json(s))) for s in changes.schedules_added],
            )
        if changes.definitions:
            many(
                "INSERT INTO definitions (workflow, version, digest, entry) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(d["workflow"], d["version"], d["digest"], jsonb(d)) for d in changes.definitions],
            )
        for item in changes.held:
            self._hold(conn, item)
        return revs

    def _hold(self, conn: Any, item: dict[str, Any]) -> None:
        due = time_key(item["at"])
        entry = None
        if item["kind"] == "start":
            row = conn.execute("DELETE FROM schedules WHERE id = %s RETURNING entry", (item["key"],)).fetchone()
            if row is None:
                raise ConcurrencyConflict(f"scheduled start {item['key']} was already done by someone else", schedule=item["key"])
            entry = self._jsonb(row[0])
        elif conn.execute(  # still due, and no longer anyone's claim
            "UPDATE deadlines SET claimed_by = NULL, claimed_pid = NULL, claimed_until = NULL"
            " WHERE instance_id = %s AND name = %s AND status = 'open' AND due_key = %s",
            (item["key"], item["name"], due),
        ).rowcount != 1:
            raise ConcurrencyConflict(f"deadline {item['name']} of {item['key']} is no longer due", instance=item["key"])
        conn.execute(
            "INSERT INTO held (kind, key, name, due_key, error, held_at, entry) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (kind, key, name) DO UPDATE SET due_key = EXCLUDED.due_key, error = EXCLUDED.error,"
            " held_at = EXCLUDED.held_at, entry = EXCLUDED.entry",
            (item["kind"], item["key"], item["name"], due, item["error"], item["held_at"], entry),
        )

    @_guarded
    def schedules(self) -> list[dict[str, Any]]:
        rows = self._c().execute("SELECT entry FROM schedules ORDER BY due_key, id").fetchall()
        return [schedule_from_json(r[0]) for r in rows]

    @_guarded
    def held(self) -> list[dict[str, Any]]:
        if self.schema_version < 3:  # an older database read without migrating: nothing can be held in it
            return []
        rows = self._c().execute("SELECT kind, key, name, due_key, error, held_at FROM held ORDER BY due_key, kind, key, name").fetchall()
        return [held_item(*row) for row in rows]

    @_guarded
    def release(self, kind: str, key: str, name: str) -> bool:
        self._writable()
        if not _no_nul(kind, key, name):
            return False
        conn = self._c()
        with conn.transaction():
            row = conn.execute(
                "DELETE FROM held WHERE kind = %s AND key = %s AND name = %s RETURNING due_key, entry", (kind, key, name)
            ).fetchone()
            if row is not None and kind == "start":
                conn.execute(
                    "INSERT INTO schedules (id, due_key, workflow, entry) VALUES (%s, %s, %s, %s)",
                    (key, row[0], name, self._jsonb(row[1])),
                )
        return row is not None

    @staticmethod
    def _many(conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:  # executemany pipelines, which costs more than it saves for one row
            conn.execute(sql, rows[0])
        else:
            conn.cursor().executemany(sql, rows)

    @_guarded
    def acknowledge(self, alert_id: str, at: dt.datetime, worker: str | None = None) -> bool:
        self._writable()
        if not _no_nul(alert_id):
            return False
        cur = self._c().execute(  # the first acknowledgement stands (SET reads the row as it was)
            "UPDATE outbox SET acknowledged_at = COALESCE(acknowledged_at, %s),"
            " acknowledged_by = CASE WHEN acknowledged_at IS NULL THEN %s ELSE acknowledged_by END WHERE id = %s",
            (at.isoformat(), worker, alert_id),
        )
        return cur.rowcount > 0

    # -- imported KPI values -------------------------------------------------------------------
    @_guarded
    def put_kpi_values(self, values: Sequence[KpiValue]) -> list[KpiValue]:
        self._writable()
        conn = self._c()
        key = "kpi = %s AND level = %s AND level_id = %s AND period_from = %s AND period_to = %s"
        updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in KpiValue.FIELDS[5:])
        with conn.transaction():
            replaced = []
            for v in values:  # locked until the transaction ends, so what is said to be replaced is what was
                row = conn.execute(f"SELECT {KPI_COLUMNS} FROM kpi_values WHERE {key} FOR UPDATE", v.row()[:5]).fetchone()
                if row is not None:
                    replaced.append(KpiValue.from_row(row))
            self._many(conn, f"INSERT INTO kpi_values ({KPI_COLUMNS}) VALUES ({', '.join(['%s'] * len(KpiValue.FIELDS))})"
                             f" ON CONFLICT (kpi, level, level_id, period_from, period_to) DO UPDATE SET {updates}",
                       [v.row() for v in values])
        return replaced

    @_guarded
    def kpi_values(self, kpi: str | None = None, *, level: str | None = None, level_id: str | None = None,
                   start: dt.date | None = None, end: dt.date | None = None) -> list[KpiValue]:
        if self.schema_version < 5:  # an older database read without migrating: nothing was imported into it
            return []
        if not _no_nul(kpi, level, level_id):
            return []
        where, args = kpi_filters(kpi, level, level_id, start, end, "%s")
        sql = f"SELECT {KPI_COLUMNS} FROM kpi_values{where} ORDER BY kpi, level, level_id, period_from, period_to"
        return [KpiValue.from_row(row) for row in self._c().execute(sql, args).fetchall()]
