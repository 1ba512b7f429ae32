"""The vehicle parts of a gateway, built from `gateway.vehicles.config` and started
and stopped as units, so the gateway wires two objects and nothing else.

    center = VehicleCenter(vehicles_config, pipeline.submit)   # when [jt808] is present
    edge = VehicleEdge(vehicles_config.edge, pipeline.submit)  # when [edge] is present
    await center.start(); await edge.start()   ... after the pipeline has started
    await edge.stop(); await center.stop()     ... before the pipeline stops
"""
import asyncio
import logging

from gateway.tasks import cancel_and_wait
from protocols.modbus_maps import MAPS
from gateway.vehicles.edge import EdgeVehicle
from gateway.vehicles.edge_rules import SensorRules
from gateway.vehicles.gnss import GnssReceiver, NMEASource
from gateway.vehicles.modbus_poller import ModbusPoller, make_client
from gateway.vehicles.offline_store import PositionStore
from gateway.vehicles.registry import Registry
from gateway.vehicles.rules import FleetRules
from gateway.vehicles.server import JT808Server
from gateway.vehicles.uplink import JT808Uplink

log = logging.getLogger("jifang.vehicles")

ZONES_PER_DEVICE = 32          # device i's alarms use zones 32*(i+1) ...: never collide, fit a byte up to 6 devices


class VehicleCenter:
    def __init__(self, config, submit, node=None):
        """`node`: this node's name in cluster mode (registrations and sessions shared
        in PostgreSQL: gateway/vehicles/pgregistry.py)."""
        settings = config.jt808
        self.listen = settings.listen
        self.registry = Registry(config.fleet, settings.registrations_path, release_window=settings.release_window,
                                 node=node)
        self.server = JT808Server(self.registry, submit, rules=FleetRules(config.rules),
                                  session_timeout=settings.session_timeout, limits=settings.limits,
                                  report_limits=settings.report_limits, net_limits=settings.net_limits)
        self.downlink = None
        self._renewer = None
        self._held = set()          # phones whose shared session row this node holds (cluster mode)

    async def start(self):
        await self.server.start(*self.listen)
        if self.registry.shared is not None:
            self._renewer = asyncio.create_task(self._renew_sessions(), name="jt808-sessions")

    async def stop(self):
        if self.downlink is not None:
            await self.downlink.stop()
        if self._renewer is not None:
            await cancel_and_wait(self._renewer)
        await self.server.stop()
        if self.registry.shared is not None:
            try:
                await asyncio.to_thread(self.registry.shared.renew, (), set(self._held))   # ours end with us
            except Exception as exc:
                log.warning("could not drop this node's JT/T 808 sessions", extra={"error": repr(exc)})
        self.registry.close()

    async def _renew_sessions(self):
        from gateway.vehicles.pgregistry import keep_sessions
        await keep_sessions(self.server, self.registry.shared, self._held)

    def release(self, account, by, reason):
        """For the console: an operator lets the vehicle's terminal register again
        (it lost its code, or was swapped). Refused (ValueError) while the vehicle is
        online: its terminal holds a good code. LookupError: no such vehicle.
        Cluster mode: returns an awaitable (the release runs off the event loop)."""
        if self.server.online(str(account).upper()):
            raise ValueError("vehicle %s is online: its terminal holds a valid code" % account)
        if self.registry.blocking:
            # Cluster mode: a database round trip (it refuses a vehicle online on
            # another node too): off the event loop, which the receivers share.
            return asyncio.to_thread(self.registry.release, account, by, reason)
        return self.registry.release(account, by, reason)

    def gauges(self):
        """For Metrics.add_gauges: sessions held, vehicles online, frames refused."""
        server = self.server
        return ([("jifang_jt808_sessions", {}, len(server.sessions)),
                 ("jifang_jt808_unauthenticated_sessions", {}, sum(1 for s in server.sessions if s.state is None)),
                 ("jifang_jt808_vehicles_online", {}, sum(1 for v in server.vehicles.values() if v.session)),
                 ("jifang_jt808_frames_refused", {}, server.frames_bad),
                 ("jifang_jt808_reassembly_bytes", {}, server.reassembly_bytes)]
                + [("jifang_jt808_refused_total", {"reason": r}, n) for r, n in sorted(server.refused.items())]
                + [("jifang_jt808_closed_total", {"reason": r}, n) for r, n in sorted(server.closed.items())]
                + server.samples())

    def degraded(self):
        return self.server.degraded()

    async def attach_downlink(self, nc, node):
        """Cluster mode: commands reach terminals held by other nodes over NATS
        (gateway/vehicles/downlink.py)."""
        from gateway.vehicles.downlink import Downlink
        self.downlink = Downlink(self.server, nc, node)
        await self.downlink.start()

    async def command(self, op, account, **kwargs):
        """Run a platform command (downlink.COMMANDS) on the vehicle's terminal,
        here or on the node holding it; False when no node holds it."""
        account = str(account).upper()
        if self.server.online(account) or self.downlink is None:
            return await getattr(self.server, op)(account, **kwargs)
        return await self.downlink.request(op, account, **kwargs)

    async def acknowledge_alarm(self, account, **kwargs):
        """For the console: the operator acknowledged this vehicle's alarm (0x8203)."""
        return await self.command("acknowledge_alarm", account, **kwargs)

    async def send_text(self, account, text, **kwargs):
        return await self.command("send_text", account, text=text, **kwargs)


class VehicleEdge:
    def __init__(self, settings, submit=None):
        """`submit`: the vehicle gateway's own pipeline (local record, and the DC-09
        uplink option through its dc09 forwarder); None to only uplink over JT/T 808."""
        self.settings = settings
        self.store = PositionStore(settings.store_path)
        self.uplink = JT808Uplink(self.store, center=settings.center, phone=settings.phone, plate=settings.plate,
                                  terminal_id=settings.terminal_id, version=settings.version,
                                  heartbeat=settings.heartbeat)
        # No [edge.gnss]: no receiver to supervise (reports then carry no fix).
        self.receiver = self.gnss = None
        if settings.gnss_serial or settings.gnss_tcp:
            self.receiver = GnssReceiver()
            self.gnss = NMEASource(self.receiver, serial=settings.gnss_serial, baudrate=settings.gnss_baudrate,
                                   tcp=settings.gnss_tcp)
        self.vehicle = EdgeVehicle(settings.phone.lstrip("0"), receiver=self.receiver, uplink=self.uplink,
                                   submit=submit, report_interval=settings.report_interval)
        self.pollers = []
        for i, device in enumerate(settings.modbus):
            device_map = MAPS[device.map_name]
            rules = SensorRules(device.name, device_map, zone_base=ZONES_PER_DEVICE * (i + 1),
                                allowed_places=settings.allowed_places)
            on_values, on_silent = self.vehicle.add_device(rules)
            client = make_client(serial=device.serial, baudrate=device.baudrate, tcp=device.tcp, timeout=device.timeout)
            self.pollers.append(ModbusPoller(device.name, device_map, client, unit=device.unit,
                                             interval=device.interval, on_values=on_values, on_silent=on_silent))

    async def start(self):
        self.store.path.parent.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        self.uplink.start()
        for part in (self.gnss, *self.pollers, self.vehicle):
            if part is not None:
                part.start()
        log.info("vehicle edge started", extra={"center": "%s:%d" % self.settings.center,
                                                "devices": [p.name for p in self.pollers]})

    async def stop(self):
        for part in (self.vehicle, *self.pollers, self.gnss):
            if part is not None:
                await part.stop()
        await self.uplink.stop()
        await self.store.close()
