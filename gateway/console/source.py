"""Where the console gets events: the gateway's event log (read-only) and the
pipeline's live listener.

Queries (search by time, device, class; a device's history; positions) need the
log's indexes, which `Store.events()` does not expose, so the console opens its
own read-only SQLite connection to the log file (WAL lets it read while the
gateway writes; `mode=ro` makes a write impossible, as in `store.verify`). It
relies on the log's documented columns: id, kind, account, event_class,
priority, received_at_ms, body (the Event's canonical JSON).

Live events come from `Pipeline.add_listener`, which calls us once per committed
event; the console never sees an event before it is durably stored.

Cluster mode: the log is the shared PostgreSQL one (`PgLogReader`, same queries on
a read-only connection) and live events come from following it
(`Gateway.subscribe_committed`), so an operator on any node sees every node's events.
In its own process (gateway/console/process.py) a `LogTail` reads the rows the
gateway appended, every `live_poll_ms`. Either way the console never sees an event
before it is durably stored, and gets each one once, in log order, as an `event_row` dict.
"""
import asyncio
import concurrent.futures
import json
import logging
import sqlite3
from dataclasses import dataclass, field

from gateway.event import priority_of

log = logging.getLogger("jifang.console")


@dataclass
class EventSource:
    log_path: object                  # the gateway's event log (SQLite file)
    subscribe: object                 # fn(listener): calls listener(event_row dict) per committed event;
                                      # may return an awaitable (awaited before the console loads)
    devices: dict = field(default_factory=dict)   # account -> gateway.config.Device (the registry)
    geofences: tuple = ()                         # gateway.vehicles.geofence.Geofence, drawn on the map
    close: object = None                          # async fn(): stop what subscribe started
    cluster: object = None                        # gateway.config.Cluster in cluster mode: the node's name
                                                  # and lease timings (escalation runs on one node)

    @classmethod
    def from_gateway(cls, gateway, geofences=()):
        """The source for a running gateway.app.Gateway; `geofences`: the fleet's
        (the vehicles config's rule settings), so the map shows what the rules enforce."""
        def subscribe(listener):
            # The gateway hands over Stored events; the console works on event rows.
            return gateway.subscribe_committed(lambda stored: listener(stored_row(stored)))
        return cls(gateway.config.store_url or gateway.config.store_path, subscribe,
                   {a: d for a, d in gateway.config.devices.items() if a != "*"}, tuple(geofences),
                   cluster=gateway.config.cluster)

    @classmethod
    def from_log(cls, config, geofences=(), poll_s=0.2):
        """The source for a console in its own process: the log of the gateway that
        `config` (gateway.config.GatewayConfig) describes, tailed every `poll_s`."""
        tail = LogTail(config.store_url or config.store_path, poll_s)
        return cls(config.store_url or config.store_path, tail.start, {a: d for a, d in config.devices.items() if a != "*"},
                   tuple(geofences), tail.close, cluster=config.cluster)


def event_row(row_id, body):
    """An event as the API shows it: the Event's fields plus its log id."""
    d = json.loads(body) if isinstance(body, str) else body
    d["id"] = row_id
    d["priority"] = priority_of(d["event_class"])
    return d


def stored_row(stored):
    return event_row(stored.id, stored.event.to_dict())


def log_reader(location):
    """The reader for a log path (SQLite) or postgresql:// URL (cluster)."""
    from gateway.store import is_postgres_url
    return PgLogReader(location) if is_postgres_url(location) else LogReader(location)


class LogReader:
    """Read-only queries on the event log, each run on one dedicated thread."""

    # SQL that differs between the engines; everything else is the same text.
    JSON_SOURCE = "json_extract(body, '$.source')"
    JSON_OFFLINE = "json_extract(body, '$.values.online') = 0"

    def __init__(self, path):
        self.path = str(path)
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-log")
        self._db = None

    async def open(self):
        def connect():
            db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, check_same_thread=False)
            db.execute("PRAGMA query_only = 1")
            return db
        self._db = await self._run(connect)

    async def close(self):
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._thread, lambda: fn(*args))

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
        sql = "SELECT id, body FROM log WHERE kind = 'event'"
        args = []
        if since_ms is not None:
            sql += " AND received_at_ms >= ?"
            args.append(since_ms)
        if until_ms is not None:
            sql += " AND received_at_ms < ?"
            args.append(until_ms)
        if account:
            sql += " AND account = ?"
            args.append(account)
        if event_class:
            sql += " AND event_class = ?"
            args.append(event_class)
        sql += " ORDER BY id %s LIMIT ?" % ("DESC" if newest_first else "ASC")
        args.append(limit)
        return await self._run(self._rows, sql, args)

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
                    " OR id IN (SELECT MAX(id) FROM log WHERE kind = 'event' AND body LIKE '%\"position\":[%'"
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
        def query():
            out = []
            for i, body in self._db.execute(
                    "SELECT id, body FROM log WHERE kind = 'event' AND received_at_ms >= ? AND body LIKE '%\"position\":[%'"
                    " ORDER BY id", (since_ms,)):
                out.append(event_row(i, body))
            return out
        return await self._run(query)



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
        return _QmarkConnection(db)

    async def open(self):
        self._db = await super()._run(self._connect)

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
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def close(self):
        if self._db is not None:
            await super()._run(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)

    def _reconnect(self):
        if self._db is not None:
            try:
                self._db.close()
            except Exception:
                pass
        self._db = None
        self._db = self._connect()


class _QmarkConnection:
    """`execute(sql, args)` with SQLite's ? placeholders on a psycopg connection: the
    reader's queries are written once for both engines."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, args=()):
        args = list(args)
        if args:
            sql = sql.replace("%", "%%").replace("?", "%s")
        return self.conn.execute(sql, args or None)

    def close(self):
        self.conn.close()


class LogTail:
    """New events in the log, read every `poll_s` through a read-only connection of
    its own, handed to the listener in log order (ids only grow: one writer)."""

    BATCH = 1000        # rows per read; a backlog is caught up batch after batch, without a pause

    def __init__(self, path, poll_s):
        self.reader = log_reader(path)
        self.poll_s = poll_s
        self.last_id = 0
        self._task = None

    async def start(self, listener):
        await self.reader.open()
        self.last_id = await self.reader.head_id()
        self._task = asyncio.create_task(self._run(listener), name="console-log-tail")

    async def _run(self, listener):
        while True:
            try:
                rows = await self.reader.after(self.last_id, self.BATCH)
            except Exception as exc:
                # The log unreachable (PostgreSQL restarting, a locked file): read
                # again from the same id at the next poll; nothing is skipped.
                log.warning("console cannot read the log; retrying", extra={"after": self.last_id,
                                                                            "error": repr(exc)})
                await asyncio.sleep(self.poll_s)
                continue
            for row in rows:
                listener(row)
                self.last_id = row["id"]
            if len(rows) < self.BATCH:
                await asyncio.sleep(self.poll_s)

    async def close(self):
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.reader.close()
