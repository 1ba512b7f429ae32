"""The gateway process, assembled from its config in data-flow order:

    store -> pipeline (+ supervision rules) -> outboxes + forwarders (sinks)
          -> vehicles (JT/T 808 center, edge) -> sources (DC-09 receiver, MQTT)
          -> ops HTTP -> console

Start-up opens the sinks before the sources, so nothing is accepted (and ACKed)
before there is somewhere to put it; shutdown closes the sources first.

Cluster mode (`[store] url = "postgresql://..."`, docs/cluster.md): every node
runs the receivers and the console; each forwarder, supervision's watch and
retention run on the node holding their lease (gateway/lease.py), and read what
any node committed by following the shared log (gateway/follow.py).

Cluster mode ([bus] in the config): between the sources and the store sits the
JetStream bus (gateway/bus.py). A source's submit() publishes and returns at the
replicated stream's PubAck (that is when the device is ACKed); this node's ingest
consumers take events off the bus into the store, with whatever the other nodes
published. Without [bus], nothing of this exists: one process, the store, no NATS.
"""
import asyncio
import functools
import logging

from gateway import logs
from gateway.metrics import Metrics
from gateway.pipeline import Pipeline
from gateway.sinks.outbox import Outbox
from gateway.store import Store
from gateway.sources import SourcePort
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
    from gateway.sinks.stdout import StdoutForwarder
    return StdoutForwarder(spec, outbox, metrics, console_stream, console_prefix)


