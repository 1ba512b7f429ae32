"""JT/T 808 registrations and sessions shared by two nodes in the cluster's
PostgreSQL: a terminal registered on node a authenticates on node b; the session
is decided cluster-wide (a vehicle online on a cannot be released or registered
again through b; its login on b moves the session and a closes its link); a node
that stops renewing (died) frees its vehicles after the TTL."""
import asyncio
import contextlib

import psycopg
import pytest

from gateway.vehicles.pgregistry import keep_sessions
from gateway.vehicles.registry import RESULT_TERMINAL_REGISTERED, Registry
from gateway.vehicles.runtime import VehicleCenter
from gateway.vehicles.server import JT808Server
from gateway.vehiclesim import Terminal
from gateway.tasks import cancel_and_wait
from tests.support.ports import free_port
from tests.vehicles.support import ESCORT, FLEET, Recorder, wait_for


class Node:
    """A JT/T 808 center of one node, with the shared-session renewal of VehicleCenter."""

    def __init__(self, url, name, renew_s=0.1, ttl_s=0.6):
        self.registry = Registry(FLEET, url, node=name)
        self.registry.shared.renew_s, self.registry.shared.ttl_s = renew_s, ttl_s
        self.recorder = Recorder()
        self.server = JT808Server(self.registry, self.recorder.submit)
        self.held = set()
        self.renewer = None
        # VehicleCenter.release's rule (refused while online anywhere), on this node
        self.center = VehicleCenter.__new__(VehicleCenter)
        self.center.registry, self.center.server = self.registry, self.server

    async def start(self):
        await self.server.start("127.0.0.1", 0)
        self.renewer = asyncio.create_task(keep_sessions(self.server, self.registry.shared, self.held))
        return self

    async def die(self):
        """As kill -9 does to the shared rows: nothing dropped, nothing renewed."""
        await cancel_and_wait(self.renewer)
        self.renewer = None
        await self.server.stop()

    async def stop(self):
        if self.renewer is not None:
            await self.die()
        self.registry.close()


@contextlib.asynccontextmanager
async def nodes(url):
    a, b = Node(url, "a"), Node(url, "b")
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await b.stop()
        await a.stop()


def terminal(vehicle, code=None):
    return Terminal(vehicle.phone, vehicle.plate, terminal_id="T-%s" % vehicle.phone[-4:], auth_code=code)


async def test_registered_on_a_authenticates_on_b_and_the_session_moves(pg_log):
    url = pg_log[2]
    async with nodes(url) as (a, b):
        on_a = terminal(ESCORT)
        code = await on_a.login("127.0.0.1", a.server.port)
        assert code and a.server.online(ESCORT.account)
        await wait_for(lambda: a.registry.shared.sessions().get(ESCORT.phone, ("",))[0] == "a",
                       what="a holds the session")

        # While a holds it: no release through b, no new registration through b.
        with pytest.raises(ValueError, match="online on node a"):
            await b.center.release(ESCORT.account, "sam", "swapped")
        again = terminal(ESCORT)
        await again.connect("127.0.0.1", b.server.port)
        assert (await again.register())[0] == RESULT_TERMINAL_REGISTERED
        await again.close()

        # The terminal reconnects to b (its backup center) with its code.
        on_b = terminal(ESCORT, code)
        assert await on_b.login("127.0.0.1", b.server.port) == code
        assert b.server.online(ESCORT.account)
        assert a.registry.shared.sessions()[ESCORT.phone][0] == "b"
        await wait_for(lambda: not a.server.online(ESCORT.account), what="a closed its link")
        await wait_for(lambda: not on_a.connected, what="the old connection closed")
        assert await on_b.heartbeat() == 0
        await on_a.close()
        await on_b.close()


async def test_a_node_that_died_frees_its_vehicles_after_the_ttl(pg_log):
    url = pg_log[2]
    async with nodes(url) as (a, b):
        t = terminal(ESCORT)
        code = await t.login("127.0.0.1", a.server.port)
        await wait_for(lambda: ESCORT.phone in a.held, what="a renews the session")
        await a.die()
        await t.close()
        with pytest.raises(ValueError):                 # a's row is fresh still
            await b.center.release(ESCORT.account, "sam", "swapped")
        await wait_for(lambda: b.registry.shared.alive_elsewhere(ESCORT.phone) is None, timeout=10,
                       what="a's rows expire")
        released = await b.center.release(ESCORT.account, "sam", "terminal swapped")
        assert released["had_code"]
        fresh = terminal(ESCORT)
        new_code = await fresh.login("127.0.0.1", b.server.port)
        assert new_code and new_code != code
        await fresh.close()


async def test_the_codes_are_stored_hashed_and_the_gateway_role_cannot_touch_the_log_through_them(pg_log):
    url = pg_log[2]
    async with nodes(url) as (a, _b):
        t = terminal(ESCORT)
        code = await t.login("127.0.0.1", a.server.port)
        await t.close()
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT code_sha256 FROM jt808.terminals").fetchone()[0]
    assert code not in stored and len(stored) == 64


def test_the_command_line_refuses_to_release_a_vehicle_online_on_a_node(pg_log, tmp_path, capsys):
    """`jifang vehicles release` in cluster mode: the registrations are the shared
    ones, and a vehicle online on any node is not released."""
    from gateway import cli
    url = pg_log[2]
    registry = Registry(FLEET, url, node="a")
    try:
        registry.shared.claim(ESCORT.phone)                  # node a holds its session, just renewed
        config = tmp_path / "node.toml"
        config.write_text('[store]\nurl = "%s"\n[jt808]\nlisten = "127.0.0.1:%d"\n'      # never listened on
                          '[[vehicles.fleet]]\nphone = "%s"\nplate = "%s"\nkind = "escort"\n'
                          % (url, free_port(), ESCORT.phone, ESCORT.plate))
        assert cli.main(["vehicles", "release", ESCORT.account, "--config", str(config),
                         "--operator", "sam", "--reason", "swapped"]) == 2
        assert "online on node a" in capsys.readouterr().err
        assert [r["state"] for r in registry.registrations() if r["account"] == ESCORT.account] == ["unregistered"]
    finally:
        registry.close()
