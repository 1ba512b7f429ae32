"""The console in its own process (console.process = "child", the default): a real
gateway starts it, it answers on its port, sees the alarms the receiver commits,
dispatches and logs through the gateway, runs at a lower CPU priority, and comes
back when it is killed."""
import asyncio
import logging
import os
import signal

from gateway.app import Gateway
from gateway.panelsim import Panel
from tests.console.support import DEVICES, Client, add_users, settings
from tests.gateway.helpers import PANEL_KEY, PEER_KEY_HEX, address, center_config, wait_for
from tests.support.ports import free_port, free_tcp_udp_port


def gateway_with_console(tmp_path, **console):
    to110 = {"name": "110", "type": "dc09", "receivers": [address(free_tcp_udp_port())], "key_hex": PEER_KEY_HEX,
             "classes": [], "categories": [], "ack_timeout_seconds": 2,
             "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5}
    config = center_config(tmp_path, devices=DEVICES, forwarders=[to110])
    config.console = settings(listen=("127.0.0.1", free_port()), live_poll_ms=50, **console)
    return config


async def _queue_has(client, code):
    items = (await client.get("api/queue"))[1]["items"]
    return [a for a in items if a["code"] == code]


async def test_the_console_runs_in_its_own_lower_priority_process_and_sees_every_alarm(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jifang")
    await add_users(tmp_path / "console.sqlite")
    async with Gateway(gateway_with_console(tmp_path)) as gw:
        pid = gw.console.pid
        assert pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + gw.config.console.process_niceness
        olga = Client("http://%s:%d/" % gw.console.addresses[0])
        try:
            assert (await olga.login("olga"))[0] == 200
            panel = Panel("1001", PANEL_KEY, ("127.0.0.1", gw.receiver.address[1]))
            panel.start()
            try:
                assert await asyncio.wait_for(panel.report(130, zone=15).acked, 10)
            finally:
                await panel.stop()
            [alarm] = await wait_for(lambda: _queue_has(olga, 130), what="the alarm in the child's queue")
            assert (await olga.post("api/alarms/%d/take" % alarm["id"]))[0] == 200
            # The dispatch is a call back into the gateway: it lands in the 110 outbox there.
            status, record = await olga.post("api/alarms/%d/dispatch" % alarm["id"], {"note": "burglary confirmed"})
            assert (status, record["result"]) == (200, "queued to 110")
            assert gw.outboxes[0].depth() == 1
        finally:
            await olga.close()
    # The child's records were written by the gateway's logging, marked as the console's.
    started = [r for r in caplog.records if r.getMessage() == "console started"]
    assert started and started[0].process_role == "console"
    assert any(r.getMessage() == "console process stopped" and r.code == 0 for r in caplog.records)


async def test_a_killed_console_process_is_restarted(tmp_path):
    await add_users(tmp_path / "console.sqlite")
    async with Gateway(gateway_with_console(tmp_path)) as gw:
        first = gw.console.pid
        os.kill(first, signal.SIGKILL)          # our own child, by its pid
        await wait_for(lambda: gw.console.restarts == 1 and gw.console.pid != first, what="a new console process")
        client = Client("http://%s:%d/" % gw.console.addresses[0])
        try:
            async def logged_in():
                try:
                    return (await client.login("olga"))[0] == 200
                except OSError:
                    return False
            await wait_for(logged_in, what="login on the restarted console")
        finally:
            await client.close()


async def test_the_inline_mode_serves_in_the_gateways_process(tmp_path):
    await add_users(tmp_path / "console.sqlite")
    async with Gateway(gateway_with_console(tmp_path, process="inline")) as gw:
        assert not hasattr(gw.console, "pid")          # an aiohttp AppRunner in this process
        client = Client("http://%s:%d/" % gw.console.addresses[0][:2])
        try:
            assert (await client.login("olga"))[0] == 200
        finally:
            await client.close()


async def test_a_console_that_cannot_listen_stops_the_gateway_start_naming_why(tmp_path):
    import socket

    import pytest
    config = gateway_with_console(tmp_path)
    with socket.socket() as taken:
        taken.bind(config.console.listen)
        taken.listen()
        gw = Gateway(config)
        with pytest.raises(RuntimeError) as refused:
            await gw.start()
        await gw.stop()
    assert "before it listened" in str(refused.value) and "address already in use" in str(refused.value).lower()
