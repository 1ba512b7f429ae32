"""Supervision: silence past a device's reporting interval raises Contact ID 350,
its return a restore; both are stored and forwarded like any trouble."""
import asyncio

from gateway.app import Gateway
from gateway.panelsim import Panel
from protocols import dc09
from tests.gateway.helpers import (PANEL_KEY, PANEL_KEY_HEX, PEER_KEY_HEX, RawClient, address, center_config,
                                   upper_config, wait_for)
from tests.support.ports import free_tcp_udp_port

SUPERVISED = [{"account": "1001", "key_hex": PANEL_KEY_HEX, "reporting_interval_seconds": 1}]


async def supervision_events(gw):
    return [(s.event.account, s.event.code, s.event.qualifier, s.event.source) for s in await gw.store.events()]


async def test_silence_raises_350_and_the_return_restores_it_upstream(tmp_path):
    port110 = free_tcp_udp_port()
    async with Gateway(upper_config(tmp_path, port=port110)) as center, \
            Gateway(center_config(tmp_path, devices=SUPERVISED, upstream=[port110])) as asc:
        # The panel never speaks: after 1 s of silence, a communication trouble.
        await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 1, what="350 at 110")
        assert await supervision_events(asc) == [("1001", 350, 1, "supervision")]
        # It comes back with a link test: the restore, also relayed.
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]), link_test_interval=0.3)
        panel.start()
        await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 2, what="restore at 110")
        assert [(a, c, q) for a, c, q, _ in await supervision_events(center)] == [("1001", 350, 1), ("1001", 350, 3)]
        await panel.stop()


async def test_the_interval_is_learned_from_link_tests(tmp_path):
    devices = [{"account": "1001", "key_hex": PANEL_KEY_HEX}]          # no interval configured
    cfg = center_config(tmp_path, devices=devices)
    cfg.learned_interval_factor = 2
    async with Gateway(cfg) as gw:
        client = await RawClient().connect(gw.receiver.address[1])
        for seq in (1, 2):
            null = dc09.Message("NULL", seq=seq, account="1001", timestamp=dc09.timestamp_now())
            await client.send(dc09.encode(null, PANEL_KEY))
            await client.answer(PANEL_KEY)
            await asyncio.sleep(0.3)
        assert 0.5 <= gw.supervision.intervals["1001"] < 5
        await wait_for(lambda: gw.metrics.total("jifang_events_in_total") >= 1, what="350 after learned interval")
        assert (await supervision_events(gw))[0][:3] == ("1001", 350, 1)
        await client.close()


async def test_a_restart_remembers_an_open_trouble(tmp_path):
    cfg = center_config(tmp_path, devices=SUPERVISED)
    async with Gateway(cfg) as gw:
        await wait_for(lambda: gw.metrics.total("jifang_events_in_total") >= 1, what="350")
    async with Gateway(center_config(tmp_path, devices=SUPERVISED)) as gw:
        assert gw.supervision.in_trouble == {"1001"}               # not raised a second time
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", gw.receiver.address[1]), link_test_interval=0.2)
        panel.start()
        await wait_for(lambda: gw.metrics.total("jifang_events_in_total") >= 1, what="restore after restart")
        assert [q for _, c, q, _ in await supervision_events(gw)] == [1, 3]
        await panel.stop()


async def test_an_upper_gateway_supervises_the_link_from_a_lower_one(tmp_path):
    port110 = free_tcp_udp_port()
    up = {"name": "up", "type": "dc09", "receivers": [address(port110)], "key_hex": PEER_KEY_HEX,
          "link_account": "9001", "link_test_seconds": 0.2}
    async with Gateway(upper_config(tmp_path, port=port110)) as center:
        async with Gateway(center_config(tmp_path, forwarders=[up])):
            await wait_for(lambda: "9001" in center.supervision.intervals, what="link interval learned at 110")
        # The lower gateway is gone: its link falls silent, and 110 raises the trouble.
        await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 1, what="350 for the link")
        assert (await supervision_events(center))[0] == ("9001", 350, 1, "supervision")
