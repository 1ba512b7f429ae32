"""Reading the event log: the one reader for every query the log answers beyond the
outbox's (gateway/store.py) — the console's searches, a device's history,
positions, the snapshot its state is rebuilt from, and the tail that follows new
rows. The log's schema (gateway/store.py, gateway/pgstore.py) belongs to the
store; this module is where its columns and the JSON inside `body` are read, so
no caller writes SQL against the log.

Two engines, one set of queries:
- `LogReader`: the SQLite log file, on a read-only connection of its own (`mode=ro`
  and `query_only`: a write is impossible, as in `store.verify`); WAL lets it read
  while the gateway writes, from this process or another one (the console in its
  own process, gateway/console/process.py).
- `PgLogReader`: the cluster's shared PostgreSQL log, on a read-only session.
The queries are written once with SQLite's `?` placeholders; only the JSON
operators differ (`JSON_SOURCE`, `JSON_OFFLINE`).

Each reader runs its queries on a thread of its own (gateway/dbthread.py), so the
event loop never waits on them and a long search never delays an append. Rows
come back as event rows (`event_row`): the Event's fields plus its log id.
"""
import json
import sqlite3

from gateway.dbthread import DbThread
from gateway.event import priority_of
from gateway.dburl import is_postgres_url

# A stored event carries a position when its JSON body has a "position" array
# (canonical JSON: no spaces). A text match, not a JSON function: it is the same on
# both engines and needs no parse per row.
HAS_POSITION = "body LIKE '%\"position\":[%'"


def event_row(row_id, body):
    """An event as the API shows it: the Event's fields plus its log id."""
    d = json.loads(body) if isinstance(body, str) else body
    d["id"] = row_id
    d["priority"] = priority_of(d["event_class"])
    return d


def stored_row(stored):
    """The event row of a gateway.store.StoredEvent (what the pipeline hands over)."""
    return event_row(stored.id, stored.event.to_dict())


def log_reader(location):
    """The reader for a log path (SQLite) or postgresql:// URL (cluster)."""
    return PgLogReader(location) if is_postgres_url(location) else LogReader(location)


