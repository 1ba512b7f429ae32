"""The console's own records, in a SQLite file (WAL) next to the event log.

The event log belongs to the gateway and is never written here. What operators do
is recorded in this file instead:

  assignments, dispositions, dispatches, escalations, access_register, walk_tests
      append-only: SQLite triggers refuse UPDATE and DELETE, because the
      regulations forbid altering or deleting records (DESIGN.md, "Rules").
      An alarm's current assignee is its latest assignment row.
  users            accounts (role changes and disabling are updates; each one is
                   also written to the access register, so the change is kept)
  sessions         live logins (only a hash of the token is stored)
  login_failures   recent failed logins (and tries being verified), for throttling
  meta             the event id the console started from (older alarms were
                   handled before it existed and are not queued)

Cluster mode (`[store] url = "postgresql://..."`): the same tables in the log's
database, shared by every node's console (gateway/console/pgdb.py); `AsyncConsoleDB`
picks the engine from its location (a path or a URL).

`ConsoleDB` is synchronous; `AsyncConsoleDB` runs every method on the database's
own thread (gateway/dbthread.py, as gateway.store.Store does), so the event loop
never waits on an fsync and the connection stays on one thread.
"""
import sqlite3

from gateway.dbthread import DbThread

APPEND_ONLY = ("assignments", "dispositions", "dispatches", "escalations", "access_register", "walk_tests")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    csrf_token    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    username TEXT NOT NULL,
    client   TEXT NOT NULL,
    at_ms    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_user ON login_failures (username, at_ms);
CREATE INDEX IF NOT EXISTS login_failures_client ON login_failures (client, at_ms);
CREATE TABLE IF NOT EXISTS assignments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL,
    assignee    TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    event_received_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS assignments_event ON assignments (event_id, id);
CREATE TABLE IF NOT EXISTS dispositions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL UNIQUE,     -- one disposal per alarm
    outcome     TEXT NOT NULL,
    note        TEXT NOT NULL,
    operator    TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    account     TEXT NOT NULL,
    event_class TEXT NOT NULL,
    event_received_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dispositions_at ON dispositions (at_ms);
