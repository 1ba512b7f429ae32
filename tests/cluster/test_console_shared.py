"""The console's own records shared in the cluster's PostgreSQL: two gateway nodes,
each with its console, one database. A user added once exists on both; a session
cookie from node a is valid on node b; failed logins counted on a throttle b; the
access register is one; an alarm disposed of on a leaves b's queue; escalation
runs on the one console holding its lease, and another takes it over. The
append-only tables refuse changes in the database itself."""
import asyncio
import sqlite3

import psycopg
import pytest
from aiohttp import web

from gateway.console.app import ESCALATION_LEASE, create_app
from gateway.console.db import AsyncConsoleDB
from gateway.console.keys import CONSOLE
from gateway.console.settings import ConsoleSettings
from gateway.console.source import EventSource
from gateway.panelsim import Panel
from tests.cluster.test_nodes import holder_of, node_config, started
from tests.console.support import Client, add_users
from tests.gateway.helpers import PANEL_KEY, wait_for
from tests.support.ports import free_port


async def shared_users(tmp_path, url):
    """The console's test accounts (hashed once per run into a SQLite template),
    copied into the shared database."""
    template = tmp_path / "users.sqlite"
    await add_users(template)
    rows = sqlite3.connect(template).execute(
        "SELECT username, role, password_hash, display_name, created_at_ms FROM users").fetchall()
    db = AsyncConsoleDB(url)
    await db.open()
    try:
        for row in rows:
            await db.add_user(*row)
    finally:
        await db.close()


class Node:
    """A gateway node with its console served on a free port."""

    def __init__(self, gateway, settings):
        self.gateway = gateway
        self.app = create_app(EventSource.from_gateway(gateway), gateway.config.store_url, None, settings)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.url = None
        self.clients = []

    async def start(self):
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = "http://127.0.0.1:%d/" % port
        return self

    @property
    def console(self):
        return self.app[CONSOLE]

    def client(self):
        c = Client(self.url)
        self.clients.append(c)
        return c

    async def stop_console(self):
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()

    async def stop(self):
        for c in self.clients:
            await c.close()
        await self.stop_console()
        await self.gateway.stop()


@pytest.fixture
async def two_nodes(tmp_path, pg_log):
    url = pg_log[2]
    await shared_users(tmp_path, url)
    settings = ConsoleSettings(escalate_after_seconds=1, login_max_failures=3, login_backoff_seconds=60,
                               live_poll_ms=100)
    nodes = []
    try:
        for name in ("a", "b"):
            nodes.append(await Node(await started(node_config(tmp_path, name, url)), settings).start())
        yield nodes
    finally:
        for node in reversed(nodes):
            await node.stop()


def cookie_of(client):
    return {c.key: c.value for c in client.http.cookie_jar}


async def test_a_session_from_node_a_is_valid_on_node_b_and_its_logout_ends_it_on_both(two_nodes):
    a, b = two_nodes
    on_a = a.client()
    status, _ = await on_a.login("olga")
    assert status == 200
    on_b = b.client()
    on_b.http.cookie_jar.update_cookies(cookie_of(on_a))   # the same browser, now served by node b
    on_b.csrf = on_a.csrf
    status, me = await on_b.get("api/session")
    assert (status, me["username"]) == (200, "olga")
    status, _ = await on_b.get("api/queue")
    assert status == 200
    assert (await on_b.post("api/logout"))[0] == 200        # logged out through b ...
    assert (await on_a.get("api/queue"))[0] == 401          # ... ends the session on a


async def test_failed_logins_counted_on_node_a_throttle_node_b(two_nodes):
    a, b = two_nodes
    mallory = a.client()
    for _ in range(3):
        assert (await mallory.login("olga", "wrong"))[0] == 401
    status, body = await b.client().login("olga")            # the right password, on the other node
    assert status == 429, body
    assert "too many failed logins" in body["error"]


async def test_users_and_the_access_register_are_one(two_nodes):
    a, b = two_nodes
    ada = a.client()
    assert (await ada.login("ada"))[0] == 200
    status, _ = await ada.post("api/users", {"username": "nina", "role": "operator",
                                             "password": "another long passphrase", "display_name": "Nina"})
    assert status == 201
    nina = b.client()
    assert (await nina.login("nina", "another long passphrase"))[0] == 200      # created on a, logs in on b
    audrey = b.client()
    assert (await audrey.login("audrey"))[0] == 200
    _, register = await audrey.get("api/register?user=ada")                     # a's entries, read on b
    assert any(e["action"] == "user-change" and "nina" in e["what"] for e in register["entries"])


