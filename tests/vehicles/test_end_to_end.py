"""End to end, every hop real: sensors (pymodbus over a pseudo-terminal pair) and
GNSS (NMEA on a pseudo-terminal) -> edge -> JT/T 808 -> center gateway (pipeline,
hash-chained store) -> DC-09 forwarder -> 110 receiver (another gateway)."""
import asyncio
import contextlib
import time
from datetime import datetime

from protocols import jt808
from protocols.modbus_maps import HAZMAT_TANK
from gateway.app import Gateway
from gateway.vehicles.edge import EdgeVehicle
from gateway.vehicles.edge_rules import SensorRules
from gateway.vehicles.gnss import GnssReceiver, NMEASource
from gateway.vehicles.modbus_poller import ModbusPoller, make_client
from gateway.vehicles.offline_store import PositionStore
from gateway.vehicles.registry import Registry, Vehicle
from gateway.vehicles.server import JT808Server
from gateway.vehicles.uplink import JT808Uplink
from gateway.vehiclesim import fleet_phone, fleet_plate, run_terminal
from tests.gateway.helpers import center_config, upper_config
from tests.support.ports import free_tcp_udp_port
from tests.vehicles.devices import NmeaTalker, NullModem, Sensors
from tests.vehicles.support import ESCORT, HAZMAT, SECRET, terminal, wait_for
from tests.vehicles.test_edge_devices import TANK_OK

BACKGROUND_FLEET = 1000         # as the issue asks; bench/fleet.py runs 10,000


@contextlib.asynccontextmanager
async def center_and_110(tmp_path, vehicles):
    """The 110 receiver, the center gateway forwarding to it, and the JT/T 808
    server on the center's pipeline."""
    port110 = free_tcp_udp_port()
    async with Gateway(upper_config(tmp_path, port=port110)) as police, \
            Gateway(center_config(tmp_path, upstream=[port110])) as center:
        server = JT808Server(Registry(vehicles), center.pipeline.submit, session_timeout=60)
        await server.start("127.0.0.1", 0)
        try:
            yield police, center, server
        finally:
            await server.stop()


async def alarms_at(gateway, code):
    return [s.event for s in await gateway.store.events() if s.event.code == code]


async def test_hazmat_leak_at_the_edge_reaches_110_with_position(tmp_path):
    talker, modem = NmeaTalker(), NullModem().start()
    sensors = Sensors(HAZMAT_TANK, TANK_OK)
    async with center_and_110(tmp_path, (HAZMAT,)) as (police, center, server), sensors.serving_rtu(modem.a):
        receiver = GnssReceiver()
        gnss = NMEASource(receiver, serial=talker.path)
        store = PositionStore(tmp_path / "vehicle.db")
        await store.open()
        uplink = JT808Uplink(store, center=("127.0.0.1", server.port), phone=HAZMAT.phone, plate=HAZMAT.plate,
                             terminal_id=HAZMAT.terminal_id, retry_initial=0.05)
        edge = EdgeVehicle(HAZMAT.account, receiver=receiver, uplink=uplink, report_interval=0.5)
        on_values, on_silent = edge.add_device(SensorRules("tank", HAZMAT_TANK, zone_base=32))
        poller = ModbusPoller("tank", HAZMAT_TANK, make_client(serial=modem.b, baudrate=115200, timeout=0.3),
                              interval=0.1, on_values=on_values, on_silent=on_silent)
        for part in (gnss, uplink, poller, edge):
            part.start()
        try:
            async def fixed():
                talker.fix(31.2304, 121.4737, knots=20.0)
                await asyncio.sleep(0.05)
                return edge.position() is not None and edge.readings.get("tank")
            await wait_for(fixed, timeout=15, what="edge has a fix and readings")

            await sensors.set(leak_1=True)                                   # the leak detector trips
            [leak] = await wait_for(lambda: alarms_at(police, 151), timeout=20, what="leak alarm at 110")
            assert leak.event_class == "alarm" and leak.account == HAZMAT.account and leak.zone == 38
            assert abs(leak.position[0] - 31.2304) < 1e-4 and abs(leak.position[1] - 121.4737) < 1e-4
            [stored] = await alarms_at(center, 151)
            assert stored.priority == 0 and stored.position is not None and stored.source == "jt808"
            positions = [s.event for s in await center.store.events() if s.event.event_class == "telemetry"]
            assert positions and positions[-1].values["sensors"]["leak_1"] == 1.0
        finally:
            for part in (edge, poller, uplink, gnss):
                await part.stop()
            await store.close()
    modem.close()
    talker.close()


async def test_escort_panic_reaches_110_while_a_fleet_reports(tmp_path):
    fleet = [Vehicle(phone=fleet_phone(i), plate=fleet_plate(i), kind="other") for i in range(BACKGROUND_FLEET)]
    async with center_and_110(tmp_path, (ESCORT, *fleet)) as (police, center, server):
        stats = {"connected": 0, "reports": 0, "errors": 0}
        until = time.monotonic() + 3600          # cancelled below, once the alarm is through
        background = [asyncio.create_task(run_terminal(i, "127.0.0.1", server.port, 1.0, until, stats))
                      for i in range(BACKGROUND_FLEET)]
        try:
            await wait_for(lambda: stats["connected"] == BACKGROUND_FLEET and stats["reports"] >= BACKGROUND_FLEET,
                           timeout=60, what="the fleet reporting")
            async with terminal(server, ESCORT) as escort:
                escort.lat, escort.lon = 39.9087, 116.3975
                assert await escort.press_panic(datetime.now(jt808.GMT8)) == 0
                [panic] = await wait_for(lambda: alarms_at(police, 120), timeout=20, what="panic at 110")
                assert panic.account == ESCORT.account and panic.category == "panic"
                assert abs(panic.position[0] - 39.9087) < 1e-4 and abs(panic.position[1] - 116.3975) < 1e-4
                assert await server.acknowledge_alarm(ESCORT.account) and escort.alarm == 0
            assert stats["errors"] == 0
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)


async def test_dc09_uplink_option_sends_the_position_in_x_y(tmp_path):
    """The vehicle gateway's own pipeline + its dc09 forwarder, instead of JT/T 808."""
    port110 = free_tcp_udp_port()
    talker = NmeaTalker()
    async with Gateway(upper_config(tmp_path, port=port110)) as police, \
            Gateway(center_config(tmp_path, name="vehicle", upstream=[port110])) as vehicle_gw:
        receiver = GnssReceiver()
        gnss = NMEASource(receiver, serial=talker.path)
        edge = EdgeVehicle(HAZMAT.account, receiver=receiver, submit=vehicle_gw.pipeline.submit)
        on_values, _ = edge.add_device(SensorRules("tank", HAZMAT_TANK, zone_base=32))
        gnss.start()
        try:
            async def fixed():
                talker.fix(-33.8688, 151.2093)          # south and east: the signs survive DC-09's X/Y
                await asyncio.sleep(0.05)
                return edge.position() is not None
            await wait_for(fixed, timeout=15, what="a fix")
            on_values(dict(TANK_OK, tank_pressure=1850.0))
            [alarm] = await wait_for(lambda: alarms_at(police, 150), timeout=20, what="over-pressure at 110")
            assert alarm.account == HAZMAT.account and alarm.zone == 33
            assert abs(alarm.position[0] + 33.8688) < 1e-4 and abs(alarm.position[1] - 151.2093) < 1e-4
        finally:
            await edge.stop()
            await gnss.stop()
    talker.close()
