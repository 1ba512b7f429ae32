"""MQTT forwarder: publishes each event as JSON to `<topic_prefix>/<account>/events`
with QoS 1; the broker's PUBACK confirms delivery (aiomqtt's publish returns then)."""
import json

from gateway.sinks.forwarder import DeliveryError, Forwarder


class MQTTForwarder(Forwarder):
    def __init__(self, spec, outbox, metrics, gateway_name):
        super().__init__(spec, outbox, metrics)
        self.gateway_name = gateway_name
        self.client = None

    async def deliver(self, stored):
        import aiomqtt
        payload = json.dumps({"id": stored.id, "gateway": self.gateway_name, "dedup_key": stored.event.dedup_key,
                              "event": stored.event.to_dict()}, sort_keys=True, ensure_ascii=False)
        topic = "%s/%s/events" % (self.spec.topic_prefix, stored.event.account)
        try:
            if self.client is None:
                host, port = self.spec.broker
                client = aiomqtt.Client(host, port, identifier="jifang-%s-%s" % (self.gateway_name, self.name), timeout=10)
                await client.__aenter__()
                self.client = client
            await self.client.publish(topic, payload, qos=1, timeout=10)
        except aiomqtt.MqttError as exc:
            await self.close()
            raise DeliveryError("mqtt", str(exc))

    async def close(self):
        if self.client is not None:
            client, self.client = self.client, None
            try:
                await client.__aexit__(None, None, None)
            except Exception:
                pass                       # the connection is already gone; nothing to release
