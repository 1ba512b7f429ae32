"""Leases on PostgreSQL advisory locks: one holder at a time; a holder whose health
check outlasts lease_timeout stops its work before anything else; a node whose
work cannot start gives the lease back."""
import asyncio
import os
import signal

import psycopg

from gateway.lease import Leases, application_name, holders, lease_key
from tests.gateway.helpers import wait_for


def recorder(log, node):
    async def acquired():
        log.append((node, "acquired"))

    async def lost():
        log.append((node, "lost"))
    return acquired, lost


def lease_backend_pid(url, node):
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                           (application_name(node),)).fetchone()
    return row[0] if row else None


async def test_one_holder_and_a_slow_health_check_drops_the_lease(pg_log):
    url = pg_log[2]
    events = []
    a = Leases(url, "a", poll=0.1, timeout=0.5)
    b = Leases(url, "b", poll=0.1, timeout=0.5)
    a.add("x", *recorder(events, "a"))
    b.add("x", *recorder(events, "b"))
    a.start()
    await wait_for(lambda: a.held("x"), what="a holds x")
    b.start()
    try:
        await asyncio.sleep(0.5)                         # b tries several times meanwhile
        assert events == [("a", "acquired")] and not b.held("x")
        with psycopg.connect(url) as conn:
            assert holders(conn)[lease_key("x")] == "a"

        # a's server session freezes: its health check takes longer than lease_timeout.
        pid = lease_backend_pid(url, "a")
        os.kill(pid, signal.SIGSTOP)
        try:
            await wait_for(lambda: ("a", "lost") in events, timeout=10, what="a stops its work")
            assert not b.held("x")                       # the frozen session still holds the lock
        finally:
            os.kill(pid, signal.SIGCONT)                 # it then sees a's socket closed and ends
        await wait_for(lambda: b.held("x"), timeout=10, what="b takes x")
        assert events[:3] == [("a", "acquired"), ("a", "lost"), ("b", "acquired")]
        await asyncio.sleep(0.5)
        assert not a.held("x")                           # a competes again, and waits
    finally:
        await a.stop()
        await b.stop()


async def test_work_that_cannot_start_gives_the_lease_back(pg_log):
    """Node a takes the lease first but its work fails to start: it gives the lease
    back (an unlock, not only a flag), so node b, whose work starts, gets it."""
    url = pg_log[2]
    events = []

    async def failing():
        events.append(("a", "failed"))
        raise RuntimeError("store unreachable")

    async def lost():
        events.append(("a", "lost"))
    a = Leases(url, "a", poll=0.1, timeout=1)
    a.add("x", failing, lost)
    b = Leases(url, "b", poll=0.1, timeout=1)
    b.add("x", *recorder(events, "b"))
    a.start()
    try:
        await wait_for(lambda: ("a", "failed") in events, what="a tried")
        b.start()
        await wait_for(lambda: b.held("x"), what="b takes the lease a gave back")
        assert events[:2] == [("a", "failed"), ("a", "lost")] and not a.held("x")
        with psycopg.connect(url) as conn:
            assert holders(conn)[lease_key("x")] == "b"
    finally:
        await a.stop()
        await b.stop()
