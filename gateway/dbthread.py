"""A database connection seen from the event loop: the one way the gateway and the
console call blocking database code (the event log, its reader, the console's
records, the vehicles' offline store).

Why a thread of its own rather than asyncio's default executor:
- an fsync or a slow query never blocks the event loop (the receivers' ACKs);
- a SQLite connection is used from the one thread that opened it, so calls run one
  at a time, in the order they were made (a forwarder's cursor writes keep their
  order; the console's login throttle checks and counts in one step);
- the default executor is shared with everything else (DNS lookups, password
  hashing) and would let those queue in front of a commit.

A connection pool that is safe across threads (PostgreSQL reads) may be given
more threads (`threads`): calls then run side by side and in no promised order.

Life cycle: `open(connect, ...)` runs `connect` on the thread and keeps what it
returns as `conn`; `run(fn, ...)` runs `fn` there; `close()` closes `conn` on the
same thread, then stops the thread after the calls already queued. Closing twice
is harmless, and a `DbThread` that never opened a connection just stops.
"""
import asyncio
import concurrent.futures
import functools


class DbThread:
    def __init__(self, name, threads=1):
        self.name = name
        self.conn = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._closed = False

    async def run(self, fn, *args, **kwargs):
        """`fn(*args, **kwargs)` on this thread; its result (or its exception) here."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def open(self, connect, *args, **kwargs):
        """Make the connection on this thread (a SQLite connection belongs to its
        thread) and keep it as `conn`; returns it."""
        self.conn = await self.run(connect, *args, **kwargs)
        return self.conn

    async def close(self):
        """Close `conn` (on this thread), then stop the thread once what is queued
        ran. The wait is short: by now nothing new is queued, and each call is one
        statement or one transaction."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.conn is not None:
                conn, self.conn = self.conn, None
                await self.run(conn.close)
        finally:
            self._executor.shutdown(wait=True)
