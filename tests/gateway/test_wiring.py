"""One gateway config runs everything it names: the JT/T 808 center and the
console beside the DC-09 receiver; and the console's "dispatch to 110" goes out
through the outbox, durably, even for an event the forwarder's filter leaves out."""
import asyncio

import aiohttp

from gateway import config as config_module
from gateway.app import Gateway
from gateway.panelsim import Panel
from gateway.vehiclesim import Terminal
from tests.gateway.helpers import PANEL_KEY, PEER_KEY_HEX, address, center_config, upper_config, wait_for
from tests.support.ports import free_port, free_tcp_udp_port


def fleet_center_config(tmp_path, jt808_port, console_port):
    return config_module.from_dict({
        "gateway": {"name": "fleet"},
        "store": {"path": str(tmp_path / "fleet.db")},
        "jt808": {"listen": address(jt808_port), "auth_secret": "0123456789abcdef0123456789abcdef"},
        "vehicles": {"fleet": [{"phone": "13800000001", "plate": "ZA00001", "kind": "escort",
                                "terminal_id": "ESC0001"}]},
        "console": {"listen": address(console_port)},
    }, tmp_path, "fleet")


async def test_one_config_starts_the_vehicle_center_and_the_console(tmp_path):
    jt808_port, console_port = free_port(), free_port()
    async with Gateway(fleet_center_config(tmp_path, jt808_port, console_port)) as gw:
        assert gw.vehicle_center is not None and gw.console is not None
        terminal = Terminal("13800000001", "ZA00001", terminal_id="ESC0001")
        await terminal.login("127.0.0.1", jt808_port)
        terminal.alarm = 1                                       # bit 0: emergency (SOS)
        assert await terminal.report() == 0
        await terminal.close()
        await wait_for(lambda: gw.metrics.total("jifang_events_in_total") >= 1, what="SOS stored")
        panic = [s.event for s in await gw.store.events() if s.event.code == 120]
        assert panic and panic[0].event_class == "alarm" and panic[0].position is not None
        async with aiohttp.ClientSession() as http:
            async with http.get("http://127.0.0.1:%d/api/session" % console_port) as resp:
                assert resp.status == 401                        # the console answers, and wants a login
    assert gw.console is not None                                # stopped with the gateway (no leak)


def verifying_center(tmp_path, port110):
    """An alarm-service center whose operators verify alarms: its 110 forwarder
    passes nothing by itself (no classes, no categories) and takes dispatches."""
    up = {"name": "110", "type": "dc09", "receivers": [address(port110)], "key_hex": PEER_KEY_HEX,
          "classes": [], "categories": [], "ack_timeout_seconds": 2,
          "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5}
    return center_config(tmp_path, forwarders=[up], port=free_tcp_udp_port())


async def test_a_dispatch_survives_a_restart_and_reaches_110_once(tmp_path):
    port110 = free_tcp_udp_port()
    config = verifying_center(tmp_path, port110)
    async with Gateway(config) as asc:                           # 110 is down meanwhile
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
        panel.start()
        assert await asyncio.wait_for(panel.report(130, zone=7).acked, 10)
        await panel.stop()
        [stored] = await asc.store.events()
        assert asc.outboxes[0].depth() == 0                      # the filter left it at the center
        reference = await asc.dispatch(stored.id, "olga", "verified on camera")
        assert reference == "queued to 110" and asc.outboxes[0].depth() == 1
    async with Gateway(upper_config(tmp_path, port=port110)) as center, Gateway(config) as asc:
        await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 1, what="dispatch at 110")
        await wait_for(lambda: asc.outboxes[0].depth() == 0, what="dispatch confirmed")
        await asyncio.sleep(0.3)
        received = [s.event for s in await center.store.events()]
        assert [(e.account, e.code, e.zone) for e in received] == [("1001", 130, 7)]
        assert await asc.store.dispatched("110") == []           # cleared once confirmed


async def test_dispatch_of_an_unknown_event_is_refused(tmp_path):
    async with Gateway(verifying_center(tmp_path, free_tcp_udp_port())) as asc:
        try:
            await asc.dispatch(999, "olga", "")
        except LookupError as exc:
            assert "999" in str(exc)
        else:
            raise AssertionError("dispatch of a missing event accepted")


async def test_disposing_of_a_vehicle_sos_acknowledges_it_to_the_terminal(tmp_path):
    from tests.console.support import Client, add_users
    jt808_port, console_port = free_port(), free_port()
    await add_users(tmp_path / "console.sqlite")             # where the gateway keeps the console's records
    async with Gateway(fleet_center_config(tmp_path, jt808_port, console_port)) as gw:
        terminal = Terminal("13800000001", "ZA00001", terminal_id="ESC0001")
        await terminal.login("127.0.0.1", jt808_port)
        terminal.alarm = 1                                   # the driver presses the panic button
        assert await terminal.report() == 0
        operator = Client("http://127.0.0.1:%d/" % console_port)
        try:
            assert (await operator.login("olga"))[0] == 200
            queue = []

            async def sos_queued():
                nonlocal queue
                queue = (await operator.get("api/queue"))[1]["items"]
                return any(a["code"] == 120 for a in queue)

            for _ in range(100):
                if await sos_queued():
                    break
                await asyncio.sleep(0.05)
            [sos] = [a for a in queue if a["code"] == 120]
            assert (await operator.post("api/alarms/%d/take" % sos["id"]))[0] == 200
            status, _ = await operator.post("api/alarms/%d/dispose" % sos["id"],
                                            {"outcome": "real", "note": "guard confirmed by phone"})
            assert status == 200
            await wait_for(lambda: any(m.msg_id == 0x8203 for m in terminal.received), what="0x8203 at the terminal")
            assert terminal.alarm & 1 == 0                   # the terminal cleared its emergency bit
        finally:
            await operator.close()
            await terminal.close()
