"""The console's listener under a connection flood (issue 11 §3): past the limits
new connections are refused before aiohttp sees them, and an operator's address,
known from a logged-in request, still gets in through the reserve."""
import asyncio

from gateway.console.keys import NET_LISTENER
from gateway.console.settings import from_table
from tests.console.support import PASSWORD, Console, settings
from tests.support.netclient import closed_by_server
from tests.gateway.helpers import wait_for


def test_the_limits_are_console_keys():
    s = from_table({"max_connections": 10, "max_connections_per_address": 3, "reserved_connections": 2})
    assert (s.max_connections, s.max_connections_per_address, s.reserved_connections) == (10, 3, 2)
    d = from_table({})
    assert (d.max_connections, d.max_connections_per_address, d.reserved_connections) == (1000, 64, 100)


async def test_a_flood_of_idle_connections_leaves_the_operators_address_in(tmp_path):
    c = await Console(tmp_path, settings(max_connections=10, max_connections_per_address=3,
                                         reserved_connections=4)).start()
    try:
        operator = await c.client("olga", local_address="127.0.0.2")       # its address is known from now on
        port = c.settings.listen[1]
        listener = c.app[NET_LISTENER].listener
        flood, refused_at = [], None
        for i in range(12):                                            # new addresses, 3 each, sending nothing
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=("127.0.1.%d" % (1 + i // 3), 0))
            await wait_for(lambda: listener.limiter.in_use + sum(listener.limiter.counts.values()) > len(flood) + 1,
                           what="the connection admitted or refused")
            if listener.limiter.counts[("refused", "reserved")]:
                assert await closed_by_server(reader)
                refused_at = len(flood)
                break
            flood.append(writer)
        assert refused_at == 10 - 4 - 1                              # the operator's own connection is the 1st
        reader, _ = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.1.1", 0))
        assert await closed_by_server(reader)                        # 4th of an address, whatever is left
        assert listener.limiter.counts[("refused", "per_address")] == 1
        again = await c.client(local_address="127.0.0.2")             # new connections, the operator's address
        assert (await again.login("olga", PASSWORD))[0] == 200
        assert (await again.get("api/queue"))[0] == 200
        for w in flood:
            w.close()
        await again.close()
        await operator.close()
    finally:
        await c.stop()
