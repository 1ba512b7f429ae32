"""The event log: SQLite (WAL), append-only, hash-chained. It is also the outbox.

Rows of table `log` are never updated. Each row carries `prev_hash` (the hash of
the row before it) and `hash` = SHA-256 over (id, kind, prev_hash, body), body
being the event's canonical JSON. Change a row and its hash no longer matches;
recompute that hash too and the next row's link breaks; delete a row and the ids
have a gap. `verify()` walks the chain and names the first row that fails.

The only deletion is `purge()`, for retention. It appends a "purge" row first,
listing the runs of purged ids with the hash each run ends on and the youngest
receive time per class, so the chain still verifies across the gap and the
verifier can check that nothing was purged younger than its retention. Purge
rows themselves are never purged, and since a purge row is always the newest row
when written, the head of the chain always exists.

Forwarder cursors live in two small side tables (not chained: they are delivery
state, not records): a watermark (every row up to it is delivered or filtered
out) and the ids delivered above it (alarms overtake older routine events).

All methods are synchronous; `Store` runs them on the log's own thread
(gateway/dbthread.py) so the event loop never waits on an fsync and the SQLite
connection stays on one thread.
"""
import hashlib
import json
import sqlite3
from dataclasses import dataclass

from gateway.dbthread import DbThread
from gateway.dburl import is_postgres_url
from gateway.event import Event, canonical_json, now_ms

