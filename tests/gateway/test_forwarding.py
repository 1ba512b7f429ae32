"""Forwarders read the store as their outbox: end to end over real sockets,
life-safety first, queued while upstream is down, failover and back, and the
other sinks (webhook with HMAC, MQTT)."""
import asyncio
import hashlib
import hmac
import json
import time

from aiohttp import web

from gateway.app import Gateway
from gateway.panelsim import Panel
from protocols import contactid
from tests.gateway.helpers import (PANEL_KEY, PEER_KEY_HEX, address, center_config, upper_config, wait_for)
from tests.support.ports import free_port, free_tcp_udp_port


async def codes_at(gw):
    return [(s.event.account, s.event.code, s.event.qualifier, s.event.zone) for s in await gw.store.events()]


async def test_a_panel_alarm_reaches_the_110_receiver(tmp_path):
    port110 = free_tcp_udp_port()
    async with Gateway(upper_config(tmp_path, port=port110)) as center, \
            Gateway(center_config(tmp_path, upstream=[port110])) as asc:
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
        panel.start()
        opening = panel.report(401, contactid.QUALIFIER_NEW, zone=3)
        alarm = panel.report(130, zone=15)
        assert await asyncio.wait_for(opening.acked, 10) and await asyncio.wait_for(alarm.acked, 10)
        await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 1, what="alarm at 110")
        assert await codes_at(center) == [("1001", 130, 1, 15)]   # the opening stays at the center
        relayed = (await center.store.events())[0].event
        assert relayed.device_time == alarm.occurred                # time of occurrence survives the relay
        await panel.stop()


async def test_alarms_queue_while_110_is_down_and_arrive_in_order(tmp_path):
    port110 = free_tcp_udp_port()
    async with Gateway(center_config(tmp_path, upstream=[port110])) as asc:
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
        panel.start()
        async with Gateway(upper_config(tmp_path, port=port110)) as center:          # 110 up, then stopped
            await asyncio.wait_for(panel.report(110, zone=99).acked, 10)
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") == 1, what="first alarm at 110")
        items = [panel.report(130, zone=z) for z in range(1, 11)]
        await asyncio.wait_for(asyncio.gather(*(i.acked for i in items)), 20)
        await wait_for(lambda: asc.metrics.total("jifang_forward_failures_total") >= 2, what="failed attempts")
        assert asc.forwarders[0].outbox.depth() == 10
        async with Gateway(upper_config(tmp_path, port=port110)) as center:   # 110 comes back
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 10, what="backlog at 110")
            assert [z for (_, _, _, z) in await codes_at(center)] == [99] + list(range(1, 11))
            await wait_for(lambda: asc.forwarders[0].outbox.depth() == 0, what="outbox drained")
        await panel.stop()


async def test_an_alarm_overtakes_a_backlog_of_lower_priority_events(tmp_path):
    port110 = free_tcp_udp_port()
    everything = {"name": "all", "type": "dc09", "receivers": [address(port110)], "key_hex": PEER_KEY_HEX,
                  "classes": ["alarm", "trouble", "open_close"], "retry_initial_seconds": 0.05,
                  "retry_max_seconds": 0.2}
    async with Gateway(center_config(tmp_path, forwarders=[everything])) as asc:
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
        panel.start()
        routine = [panel.report(401, contactid.QUALIFIER_RESTORE, zone=z) for z in range(1, 31)]
        trouble = panel.report(301, partition=0)
        await asyncio.wait_for(asyncio.gather(*(i.acked for i in routine + [trouble])), 20)
        panic = panel.report(120, zone=91)                      # arrives last, behind 31 events
        await asyncio.wait_for(panic.acked, 10)
        async with Gateway(upper_config(tmp_path, port=port110)) as center:
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 32, what="all at 110")
            got = await codes_at(center)
            assert got[0][1] == 120 and got[1][1] == 301              # panic first, then the trouble
            assert [z for (_, c, _, z) in got[2:]] == list(range(1, 31))   # then the routine, in order
        await panel.stop()


