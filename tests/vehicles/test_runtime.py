"""The two objects a gateway starts, built from config alone: an escort vehicle
(GNSS over TCP, vault on Modbus TCP) and the fleet center."""
import asyncio

from protocols import nmea
from protocols.modbus_maps import ESCORT_VAULT
from gateway.vehicles import config as vehicles_config
from gateway.vehicles.runtime import VehicleCenter, VehicleEdge
from tests.support.ports import free_port
from tests.vehicles.devices import Sensors
from tests.vehicles.support import Recorder, wait_for
from tests.vehicles.test_edge_devices import VAULT_OK

BANK = [30.2870, 120.1800]


async def test_vault_door_opened_away_from_the_bank_reaches_the_center(tmp_path):
    center_port, gnss_port, modbus_port = free_port(), free_port(), free_port()
    where = {"lat": "3017.2200"}            # 30.287 N: at the bank; moved away below

    async def gnss(reader, writer):
        while True:
            body = "GNRMC,101500.00,A,%s,N,12010.8000,E,5.0,90.0,231126,,,A" % where["lat"]
            writer.write((nmea.with_checksum(body) + "\r\n").encode())
            await writer.drain()
            await asyncio.sleep(0.1)

    config = vehicles_config.from_dict({
        "jt808": {"listen": "127.0.0.1:%d" % center_port, "auth_secret": "s" * 32},
        "vehicles": {"fleet": [{"phone": "13800000001", "plate": "浙A00001", "kind": "escort",
                                "terminal_id": "ESC0001"}]},
        "edge": {"phone": "13800000001", "plate": "浙A00001", "kind": "escort", "terminal_id": "ESC0001",
                 "version": 2019, "center": "127.0.0.1:%d" % center_port, "store_path": "vehicle.db",
                 "report_interval_seconds": 0.2, "gnss": {"tcp": "127.0.0.1:%d" % gnss_port},
                 "modbus": [{"name": "vault", "map": "escort-vault", "tcp": "127.0.0.1:%d" % modbus_port,
                             "interval_seconds": 0.1}],
                 "allowed_places": [{"name": "bank", "center": BANK, "radius_m": 100}]}},
        base_dir=tmp_path)
    rec = Recorder()
    sensors = Sensors(ESCORT_VAULT, VAULT_OK)
    gnss_server = await asyncio.start_server(gnss, "127.0.0.1", gnss_port)
    center, edge = VehicleCenter(config, rec.submit), VehicleEdge(config.edge)
    async with sensors.serving_tcp(modbus_port):
        await center.start()
        await edge.start()
        try:
            await wait_for(lambda: any(e.position for e in rec.events), timeout=15, what="positions at the center")
            await sensors.set(vault_door="open")                        # at the bank: allowed
            await wait_for(lambda: edge.vehicle.readings.get("vault", {}).get("vault_door") == "open",
                           what="door read")
            where["lat"] = "3018.0000"                                  # 30.300 N: 1.4 km away
            await wait_for(lambda: [e for e in rec.events if e.code == 423], timeout=15, what="forced-access alarm")
            [alarm] = [e for e in rec.events if e.code == 423]
            assert alarm.event_class == "alarm" and abs(alarm.position[0] - 30.3) < 1e-4
            assert alarm.zone == 33 and alarm.site["type"] == "vehicle/escort"
            assert ("jifang_jt808_vehicles_online", {}, 1) in center.gauges()
        finally:
            await edge.stop()
            await center.stop()
            gnss_server.close()
    assert (tmp_path / "vehicle.db").exists()
