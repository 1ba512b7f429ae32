"""The gateway process, assembled from its config in data-flow order:

    store -> pipeline (+ supervision rules) -> outboxes + forwarders (sinks)
          -> sources (DC-09 receiver, MQTT) -> ops HTTP

Start-up opens the sinks before the sources, so nothing is accepted (and ACKed)
before there is somewhere to put it; shutdown closes the sources first.
"""
import asyncio
import logging

from gateway.metrics import Metrics
from gateway.pipeline import Pipeline
from gateway.sinks.outbox import Outbox
from gateway.store import Store
from gateway.supervision import Supervision
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.gateway")


def make_forwarder(spec, outbox, metrics, gateway_name, console_stream=None, console_prefix=""):
    if spec.type == "dc09":
        from gateway.sinks.dc09 import DC09Forwarder
        return DC09Forwarder(spec, outbox, metrics)
    if spec.type == "webhook":
        from gateway.sinks.webhook import WebhookForwarder
        return WebhookForwarder(spec, outbox, metrics, gateway_name)
    if spec.type == "mqtt":
        from gateway.sinks.mqtt import MQTTForwarder
        return MQTTForwarder(spec, outbox, metrics, gateway_name)
    from gateway.sinks.console import ConsoleForwarder
    return ConsoleForwarder(spec, outbox, metrics, console_stream, console_prefix)


class Gateway:
    def __init__(self, config, console_stream=None, console_prefix=""):
        self.config = config
        self.metrics = Metrics()
        self.store = Store(config.store_path)
        self.pipeline = Pipeline(config, self.store, self.metrics)
        self.supervision = Supervision(config, self.pipeline)
        self.pipeline.supervision = self.supervision
        self.forwarders = []
        self.receiver = None
        self.mqtt_source = None
        self.ops = None
        self._purge_task = None
        self._console = (console_stream, console_prefix)

    async def start(self):
        self.config.store_path.parent.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        for spec in self.config.forwarders:
            outbox = Outbox(spec, self.store, self.metrics)
            await outbox.load()
            self.pipeline.add_listener(outbox.offer)
            self.forwarders.append(make_forwarder(spec, outbox, self.metrics, self.config.name, *self._console))
        self.pipeline.start()
        await self.supervision.start(self.store)
        for fw in self.forwarders:
            fw.start()
        if self.config.receiver_listen:
            from gateway.sources.dc09 import DC09Receiver
            self.receiver = DC09Receiver(self.config, self.pipeline, self.supervision, self.metrics)
            await self.receiver.start(*self.config.receiver_listen)
        if self.config.mqtt_source:
            from gateway.sources.mqtt import MQTTSource
            self.mqtt_source = MQTTSource(self.config, self.pipeline, self.supervision, self.metrics)
            self.mqtt_source.start()
        if self.config.http_listen:
            from gateway.ops_http import OpsServer
            self.ops = OpsServer(self)
            await self.ops.start(*self.config.http_listen)
        self._purge_task = asyncio.create_task(self._purge_periodically(), name="purge")
        log.info("gateway started", extra={"store": str(self.config.store_path),
                                           "forwarders": [f.name for f in self.forwarders]})

    async def stop(self):
        await cancel_and_wait(self._purge_task)
        if self.ops:
            await self.ops.stop()
        if self.mqtt_source:
            await self.mqtt_source.stop()
        if self.receiver:
            await self.receiver.stop()
        await self.supervision.stop()
        for fw in self.forwarders:
            await fw.stop()
        await self.pipeline.stop()
        await self.store.close()
        log.info("gateway stopped")

    async def purge(self):
        count = await self.store.purge(self.config.retention_days, [f.name for f in self.forwarders])
        if count:
            log.info("retention purge", extra={"purged": count})
        return count

    async def _purge_periodically(self):
        while True:
            try:
                await self.purge()
            except Exception as exc:
                log.error("retention purge failed", extra={"error": repr(exc)})
            await asyncio.sleep(self.config.purge_interval)

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.stop()
