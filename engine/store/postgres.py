"""A PostgreSQL store (psycopg 3): the SQLite store's behaviour, for several workers sharing one database."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ConcurrencyConflict, QaflowError, UsageError
from ..runtime.instance import Instance
from .base import Changes, DueItem
from .sqlite import (
    NOT_HELD,
    conflict_rev,
    dumps,
    from_time_key,
    held_item,
    schedule_from_json,
    schedule_to_json,
    snapshot_of,
    time_key,
)

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

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
]

_MIGRATION_LOCK = 0x71AF_0001  # pg_advisory_xact_lock key: one migrator at a time
LEASE_SECONDS = 60.0


def _one(cursor: psycopg.Cursor[Any]) -> Any:
    """The first value of the one row that an aggregate or a RETURNING clause always gives."""
    row = cursor.fetchone()
    if row is None:  # pragma: no cover - these queries always give a row
        raise QaflowError("PostgreSQL gave no row for a query that always has one")
    return row[0]


class PostgresStore:
    """Instances, history, deadlines, schedules and the outbox in PostgreSQL, for several workers.

    Commits lock the instance rows they read (``SELECT ... FOR UPDATE``) and check their revisions, as
    the SQLite store does. ``next_due`` hands each due deadline or scheduled start to one worker only:
    it claims the row for ``lease_seconds`` (skipping rows other workers hold, ``FOR UPDATE SKIP
    LOCKED``), and the commit that fires it closes the row. A worker that dies holding a claim delays
    that item by at most the lease. ``worker`` names the claimant; by default it is unique to this
    store object. One connection per store object: use one store per thread.
    """

    def __init__(self, url: str, *, worker: str | None = None, lease_seconds: float = LEASE_SECONDS, connect_timeout: int = 10) -> None:
        try:
            import psycopg
            from psycopg.types.json import Jsonb, set_json_dumps
        except ImportError:  # pragma: no cover - depends on the installation
            raise UsageError("PostgreSQL needs psycopg: pip install 'qaflow[postgres]' (or 'psycopg[binary]')") from None
        self._psycopg = psycopg
        self._jsonb = Jsonb
        self.url = url
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = dt.timedelta(seconds=lease_seconds)
        self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout)
        try:
            set_json_dumps(dumps, self._conn)
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self._conn.info.dbname!r} on {self._conn.info.host}:{self._conn.info.port})"

    @property
    def schema_version(self) -> int:
        exists = _one(self._conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL"))
        if not exists:
            return 0
        return _one(self._conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    def _migrate(self) -> None:
        wanted = len(MIGRATIONS)
        if self.schema_version == wanted:
            return
        conn = self._conn
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = _one(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
            if current > wanted:
                raise UsageError(f"the database has schema version {current}, newer than this qaflow knows ({wanted}): upgrade qaflow")
            for number, steps in enumerate(MIGRATIONS[current:], start=current + 1):
                for sql in steps:
                    conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))

    # -- reads -----------------------------------------------------------------------------
    @staticmethod
    def _instance(rev: int, snapshot: dict[str, Any]) -> Instance:
        inst = Instance.from_dict(snapshot)
        inst.rev = rev
        return inst

    def load(self, instance_id: str) -> Instance | None:
        row = self._conn.execute("SELECT rev, snapshot FROM instances WHERE id = %s", (instance_id,)).fetchone()
        return None if row is None else self._instance(*row)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT entry FROM history WHERE instance_id = %s ORDER BY seq", (instance_id,)).fetchall()
        return [r[0] for r in rows]

    def find(self, workflow: str | None = None, state: str | None = None) -> Iterable[Instance]:
        where, args = [], []
        if workflow is not None:
            where.append("workflow = %s")
            args.append(workflow)
        if state is not None:
            where.append("state = %s")
            args.append(state)
        sql = "SELECT rev, snapshot FROM instances" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [self._instance(*row) for row in self._conn.execute(sql, args).fetchall()]

    def outbox(self, include_acknowledged: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT entry, acknowledged_at FROM outbox" + ("" if include_acknowledged else " WHERE acknowledged_at IS NULL") + " ORDER BY seq"
        out = []
        for entry, ack in self._conn.execute(sql).fetchall():
            entry["acknowledged_at"] = ack
            out.append(entry)
        return out

    def request_result(self, request_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT result FROM requests WHERE request_id = %s", (request_id,)).fetchone()
        return None if row is None else row[0]

    def schedule(self, schedule_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT entry FROM schedules WHERE id = %s", (schedule_id,)).fetchone()
        return None if row is None else schedule_from_json(row[0])

    def definition(self, workflow: str, version: int) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT entry FROM definitions WHERE workflow = %s AND version = %s", (workflow, version)).fetchone()
        return None if row is None else row[0]

    def next_id(self, prefix: str) -> str:
        value = _one(self._conn.execute(
            "INSERT INTO counters (prefix, value) VALUES (%s, 1)"
            " ON CONFLICT (prefix) DO UPDATE SET value = counters.value + 1 RETURNING value",
            (prefix,),
        ))
        return f"{prefix}-{value:06d}"

    def next_due(self, until: dt.datetime) -> DueItem | None:
        """The earliest due item no other worker holds, claimed for this worker until the lease runs out."""
        free = "(claimed_by IS NULL OR claimed_by = %(me)s OR claimed_until < now())"
        row = self._conn.execute(
            # one statement, so one transaction: find, lock (skipping rows another worker is claiming) and claim
            "WITH d AS (SELECT due_key, 'breach'::text AS kind, instance_id AS key, name FROM deadlines"
            f"   WHERE status = 'open' AND due_key <= %(until)s AND {free} AND {NOT_HELD}"
            "   ORDER BY due_key, instance_id, name LIMIT 1 FOR UPDATE SKIP LOCKED),"
            " s AS (SELECT due_key, 'start'::text AS kind, id AS key, workflow AS name FROM schedules"
            f"   WHERE due_key <= %(until)s AND {free}"
            "   ORDER BY due_key, id LIMIT 1 FOR UPDATE SKIP LOCKED),"
            " pick AS MATERIALIZED (SELECT * FROM (SELECT * FROM d UNION ALL SELECT * FROM s) x"
            "   ORDER BY due_key, kind, key, name LIMIT 1),"
            " claim_d AS (UPDATE deadlines t SET claimed_by = %(me)s, claimed_until = now() + %(lease)s FROM pick"
            "   WHERE pick.kind = 'breach' AND t.instance_id = pick.key AND t.name = pick.name RETURNING 1),"
            " claim_s AS (UPDATE schedules t SET claimed_by = %(me)s, claimed_until = now() + %(lease)s FROM pick"
            "   WHERE pick.kind = 'start' AND t.id = pick.key RETURNING 1)"
            " SELECT due_key, kind, key, name FROM pick",
            {"until": time_key(until), "me": self.worker, "lease": self.lease},
        ).fetchone()
        if row is None:
            return None
        return DueItem(from_time_key(row[0]), row[1], row[2], row[3])

    # -- writes ----------------------------------------------------------------------------
    def commit(self, changes: Changes) -> None:
        errors = self._psycopg.errors
        try:
            with self._conn.transaction():
                revs = self._write(changes)
        except (errors.SerializationFailure, errors.DeadlockDetected) as exc:
            raise ConcurrencyConflict(f"another writer got in the way ({exc.sqlstate}); reload and try again") from None
        for iid, inst in changes.instances.items():
            inst.rev = revs[iid]

    def _write(self, changes: Changes) -> dict[str, int]:
        """Check and write everything inside the open transaction; any raise rolls all of it back."""
        conn, jsonb = self._conn, self._jsonb
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
        # 2. the other checks: a schedule fires once, a request id is carried out once
        for sid in changes.schedules_done:
            if conn.execute("DELETE FROM schedules WHERE id = %s", (sid,)).rowcount != 1:
                raise ConcurrencyConflict(f"scheduled start {sid} was already done by someone else", schedule=sid)
        if changes.request is not None:
            request_id, result = changes.request
            cur = conn.execute(
                "INSERT INTO requests (request_id, result) VALUES (%s, %s) ON CONFLICT (request_id) DO NOTHING",
                (request_id, jsonb(result)),
            )
            if cur.rowcount != 1:
                raise ConcurrencyConflict(f"request {request_id} was already carried out", request_id=request_id)
        many = self._many
        # 3. history, numbered on from what each instance had
        if changes.history:
            rows = []
            for entry in changes.history:
                iid = entry["instance_id"]
                if iid not in hist:  # an entry for an instance this commit does not write (the engine never does this)
                    hist[iid] = _one(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history WHERE instance_id = %s", (iid,)))
                hist[iid] += 1
                rows.append((iid, hist[iid], jsonb(entry)))
            many("INSERT INTO history (instance_id, seq, entry) VALUES (%s, %s, %s)", rows)
        # 4. the deadline index where it changed; a changed row loses any claim on it
        index_rows: list[tuple[str, str, int, str]] = []
        dropped: list[tuple[str, str]] = []
        for iid, inst in changes.instances.items():
            before = indexed.get(iid, {})
            for ds in inst.deadlines.values():
                key = time_key(ds.due_at)
                if before.get(ds.name) != (ds.status, key):
                    index_rows.append((iid, ds.name, key, ds.status))
            dropped += [(iid, name) for name in before if name not in inst.deadlines]
        if index_rows:
            many(
                "INSERT INTO deadlines (instance_id, name, due_key, status) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (instance_id, name) DO UPDATE"
                " SET due_key = EXCLUDED.due_key, status = EXCLUDED.status, claimed_by = NULL, claimed_until = NULL",
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
            self._hold(item)
        return revs

    def _hold(self, item: dict[str, Any]) -> None:
        conn, due = self._conn, time_key(item["at"])
        entry = None
        if item["kind"] == "start":
            row = conn.execute("DELETE FROM schedules WHERE id = %s RETURNING entry", (item["key"],)).fetchone()
            if row is None:
                raise ConcurrencyConflict(f"scheduled start {item['key']} was already done by someone else", schedule=item["key"])
            entry = self._jsonb(row[0])
        elif conn.execute(  # still due, and no longer anyone's claim
            "UPDATE deadlines SET claimed_by = NULL, claimed_until = NULL"
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

    def schedules(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT entry FROM schedules ORDER BY due_key, id").fetchall()
        return [schedule_from_json(r[0]) for r in rows]

    def held(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT kind, key, name, due_key, error, held_at FROM held ORDER BY due_key, kind, key, name").fetchall()
        return [held_item(*row) for row in rows]

    def release(self, kind: str, key: str, name: str) -> bool:
        conn = self._conn
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

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:  # executemany pipelines, which costs more than it saves for one row
            self._conn.execute(sql, rows[0])
        else:
            self._conn.cursor().executemany(sql, rows)

    def acknowledge(self, alert_id: str, at: dt.datetime) -> bool:
        cur = self._conn.execute(
            "UPDATE outbox SET acknowledged_at = COALESCE(acknowledged_at, %s) WHERE id = %s", (at.isoformat(), alert_id)
        )
        return cur.rowcount > 0
