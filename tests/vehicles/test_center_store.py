"""The JT/T 808 server on the real pipeline and hash-chained store: idempotent
positions, rules in the same commit, retention of positions vs alarms."""
from datetime import datetime, timedelta

from protocols import jt808
from gateway.app import Gateway
from gateway.store import DAY_MS, EventLog, verify
from gateway.vehicles import config as vehicles_config
from gateway.vehicles.geofence import Geofence
from gateway.vehicles.registry import Registry
from gateway.vehicles.rules import FleetRules, RuleSettings
from gateway.vehicles.server import JT808Server
from tests.gateway.helpers import center_config
from tests.vehicles.support import ESCORT, FLEET, SECRET, terminal

T0 = datetime(2026, 11, 23, 8, 0, 0, tzinfo=jt808.GMT8)
ROUTE = Geofence("cash-run-7", "corridor", "keep_in", points=((22.0, 114.0), (22.0, 114.1)), width_m=200)


async def test_retries_and_backfill_are_recorded_once_and_rules_run(tmp_path):
    escort = type(ESCORT)(phone=ESCORT.phone, plate=ESCORT.plate, kind="escort", route="cash-run-7")
    async with Gateway(center_config(tmp_path)) as gw:
        server = JT808Server(Registry((escort,)), gw.pipeline.submit,
                             rules=FleetRules(RuleSettings(geofences=(ROUTE,))))
        await server.start("127.0.0.1", 0)
        try:
            async with terminal(server, escort) as t:
                t.lat, t.lon = 22.0, 114.05
                on_route = t.position(T0, speed=40.0)
                assert await t.report(on_route) == 0
                assert await t.report(on_route) == 0           # a retry (new flow number, same report)
                assert await t.batch([on_route]) == 0          # and back-filled again
                t.lat = 22.01                                   # 1.1 km off the corridor
                assert await t.report(t.position(T0 + timedelta(seconds=1), speed=40.0)) == 0
            events = [s.event for s in await gw.store.events()]
            assert [(e.event_class, e.code) for e in events] == [("telemetry", 0), ("telemetry", 0), ("other", 956)]
            assert events[2].name == "Route deviation" and events[2].position == (22.01, 114.05)
            assert events[0].raw.startswith("7e0200")                   # the frame as received
        finally:
            await server.stop()
    assert verify(tmp_path / "asc.db").ok


def test_positions_follow_their_retention_and_alarms_the_alarm_retention(tmp_path):
    vc = vehicles_config.from_dict({"jt808": {"listen": "127.0.0.1:1", "auth_secret": SECRET}})
    retention = vehicles_config.retention_with_positions({"default": 30, "alarm": 730}, vc)
    from gateway.vehicles.codes import make_event
    log = EventLog(tmp_path / "events.db")
    now = 1_800_000_000_000
    age = 200 * DAY_MS                        # older than 6 months, younger than 2 years
    old_position = make_event(FLEET[0].account, 0, device_time=1, source="jt808", position=(22.0, 114.0),
                              received_at_ms=now - age)
    old_alarm = make_event(FLEET[0].account, 120, device_time=1, source="jt808", position=(22.0, 114.0),
                           received_at_ms=now - age)
    recent = make_event(FLEET[0].account, 0, device_time=2, source="jt808", received_at_ms=now - 100 * DAY_MS)
    log.append([old_position, old_alarm, recent])
    assert log.purge(retention, now=now) == 1
    assert [s.event.code for s in log.events()] == [120, 0]
    log.close()
    assert verify(tmp_path / "events.db").ok
