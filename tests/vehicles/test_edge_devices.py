"""Edge devices over real transports: NMEA on a pseudo-terminal and on TCP,
Modbus RTU over a pseudo-terminal pair and Modbus TCP, with pymodbus's own
server playing the sensors."""
import asyncio

import pytest

from protocols import nmea
from protocols.modbus_maps import ESCORT_VAULT, HAZMAT_TANK
from gateway.vehicles.edge_rules import SensorRules
from gateway.vehicles.gnss import GnssReceiver, NMEASource
from gateway.vehicles.modbus_poller import ModbusPoller, make_client
from tests.support.ports import free_port
from tests.vehicles.devices import NmeaTalker, NullModem, Sensors
from tests.vehicles.support import wait_for

TANK_OK = {"tank_pressure": 1000.0, "tank_temperature": 20.0, "level_percent": 50.0, "level_mm": 1200,
           "valve_open": False, "leak_1": False, "leak_2": False}
VAULT_OK = {"vault_door": "closed", "cash_box": "locked", "panic_driver": False, "panic_guard": False,
            "panic_rear": False}
DEPOT = (22.5431, 114.0579, 150.0)


async def test_nmea_on_a_serial_port_and_receiver_health():
    talker = NmeaTalker()
    receiver = GnssReceiver(no_fix_seconds=0.3, stale_seconds=0.6)
    source = NMEASource(receiver, serial=talker.path, baudrate=9600, reconnect_seconds=0.1)
    source.start()
    try:
        async def fixed():
            talker.fix(22.5431, 114.0579, knots=10.0)
            await asyncio.sleep(0.05)
            return receiver.fix is not None
        await wait_for(fixed, timeout=10, what="a fix over the serial port")
        assert receiver.fix.lat == pytest.approx(22.5431, abs=1e-5)
        assert receiver.fix.speed_kmh == pytest.approx(18.52)
        assert receiver.fix.satellites == 9 and receiver.problems() == set()

        talker.send("GPTXT,01,01,01,ANTSTATUS=OPEN")
        await wait_for(lambda: "antenna_open" in receiver.problems(), what="antenna fault")
        talker.send("GPTXT,01,01,01,ANTSTATUS=OK")

        async def lost_fix():
            talker.no_fix()
            await asyncio.sleep(0.05)
            return receiver.problems() == {"no_fix"}
        await wait_for(lost_fix, what="no fix")
        assert receiver.fix is not None           # the last fix is kept for alarms
        await wait_for(lambda: receiver.problems() == {"stale"}, what="stale data")   # the talker went quiet
    finally:
        await source.stop()
        talker.close()


async def test_nmea_over_tcp_with_noise():
    async def serve(reader, writer):
        for minutes in ("06.0000", "12.0000"):
            writer.write(b"noise without a dollar\r\n$GPRMC,broken*00\r\n")
            body = "BDRMC,101500.00,A,30%s,N,12000.0000,E,0.0,0.0,231126,,,A" % minutes
            writer.write((nmea.with_checksum(body) + "\r\n").encode())
            await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    receiver = GnssReceiver()
    source = NMEASource(receiver, tcp=("127.0.0.1", port))
    source.start()
    try:
        await wait_for(lambda: receiver.fix is not None and receiver.fix.lat == pytest.approx(30.2), what="TCP fix")
        assert receiver.sentences == 2 and receiver.refused == 2
    finally:
        await source.stop()
        server.close()


def test_sensor_rules():
    tank = SensorRules("tank", HAZMAT_TANK, zone_base=32)
    assert tank.evaluate(TANK_OK, None) == {}
    active = tank.evaluate(dict(TANK_OK, leak_2=True, tank_pressure=1700.0), None)
    assert active == {(151, 39): "Hazmat leak", (150, 33): "Tank over-pressure (high)"}
    vault = SensorRules("vault", ESCORT_VAULT, allowed_places=[DEPOT])
    opened = dict(VAULT_OK, vault_door="open")
    assert vault.evaluate(opened, (22.5432, 114.0580)) == {}                      # at the depot
    assert vault.evaluate(opened, (22.60, 114.10)) == {(423, 1): "Vault door opened outside an allowed place"}
    assert vault.evaluate(opened, None) != {}                                      # no fix: not an allowed place
    assert vault.evaluate(dict(VAULT_OK, panic_guard=True), None) == {(120, 4): "Panic button"}


async def test_modbus_rtu_over_a_pseudo_terminal_pair():
    modem = NullModem().start()
    sensors = Sensors(HAZMAT_TANK, TANK_OK)
    readings, silence = [], []
    client = make_client(serial=modem.b, baudrate=115200, timeout=0.3)
    poller = ModbusPoller("tank", HAZMAT_TANK, client, interval=0.05, silent_after=3,
                          on_values=readings.append, on_silent=silence.append)
    try:
        async with sensors.serving_rtu(modem.a):
            poller.start()
            await wait_for(lambda: readings, timeout=10, what="first RTU reading")
            assert readings[-1] == TANK_OK
            await sensors.set(leak_1=True, tank_pressure=1650.5)
            await wait_for(lambda: readings[-1]["leak_1"], what="leak seen")
            assert readings[-1]["tank_pressure"] == pytest.approx(1650.5)

            modem.cut = True                      # the RS-485 cable is cut
            await wait_for(lambda: silence == [True], timeout=10, what="silent sensor trouble")
            modem.cut = False
            await wait_for(lambda: silence == [True, False], timeout=10, what="sensor back")
    finally:
        await poller.stop()
        modem.close()


async def test_modbus_tcp_and_a_device_that_goes_away():
    port = free_port()
    sensors = Sensors(ESCORT_VAULT, VAULT_OK)
    readings, silence = [], []
    poller = ModbusPoller("vault", ESCORT_VAULT, make_client(tcp=("127.0.0.1", port), timeout=0.3),
                          interval=0.05, silent_after=2, on_values=readings.append, on_silent=silence.append)
    try:
        async with sensors.serving_tcp(port):
            poller.start()
            await wait_for(lambda: readings, timeout=10, what="first TCP reading")
            await sensors.set(vault_door="forced")
            await wait_for(lambda: readings[-1]["vault_door"] == "forced", what="door forced")
        await wait_for(lambda: silence == [True], timeout=10, what="device gone")
    finally:
        await poller.stop()
