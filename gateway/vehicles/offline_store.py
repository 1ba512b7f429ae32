"""The vehicle's own position store: SQLite (WAL, fsync at every commit).

Every report the vehicle makes is written here *before* it is sent, and deleted
only after the center has confirmed it (0x8001 result 0). So a link that is down
for hours, a center that restarts, or a vehicle computer that loses power loses
nothing: on the next connection the backlog goes up in order, as 0x0704
back-fill batches. The store also keeps the terminal's authentication code, so a
restart of the vehicle computer does not need a new registration.

All calls run on the store's own thread (gateway/dbthread.py): the event loop
never waits on an fsync.
"""
import sqlite3

from gateway.dbthread import DbThread

SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,   -- report order, never reused
    body BLOB NOT NULL                        -- the encoded 0x0200 body
);
CREATE TABLE IF NOT EXISTS terminal (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class _Db:
    def __init__(self, path):
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self):
        self.db.close()

    def append(self, body):
        return self.db.execute("INSERT INTO positions (body) VALUES (?)", (body,)).lastrowid

    def pending(self, limit):
        return self.db.execute("SELECT id, body FROM positions ORDER BY id LIMIT ?", (limit,)).fetchall()

    def delete_through(self, row_id):
        self.db.execute("DELETE FROM positions WHERE id <= ?", (row_id,))

    def count(self):
        return self.db.execute("SELECT COUNT(*) FROM positions").fetchone()[0]

    def get(self, key):
        row = self.db.execute("SELECT value FROM terminal WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key, value):
        if value is None:
            self.db.execute("DELETE FROM terminal WHERE key = ?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO terminal VALUES (?, ?)", (key, value))


class PositionStore:
    def __init__(self, path):
        self.path = path
        self._thread = DbThread("vehicle-store")

    async def _run(self, fn, *args):
        return await self._thread.run(fn, *args)

    @property
    def _db(self):
        return self._thread.conn

    async def open(self):
        await self._thread.open(_Db, self.path)

    async def close(self):
        await self._thread.close()

    async def append(self, body):
        return await self._run(self._db.append, body)

    async def pending(self, limit):
        """The oldest `limit` unconfirmed reports, [(id, body)], in report order."""
        return await self._run(self._db.pending, limit)

    async def delete_through(self, row_id):
        await self._run(self._db.delete_through, row_id)

    async def count(self):
        return await self._run(self._db.count)

    async def get(self, key):
        return await self._run(self._db.get, key)

    async def put(self, key, value):
        await self._run(self._db.put, key, value)
