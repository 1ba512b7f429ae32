"""The edge's JT/T 808 uplink: durable positions, back-fill after an outage, commands."""
from datetime import datetime, timedelta

from protocols import jt808
from gateway.vehicles.edge import EdgeVehicle
from gateway.vehicles.offline_store import PositionStore
from gateway.vehicles.uplink import AUTH_CODE_KEY, JT808Uplink
from tests.support.ports import free_port
from tests.vehicles.support import HAZMAT, Recorder, center, wait_for

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=jt808.GMT8)
OUTAGE_SECONDS = 600            # 10 minutes at 1 Hz


def make_uplink(store, port, version=2013):
    return JT808Uplink(store, center=("127.0.0.1", port), phone=HAZMAT.phone, plate=HAZMAT.plate,
                       terminal_id=HAZMAT.terminal_id, version=version, heartbeat=5, ack_timeout=5,
                       retry_initial=0.05, retry_max=0.2)


def fix_at(i):
    """Where the vehicle was at second i of the drive (moving north-east)."""
    return jt808.position(22.5 + i * 1e-5, 114.0 + i * 1e-5, T0 + timedelta(seconds=i), speed=36.0)


async def test_ten_minute_outage_arrives_in_order_through_0704(tmp_path):
    port = free_port()
    rec = Recorder()
    store = PositionStore(tmp_path / "vehicle.db")
    await store.open()
    uplink = make_uplink(store, port)
    uplink.start()                          # the center is unreachable: nothing listens on the port
    try:
        for i in range(OUTAGE_SECONDS // 2):
            await uplink.record(fix_at(i))
        # The vehicle computer restarts halfway through the outage: nothing is lost.
        await uplink.stop()
        await store.close()
        store = PositionStore(tmp_path / "vehicle.db")
        await store.open()
        uplink = make_uplink(store, port)
        uplink.start()
        for i in range(OUTAGE_SECONDS // 2, OUTAGE_SECONDS):
            await uplink.record(fix_at(i))
        assert await store.count() == OUTAGE_SECONDS and rec.events == []

        async with center(rec.submit, vehicles=(HAZMAT,), port=port):     # the link comes back
            await wait_for(lambda: len(rec.events) >= OUTAGE_SECONDS, timeout=60, what="the whole backlog")
            times = [e.device_time for e in rec.events]
            assert times == [int((T0 + timedelta(seconds=i)).timestamp()) for i in range(OUTAGE_SECONDS)]
            assert rec.events[-1].position == (22.5 + 599e-5, 114.0 + 599e-5)
            # all of it as 0x0704 (counted when the center's answer is back: after the events)
            await wait_for(lambda: uplink.sent_batches == OUTAGE_SECONDS // uplink.batch_size, what="12 batches")
            await wait_for(_empty(store), what="vehicle store emptied after confirmation")
            assert await store.get(AUTH_CODE_KEY)          # registered once, code kept for next time
    finally:
        await uplink.stop()
        await store.close()


def _empty(store):
    async def check():
        return await store.count() == 0
    return check


async def test_edge_answers_platform_commands(tmp_path):
    rec = Recorder()
    store = PositionStore(tmp_path / "vehicle.db")
    await store.open()
    async with center(rec.submit, vehicles=(HAZMAT,)) as server:
        uplink = make_uplink(store, server.port, version=2019)
        texts = []
        uplink.on_text = texts.append
        edge = EdgeVehicle(HAZMAT.account, uplink=uplink)
        uplink.start()
        try:
            await wait_for(lambda: server.online(HAZMAT.account), what="edge online")
            edge.emergency = True
            await edge.report()
            await wait_for(lambda: any(e.code == 120 for e in rec.events), what="SOS at the center")
            assert await server.acknowledge_alarm(HAZMAT.account)
            assert edge.emergency is False                    # 0x8203 clears the latched SOS
            assert await server.send_text(HAZMAT.account, "请立即停车 stop now")
            assert texts == ["请立即停车 stop now"]
            assert await server.track(HAZMAT.account, 5, 600) and edge.current_interval == 5
            before = len(rec.events)
            assert await server.query_position(HAZMAT.account)
            await wait_for(lambda: len(rec.events) > before, what="0x0201 answer stored")
        finally:
            await edge.stop()
            await uplink.stop()
            await store.close()


async def test_edge_troubles_reach_the_center_as_troubles(tmp_path):
    """GNSS problems ride as alarm bits 4-6, a silent sensor as a 380 in item 0xE1;
    the center files both as troubles, and their restores."""
    from protocols.modbus_maps import HAZMAT_TANK
    from gateway.vehicles.edge_rules import SensorRules
    from gateway.vehicles.gnss import GnssReceiver

    now = [0.0]
    receiver = GnssReceiver(no_fix_seconds=60, stale_seconds=5, clock=lambda: now[0])
    rec = Recorder()
    store = PositionStore(tmp_path / "vehicle.db")
    await store.open()
    async with center(rec.submit, vehicles=(HAZMAT,)) as server:
        uplink = make_uplink(store, server.port)
        edge = EdgeVehicle(HAZMAT.account, receiver=receiver, uplink=uplink)
        _, on_silent = edge.add_device(SensorRules("tank", HAZMAT_TANK, zone_base=32))
        uplink.start()
        try:
            now[0] = 10.0                       # nothing heard from the receiver for 10 s
            edge.check_gnss()
            on_silent(True)
            await wait_for(lambda: {e.code for e in rec.events} >= {330, 380}, what="troubles at the center")
            troubles = {(e.code, e.zone): e for e in rec.events if e.code}
            assert troubles[(330, 4)].event_class == "trouble"            # alarm bit 4: GNSS fault
            assert troubles[(380, 32)].event_class == "trouble"           # the tank stopped answering
            on_silent(False)
            await wait_for(lambda: any(e.code == 380 and e.qualifier == 3 for e in rec.events), what="sensor back")
        finally:
            await edge.stop()
            await uplink.stop()
            await store.close()
