"""Three-level platforms: county -> city -> province, each a jifang gateway whose
DC-09 forwarder points at the next one's receiver. The province sees the county's
alarm once, with the panel's account and its time of occurrence."""
import asyncio

from gateway.app import Gateway
from gateway.panelsim import Panel
from tests.gateway.helpers import PANEL_KEY, center_config, upper_config, wait_for
from tests.support.ports import free_tcp_udp_port


async def test_county_city_province(tmp_path):
    city_port, province_port = free_tcp_udp_port(), free_tcp_udp_port()
    async with Gateway(upper_config(tmp_path, "province", port=province_port)) as province, \
            Gateway(upper_config(tmp_path, "city", port=city_port, upstream=[province_port])) as city, \
            Gateway(center_config(tmp_path, "county", upstream=[city_port])) as county:
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", county.receiver.address[1]))
        panel.start()
        alarm = panel.report(121, zone=7)                     # duress
        assert await asyncio.wait_for(alarm.acked, 10)
        await wait_for(lambda: province.metrics.total("jifang_events_in_total") == 1, what="alarm at province")
        # Force a resend from city to province (as after a crash before the cursor was saved):
        # the province's dedup key recognises it.
        city_fw = city.forwarders[0]
        stored = (await city.store.events())[0]
        await city_fw.deliver(stored)
        events = [s.event for s in await province.store.events()]
        assert len(events) == 1
        assert (events[0].account, events[0].code, events[0].zone, events[0].device_time) == ("1001", 121, 7, alarm.occurred)
        assert province.metrics.total("jifang_events_duplicate_total") == 1
        await panel.stop()