async def test_failover_to_the_backup_and_back_to_the_primary(tmp_path):
    primary, backup = free_tcp_udp_port(), free_tcp_udp_port()
    (tmp_path / "p").mkdir()
    (tmp_path / "b").mkdir()
    async with Gateway(upper_config(tmp_path / "b", "backup", port=backup)) as backup_gw, \
            Gateway(center_config(tmp_path, upstream=[primary, backup])) as asc:
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
        panel.start()
        await asyncio.wait_for(panel.report(130, zone=1).acked, 10)
        await wait_for(lambda: backup_gw.metrics.total("jifang_events_in_total") == 1, what="alarm at the backup")
        async with Gateway(upper_config(tmp_path / "p", "primary", port=primary)) as primary_gw:
            # failback_seconds = 1: the primary is probed and used again once it is back
            zones = iter(range(2, 10000))

            async def next_alarm_reached_primary():
                await asyncio.wait_for(panel.report(130, zone=next(zones)).acked, 10)
                await asyncio.sleep(0.2)
                return primary_gw.metrics.total("jifang_events_in_total") > 0

            await wait_for(next_alarm_reached_primary, what="failback to the primary")
            assert asc.forwarders[0].active == 0
        await panel.stop()


async def test_webhook_posts_signed_json_and_retries_until_2xx(tmp_path):
    received, statuses = [], [500]              # first attempt fails, then 200
    secret = "s3cret-shared-with-110"

    async def handler(request):
        body = await request.read()
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert request.headers["X-Jifang-Signature"] == expected
        received.append(json.loads(body))
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/alarms", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    http_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    hook = {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:%d/alarms" % http_port, "secret": secret,
            "retry_initial_seconds": 0.05}
    try:
        async with Gateway(center_config(tmp_path, forwarders=[hook])) as asc:
            panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
            panel.start()
            await asyncio.wait_for(panel.report(110, zone=4).acked, 10)
            await wait_for(lambda: asc.metrics.total("jifang_forwarded_total") == 1, what="webhook delivery")
            assert len(received) == 2 and received[0] == received[1]       # the retry is the same body
            assert received[1]["event"]["code"] == 110 and received[1]["event"]["site"]["site"] == "Bldg 1"
            await panel.stop()
    finally:
        await runner.cleanup()


async def test_mqtt_forwarder_and_mqtt_source(tmp_path, mosquitto):
    import aiomqtt
    host, mport = mosquitto
    fwd = {"name": "bus", "type": "mqtt", "broker": "%s:%d" % (host, mport), "topic_prefix": "up"}
    cfg = center_config(tmp_path, forwarders=[fwd])
    cfg.mqtt_source = {"broker": (host, mport), "topic_prefix": "site"}
    async with aiomqtt.Client(host, mport) as listener:
        await listener.subscribe("up/#", qos=1)
        async with Gateway(cfg) as gw:
            await asyncio.wait_for(gw.mqtt_source.subscribed.wait(), 10)
            async with aiomqtt.Client(host, mport) as device:
                status = {"code": 302, "qualifier": 1, "seq": 5, "time": int(time.time())}
                await device.publish("site/dev/1002/event", json.dumps(status), qos=1)
                await device.publish("site/dev/1002/event", json.dumps(status), qos=1)       # duplicate
                await device.publish("site/dev/1002/telemetry", json.dumps({"values": {"battery_v": 11.2}, "seq": 6}), qos=1)
                await device.publish("site/dev/7777/event", json.dumps(status), qos=1)       # unknown device
            message = await asyncio.wait_for(anext(aiter(listener.messages)), 10)
            assert str(message.topic) == "up/1002/events"
            assert json.loads(message.payload)["event"]["code"] == 302
            await wait_for(lambda: gw.metrics.total("jifang_events_in_total") == 2, what="mqtt events stored")
            await wait_for(lambda: gw.metrics.value("jifang_mqtt_messages_total", kind="rejected") == 1, what="reject")
            events = [s.event for s in await gw.store.events()]
            assert [(e.event_class, e.code) for e in events] == [("trouble", 302), ("telemetry", 0)]
            assert events[1].values == {"battery_v": 11.2}


