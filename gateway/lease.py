"""Leases for work that must run on one node at a time (cluster mode): each
forwarder, supervision, retention. docs/cluster.md is the design.

A lease is a PostgreSQL session-level advisory lock (pg_try_advisory_lock), held
on one dedicated connection per node. PostgreSQL releases a session's advisory
locks when the session ends, so a node that dies (kill -9, power cut, network cut)
loses its leases when its connection drops, and another node's next attempt takes
them. Nothing has to expire and no clock has to agree.

How fast:
- a process that dies: the kernel closes its socket, the server sees the EOF at
  once, the locks go; the others try every `lease_poll` seconds (default 1 s);
- a machine or link that dies without closing its socket: server-side TCP
  keepalives (set on this session: idle 1 s, interval 1 s, 2 probes) end the session
  within about 3 s; the others take the lease at their next poll;
- the holder's side: every `lease_poll` it runs a query with a `lease_timeout`
  (default 2 s). If the query fails or is slow, the holder stops the leased work
  first, then closes the connection (which releases the locks for sure), then
  connects again and competes like any node.

The window where two nodes do the same work: a holder cut off from the database
goes on until its own check fails (at most lease_poll + lease_timeout) while
another may have taken over. Forwarded alarms may then be sent twice; every
receiver deduplicates by the dedup key (DESIGN.md: at-least-once everywhere).
"""
import asyncio
import hashlib
import logging

from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.lease")


def lease_key(name):
    """The advisory lock key of a lease: 64 bits of SHA-256, so names never collide
    in practice. Advisory locks are per database: one cluster's log, one key space."""
    return int.from_bytes(hashlib.sha256(("jifang lease " + name).encode()).digest()[:8], "big", signed=True)


def application_name(node):
    """What the lease connection calls itself in pg_stat_activity: `holders()` and
    an operator's query find which node holds what."""
    return "jifang-lease:" + node


class _Lease:
    def __init__(self, name, on_acquired, on_lost):
        self.name, self.key = name, lease_key(name)
        self.on_acquired, self.on_lost = on_acquired, on_lost
        self.held = False


class Leases:
    def __init__(self, url, node, poll=1.0, timeout=2.0, metrics=None):
        self.url, self.node, self.poll, self.timeout = url, node, poll, timeout
        self._leases = []
        self._task = None
        self._conn = None
        if metrics is not None:
            metrics.add_gauges(lambda: [("jifang_lease_held", {"lease": lease.name, "node": self.node}, int(lease.held))
                                        for lease in self._leases])

    def add(self, name, on_acquired, on_lost):
        """on_acquired(): start the work (async); on_lost(): stop it (async), called
        before the lease can have gone to another node by our own doing."""
        self._leases.append(_Lease(name, on_acquired, on_lost))

    def held(self, name):
        return any(lease.held for lease in self._leases if lease.name == name)

    def start(self):
        self._task = asyncio.create_task(self._run(), name="leases")

    async def stop(self):
        await cancel_and_wait(self._task)
        await self._drop_all()
        await self._disconnect()

    async def _connect(self):
        import psycopg
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=max(1, int(self.timeout)),
            application_name=application_name(self.node),
            # Client side: notice a dead server as the server notices a dead client.
            keepalives=1, keepalives_idle=1, keepalives_interval=1, keepalives_count=2)
        # Server side: end this session (and free its locks) soon after its host vanishes.
        await conn.execute("SET tcp_keepalives_idle = 1; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 2")
        return conn

    async def _disconnect(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), self.timeout)
            except Exception:
                pass

    async def _query(self, sql, args=None):
        cur = await asyncio.wait_for(self._conn.execute(sql, args), self.timeout)
        return await cur.fetchone()

    async def _run(self):
        import psycopg
        while True:
            try:
                if self._conn is None:
                    self._conn = await asyncio.wait_for(self._connect(), self.timeout + 1)
                for lease in self._leases:
                    if not lease.held:
                        (got,) = await self._query("SELECT pg_try_advisory_lock(%s)", (lease.key,))
                        if got:
                            await self._acquired(lease)
                await self._query("SELECT 1")       # the holder's health check
            except (psycopg.Error, OSError, asyncio.TimeoutError) as exc:
                held = [lease.name for lease in self._leases if lease.held]
                log.warning("lease connection lost" + (": stopping the leased work" if held else ""),
                            extra={"node": self.node, "leases": held, "error": repr(exc)})
                await self._drop_all()
                await self._disconnect()
            await asyncio.sleep(self.poll)

    async def _acquired(self, lease):
        lease.held = True
        log.info("lease taken", extra={"node": self.node, "lease": lease.name})
        try:
            await lease.on_acquired()
        except Exception as exc:
            # The work could not start (the store unreachable?): give the lease back
            # so a node that can do it takes it.
            log.error("leased work did not start; lease given back",
                      extra={"node": self.node, "lease": lease.name, "error": repr(exc)})
            await self._lose(lease)
            await self._query("SELECT pg_advisory_unlock(%s)", (lease.key,))

    async def _lose(self, lease):
        lease.held = False
        try:
            await lease.on_lost()
        except Exception as exc:
            log.error("leased work did not stop cleanly", extra={"node": self.node, "lease": lease.name,
                                                                 "error": repr(exc)})

    async def _drop_all(self):
        for lease in self._leases:
            if lease.held:
                log.warning("lease released", extra={"node": self.node, "lease": lease.name})
                await self._lose(lease)


def holders(conn):
    """{lease key: node} for the leases held now (a psycopg connection to the log's database)."""
    prefix = application_name("")
    rows = conn.execute(
        "SELECT (l.classid::bigint << 32) | l.objid::bigint, a.application_name FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()
    out = {}
    for key, app in rows:
        if app and app.startswith(prefix):
            signed = key - (1 << 64) if key >= 1 << 63 else key
            out[signed] = app[len(prefix):]
    return out
