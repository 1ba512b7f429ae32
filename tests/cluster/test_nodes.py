"""Two gateway nodes (app instances) sharing one PostgreSQL store: the forwarder runs
on the lease holder and forwards what either node received; supervision's
last-heard is shared, so a panel reporting to the node that does not watch raises
no false 350, and its silence and return are still seen; the console on either
node shows what the other received."""
import asyncio

import psycopg
from aiohttp import web

from gateway import config as config_module
from gateway.app import Gateway
from gateway.console.app import create_app
from gateway.console.keys import CONSOLE
from gateway.console.settings import ConsoleSettings
from gateway.console.source import EventSource
from gateway.lease import holders, lease_key
from gateway.panelsim import Panel
from protocols import contactid
from tests.gateway.helpers import PANEL_KEY, PANEL_KEY_HEX, PEER_KEY_HEX, address, upper_config, wait_for
from tests.support.ports import free_tcp_udp_port


def node_config(tmp_path, node, url, port110=None, reporting_interval=0, lease_poll=0.2):
    data = {
        "gateway": {"name": "asc"},
        "store": {"url": url},
        "cluster": {"node": node, "lease_poll_seconds": lease_poll, "heard_flush_seconds": 0.2,
                    "follow_poll_seconds": 0.2},
        "receiver": {"listen": address(free_tcp_udp_port())},
        "devices": [{"account": "1001", "key_hex": PANEL_KEY_HEX, "site": "Bldg 1",
                     "reporting_interval_seconds": reporting_interval}],
        "forwarders": [],
    }
    if port110:
        data["forwarders"].append({"name": "110", "type": "dc09", "receivers": [address(port110)],
                                   "key_hex": PEER_KEY_HEX, "retry_initial_seconds": 0.05,
                                   "retry_max_seconds": 0.5})
    folder = tmp_path / node
    folder.mkdir(exist_ok=True)
    return config_module.from_dict(data, folder, node)


def holder_of(url, lease):
    with psycopg.connect(url) as conn:
        return holders(conn).get(lease_key(lease))


async def started(config):
    gw = Gateway(config)
    await gw.start()
    return gw


async def test_the_lease_holder_forwards_what_either_node_received(tmp_path, pg_log):
    url = pg_log[2]
    port110 = free_tcp_udp_port()
    async with Gateway(upper_config(tmp_path, port=port110)) as center:
        a = await started(node_config(tmp_path, "a", url, port110))
        try:
            await wait_for(lambda: holder_of(url, "forwarder:110") == "a", what="node a holds the forwarder")
            b = await started(node_config(tmp_path, "b", url, port110))
            try:
                for node in (a, b):
                    panel = Panel("1001", PANEL_KEY, ("127.0.0.1", node.receiver.address[1]))
                    panel.start()
                    await asyncio.wait_for(panel.report(130, zone=1 if node is a else 2).acked, 10)
                    await panel.stop()
                await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 2, what="both at 110")
                assert [s.event.zone for s in await center.store.events()] == [1, 2]
                assert b.leases.held("forwarder:110") is False and a.leases.held("forwarder:110")
                assert b.metrics.total("jifang_forwarded_total") == 0
            finally:
                await b.stop()
        finally:
            await a.stop()


async def test_a_panel_on_the_other_node_raises_no_false_350(tmp_path, pg_log):
    """Node a watches (it holds the supervision lease), the panel reports only to b.
    Without the shared last-heard, a would see it silent after 2 s."""
    url = pg_log[2]
    a = await started(node_config(tmp_path, "a", url, reporting_interval=2))
    try:
        await wait_for(lambda: a.leases.held("supervision"), what="node a watches")
        b = await started(node_config(tmp_path, "b", url, reporting_interval=2))
        try:
            panel = Panel("1001", PANEL_KEY, ("127.0.0.1", b.receiver.address[1]))
            panel.start()
            for zone in range(1, 13):                 # 6 s of reports, 3 reporting intervals
                await asyncio.wait_for(panel.report(602, zone=zone).acked, 10)
                await asyncio.sleep(0.5)

            async def troubles():
                return [(s.event.qualifier, s.event.source) for s in await a.store.events() if s.event.code == 350]
            assert await troubles() == []
            assert not b.leases.held("supervision")
            panel.silent = True                        # goes quiet: the watcher on a notices
            await wait_for(lambda: troubles(), what="350 trouble raised by node a")
            assert await troubles() == [(contactid.QUALIFIER_NEW, "supervision")]
            panel.silent = False
            await asyncio.wait_for(panel.report(602, zone=99).acked, 10)     # back, on node b
            await wait_for(lambda: _count(troubles, 2), what="350 restore raised by node a")
            assert await troubles() == [(contactid.QUALIFIER_NEW, "supervision"),
                                        (contactid.QUALIFIER_RESTORE, "supervision")]
            await panel.stop()
        finally:
            await b.stop()
    finally:
        await a.stop()


async def _count(fetch, n):
    return len(await fetch()) >= n


async def test_the_console_on_either_node_shows_what_the_other_received(tmp_path, pg_log):
    url = pg_log[2]
    a = await started(node_config(tmp_path, "a", url))
    b = await started(node_config(tmp_path, "b", url))
    app = create_app(EventSource.from_gateway(b), tmp_path / "console-b.sqlite", None, ConsoleSettings())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        console = app[CONSOLE]
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", a.receiver.address[1]))      # received on node a
        panel.start()
        await asyncio.wait_for(panel.report(120, zone=7).acked, 10)
        await panel.stop()
        [stored] = await a.store.events()
        await wait_for(lambda: stored.id in console.state.queue, what="the alarm in node b's console queue")
        assert console.state.queue[stored.id]["account"] == "1001"
        found = await console.reader.search(account="1001")           # its queries read the shared log
        assert [row["id"] for row in found] == [stored.id] and found[0]["zone"] == 7
    finally:
        await runner.cleanup()
        await b.stop()
        await a.stop()