async def test_an_mqtt_message_is_acknowledged_only_after_its_commit(tmp_path, mosquitto):
    """The first commit fails (the store is down): the source does not acknowledge the
    message, reconnects, the broker delivers it again, and it is stored once."""
    import aiomqtt
    host, mport = mosquitto
    cfg = center_config(tmp_path)
    cfg.mqtt_source = {"broker": (host, mport), "topic_prefix": "site"}
    async with Gateway(cfg) as gw:
        await asyncio.wait_for(gw.mqtt_source.subscribed.wait(), 10)
        real_append, failures = gw.store.append, []

        async def failing_once(events):
            if not failures:
                failures.append(events)
                raise OSError("disk unavailable")
            return await real_append(events)

        gw.store.append = failing_once
        async with aiomqtt.Client(host, mport) as device:
            status = {"code": 301, "qualifier": 1, "seq": 41, "time": int(time.time())}
            await device.publish("site/dev/1002/event", json.dumps(status), qos=1)
        await wait_for(lambda: gw.metrics.total("jifang_events_in_total") == 1, timeout=20,
                       what="the redelivered message committed")
        assert len(failures) == 1
        assert [(s.event.code, s.event.sequence) for s in await gw.store.events()] == [(301, 41)]


async def test_an_event_dc09_cannot_carry_is_dropped_without_blocking_alarms(tmp_path):
    from gateway.event import Event, now_ms
    port110 = free_tcp_udp_port()
    telemetry_too = {"name": "up", "type": "dc09", "receivers": [address(port110)], "key_hex": PEER_KEY_HEX,
                     "classes": ["alarm", "telemetry"]}
    async with Gateway(upper_config(tmp_path, port=port110)) as center, \
            Gateway(center_config(tmp_path, forwarders=[telemetry_too])) as asc:
        reading = Event(account="1002", code=0, qualifier=6, partition=0, zone=0, event_class="telemetry",
                        category="other", name="telemetry", sequence=1, device_time=now_ms() // 1000,
                        received_at_ms=now_ms(), source="test", values={"battery_v": 12.1})
        await asc.pipeline.submit(reading)
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
        panel.start()
        await asyncio.wait_for(panel.report(130, zone=2).acked, 10)
        await wait_for(lambda: center.metrics.total("jifang_events_in_total") == 1, what="alarm at 110")
        await wait_for(lambda: asc.metrics.total("jifang_forward_rejected_total") == 1, what="reading refused")
        assert asc.forwarders[0].outbox.depth() == 0
        assert await codes_at(center) == [("1001", 130, 1, 2)]
        await panel.stop()


async def test_a_nak_with_the_receivers_time_sets_the_clock_for_the_retry(tmp_path):
    """An upstream whose clock is an hour ahead NAKs our first frame with its time;
    the retry is stamped on its clock and accepted."""
    from protocols import dc09
    from tests.gateway.helpers import PEER_KEY
    stamps = []

    async def upstream(reader, writer):
        frames = dc09.FrameReader()
        while data := await reader.read(4096):
            for frame in frames.feed(data):
                msg = dc09.decode(frame, PEER_KEY)
                their_now = int(time.time()) + 3600
                stamps.append(dc09.to_seconds(msg.timestamp) - their_now)
                if abs(stamps[-1]) > 40:
                    writer.write(dc09.encode(dc09.make_nak(dc09.from_seconds(their_now))))
                else:
                    writer.write(dc09.encode(dc09.make_ack(msg, dc09.from_seconds(their_now)), PEER_KEY))
                await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(upstream, "127.0.0.1", port)
    try:
        async with Gateway(center_config(tmp_path, upstream=[port])) as asc:
            panel = Panel("1001", PANEL_KEY, ("127.0.0.1", asc.receiver.address[1]))
            panel.start()
            await asyncio.wait_for(panel.report(130, zone=8).acked, 10)
            await wait_for(lambda: asc.metrics.total("jifang_forwarded_total") == 1, what="accepted on retry")
            assert len(stamps) == 2 and stamps[0] < -3000 and abs(stamps[1]) <= 40
            await panel.stop()
    finally:
        server.close()
        await server.wait_closed()
