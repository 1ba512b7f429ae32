"""MQTT source: device status and telemetry from the device bus -> Events.

Topics (prefix from config, default "jifang"):
  <prefix>/<account>/status     {"code": 301, "qualifier": 1, "partition": 0, "zone": 0,
                                 "seq": 17, "time": 1763900000}   a Contact ID event;
                                {} alone is a heartbeat (feeds supervision only)
  <prefix>/<account>/telemetry  {"values": {"battery_v": 12.6}, "seq": 18, "time": 1763900000,
                                 "lat": 30.27, "lon": 120.15}      class "telemetry", routine

`seq` and `time` make the dedup key, so a message the device publishes twice is
recorded once; without `seq` every message counts as new, without `time` the
gateway's receive time stands in. Messages from
accounts not in the device registry, or that are not valid JSON of this shape, are
logged and counted, never stored.

Durability, as for DC-09: a QoS 1 message is acknowledged to the broker only after
its event is committed (or it was rejected, or was a duplicate). The session is
persistent (clean_session off, a fixed client id), so what the gateway had not
acknowledged when it crashed, or when the store failed, the broker delivers again.
"""
import asyncio
import json
import logging

from protocols import contactid
from gateway.event import Event, from_contact_id, now_ms
from gateway.pipeline import InvalidEvent
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.mqtt")

RECONNECT_SECONDS = 2


class MQTTSource:
    def __init__(self, config, pipeline, supervision, metrics):
        self.broker = config.mqtt_source["broker"]
        self.prefix = config.mqtt_source["topic_prefix"]
        self.config = config
        self.pipeline = pipeline
        self.supervision = supervision
        self.metrics = metrics
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
                    await client.subscribe(self.prefix + "/+/status", qos=1)
                    await client.subscribe(self.prefix + "/+/telemetry", qos=1)
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

    async def handle(self, topic, payload):
        parts = topic.split("/")
        kind = parts[-1]
        account = parts[-2].upper() if len(parts) >= 3 else ""
        try:
            if self.config.device(account) is None:
                raise ValueError("unknown account %r" % account)
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise ValueError("payload is not a JSON object")
            event = self._event(kind, account, data, payload)
        except (ValueError, TypeError, KeyError, contactid.ContactIDError) as exc:
            self.metrics.inc("jifang_mqtt_messages_total", kind="rejected")
            log.warning("MQTT message rejected", extra={"topic": topic, "reason": str(exc)})
            return
        self.metrics.inc("jifang_mqtt_messages_total", kind=kind)
        if event is None:
            self.supervision.heard_from(account)
            return
        try:
            await self.pipeline.submit(event)
        except InvalidEvent as exc:
            log.warning("MQTT event invalid", extra={"topic": topic, "reason": str(exc)})

    def _event(self, kind, account, data, payload):
        raw = payload.decode("utf-8", "replace") if isinstance(payload, (bytes, bytearray)) else str(payload)
        received = now_ms()
        device_time = int(data.get("time", received // 1000))
        # Without a device sequence every message is a new event (no dedup possible).
        seq = int(data.get("seq", received))
        position = (float(data["lat"]), float(data["lon"])) if "lat" in data and "lon" in data else None
        if kind == "status":
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
