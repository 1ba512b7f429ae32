"""MQTT source: device status, events and telemetry from the device bus -> Events.

Topics and payloads are protocols/bus.py's (prefix from config, default "jifang"):
  <prefix>/dev/<account>/status     the device's state object (protocols/bus_status.py), retained;
                                    stored as one event of class "status" (values = the
                                    object) when it changed; the will ({"online": false})
                                    too. A status with online true also feeds supervision.
  <prefix>/dev/<account>/event      {"code": 301, "qualifier": 1, "partition": 0, "zone": 0,
                                     "seq": 17, "time": 1763900000}   a Contact ID event;
                                    {} alone is a heartbeat (feeds supervision only)
  <prefix>/dev/<account>/telemetry  {"values": {"battery_v": 12.6}, "seq": 18, "time": 1763900000,
                                     "lat": 30.27, "lon": 120.15}      class "telemetry", routine

`seq` and `time` make the dedup key, so a message the device publishes twice is
recorded once; without `seq` every message counts as new, without `time` the
gateway's receive time stands in. A status carries neither: the source remembers
each device's last status (mqtt_source.status_memory devices, least recently
heard forgotten first) and does not store one that did not change (the broker
re-sends the retained status on every subscribe, the device on every reconnect).
Messages from accounts not in the device registry, over mqtt_source.max_payload_bytes,
or that are not valid JSON of these shapes, are logged and counted, never stored.

Durability, as for DC-09: a QoS 1 message is acknowledged to the broker only after
its event is committed (or it was rejected, or was a duplicate). The session is
persistent (clean_session off, a fixed client id), so what the gateway had not
acknowledged when it crashed, or when the store failed, the broker delivers again.
"""
import asyncio
import collections
import json
import logging

from protocols import bus, bus_status, contactid
from gateway.config import MQTT_MAX_PAYLOAD, MQTT_STATUS_MEMORY
from gateway.event import Event, from_contact_id, now_ms
from gateway.pipeline import InvalidEvent
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.mqtt")

RECONNECT_SECONDS = 2