class LogReader:
    """Read-only queries on the event log, each run on the reader's own thread."""

    # SQL that differs between the engines; everything else is the same text.
    JSON_SOURCE = "json_extract(body, '$.source')"
    JSON_OFFLINE = "json_extract(body, '$.values.online') = 0"

    def __init__(self, path):
        self.path = str(path)
        self._thread = DbThread("log-reader")

    @property
    def _db(self):
        return self._thread.conn

    def _connect(self):
        db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, check_same_thread=False)
        db.execute("PRAGMA query_only = 1")
        return db

    async def open(self):
        await self._thread.open(self._connect)

    async def close(self):
        await self._thread.close()

    async def _run(self, fn, *args):
        return await self._thread.run(fn, *args)

    def _rows(self, sql, args=()):
        return [event_row(i, b) for i, b in self._db.execute(sql, args)]

    async def head_id(self):
        return await self._run(lambda: self._db.execute(
            "SELECT COALESCE(MAX(id), 0) FROM log").fetchone()[0])

    async def after(self, event_id, limit):
        """Events with an id above `event_id`, oldest first, at most `limit`."""
        return await self._run(self._rows, "SELECT id, body FROM log WHERE kind = 'event' AND id > ? ORDER BY id LIMIT ?",
                               (event_id, limit))

    async def get(self, event_id):
        rows = await self._run(self._rows, "SELECT id, body FROM log WHERE kind = 'event' AND id = ?", (event_id,))
        return rows[0] if rows else None

    async def search(self, since_ms=None, until_ms=None, account=None, event_class=None, limit=1000, newest_first=True):
        # Each filter given narrows the search (an empty account or class is none given);
        # the (account, age) and (class, age) indexes serve them.
        filters = [(clause, value) for clause, value in (
            ("received_at_ms >= ?", since_ms), ("received_at_ms < ?", until_ms),
            ("account = ?", account or None), ("event_class = ?", event_class or None)) if value is not None]
        sql = "SELECT id, body FROM log WHERE " + " AND ".join(["kind = 'event'"] + [c for c, _ in filters])
        sql += " ORDER BY id %s LIMIT ?" % ("DESC" if newest_first else "ASC")
        return await self._run(self._rows, sql, [v for _, v in filters] + [limit])

    async def snapshot(self, start_id, max_priority):
        """What the console's state is rebuilt from, read in one transaction (one
        consistent view of the log while the gateway keeps writing):
        (head id, {account: last report ms}, state events, queueable events).
        State events are those that decide a device's state (troubles, openings and
        closings) plus each account's latest position and latest bus status, oldest first; queueable events
        are those above `start_id` with priority <= max_priority."""
        def query():
            self._db.execute("BEGIN")
            try:
                head = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM log").fetchone()[0]
                # The gateway's own supervision events are not reports from the device.
                # Nor is the broker's last will of a device (a status with online false).
                last = dict(self._db.execute(
                    "SELECT account, MAX(received_at_ms) FROM log WHERE kind = 'event'"
                    " AND " + self.JSON_SOURCE + " != 'supervision'"
                    " AND NOT (event_class = 'status' AND " + self.JSON_OFFLINE + ")"
                    " GROUP BY account"))
                state_events = self._rows(
                    "SELECT id, body FROM log WHERE kind = 'event' AND (event_class IN ('trouble', 'open_close')"
                    " OR id IN (SELECT MAX(id) FROM log WHERE kind = 'event' AND " + HAS_POSITION +
                    " GROUP BY account)"
                    " OR id IN (SELECT MAX(id) FROM log WHERE kind = 'event' AND event_class = 'status'"
                    " GROUP BY account)) ORDER BY id")
                queueable = self._rows("SELECT id, body FROM log WHERE kind = 'event' AND id > ? AND priority <= ?"
                                       " ORDER BY id", (start_id, max_priority))
            finally:
                self._db.execute("COMMIT")
            return head, last, state_events, queueable
        return await self._run(query)

    async def positions(self, since_ms):
        """Events with a position received since `since_ms`, oldest first."""
        return await self._run(self._rows, "SELECT id, body FROM log WHERE kind = 'event' AND received_at_ms >= ?"
                                           " AND " + HAS_POSITION + " ORDER BY id", (since_ms,))


class PgLogReader(LogReader):
    """The same queries on the cluster's PostgreSQL log: a read-only session (the
    server refuses any write on it), autocommit except for the snapshot, whose
    BEGIN ... COMMIT makes one consistent view as on SQLite."""

    JSON_SOURCE = "(body::jsonb ->> 'source')"
    JSON_OFFLINE = "(body::jsonb -> 'values' ->> 'online') = 'false'"

    def _connect(self):
        import psycopg
        db = psycopg.connect(self.path, autocommit=True, application_name="jifang-console", connect_timeout=5)
        db.execute("SET default_transaction_read_only = on")
        db.execute("SET default_transaction_isolation = 'repeatable read'")
        return QmarkConnection(db)

    async def _run(self, fn, *args):
        """Every query is a read: after PostgreSQL restarted (the connection broke),
        the query runs again once on a new connection, so the console recovers by
        itself."""
        import psycopg

        def call():
            if self._db is None or self._db.conn.closed or self._db.conn.broken:
                self._reconnect()
            try:
                return fn(*args)
            except psycopg.OperationalError:
                if not self._db.conn.broken:
                    raise
                self._reconnect()
                return fn(*args)
        return await self._thread.run(call)

    def _reconnect(self):
        """On the reader's thread: a new connection in place of the broken one."""
        old, self._thread.conn = self._thread.conn, None
        if old is not None:
            try:
                old.close()
            except Exception:
                pass
        self._thread.conn = self._connect()


class QmarkConnection:
    """`execute(sql, args)` with SQLite's ? placeholders on a psycopg connection: a
    query on the log is written once for both engines."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, args=()):
        args = list(args)
        if args:
            sql = sql.replace("%", "%%").replace("?", "%s")
        return self.conn.execute(sql, args or None)

    def close(self):
        self.conn.close()