async def test_an_alarm_disposed_of_on_node_a_leaves_node_b_queue(two_nodes):
    a, b = two_nodes
    panel = Panel("1001", PANEL_KEY, ("127.0.0.1", a.gateway.receiver.address[1]))
    panel.start()
    await asyncio.wait_for(panel.report(130, zone=3).acked, 10)
    await panel.stop()
    [stored] = await a.gateway.store.events()
    for node in (a, b):
        await wait_for(lambda: stored.id in node.console.state.queue, what="the alarm queued on each node")
    olga = a.client()
    await olga.login("olga")
    assert (await olga.post("api/alarms/%d/take" % stored.id))[0] == 200
    await wait_for(lambda: b.console.state.queue[stored.id]["assignee"] == "olga", what="taken, seen on b")
    oscar = b.client()
    await oscar.login("oscar")
    status, body = await oscar.post("api/alarms/%d/take" % stored.id)           # taken already, on a
    assert status == 409, body
    status, _ = await olga.post("api/alarms/%d/dispose" % stored.id, {"outcome": "false", "note": "cat"})
    assert status == 200
    await wait_for(lambda: stored.id not in b.console.state.queue, what="gone from b's queue")
    sam = b.client()
    await sam.login("sam")
    status, _ = await sam.post("api/alarms/%d/dispose" % stored.id, {"outcome": "real", "note": "again"})
    assert status == 409                                       # one disposal per alarm, cluster-wide


async def test_a_walk_test_started_on_node_a_shows_on_node_b_and_ends_there(two_nodes):
    a, b = two_nodes
    ian = a.client()
    assert (await ian.login("ian"))[0] == 200
    assert (await ian.post("api/devices/1001/walk-test", {"action": "start"}))[0] == 200
    await wait_for(lambda: (b.console.state.devices["1001"].walk_test or {}).get("by") == "ian",
                   what="the walk test seen on b")
    on_b = b.client()
    await on_b.login("ian")
    assert (await on_b.post("api/devices/1001/walk-test", {"action": "start"}))[0] == 409     # running already
    assert (await on_b.post("api/devices/1001/walk-test", {"action": "end"}))[0] == 200
    await wait_for(lambda: a.console.state.devices["1001"].walk_test is None, what="ended, seen on a")
    assert a.console.state.devices["1001"].walk_tests == b.console.state.devices["1001"].walk_tests


async def test_escalation_runs_on_the_console_holding_its_lease_and_moves_when_it_stops(two_nodes, pg_log):
    a, b = two_nodes
    url = pg_log[2]
    await wait_for(lambda: holder_of(url, ESCALATION_LEASE) in ("a/console", "b/console"),
                   what="one console escalates")
    holder = a if holder_of(url, ESCALATION_LEASE) == "a/console" else b
    other = b if holder is a else a
    assert holder.console.escalating and not other.console.escalating

    async def alarm(zone):
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", other.gateway.receiver.address[1]))
        panel.start()
        await asyncio.wait_for(panel.report(130, zone=zone).acked, 10)
        await panel.stop()
        return max(s.id for s in await other.gateway.store.events())

    first = await alarm(1)
    await wait_for(lambda: (other.console.state.queue.get(first) or {}).get("escalated_at_ms"),
                   what="escalated, seen on the node that does not escalate")
    await holder.stop_console()                    # the escalating console stops ...
    await wait_for(lambda: other.console.escalating, timeout=10, what="... the other takes escalation over")
    second = await alarm(2)
    # .get: ACKed means committed; the console's feed follows the log a moment later.
    await wait_for(lambda: (other.console.state.queue.get(second) or {}).get("escalated_at_ms"),
                   what="escalated by the new holder")
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT event_id, COUNT(*) FROM console.escalations GROUP BY event_id").fetchall()
    assert sorted(rows) == [(first, 1), (second, 1)]


async def test_the_append_only_console_tables_refuse_changes_in_the_database(tmp_path, pg_log):
    server, name, url = pg_log
    db = AsyncConsoleDB(url)
    await db.open()
    try:
        await db.register(1, "ada", "admin", "view", "alarm queue", "alarm handling", "127.0.0.1")
        assert await db.dispose(7, "false", "cat", "olga", 2, "1001", "burglary", 1)
        assert not await db.dispose(7, "real", "again", "sam", 3, "1001", "burglary", 1)
    finally:
        await db.close()
    for who in (url, server.url(name, "jifang_owner")):          # the gateways' role, and the owner
        for sql in ("UPDATE console.dispositions SET outcome = 'real'", "DELETE FROM console.access_register",
                    "TRUNCATE console.dispositions"):
            with psycopg.connect(who) as conn:
                with pytest.raises(psycopg.Error):
                    conn.execute(sql)


def test_init_db_run_again_on_an_existing_log_only_adds_what_is_missing(pg_log):
    """An upgrade: a database whose log predates the console's tables gets them from
    a second `jifang log init-db`, its log untouched."""
    from gateway.log_cli import init_db
    server, name, url = pg_log
    owner = server.url(name, "jifang_owner")
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("DROP SCHEMA console CASCADE")
        conn.execute("DROP SCHEMA jt808 CASCADE")
    assert init_db(owner, "jifang_gateway") == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('console.users') IS NOT NULL AND"
                            " to_regclass('jt808.sessions') IS NOT NULL").fetchone()[0]
        assert conn.execute("SELECT last_id FROM chain_head").fetchone()[0] == 0