class MQTTSource:
    def __init__(self, config, port, metrics):
        self.broker = config.mqtt_source["broker"]
        self.prefix = config.mqtt_source["topic_prefix"]
        self.config = config
        self.port = port                # gateway.sources.SourcePort: all it uses of the gateway
        self.metrics = metrics
        self.max_payload = config.mqtt_source.get("max_payload_bytes", MQTT_MAX_PAYLOAD)
        self.status_memory = config.mqtt_source.get("status_memory", MQTT_STATUS_MEMORY)
        self._last_status = collections.OrderedDict()   # account -> last stored status (LRU)
        self._task = None
        self.subscribed = asyncio.Event()

    def start(self):
        self._task = asyncio.create_task(self._run(), name="mqtt-source")

    async def stop(self):
        await cancel_and_wait(self._task)

    async def _run(self):
        import aiomqtt
        host, port = self.broker
        while True:
            client = aiomqtt.Client(host, port, identifier="jifang-source-" + self.config.name,
                                    clean_session=False)
            # aiomqtt 2.5 has no manual acknowledgement; the paho client under it does.
            # Without it paho acknowledges on arrival, before the commit.
            client._client.manual_ack_set(True)
            try:
                async with client:
                    for kind in bus.DEVICE_KINDS:
                        await client.subscribe(bus.device_topic(self.prefix, "+", kind), qos=1)
                    self.subscribed.set()
                    log.info("MQTT source subscribed", extra={"broker": "%s:%d" % self.broker, "prefix": self.prefix})
                    async for message in client.messages:
                        await self.handle(str(message.topic), message.payload)
                        if message.qos > 0:
                            client._client.ack(message.mid, message.qos)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                log.warning("MQTT source disconnected, reconnecting", extra={"error": str(exc)})
                await asyncio.sleep(RECONNECT_SECONDS)
            except Exception as exc:       # the store failed: no ack; reconnecting makes the broker redeliver
                self.subscribed.clear()
                log.error("MQTT event not committed, not acknowledged; reconnecting", extra={"error": repr(exc)})
                await asyncio.sleep(RECONNECT_SECONDS)

    def _parse_topic(self, topic):
        """(account, kind) of a device topic under our prefix (bus.device_topic)."""
        parts = topic[len(self.prefix) + 1:].split("/") if topic.startswith(self.prefix + "/") else []
        if len(parts) != 3 or parts[2] not in bus.DEVICE_KINDS or \
                bus.device_topic(self.prefix, parts[1], parts[2]) != topic:
            raise ValueError("not a device topic under %r" % self.prefix)
        return parts[1].upper(), parts[2]

    async def handle(self, topic, payload):
        try:
            account, kind = self._parse_topic(topic)
            if self.config.device(account) is None:
                raise ValueError("unknown account %r" % account)
            if len(payload) > self.max_payload:
                raise ValueError("payload of %d bytes, over mqtt_source.max_payload_bytes = %d"
                                 % (len(payload), self.max_payload))
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise ValueError("payload is not a JSON object")
            if kind == bus.STATUS:
                problem = bus_status.problem(data)
                if problem:
                    raise ValueError(problem)
            event = self._event(kind, account, data, payload)
        except (ValueError, TypeError, KeyError, contactid.ContactIDError) as exc:
            self.metrics.inc("jifang_mqtt_messages_total", kind="rejected")
            log.warning("MQTT message rejected", extra={"topic": topic, "reason": str(exc)})
            return
        self.metrics.inc("jifang_mqtt_messages_total", kind=kind)
        if event is None:
            # A heartbeat, or a status unchanged: nothing to store, but the device is
            # alive (a stored event tells supervision through the pipeline).
            if kind == bus.STATUS:
                self._remember(account, data)
            if kind != bus.STATUS or data["online"]:
                self.port.heard_from(account)
            return
        try:
            await self.port.submit(event)
        except InvalidEvent as exc:
            log.warning("MQTT event invalid", extra={"topic": topic, "reason": str(exc)})
            return
        if kind == bus.STATUS:
            self._remember(account, data)

    def _remember(self, account, status):
        """The last status stored for `account`, most recently heard last."""
        last = self._last_status
        last[account] = status
        last.move_to_end(account)
        while len(last) > self.status_memory:
            last.popitem(last=False)

    def _event(self, kind, account, data, payload):
        raw = payload.decode("utf-8", "replace") if isinstance(payload, (bytes, bytearray)) else str(payload)
        received = now_ms()
        device_time = int(data.get("time", received // 1000))
        # Without a device sequence every message is a new event (no dedup possible).
        seq = int(data.get("seq", received))
        position = (float(data["lat"]), float(data["lon"])) if "lat" in data and "lon" in data else None
        if kind == bus.STATUS:
            if self._last_status.get(account) == data:
                return None          # unchanged: re-sent retained, or after a reconnect
            # Armed state, troubles, link as the device reports them: the console's device
            # page. No sequence or device time: every changed status is a new record.
            return Event(account=account, code=0, qualifier=contactid.QUALIFIER_STATUS, partition=0, zone=0,
                         event_class="status", category="other",
                         name="device status" if data["online"] else "device offline (bus last will)",
                         sequence=received, device_time=received // 1000, received_at_ms=received,
                         source="mqtt", values=data, raw=raw)
        if kind == "event":
            if "code" not in data:
                return None          # heartbeat
            report = contactid.Report(account, int(data.get("qualifier", 1)), int(data["code"]),
                                      int(data.get("partition", 0)), int(data.get("zone", 0)))
            report.validate()
            return from_contact_id(report, sequence=seq, device_time=device_time, source="mqtt",
                                   raw=raw, position=position, received_at_ms=received)
        if kind == "telemetry":
            values = data.get("values")
            if not isinstance(values, dict):
                raise ValueError("telemetry needs a \"values\" object")
            return Event(account=account, code=0, qualifier=contactid.QUALIFIER_STATUS, partition=0, zone=0,
                         event_class="telemetry", category="other", name="telemetry", sequence=seq,
                         device_time=device_time, received_at_ms=received, source="mqtt",
                         position=position, values=values, raw=raw)
        raise ValueError("unknown topic kind %r" % kind)