class Gateway:
    def __init__(self, config, console_stream=None, console_prefix=""):
        self.config = config
        self.metrics = Metrics()
        self.store = Store(config.store_url or config.store_path, config.store_pool_size)
        # Supervision first: the pipeline tells it of every device event it accepts;
        # it gets the pipeline's submit (for its troubles and restores) when it starts.
        self.supervision = Supervision(config)
        self.pipeline = Pipeline(config, self.store, self.metrics, self.supervision)
        # What the receivers may use of the gateway (gateway/sources/__init__.py).
        self.source_port = SourcePort.of(self.pipeline, self.supervision, self.store)
        self.forwarders = []
        self.outboxes = []
        self.vehicle_center = None
        self.vehicle_edge = None
        self.console = None
        self.receiver = None
        self.mqtt_source = None
        self.ops = None
        self.bus = None
        self.ingest = None
        self._purge_task = None
        self._log_task = None
        self._loop_handler_set = False
        self._console = (console_stream, console_prefix)
        self.cluster = config.cluster
        self.leases = self.notifier = None
        self._followers = {}
        if self.cluster is not None:
            from gateway.follow import LogNotifier
            from gateway.lease import Leases
            self.leases = Leases(config.store_url, self.cluster.node, self.cluster.lease_poll,
                                 self.cluster.lease_timeout, self.metrics)
            self.notifier = LogNotifier(config.store_url, self.cluster.follow_poll)

    async def start(self):
        # Before anything listens: a key copied from examples/ is public.
        from gateway.config import refuse_example_secrets
        refuse_example_secrets(self.config)
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() is None:
            # asyncio's own reports (a callback that raised, accept() failing...) as
            # JSON lines, rate-limited, instead of multi-line plain text (gateway/logs.py)
            loop.set_exception_handler(logs.loop_exception_handler)
            self._loop_handler_set = True
        self._log_task = asyncio.create_task(self._flush_logs_periodically(), name="log-summaries")
        self.config.store_path.parent.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        if self.cluster is not None:
            self.notifier.start()
        for spec in self.config.forwarders:
            outbox = Outbox(spec, self.store, self.metrics)
            fw = make_forwarder(spec, outbox, self.metrics, self.config.name, *self._console)
            if self.cluster is not None:
                self.leases.add("forwarder:" + spec.name, functools.partial(self._forwarder_acquired, fw),
                                functools.partial(self._forwarder_lost, fw))
            else:
                await outbox.load()
                self.pipeline.add_listener(outbox.offer)
            self.outboxes.append(outbox)
            self.forwarders.append(fw)
        self.pipeline.start()
        if self.config.bus is not None:
            await self._start_bus()
        if self.cluster is not None:
            await self.supervision.start_shared(self.store, self.pipeline.submit, self.cluster.heard_flush)
            self.leases.add("supervision", self.supervision.take_over, self.supervision.hand_over)
        else:
            await self.supervision.start(self.store, self.pipeline.submit)
            for fw in self.forwarders:
                fw.start()
        vehicles = self.config.vehicles
        if vehicles is not None and vehicles.jt808 is not None:
            from gateway.vehicles.runtime import VehicleCenter
            self.vehicle_center = VehicleCenter(vehicles, self.pipeline.submit,
                                                node=self.config.cluster.node if self.config.cluster else None)
            await self.vehicle_center.start()
            self.metrics.add_gauges(self.vehicle_center.gauges)
            if self.bus is not None:
                await self.vehicle_center.attach_downlink(self.bus.command_connection(), self.config.name)
        if vehicles is not None and vehicles.edge is not None:
            from gateway.vehicles.runtime import VehicleEdge
            self.vehicle_edge = VehicleEdge(vehicles.edge, self.pipeline.submit)
            await self.vehicle_edge.start()
        if self.config.receiver_listen:
            from gateway.sources.dc09 import DC09Receiver
            self.receiver = DC09Receiver(self.config, self.source_port, self.metrics)
            await self.receiver.start(*self.config.receiver_listen)
        if self.config.mqtt_source:
            from gateway.sources.mqtt import MQTTSource
            self.mqtt_source = MQTTSource(self.config, self.source_port, self.metrics)
            self.mqtt_source.start()
        if self.config.http_listen:
            from gateway.ops_http import OpsServer
            self.ops = OpsServer(self)
            await self.ops.start(*self.config.http_listen)
        if self.config.console is not None and self.config.console.listen:
            # In a child process by default, so web work never shares the receiver's loop
            # (gateway/console/process.py, docs/console.md "Its own process").
            from gateway.console.serve import start_console
            self.console = await start_console(
                self, self.config.console, dispatch=self.dispatch,
                geofences=vehicles.rules.geofences if vehicles is not None else (),
                on_disposed=self.alarm_disposed)
        if self.cluster is not None:
            self.leases.add("retention", self._retention_acquired, self._retention_lost)
            self.leases.start()
        else:
            self._purge_task = asyncio.create_task(self._purge_periodically(), name="purge")
        log.info("gateway started", extra={"store": str(self.config.store_url or self.config.store_path),
                                           "forwarders": [f.name for f in self.forwarders],
                                           "node": self.cluster.node if self.cluster else None})

    # -- cluster mode: the leased work ------------------------------------------------

    async def _forwarder_acquired(self, fw):
        """This node now runs forwarder `fw`: resume from the shared cursor, follow the
        log from there, and take dispatches requested on any node."""
        await fw.outbox.reload()
        self._followers[fw.name] = asyncio.create_task(self._follow_for(fw.outbox), name="follow-" + fw.name)
        fw.start()

    async def _follow_for(self, outbox):
        from gateway.follow import follow
        dispatches = asyncio.create_task(self._poll_dispatches(outbox))
        try:
            await follow(self.store, outbox.last_seen, outbox.offer, self.notifier, self.cluster.follow_poll,
                         outbox.name)
        finally:
            await cancel_and_wait(dispatches)

    async def _poll_dispatches(self, outbox):
        while True:
            await asyncio.sleep(self.cluster.follow_poll)
            try:
                await outbox.poll_dispatches()
            except Exception as exc:
                log.warning("cannot read dispatches", extra={"forwarder": outbox.name, "error": repr(exc)})

    async def _forwarder_lost(self, fw):
        await cancel_and_wait(self._followers.pop(fw.name, None))
        await fw.stop()
        fw.outbox.clear()
        fw.connected = False

    async def _retention_acquired(self):
        self._purge_task = asyncio.create_task(self._purge_periodically(), name="purge")

    async def _retention_lost(self):
        await cancel_and_wait(self._purge_task)
        self._purge_task = None

    def subscribe_committed(self, listener):
        """How the console hears of committed events. One node: the pipeline's
        listener. Cluster: a follower of the shared log from its current head (a
        coroutine: the head is read before it returns, so nothing after it is missed),
        so events committed on any node appear on this node's console."""
        if self.cluster is None:
            return self.pipeline.add_listener(listener)
        return self._subscribe_shared(listener)

    async def _subscribe_shared(self, listener):
        from gateway.follow import follow
        head = await self.store.head_id()
        task = asyncio.create_task(follow(self.store, head, listener, self.notifier, self.cluster.follow_poll,
                                          "console"), name="follow-console")
        self._followers["(console)"] = task

    async def stop(self):
        if self.console is not None:
            await self.console.cleanup()
        await cancel_and_wait(self._purge_task)
        if self.ops:
            await self.ops.stop()
        if self.mqtt_source:
            await self.mqtt_source.stop()
        if self.receiver:
            await self.receiver.stop()
        if self.vehicle_edge is not None:
            await self.vehicle_edge.stop()
        if self.vehicle_center is not None:
            await self.vehicle_center.stop()
        if self.cluster is not None:
            await self.leases.stop()          # stops the leased work: forwarders, supervision's watch, retention
            await cancel_and_wait(*self._followers.values())
            await self.notifier.stop()
        await self.supervision.stop()
        if self.ingest is not None:
            await self.ingest.stop()        # what it had not committed is not acked: another node takes it
        if self.bus is not None:
            self.pipeline.bus = None
            await self.bus.close()
        for fw in self.forwarders:
            await fw.stop()
        await self.pipeline.stop()
        await self.store.close()
        log.info("gateway stopped")
        await cancel_and_wait(self._log_task)
        logs.flush_suppressed()
        if self._loop_handler_set:
            asyncio.get_running_loop().set_exception_handler(None)
            self._loop_handler_set = False

    def degraded(self):
        """Reasons the gateway is degraded by its connection limits (for /healthz)."""
        return ((self.receiver.degraded() if self.receiver is not None else [])
                + (self.vehicle_center.degraded() if self.vehicle_center is not None else []))

    async def _start_bus(self):
        from gateway.bus import Bus, Ingest
        self.bus = Bus(self.config.bus, self.metrics, self.config.name)
        await self.bus.connect()
        await self.bus.ensure_streams()
        self.ingest = Ingest(self.bus, self.pipeline)
        await self.ingest.start()
        self.pipeline.bus = self.bus        # from now on submit() publishes
        log.info("bus connected", extra={"servers": len(self.config.bus.servers),
                                         "replicas": self.config.bus.replicas})

    async def dispatch(self, event_id, operator, note):
        """The console's "dispatch to 110": send stored event `event_id` through every
        forwarder with dispatch = true, whatever their class filters say. Returns once
        the request is durable (it survives a restart until the upstream confirms)."""
        stored = await self.store.get(event_id)
        if stored is None:
            raise LookupError("no event %d in the log" % event_id)
        targets = [outbox for outbox in self.outboxes if outbox.spec.dispatch]
        if not targets:
            raise RuntimeError("no forwarder takes dispatches: set dispatch = true on the 110 forwarder")
        for outbox in targets:
            await outbox.dispatch(stored)
        log.info("dispatched by operator", extra={"event": event_id, "operator": operator,
                                                  "forwarders": [o.name for o in targets]})
        return "queued to " + ", ".join(o.name for o in targets)

    async def alarm_disposed(self, item):
        """An operator disposed of an alarm: a vehicle's terminal gets the standard's
        acknowledgement (0x8203), which clears its emergency bit."""
        from gateway.vehicles.codes import SOURCE_JT808
        if self.vehicle_center is not None and item.get("source") == SOURCE_JT808:
            confirmed = await self.vehicle_center.acknowledge_alarm(item["account"])
            log.info("vehicle alarm acknowledged to the terminal",
                     extra={"account": item["account"], "confirmed": confirmed})

    async def purge(self):
        count = await self.store.purge(self.config.retention_days, [f.name for f in self.forwarders])
        if count:
            log.info("retention purge", extra={"purged": count})
        return count

    async def _flush_logs_periodically(self):
        while True:
            await asyncio.sleep(logs.RATE_INTERVAL)
            logs.flush_suppressed()

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
