"""Three-level platforms with a clustered county: the county is two gateway node
processes (JetStream bus on a private 3-node NATS cluster, one PostgreSQL log)
whose DC-09 forwarder goes to the city, which forwards to the province (both
single jifang gateways). The county node holding the forwarder's lease is killed
with SIGKILL mid-stream: the other node takes the lease and resends what was not
yet recorded as delivered; the panels move to their backup receiver. The city
and the province each record every alarm a county node ACKed exactly once, with
the panel's account, zone and time of occurrence."""
import asyncio
import time
from collections import Counter

import pytest

from gateway.app import Gateway
from gateway.demo_cluster import lease_holders
from gateway.panelsim import Panel
from gateway.store import verify
from tests.gateway.helpers import PANEL_KEY, upper_config, wait_for
from tests.support.clusternodes import cluster_nodes, start_in_order, stop_all
from tests.support.ports import free_tcp_udp_port

pytestmark = pytest.mark.slow

ACCOUNTS = ["%04d" % (7001 + i) for i in range(4)]


async def traffic(panel, stop):
    zone = 0
    while not stop.is_set():
        zone += 1
        panel.report(121 if zone % 5 == 0 else 130, zone=zone)      # burglaries, every fifth a duress
        await asyncio.sleep(0.15)


async def test_a_two_node_county_forwards_each_alarm_once_to_the_city_and_the_province(tmp_path, pg_log, nats_cluster):
    url = pg_log[2]
    city_port, province_port = free_tcp_udp_port(), free_tcp_udp_port()
    county = cluster_nodes(tmp_path / "county", url, nats_cluster.urls, ["a", "b"], ACCOUNTS, upstream=city_port,
                           forwarder="city", gateway_name="county")
    panels, senders, stop = [], [], asyncio.Event()
    try:
        async with Gateway(upper_config(tmp_path, "province", port=province_port)) as province, \
                Gateway(upper_config(tmp_path, "city", port=city_port, upstream=[province_port])) as city:
            await start_in_order(county, url, ["forwarder:city"])
            addr = {n: ("127.0.0.1", county[n].dc09_port) for n in county}
            panels = [Panel(acct, PANEL_KEY, [addr["a"], addr["b"]] if i % 2 == 0 else [addr["b"], addr["a"]],
                            ack_timeout=1, retry_max=0.5, failover=2) for i, acct in enumerate(ACCOUNTS)]
            for p in panels:
                p.start()
            senders = [asyncio.create_task(traffic(p, stop)) for p in panels]
            await wait_for(lambda: province.metrics.total("jifang_events_in_total") >= 30, timeout=60,
                           what="30 county alarms at the province")

            killed_at = time.monotonic()
            county["a"].kill9()                       # the forwarder's holder, mid-stream
            await wait_for(lambda: lease_holders(url, ["forwarder:city"]) == {"forwarder:city": "b"}, timeout=30,
                           what="county node b forwards")
            print("county forwarder taken over %.2f s after kill -9" % (time.monotonic() - killed_at))
            at_kill = sum(len(p.acked) for p in panels)
            await wait_for(lambda: sum(len(p.acked) for p in panels) >= at_kill + 30, timeout=60,
                           what="ACKs after the kill")
            stop.set()
            await asyncio.gather(*senders)
            await wait_for(lambda: all(not p.buffer for p in panels), timeout=60, what="panel buffers emptied")

            acked = Counter((p.account, item.report.code, item.report.zone, item.occurred)
                            for p in panels for item in p.acked)
            assert not any(p.dropped for p in panels) and max(acked.values()) == 1

            async def seen(gw):
                return Counter((s.event.account, s.event.code, s.event.zone, s.event.device_time)
                               for s in await gw.store.events() if s.event.source != "supervision")

            async def complete():
                return sum((await seen(province)).values()) >= len(acked)
            await wait_for(complete, timeout=60, interval=0.2, what="every ACKed alarm at the province")
            await asyncio.sleep(1)          # anything sent twice would arrive now
            for level in (city, province):
                got = await seen(level)
                assert got == acked                           # each ACKed alarm, once; nothing else
            assert verify(url).ok
    finally:
        stop.set()
        for task in senders:
            task.cancel()
        for p in panels:
            await p.stop()
        stop_all(county)
