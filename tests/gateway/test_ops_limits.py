"""The ops port (/healthz, /metrics) under a connection flood (issue 11 §3): a flood
of idle connections from new addresses can neither take the process's descriptors
nor keep out the monitor that used the port before; a connection that never sends a
request is closed at the end of its lifetime."""
import asyncio
import time

import aiohttp

from gateway import netlimits
from gateway.app import Gateway
from gateway.ops_http import ops_limits
from tests.support.netclient import closed_by_server
from tests.gateway.helpers import center_config, wait_for
from tests.support.ports import free_port


async def test_an_idle_flood_on_the_ops_port_leaves_the_known_monitor_in(tmp_path):
    cfg = center_config(tmp_path)
    cfg.http_listen = ("127.0.0.1", free_port())
    limits = ops_limits()
    async with Gateway(cfg) as gw:
        port = gw.ops.address[1]
        url = "http://127.0.0.1:%d/healthz" % port
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as monitor:
            async with monitor.get(url) as r:                    # the monitor, from 127.0.0.1
                assert r.status == 200
            await wait_for(lambda: gw.ops.listener.limiter.in_use == 0, what="the monitor's connection closed")
            flood = []
            unknown = limits.max_connections - limits.reserved
            for i in range(unknown):                             # 8 per address, from new addresses
                flood.append(await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=("127.0.1.%d" % (1 + i // limits.max_per_address), 0)))
            await wait_for(lambda: gw.ops.listener.limiter.in_use == unknown, what="the flood admitted")
            reader, _ = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.2.1", 0))
            assert await closed_by_server(reader)                # a new address: only the reserve is left
            reader, _ = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.1.1", 0))
            assert await closed_by_server(reader)                # that address's 9th
            assert gw.ops.listener.limiter.counts[("refused", "reserved")] == 1
            assert gw.ops.listener.limiter.counts[("refused", "per_address")] == 1
            async with aiohttp.ClientSession() as fresh:         # the monitor's address, a new connection
                async with fresh.get(url) as r:
                    assert r.status == 200
                async with fresh.get("http://127.0.0.1:%d/metrics" % port) as r:
                    text = await r.text()
            assert 'jifang_net_refused_total{listener="ops",reason="reserved"} 1' in text
            for _, w in flood:
                w.close()


async def test_a_connection_that_never_sends_a_request_is_closed_at_its_lifetime():
    class Silent(asyncio.Protocol):
        lost = 0

        def connection_lost(self, exc):
            Silent.lost += 1

    limits = netlimits.Limits(max_connections=4, max_per_address=4, reserved=0, max_lifetime=0.5)
    listener = await netlimits.serve_protocol(Silent, "127.0.0.1", 0, name="t", limits=limits)
    try:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(*listener.address)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x")           # half a request, never finished
        assert await closed_by_server(reader)
        print("closed after %.2f s (max_lifetime 0.5 s)" % (time.monotonic() - started))
        await wait_for(lambda: listener.limiter.in_use == 0 and Silent.lost == 1, what="the ticket given back")
        assert listener.limiter.counts[("closed", "lifetime")] == 1
    finally:
        await listener.close()
