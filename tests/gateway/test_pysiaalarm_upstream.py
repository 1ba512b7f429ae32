"""pysiaalarm (the receiver Home Assistant uses) as the upstream receiver accepts
what our DC-09 forwarder sends, encrypted, and its ACKs (with "None" where the
receiver number goes) confirm delivery."""
import asyncio

from pysiaalarm import SIAAccount
from pysiaalarm.aio import SIAClient

from gateway.app import Gateway
from gateway.panelsim import Panel
from tests.gateway.helpers import PANEL_KEY, TEXT_KEY, address, center_config, wait_for
from tests.support.ports import free_port


async def test_pysiaalarm_accepts_our_forwarded_alarms(tmp_path):
    received = []

    async def on_event(event):
        received.append(event)

    sia_port = free_port()
    client = SIAClient("127.0.0.1", sia_port, [SIAAccount("1001", TEXT_KEY)], on_event)
    await client.async_start()
    upstream = {"name": "sia", "type": "dc09", "receivers": [address(sia_port)], "key_text": TEXT_KEY,
                "send_position": False, "retry_initial_seconds": 0.05, "ack_timeout_seconds": 3}
    try:
        async with Gateway(center_config(tmp_path, forwarders=[upstream])) as asc:
            panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
            panel.start()
            for code, zone in ((130, 5), (120, 91), (301, 0)):
                await asyncio.wait_for(panel.report(code, zone=zone).acked, 10)
            await wait_for(lambda: asc.metrics.total("jifang_forwarded_total") == 3, what="3 ACKs from pysiaalarm")
            assert asc.metrics.total("jifang_forward_failures_total") == 0      # every ACK matched first time
            # pysiaalarm maps Contact ID to SIA codes: 130 -> BA burglary, 120 -> PA panic, 301 -> AT AC trouble
            assert [(e.account, e.code, e.ri, e.sequence) for e in received] == [
                ("1001", "BA", "005", "0001"), ("1001", "PA", "091", "0002"), ("1001", "AT", "000", "0003")]
            assert all(e.x_data.startswith("H") for e in received)          # time of occurrence, one xdata block
            assert all(e.encrypted and e.valid_message for e in received)
            await panel.stop()
    finally:
        await client.async_stop()
