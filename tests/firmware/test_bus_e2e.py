"""Panel status over the device bus, end to end: the firmware on the MicroPython unix
port publishes its status (protocols/bus.py) to a Mosquitto started for the test,
the gateway's MQTT source stores it, and the console shows it on the device's page,
also after the console is rebuilt from the log. The broker's last will, when the
panel loses power, shows the device off the bus without counting as a report."""
import asyncio

import pytest

from protocols import bus
from tests.console.support import Console
from tests.firmware.conftest import panel_config
from tests.gateway.helpers import wait_for

pytestmark = pytest.mark.slow

ACCOUNT = "1002"                  # in the console's registry (tests/console/support.py)
PREFIX = "jf/lakeside"            # a prefix with a slash, as examples/residential-compound.toml has


async def _is(coro, expected):
    return await coro == expected


async def _device(client):
    status, body = await client.request("GET", "api/devices/" + ACCOUNT)
    assert status == 200, body
    return body


def _reported(pred):
    """A predicate over the console's device page: the device, once pred(device) holds."""
    async def check(client):
        body = await _device(client)
        dev = body["device"]
        return body if dev["status"] is not None and pred(dev) else None
    return check


@pytest.fixture
async def center(tmp_path, mosquitto):
    c = Console(tmp_path)
    host, port = mosquitto
    c.gateway.config.mqtt_source = {"broker": (host, port), "topic_prefix": PREFIX}
    await c.start()
    await asyncio.wait_for(c.gateway.mqtt_source.subscribed.wait(), 10)
    yield c
    await c.stop()


async def test_panel_status_reaches_the_console_over_the_broker(center, make_dut, mosquitto):
    host, port = mosquitto
    client = await center.client("olga")
    try:
        cfg = panel_config(account=ACCOUNT, mqtt={"host": host, "port": port, "prefix": PREFIX, "keepalive": 10})
        dut = await asyncio.to_thread(make_dut, cfg)

        check = _reported(lambda d: d["status"]["online"] and d["status"]["partitions"] == {"1": "disarmed",
                                                                                           "2": "disarmed"})
        body = await wait_for(lambda: check(client), what="the boot status on the console")
        dev = body["device"]
        assert dev["armed"] == "disarmed" and dev["state"] == "online" and dev["last_report_ms"]
        assert (dev["status"]["role"], dev["status"]["ac"], dev["status"]["reset"]) == ("panel", True, "power_on")

        async def in_history():
            return [e for e in (await _device(client))["history"] if e["event_class"] == "status"]
        await wait_for(lambda: in_history(), what="the status in the device's event history")

        await asyncio.to_thread(dut.keys, "1234A")                   # arm partition 1 (exit delay 1 s)
        check = _reported(lambda d: d["status"]["partitions"]["1"] == "armed_away")
        body = await wait_for(lambda: check(client), what="armed_away on the console")
        assert body["device"]["armed"] == "armed"

        await asyncio.to_thread(dut.ac, False)                       # mains lost (ac_loss_delay 1 s)
        check = _reported(lambda d: d["status"]["ac"] is False)
        await wait_for(lambda: check(client), what="AC loss in the status")

        statuses = [e for e in (await _device(client))["history"] if e["event_class"] == "status"]
        assert all(e["source"] == "mqtt" and e["code"] == 0 and e["qualifier"] == 6 for e in statuses)
        assert len({str(sorted(e["values"].items())) for e in statuses}) == len(statuses)   # no repeats stored

        # The console rebuilt from the log shows the same device.
        before = (await _device(client))["device"]
        await center.stop_console()
        await center.start_console()
        await client.close()
        client = await center.client("olga")
        after = (await _device(client))["device"]
        assert (after["status"], after["armed"]) == (before["status"], before["armed"])

        reported = after["last_report_ms"]
        await asyncio.to_thread(dut.power_loss)                      # the broker publishes the will
        check = _reported(lambda d: d["status"]["online"] is False)
        body = await wait_for(lambda: check(client), what="the last will on the console")
        dev = body["device"]
        assert dev["status"]["online"] is False and "partitions" not in dev["status"]
        assert dev["last_report_ms"] == reported                     # the will is not a report
        assert dev["armed"] == "armed"                               # a will says nothing of partitions
    finally:
        await client.close()


async def test_a_status_the_bus_does_not_define_is_refused(center, mosquitto):
    """What the gateway refuses is counted and never stored: a key protocols/bus_status.py
    does not name, a partition state the panel has not, a payload over
    mqtt_source.max_payload_bytes (default 4096)."""
    import aiomqtt
    host, port = mosquitto
    topic = bus.device_topic(PREFIX, ACCOUNT, bus.STATUS)
    async with aiomqtt.Client(host, port) as device:
        for payload in (b'{"online": true, "siren": true}', b'{"online": true, "partitions": {"1": "open"}}',
                        b'{"online": "yes"}', b'{"online": true, "role": "panel", "pad": "' + b"x" * 4100 + b'"}'):
            await device.publish(topic, payload, qos=1)
        await device.publish(topic, b'{"online": true, "role": "panel"}', qos=1)
    metrics = center.gateway.metrics

    async def stored():
        return [s.event.values for s in await center.gateway.store.events() if s.event.event_class == "status"]
    await wait_for(lambda: _is(stored(), [{"online": True, "role": "panel"}]), what="the good one stored")
    assert metrics.value("jifang_mqtt_messages_total", kind="rejected") == 4


async def test_unchanged_status_is_stored_once_until_forgotten(tmp_path, mosquitto):
    """A status re-sent unchanged (retained, or after a reconnect) is not stored again,
    for as many devices as mqtt_source.status_memory; past it the least recently
    heard device is forgotten, and its unchanged status is stored once more."""
    import aiomqtt
    host, port = mosquitto
    c = Console(tmp_path)
    c.gateway.config.mqtt_source = {"broker": (host, port), "topic_prefix": PREFIX, "status_memory": 1}
    await c.start()
    try:
        await asyncio.wait_for(c.gateway.mqtt_source.subscribed.wait(), 10)
        metrics = c.gateway.metrics
        status = b'{"online": true, "role": "panel", "partitions": {"1": "disarmed"}}'
        async with aiomqtt.Client(host, port) as device:
            for n, account in enumerate(("1002", "1002", "1001", "1002"), 1):
                await device.publish(bus.device_topic(PREFIX, account, bus.STATUS), status, qos=1)
                await wait_for(lambda: metrics.value("jifang_mqtt_messages_total", kind="status") == n,
                               what="status %d handled" % n)

        async def stored():
            return [s.event.account for s in await c.gateway.store.events() if s.event.event_class == "status"]
        # 1002 once (its repeat remembered), 1001, then 1002 again: 1001 pushed it out of a memory of one.
        await wait_for(lambda: _is(stored(), ["1002", "1001", "1002"]), what="three statuses stored")
    finally:
        await c.stop()
