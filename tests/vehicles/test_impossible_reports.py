"""Issue 11 §6: valid JT/T 808 frames carrying values that cannot be true are
stored as refused reports with their reason, never as positions (map, last fix)
nor fed to the rules; every alarm bit at once is one terminal fault."""
from datetime import datetime, timedelta

import pytest

from gateway.app import Gateway
from gateway.config import ConfigError
from gateway.logreader import LogReader
from gateway.vehicles import config as vehicles_config
from gateway.vehicles.codes import PANIC_CODE, TERMINAL_FAULT_CODE
from gateway.vehicles.registry import Registry
from gateway.vehicles.reports import ReportLimits
from gateway.vehicles.rules import FleetRules, RuleSettings
from protocols import jt808
from tests.gateway.helpers import center_config
from tests.vehicles.support import ESCORT, Recorder, center, terminal

NOW = datetime.now(jt808.GMT8).replace(microsecond=0)


class WatchedRules(FleetRules):
    """The real fleet rules, noting every position they are given."""

    def __init__(self):
        super().__init__(RuleSettings())
        self.seen = []

    def observe(self, vehicle, t, lat, lon, speed, fix):
        self.seen.append((lat, lon, speed))
        return super().observe(vehicle, t, lat, lon, speed, fix)


IMPOSSIBLE = [
    (dict(lat=4294.967295, lon=114.0), "latitude 4294.967295"),
    (dict(lat=91.0, lon=114.0), "latitude 91.0"),
    (dict(lat=22.5, lon=181.0), "longitude 181.0"),
    (dict(lat=22.5, lon=114.0, speed=6553.5), "speed 6553.5 km/h"),
    (dict(lat=22.5, lon=114.0, when=datetime(2099, 1, 1, tzinfo=jt808.GMT8)), "ahead"),
    (dict(lat=22.5, lon=114.0, when=datetime(2000, 1, 1, tzinfo=jt808.GMT8)), "days old"),
]


async def test_impossible_reports_are_stored_refused_never_as_positions(tmp_path):
    rules = WatchedRules()
    async with Gateway(center_config(tmp_path)) as gw, \
            center(gw.pipeline.submit, registry=Registry((ESCORT,)), rules=rules) as server, \
            terminal(server, ESCORT) as t:
        good = t.position(NOW, speed=40.0)
        assert await t.report(good) == 0
        for i, (fields, _) in enumerate(IMPOSSIBLE):
            when = fields.pop("when", NOW + timedelta(seconds=i + 1))
            pos = jt808.position(fields.pop("lat"), fields.pop("lon"), when, speed=fields.pop("speed", 40.0))
            assert await t.report(pos) == 0                     # stored (as refused): not to be sent again
        reader = LogReader(gw.config.store_path)
        await reader.open()
        try:
            on_map = await reader.positions(0)
        finally:
            await reader.close()
        events = [s.event for s in await gw.store.events()]
    assert rules.seen == [(t.lat, t.lon, 40.0)]                  # only the good one reached the rules
    assert [e["position"] for e in on_map] == [[t.lat, t.lon]]   # and the map
    refused = [e for e in events if "refused" in (e.values or {})]
    assert len(refused) == len(IMPOSSIBLE)
    for event, (_, reason) in zip(refused, IMPOSSIBLE):
        assert reason in event.values["refused"] and event.position is None
        assert event.name == "Position report refused" and event.event_class == "telemetry"
    # the impossible dates are not the event's time (retention and dedup need a real one)
    assert all(abs(e.device_time - NOW.timestamp()) < 3600 for e in refused)
    assert server.refused["report with impossible values"] == len(IMPOSSIBLE)


async def test_an_sos_in_an_impossible_report_still_raises_with_the_last_fix():
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, ESCORT) as t:
        await t.report(t.position(NOW))
        t.alarm = 1
        assert await t.report(jt808.position(91.0, 114.0, NOW + timedelta(seconds=1), alarm=1)) == 0
        [panic] = rec.of(PANIC_CODE)
        assert panic.position == (t.lat, t.lon) and panic.values["position_from"] == "last fix"


async def test_every_alarm_bit_at_once_is_one_terminal_fault_and_its_restore():
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, ESCORT) as t:
        assert await t.report(t.position(NOW)) == 0
        for i in (1, 2):                                          # the word stays garbage: still one fault
            assert await t.report(jt808.position(t.lat, t.lon, NOW + timedelta(seconds=i), alarm=0xFFFFFFFF)) == 0
        alarms = [e for e in rec.events if e.code]
        assert [(e.code, e.qualifier, e.event_class) for e in alarms] == [(TERMINAL_FAULT_CODE, 1, "trouble")]
        assert "FFFFFFFF" in alarms[0].name
        assert await t.report(jt808.position(t.lat, t.lon, NOW + timedelta(seconds=3), alarm=1)) == 0
        after = [(e.code, e.qualifier) for e in rec.events if e.code][1:]
        assert after == [(TERMINAL_FAULT_CODE, 3), (PANIC_CODE, 1)]  # fault restored; a real SOS raises


def test_report_limit_keys():
    base = {"listen": "127.0.0.1:17808"}
    assert vehicles_config.from_dict({"jt808": base}).jt808.report_limits == ReportLimits()
    vc = vehicles_config.from_dict({"jt808": dict(base, report_max_speed_kmh=160, report_max_age_days=30,
                                                  report_max_ahead_seconds=600, alarm_burst_bits=8)})
    assert vc.jt808.report_limits == ReportLimits(160, 30, 600, 8)
    with pytest.raises(ConfigError) as e:
        vehicles_config.from_dict({"jt808": dict(base, alarm_burst_bits=40)})
    assert "jt808.alarm_burst_bits" in str(e.value)


async def test_a_lower_speed_limit_refuses_what_the_default_accepts():
    rec = Recorder()
    async with center(rec.submit, report_limits=ReportLimits(max_speed_kmh=120)) as server, \
            terminal(server, ESCORT) as t:
        assert await t.report(t.position(NOW, speed=130.0)) == 0
        assert "speed 130.0 km/h over 120" in rec.events[0].values["refused"]