GENESIS = "0" * 64
DAY_MS = 86400 * 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: an id is never reused
    kind        TEXT NOT NULL,                      -- 'event' or 'purge'
    dedup_key   TEXT UNIQUE,                        -- NULL for purge rows
    account     TEXT,
    event_class TEXT,
    priority    INTEGER,
    received_at_ms INTEGER NOT NULL,
    body        TEXT NOT NULL,                      -- canonical JSON, what the hash covers
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_class_age ON log (event_class, received_at_ms);
CREATE INDEX IF NOT EXISTS log_account_age ON log (account, received_at_ms);
CREATE TABLE IF NOT EXISTS forwarder_cursor (
    forwarder TEXT PRIMARY KEY,
    watermark INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS forwarder_done (
    forwarder TEXT NOT NULL,
    event_id  INTEGER NOT NULL,
    PRIMARY KEY (forwarder, event_id)
);
CREATE TABLE IF NOT EXISTS forwarder_dispatch (  -- an operator's "dispatch to 110", until delivered
    forwarder TEXT NOT NULL,
    event_id  INTEGER NOT NULL,
    requested_at_ms INTEGER NOT NULL,
    PRIMARY KEY (forwarder, event_id)
);
"""


def row_hash(row_id, kind, prev_hash, body):
    return hashlib.sha256(("%d\n%s\n%s\n%s" % (row_id, kind, prev_hash, body)).encode()).hexdigest()


def chain(events, keys, seen, row_id, prev):
    """The log rows for a batch of events, numbered from `row_id` and chained from
    the hash `prev`; shared by both engines (gateway/pgstore.py). Skips an event
    whose dedup key is in `seen` (recorded already) or repeats one earlier in the
    batch. Returns (a row id per event, None for a duplicate; the rows)."""
    ids, rows = [], []
    seen = set(seen)
    for ev, key in zip(events, keys):
        if key in seen:
            ids.append(None)
            continue
        seen.add(key)                  # a duplicate within the batch, too
        body = ev.to_json()
        h = row_hash(row_id, "event", prev, body)
        rows.append((row_id, "event", key, ev.account, ev.event_class, ev.priority, ev.received_at_ms, body, prev, h))
        ids.append(row_id)
        prev = h
        row_id += 1
    return ids, rows


@dataclass(frozen=True)
class StoredEvent:
    id: int
    event: Event


class LogQueries:
    """The outbox's and supervision's reads of the log, written once for both
    engines: EventLog (SQLite) and gateway.pgstore.PgEventLog implement
    `_select(sql, args)`: SQL with SQLite's ? placeholders, returning its rows (an
    iterable: SQLite's cursor reads them as they are used)."""

    def recent_device_time(self, account, sequence, code, zone, qualifier, since_ms):
        """The device time of the newest event of `account` received since `since_ms` with
        this sequence, code, zone and qualifier, or None: how a retry of a frame that
        carries no time of its own is told from a new event (sources/dc09.py)."""
        rows = self._select("SELECT body FROM log WHERE account = ? AND received_at_ms >= ? AND kind = 'event'"
                            " ORDER BY id DESC", (account, since_ms))
        for (body,) in rows:
            d = json.loads(body)
            if (d["sequence"], d["code"], d["zone"], d["qualifier"]) == (sequence, code, zone, qualifier):
                return d["device_time"]
        return None

    def get(self, row_id):
        """One stored event by its row id, or None (purged, a purge row, or no such row)."""
        row = next(iter(self._select("SELECT body FROM log WHERE id = ? AND kind = 'event'", (row_id,))), None)
        return StoredEvent(row_id, Event.from_dict(json.loads(row[0]))) if row else None

    def events(self, after=0, account=None, limit=None):
        sql = "SELECT id, body FROM log WHERE kind = 'event' AND id > ?"
        args = [after]
        if account is not None:
            sql += " AND account = ?"
            args.append(account)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [StoredEvent(i, Event.from_dict(json.loads(b))) for i, b in self._select(sql, args)]

    def pending(self, watermark, done):
        """A forwarder's undelivered events (all classes: its outbox filters)."""
        return [s for s in self.events(after=watermark) if s.id not in done]

    def dispatched(self, forwarder):
        """Stored events with a dispatch to `forwarder` not yet delivered, oldest request first."""
        rows = list(self._select("SELECT event_id FROM forwarder_dispatch WHERE forwarder = ? ORDER BY requested_at_ms",
                                 (forwarder,)))
        return [s for s in (self.get(r[0]) for r in rows) if s is not None]

    # -- supervision state --------------------------------------------------------

    def open_communication_troubles(self):
        """Accounts whose latest supervision event (code 350) is a trouble, not a restore."""
        return set(self.communication_troubles_since())

    def communication_troubles_since(self):
        """{account: wall-clock ms its open communication trouble was raised}: a new
        watcher (cluster mode) restores those heard from since, on any node."""
        latest = {}
        for (body,) in self._select("SELECT body FROM log WHERE kind = 'event' AND event_class = 'trouble' ORDER BY id"):
            d = json.loads(body)
            if d["code"] == 350 and d["source"] == "supervision":
                latest[d["account"]] = (d["qualifier"], d["received_at_ms"])
        return {acct: ms for acct, (q, ms) in latest.items() if q == 1}


class EventLog(LogQueries):
    def __init__(self, path):
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsync'd at every commit, so a committed event survives a
        # power cut; the gateway ACKs a device only after that commit returns.
        self.db.execute("PRAGMA synchronous=FULL")
        # `jifang log purge` or a reader may hold the lock for a moment: wait, don't fail.
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)

    def close(self):
        self.db.close()

    def _select(self, sql, args=()):
        return self.db.execute(sql, args)      # a cursor: rows are read as they are used

    def _head(self):
        row = self.db.execute("SELECT id, hash FROM log ORDER BY id DESC LIMIT 1").fetchone()
        return row if row else (0, GENESIS)

    def _recorded(self, keys):
        """The dedup keys among `keys` that are already in the log."""
        found = set()
        for i in range(0, len(keys), 500):            # SQLite's bound-parameter limit
            chunk = keys[i:i + 500]
            found.update(r[0] for r in self.db.execute(
                "SELECT dedup_key FROM log WHERE dedup_key IN (%s)" % ",".join("?" * len(chunk)), chunk))
        return found

    def _next_id(self):
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
        return (row[0] if row else 0) + 1

    def _insert(self, rows):
        """The one INSERT into the log: rows of (id, kind, dedup_key, account,
        event_class, priority, received_at_ms, body, prev_hash, hash), in id order,
        each linking to the one before (`chain`)."""
        self.db.executemany(
            "INSERT INTO log (id, kind, dedup_key, account, event_class, priority, received_at_ms, body, prev_hash, hash)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

    def append(self, events):
        """Commit events in one transaction; returns a row id per event, None for a
        duplicate (same dedup key already recorded). Returns after the fsync."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            # One query for the batch's duplicates, one id read and one executemany:
            # a fleet stores thousands of positions a second through here.
            keys = [ev.dedup_key for ev in events]
            _, prev = self._head()
            ids, rows = chain(events, keys, self._recorded(keys), self._next_id(), prev)
            self._insert(rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return ids

    def head_id(self):
        return self._head()[0]

    # -- forwarder cursors ------------------------------------------------------

    def cursor(self, forwarder):
        """(watermark, delivered ids above it). A forwarder seen for the first time
        starts at the current head: it forwards what arrives from now on, it does
        not replay years of history."""
        row = self.db.execute("SELECT watermark FROM forwarder_cursor WHERE forwarder = ?", (forwarder,)).fetchone()
        if row is None:
            watermark = self.head_id()
            self.db.execute("INSERT INTO forwarder_cursor VALUES (?, ?)", (forwarder, watermark))
            return watermark, set()
        done = {r[0] for r in self.db.execute(
            "SELECT event_id FROM forwarder_done WHERE forwarder = ? AND event_id > ?", (forwarder, row[0]))}
        return row[0], done

    def mark_delivered(self, forwarder, row_id, watermark):
        # Cursor updates skip the fsync: losing the last few after a power cut only
        # means sending those events again, and every receiver dedupes them. The
        # next event commit (synchronous=FULL) makes them durable anyway.
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._mark_delivered(forwarder, row_id, watermark)
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    def _mark_delivered(self, forwarder, row_id, watermark):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if row_id > watermark:
                self.db.execute("INSERT OR IGNORE INTO forwarder_done VALUES (?, ?)", (forwarder, row_id))
            self.db.execute("UPDATE forwarder_cursor SET watermark = ? WHERE forwarder = ?", (watermark, forwarder))
            self.db.execute("DELETE FROM forwarder_done WHERE forwarder = ? AND event_id <= ?", (forwarder, watermark))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # -- operator dispatches ------------------------------------------------------
    # A dispatch makes a forwarder send one stored event whatever its class filter
    # says (a center whose operators verify alarms before they go to 110). The
    # request is committed before the operator is answered and cleared only when
    # the upstream confirmed, so a restart in between sends it still.

    def request_dispatch(self, forwarder, row_id):
        self.db.execute("INSERT OR IGNORE INTO forwarder_dispatch VALUES (?, ?, ?)", (forwarder, row_id, now_ms()))

    def dispatch_delivered(self, forwarder, row_id):
        self.db.execute("DELETE FROM forwarder_dispatch WHERE forwarder = ? AND event_id = ?", (forwarder, row_id))

    # -- retention ---------------------------------------------------------------

    def purge(self, retention_days, forwarders=(), now=None):
        """Delete events older than their class's retention and already delivered by
        every forwarder; record the purge in the chain first. Returns the number purged.

        The purge row lists runs of consecutive purged ids, not every row: a fleet
        purges millions of positions at a time. Each run keeps what verification needs:
        its first and last id, the hash of its last row (the surviving row after it
        links to that), and the youngest receive time of each class it held, which
        must be older than that class's retention."""
        now = now_ms() if now is None else now
        self.db.execute("BEGIN IMMEDIATE")
        try:
            # Never purge what a forwarder has not delivered yet.
            limit = self.head_id()
            for name in forwarders:
                row = self.db.execute("SELECT watermark FROM forwarder_cursor WHERE forwarder = ?", (name,)).fetchone()
                limit = min(limit, row[0] if row else 0)
            victims = []
            classes = [r[0] for r in self.db.execute("SELECT DISTINCT event_class FROM log") if r[0] is not None]
            for cls in classes:           # through the (class, age) index, not a scan of the log
                days = retention_days.get(cls, retention_days["default"])
                victims += self.db.execute(
                    "SELECT id, event_class, received_at_ms, hash FROM log"
                    " WHERE event_class = ? AND received_at_ms <= ? AND id <= ? AND kind = 'event'",
                    (cls, now - days * DAY_MS, limit)).fetchall()
            if not victims:
                self.db.execute("COMMIT")
                return 0
            victims.sort()
            runs = []
            for row_id, cls, received, h in victims:
                if runs and runs[-1][1] == row_id - 1:
                    run = runs[-1]
                    run[1], run[2] = row_id, h
                else:
                    run = [row_id, row_id, h, {}]
                    runs.append(run)
                run[3][cls] = max(run[3].get(cls, 0), received)
            body = canonical_json({"purged_at_ms": now, "retention_days": retention_days, "runs": runs})
            _, prev = self._head()
            row_id = self._next_id()
            self._insert([(row_id, "purge", None, None, None, None, now, body, prev, row_hash(row_id, "purge", prev, body))])
            self.db.executemany("DELETE FROM log WHERE id BETWEEN ? AND ? AND kind = 'event'",
                                [(run[0], run[1]) for run in runs])
            self.db.execute("COMMIT")
            return len(victims)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise


@dataclass
class VerifyResult:
    ok: bool
    rows: int
    purged: int
    head_id: int
    head_hash: str
    problem: str = ""
    bad_row: int | None = None


def verify(path):
    """Walk the whole chain. Read-only: opens the database with mode=ro.
    `path` may also be a postgresql:// URL (gateway.pgstore.verify)."""
    if is_postgres_url(path):
        from gateway import pgstore
        return pgstore.verify(str(path))
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        db.execute("BEGIN")         # one snapshot: the gateway may be appending meanwhile
        # AUTOINCREMENT remembers the highest id ever issued, so deleting the newest
        # rows shows as a gap at the end (unless sqlite_sequence is forged too;
        # anchor the head hash elsewhere to guard against that).
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
        return _verify(db.execute, seq[0] if seq else 0)
    finally:
        db.close()


def _verify(rows_of, last_issued):
    """The chain walk shared by both backends: `rows_of(sql)` iterates a query's rows;
    `last_issued` is the highest id the log ever issued (SQLite's sqlite_sequence,
    PostgreSQL's chain_head), so a removed tail is found too."""
    # Pass 1: the purge rows (few), so the walk knows which gaps are accounted for.
    # Pass 2 streams the log; a multi-year log need not fit in memory.
    runs = {}            # first purged id -> (last id, hash of the last row), from purge rows
    run_ends = set()
    purged = 0
    purge_problems = {}
    for row_id, body in rows_of("SELECT id, body FROM log WHERE kind = 'purge' ORDER BY id"):
        try:
            p = json.loads(body)
            for first, last, last_hash, youngest in p["runs"]:
                if not first <= last or first in runs:
                    raise ValueError("bad run")
                runs[first] = (last, last_hash)
                run_ends.add(last)
                purged += last - first + 1
                for cls, received in youngest.items():
                    days = p["retention_days"].get(cls, p["retention_days"]["default"])
                    if received > p["purged_at_ms"] - days * DAY_MS and row_id not in purge_problems:
                        purge_problems[row_id] = "purge row %d removed %s rows %d-%d younger than their %d-day retention" % (
                            row_id, cls, first, last, days)
        except (ValueError, KeyError, TypeError, AttributeError):
            purge_problems[row_id] = "purge row %d is not a valid purge record" % row_id

    rows = 0

    def fail(bad_row, problem):
        return VerifyResult(False, rows, purged, 0, "", problem, bad_row)

    expected_id, prev_hash, prev_id = 1, GENESIS, 0
    for row_id, kind, dedup_key, account, event_class, priority, body, stored_prev, stored_hash in rows_of(
            "SELECT id, kind, dedup_key, account, event_class, priority, body, prev_hash, hash FROM log ORDER BY id"):
        rows += 1
        while expected_id < row_id:
            if expected_id not in runs:
                return fail(expected_id, "row %d was removed (no purge record covers it)" % expected_id)
            prev_id, prev_hash = runs[expected_id]
            expected_id = prev_id + 1
        if expected_id > row_id:
            return fail(row_id, "row %d is inside a run a purge row says it removed" % row_id)
        if stored_prev != prev_hash:
            if prev_id in run_ends:
                return fail(row_id, "row %d does not continue from purged row %d" % (row_id, prev_id))
            if prev_id == 0:
                return fail(row_id, "row %d altered: first row does not start the chain" % row_id)
            return fail(prev_id, "row %d altered: its hash no longer matches the link stored in row %d" % (prev_id, row_id))
        if row_hash(row_id, kind, stored_prev, body) != stored_hash:
            return fail(row_id, "row %d altered: its content no longer matches its hash" % row_id)
        if kind == "event":
            try:
                ev = Event.from_dict(json.loads(body))
                consistent = (dedup_key, account, event_class, priority) == (ev.dedup_key, ev.account, ev.event_class, ev.priority)
            except (ValueError, TypeError):
                consistent = False
            if not consistent:
                return fail(row_id, "row %d altered: its indexed columns disagree with its content" % row_id)
        elif kind == "purge":
            if row_id in purge_problems:
                return fail(row_id, purge_problems[row_id])
        else:
            return fail(row_id, "row %d altered: unknown kind %r" % (row_id, kind))
        prev_hash, prev_id, expected_id = stored_hash, row_id, row_id + 1
    if last_issued > prev_id:
        return fail(prev_id + 1, "row %d was removed (the newest rows are missing)" % (prev_id + 1))
    return VerifyResult(True, rows, purged, prev_id, prev_hash)


class Store:
    """The event log seen from the event loop.

    SQLite (a path): every call runs on the log's one thread. PostgreSQL (a
    postgresql:// URL, cluster mode): writes run on one thread, so cursor writes
    keep their order as on SQLite; reads run on `pool_size - 1` more threads, each
    on its own pooled connection, so a console query never waits behind an append."""

    def __init__(self, path, pool_size=4):
        self.path = path
        self.cluster = is_postgres_url(path)
        self.pool_size = pool_size
        self._writer = DbThread("store")
        self._readers = DbThread("store-read", threads=max(1, pool_size - 1)) if self.cluster else self._writer
        self._log = None

    async def open(self):
        if self.cluster:
            from gateway.pgstore import PgEventLog
            self._log = await self._writer.open(PgEventLog, self.path, self.pool_size)
        else:
            self._log = await self._writer.open(EventLog, self.path)

    async def close(self):
        self._log = None
        await self._writer.close()            # closes the log on its thread
        await self._readers.close()           # the same DbThread on SQLite: a no-op

    async def _run(self, fn, *args, **kwargs):
        return await self._writer.run(fn, *args, **kwargs)

    async def _read(self, fn, *args):
        return await self._readers.run(fn, *args)

    async def append(self, events):
        return await self._run(self._log.append, events)

    async def cursor(self, forwarder):
        return await self._run(self._log.cursor, forwarder)

    async def pending(self, watermark, done):
        return await self._read(self._log.pending, watermark, done)

    async def get(self, row_id):
        return await self._read(self._log.get, row_id)

    async def recent_device_time(self, account, sequence, code, zone, qualifier, since_ms):
        return await self._read(self._log.recent_device_time, account, sequence, code, zone, qualifier, since_ms)

    async def request_dispatch(self, forwarder, row_id):
        return await self._run(self._log.request_dispatch, forwarder, row_id)

    async def dispatched(self, forwarder):
        return await self._read(self._log.dispatched, forwarder)

    async def dispatch_delivered(self, forwarder, row_id):
        return await self._run(self._log.dispatch_delivered, forwarder, row_id)

    async def mark_delivered(self, forwarder, row_id, watermark):
        return await self._run(self._log.mark_delivered, forwarder, row_id, watermark)

    async def open_communication_troubles(self):
        return await self._read(self._log.open_communication_troubles)

    async def purge(self, retention_days, forwarders=()):
        return await self._run(self._log.purge, retention_days, forwarders)

    async def events(self, after=0, account=None, limit=None):
        if limit is None:
            return await self._read(self._log.events, after, account)
        return await self._read(self._log.events, after, account, limit)

    async def head_id(self):
        return await self._read(self._log.head_id)

    # Cluster mode only (PostgreSQL): supervision's last-heard shared by the nodes.

    async def record_heard(self, heard):
        return await self._run(self._log.record_heard, heard)

    async def shared_heard(self):
        return await self._read(self._log.shared_heard)

    async def communication_troubles_since(self):
        return await self._read(self._log.communication_troubles_since)
