"""Issue 12: a platform command reaches the terminal whichever node holds its
connection. Two gateway nodes on a real 3-node NATS cluster ([bus]); the terminal
logs in on node A; the operator's commands start on node B."""
import asyncio
import json

import pytest

from gateway import config as config_module
from gateway.app import Gateway
from gateway.vehicles import downlink
from gateway.vehicles.codes import SOURCE_JT808
from gateway.vehiclesim import Terminal
from tests.gateway.helpers import address, wait_for
from tests.support.ports import free_port, free_tcp_udp_port

pytestmark = pytest.mark.slow

PHONE, PLATE = "13800000001", "ZA00001"


def node_config(tmp_path, name, urls, db):
    return config_module.from_dict({
        "gateway": {"name": name},
        "store": {"path": str(db)},
        "receiver": {"listen": address(free_tcp_udp_port())},
        "jt808": {"listen": address(free_port()), "registrations_path": str(tmp_path / "terminals.db")},
        "vehicles": {"fleet": [{"phone": PHONE, "plate": PLATE, "kind": "escort", "terminal_id": "ESC0001"}]},
        "bus": {"url": urls, "replicas": 3},
    }, tmp_path, name)


async def test_commands_from_any_node_reach_the_terminal_on_the_other(tmp_path, nats_cluster):
    db = tmp_path / "shared.db"
    async with Gateway(node_config(tmp_path, "node-a", nats_cluster.urls, db)) as a, \
            Gateway(node_config(tmp_path, "node-b", nats_cluster.urls, db)) as b:
        terminal = Terminal(PHONE, PLATE, terminal_id="ESC0001")
        code = await terminal.login("127.0.0.1", a.vehicle_center.server.port)
        await wait_for(lambda: PHONE in a.vehicle_center.downlink.subscriptions, what="A subscribed")
        assert not b.vehicle_center.server.online(PHONE)

        terminal.alarm = 1                                   # SOS
        assert await terminal.report() == 0
        # the operator on node B disposes of the alarm: node A sends 0x8203, the terminal confirms
        await b.alarm_disposed({"source": SOURCE_JT808, "account": PHONE})
        await wait_for(lambda: any(m.msg_id == 0x8203 for m in terminal.received), what="0x8203 at the terminal")
        assert terminal.alarm == 0                           # the terminal cleared its emergency bit
        assert await b.vehicle_center.acknowledge_alarm(PHONE) is True
        assert await b.vehicle_center.send_text(PHONE, "请回电 call the center") is True
        texts = [m for m in terminal.received if m.msg_id == 0x8300]
        assert texts and texts[-1].body.text == "请回电 call the center"
        assert await b.vehicle_center.command("query_position", PHONE) is True

        # a command naming anything else is refused by the holder, not run
        reply = await b.bus.command_connection().request(downlink.subject(PHONE),
                                                         json.dumps({"op": "stop", "args": {}}).encode(), timeout=5)
        assert "unknown command" in json.loads(reply.data)["error"]
        with pytest.raises(ValueError):
            await b.vehicle_center.command("send_text", PHONE, text=5)

        # the terminal goes: no node holds it, and B says so at once
        await terminal.close()
        await wait_for(lambda: not a.vehicle_center.downlink.subscriptions, what="A unsubscribed")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await b.vehicle_center.acknowledge_alarm(PHONE) is False
        print("offline answered in %.3f s" % (loop.time() - started))

        # it reconnects to node B: commands from A now reach it there
        terminal2 = Terminal(PHONE, PLATE, terminal_id="ESC0001", auth_code=code)
        await terminal2.login("127.0.0.1", b.vehicle_center.server.port)
        assert await a.vehicle_center.send_text(PHONE, "hello via B") is True
        assert [m.body.text for m in terminal2.received if m.msg_id == 0x8300] == ["hello via B"]
        await terminal2.close()