CREATE TABLE IF NOT EXISTS dispatches (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id  INTEGER NOT NULL,
    operator  TEXT NOT NULL,
    note      TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    ok        INTEGER NOT NULL,
    result    TEXT NOT NULL               -- the forwarding side's reference, or its error
);
CREATE INDEX IF NOT EXISTS dispatches_event ON dispatches (event_id);
CREATE TABLE IF NOT EXISTS escalations (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id  INTEGER NOT NULL UNIQUE,
    at_ms     INTEGER NOT NULL,
    after_s   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS access_register (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    username  TEXT NOT NULL,
    role      TEXT NOT NULL,
    action    TEXT NOT NULL,               -- view, search, export, login, login-failed, user-change ...
    what      TEXT NOT NULL,               -- which records (the query, the alarm id, ...)
    purpose   TEXT NOT NULL,
    client    TEXT NOT NULL,
    records   INTEGER NOT NULL DEFAULT 0   -- how many records the answer carried
);
CREATE INDEX IF NOT EXISTS access_register_at ON access_register (at_ms);
CREATE TABLE IF NOT EXISTS walk_tests (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    account   TEXT NOT NULL,
    action    TEXT NOT NULL,               -- 'start' or 'end'; a device's latest row is its state
    username  TEXT NOT NULL,
    at_ms     INTEGER NOT NULL
);
"""


def _append_only_triggers():
    sql = []
    for table in APPEND_ONLY:
        for op in ("UPDATE", "DELETE"):
            sql.append("CREATE TRIGGER IF NOT EXISTS %s_no_%s BEFORE %s ON %s BEGIN "
                       "SELECT RAISE(ABORT, '%s is append-only: records may not be altered or deleted'); END;"
                       % (table, op.lower(), op, table, table))
    return "\n".join(sql)


class ConsoleDB:
    def __init__(self, path):
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a disposition or a register entry acknowledged to the browser survives a power cut.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA + _append_only_triggers())

    def close(self):
        self.db.close()

    def _one(self, sql, args=()):
        row = self.db.execute(sql, args).fetchone()
        return dict(row) if row else None

    def _all(self, sql, args=()):
        return [dict(r) for r in self.db.execute(sql, args)]

    # -- meta ---------------------------------------------------------------------

    def start_event_id(self, current_head):
        """The event id the console started after; fixed the first time it runs."""
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('start_event_id', ?)", (str(current_head),))
        return int(self._one("SELECT value FROM meta WHERE key = 'start_event_id'")["value"])

    # -- users --------------------------------------------------------------------

    def add_user(self, username, role, password_hash, display_name, now_ms):
        self.db.execute("INSERT INTO users (username, display_name, role, password_hash, created_at_ms)"
                        " VALUES (?,?,?,?,?)", (username, display_name, role, password_hash, now_ms))
        return self.user(username)

    def user(self, username):
        return self._one("SELECT * FROM users WHERE username = ?", (username,))

    def users(self):
        return self._all("SELECT id, username, display_name, role, disabled, created_at_ms FROM users ORDER BY username")

    def update_user(self, username, **fields):
        allowed = {"role", "password_hash", "disabled", "display_name"}
        assert set(fields) <= allowed, fields
        if fields:
            sets = ", ".join("%s = ?" % k for k in fields)
            self.db.execute("UPDATE users SET %s WHERE username = ?" % sets, (*fields.values(), username))
        if fields.get("disabled") or "password_hash" in fields or "role" in fields:
            # A changed role, password or a disabled account ends that account's sessions.
            self.db.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)", (username,))
        return self.user(username)

    # -- sessions and throttling -------------------------------------------------------

    def add_session(self, token_hash, user_id, csrf_token, now_ms):
        self.db.execute("INSERT INTO sessions VALUES (?,?,?,?,?)", (token_hash, user_id, csrf_token, now_ms, now_ms))

    def session(self, token_hash):
        return self._one("SELECT s.*, u.username, u.role, u.display_name, u.disabled FROM sessions s"
                         " JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?", (token_hash,))

    def touch_session(self, token_hash, now_ms):
        self.db.execute("UPDATE sessions SET last_seen_ms = ? WHERE token_hash = ?", (now_ms, token_hash))

    def drop_session(self, token_hash):
        self.db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def drop_expired_sessions(self, idle_before_ms, created_before_ms):
        self.db.execute("DELETE FROM sessions WHERE last_seen_ms < ? OR created_at_ms < ?",
                        (idle_before_ms, created_before_ms))

    def login_gate(self, username, client, now_ms, policy):
        """The login throttle, checked and counted in one step (this thread runs one
        call at a time, so concurrent logins cannot all pass a check before any is
        counted). The try is recorded as a failure at once; `login_succeeded`
        removes it. Returns (0, attempt row id) or (until_ms, None)."""
        self._unsynced("DELETE FROM login_failures WHERE at_ms < ?", (now_ms - policy["window_ms"],))
        until = self._throttled_until(username, client, now_ms, policy)
        if until:
            return until, None
        cursor = self._unsynced("INSERT INTO login_failures VALUES (?,?,?)", (username, client, now_ms))
        return 0, cursor.lastrowid

    def _throttled_until(self, username, client, now_ms, policy):
        """When the next try of this account from this address may come (ms), or 0
        now: the later of the pair's and the address's back-off (both engines)."""
        from gateway.console.auth import backoff_ms
        pair = self._one("SELECT COUNT(*) AS n, MAX(at_ms) AS last FROM login_failures WHERE username = ? AND client = ?",
                         (username, client))
        address = self._one("SELECT COUNT(*) AS n, MAX(at_ms) AS last FROM login_failures WHERE client = ?", (client,))
        until = 0
        for row, free in ((pair, policy["pair_free"]), (address, policy["address_free"])):
            wait = backoff_ms(row["n"], free, policy["first_s"], policy["longest_s"])
            if wait and row["last"] + wait > now_ms:
                until = max(until, row["last"] + wait)
        return until

    def _unsynced(self, sql, args=()):
        """A write without fsync: the throttle's counts are worth less than the disk
        time a login flood would take from the gateway's event log (same disk). A
        power cut may forget the latest few; the next FULL commit syncs them anyway."""
        self.db.execute("PRAGMA synchronous=OFF")
        try:
            return self.db.execute(sql, args)
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    def login_succeeded(self, username, client):
        # Only this address's failures for the account: an attacker's count at
        # another address is not reset by the real user logging in.
        self._unsynced("DELETE FROM login_failures WHERE username = ? AND client = ?", (username, client))

    def login_failures(self, username=None, client=None):
        """Failed logins on record, by account and address (for the admin)."""
        sql, args = "SELECT username, client, COUNT(*) AS failures, MAX(at_ms) AS last_at_ms FROM login_failures", []
        if username is not None:
            sql += " WHERE username = ?"
            args.append(username)
        elif client is not None:
            sql += " WHERE client = ?"
            args.append(client)
        return self._all(sql + " GROUP BY username, client ORDER BY username, client", args)

    def unlock(self, username=None, client=None):
        """Clear failed logins for an account (every address) or an address (every
        account); returns how many were cleared."""
        if username is not None:
            return self.db.execute("DELETE FROM login_failures WHERE username = ?", (username,)).rowcount
        return self.db.execute("DELETE FROM login_failures WHERE client = ?", (client,)).rowcount

    # -- alarm handling -----------------------------------------------------------------

    def assign(self, event_id, assignee, assigned_by, now_ms, event_received_at_ms):
        self.db.execute("INSERT INTO assignments (event_id, assignee, assigned_by, at_ms, event_received_at_ms)"
                        " VALUES (?,?,?,?,?)", (event_id, assignee, assigned_by, now_ms, event_received_at_ms))

    def dispose(self, event_id, outcome, note, operator, now_ms, account, event_class, event_received_at_ms):
        """Record the disposal; False when the alarm was already disposed of."""
        try:
            self.db.execute("INSERT INTO dispositions (event_id, outcome, note, operator, at_ms, account, event_class,"
                            " event_received_at_ms) VALUES (?,?,?,?,?,?,?,?)",
                            (event_id, outcome, note, operator, now_ms, account, event_class, event_received_at_ms))
        except sqlite3.IntegrityError:
            return False
        return True

    def add_dispatch(self, event_id, operator, note, now_ms, ok, result):
        self.db.execute("INSERT INTO dispatches (event_id, operator, note, at_ms, ok, result) VALUES (?,?,?,?,?,?)",
                        (event_id, operator, note, now_ms, int(ok), result))

    def escalate(self, event_id, now_ms, after_s):
        self.db.execute("INSERT OR IGNORE INTO escalations (event_id, at_ms, after_s) VALUES (?,?,?)",
                        (event_id, now_ms, after_s))

    def handling(self, event_ids):
        """What has been done to each of these alarms: {event_id: {...}}."""
        out = {i: {"assignments": [], "dispatches": [], "disposition": None, "escalated_at_ms": None} for i in event_ids}
        if not out:
            return out
        marks = ",".join("?" * len(out))
        ids = list(out)
        for row in self._all("SELECT * FROM assignments WHERE event_id IN (%s) ORDER BY id" % marks, ids):
            out[row["event_id"]]["assignments"].append(row)
        for row in self._all("SELECT * FROM dispatches WHERE event_id IN (%s) ORDER BY id" % marks, ids):
            out[row["event_id"]]["dispatches"].append(row)
        for row in self._all("SELECT * FROM dispositions WHERE event_id IN (%s)" % marks, ids):
            out[row["event_id"]]["disposition"] = row
        for row in self._all("SELECT * FROM escalations WHERE event_id IN (%s)" % marks, ids):
            out[row["event_id"]]["escalated_at_ms"] = row["at_ms"]
        return out

    def disposed_ids(self, after_event_id):
        return {r["event_id"] for r in self._all("SELECT event_id FROM dispositions WHERE event_id > ?", (after_event_id,))}

    # -- walk tests -----------------------------------------------------------------

    def add_walk_test(self, account, action, username, now_ms):
        """The new row's id."""
        return self.db.execute("INSERT INTO walk_tests (account, action, username, at_ms) VALUES (?,?,?,?)",
                               (account, action, username, now_ms)).lastrowid

    def walk_tests_after(self, after_id):
        """Walk-test rows above an id, oldest first, with their ids (cluster mode:
        what other nodes' consoles started or ended)."""
        return self._all("SELECT id, account, action, username, at_ms FROM walk_tests WHERE id > ? ORDER BY id",
                         (after_id,))

    def walk_tests(self):
        """Every walk-test row, oldest first (a handful per device per year)."""
        return self._all("SELECT account, action, username, at_ms FROM walk_tests ORDER BY id")

    # -- reports ----------------------------------------------------------------------

    def outcomes(self, since_ms, until_ms):
        return {r["outcome"]: r["n"] for r in self._all(
            "SELECT outcome, COUNT(*) AS n FROM dispositions WHERE at_ms >= ? AND at_ms < ? GROUP BY outcome",
            (since_ms, until_ms))}

    def response_times(self, since_ms, until_ms):
        """Seconds from arrival to first take and to disposal, for alarms disposed of in the period."""
        rows = self._all(
            "SELECT d.event_id, d.event_received_at_ms AS arrived, d.at_ms AS disposed,"
            " (SELECT MIN(a.at_ms) FROM assignments a WHERE a.event_id = d.event_id) AS taken"
            " FROM dispositions d WHERE d.at_ms >= ? AND d.at_ms < ?", (since_ms, until_ms))
        take = [(r["taken"] - r["arrived"]) / 1000 for r in rows if r["taken"] is not None]
        dispose = [(r["disposed"] - r["arrived"]) / 1000 for r in rows]
        return take, dispose

    # -- access register -----------------------------------------------------------------

    def register(self, now_ms, username, role, action, what, purpose, client, records=0):
        self.db.execute("INSERT INTO access_register (at_ms, username, role, action, what, purpose, client, records)"
                        " VALUES (?,?,?,?,?,?,?,?)", (now_ms, username, role, action, what, purpose, client, records))

    def register_entries(self, since_ms, until_ms, username=None, limit=500):
        sql = "SELECT * FROM access_register WHERE at_ms >= ? AND at_ms < ?"
        args = [since_ms, until_ms]
        if username:
            sql += " AND username = ?"
            args.append(username)
        return self._all(sql + " ORDER BY id DESC LIMIT ?", args + [limit])


def database_class(location):
    """ConsoleDB for a SQLite path, PgConsoleDB (shared by the cluster's nodes) for a
    postgresql:// URL."""
    from gateway.dburl import is_postgres_url
    if is_postgres_url(location):
        from gateway.console.pgdb import PgConsoleDB
        return PgConsoleDB
    return ConsoleDB


class AsyncConsoleDB:
    """ConsoleDB seen from the event loop: `await db.method(...)` runs
    `ConsoleDB.method` on the database's own thread."""

    def __init__(self, path):
        self.path = path
        self._thread = DbThread("console-db")
        self._cls = database_class(path)

    async def open(self):
        await self._thread.open(self._cls, self.path)

    async def close(self):
        await self._thread.close()

    def __getattr__(self, name):
        method = getattr(self._cls, name)

        async def call(*args, **kwargs):
            return await self._thread.run(method, self._thread.conn, *args, **kwargs)
        return call
