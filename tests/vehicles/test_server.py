"""The JT/T 808 server: registration, authentication, reports, alarms, acks, offline."""
import asyncio
from datetime import datetime, timedelta

import pytest

from protocols import jt808
from gateway.vehicles.codes import OFFLINE_CODE, PANIC_CODE
from gateway.vehicles.server import SessionLimits
from tests.vehicles.support import ESCORT, HAZMAT, Recorder, center, terminal, wait_for

T0 = datetime(2026, 11, 23, 18, 0, 0, tzinfo=jt808.GMT8)


@pytest.mark.parametrize("version", [2013, 2019])
async def test_register_authenticate_report_both_editions(version):
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, ESCORT, version=version) as t:
        assert await t.heartbeat() == 0
        assert await t.report(t.position(T0, speed=42.5, mileage_km=1234.5, satellites=9)) == 0
        [ev] = rec.events
        assert ev.account == ESCORT.account and ev.event_class == "telemetry"
        assert ev.position == (t.lat, t.lon)
        assert ev.device_time == int(T0.timestamp())
        assert ev.values["speed_kmh"] == 42.5 and ev.values["mileage_km"] == 1234.5 and ev.values["satellites"] == 9
        assert server.online(ESCORT.account)


async def test_auth_code_is_real():
    """Unknown vehicle and wrong terminal refused with the standard's codes; a
    wrong authentication code refused and the link closed."""
    rec = Recorder()
    async with center(rec.submit) as server:
        async with terminal(server, ESCORT, login=False) as t:
            t.phone = "13999999999"
            assert (await t.register())[0] == 2                   # no such vehicle
        async with terminal(server, HAZMAT, login=False, terminal_id="OTHER01") as t:
            assert (await t.register())[0] == 4                   # no such terminal
        async with terminal(server, ESCORT, login=False) as t:
            t.plate = "粤B00000"                                  # known SIM, other vehicle's plate
            assert (await t.register())[0] == 2
        async with terminal(server, ESCORT, login=False) as t:
            result, code = await t.register()
            assert result == 0 and len(code) == 32                # 128 random bits (tests/vehicles/test_takeover.py)
            assert await t.authenticate("0" * 32) == 1
            await wait_for(lambda: not t.connected, what="link closed after a wrong code")
        async with terminal(server, ESCORT, login=False) as t:
            assert await t.report() == 1                          # not authenticated: nothing accepted
    assert rec.events == []


async def test_emergency_alarm_with_position_ack_and_restore():
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, ESCORT) as t:
        assert await t.press_panic(T0) == 0
        [alarm] = rec.of(PANIC_CODE)
        assert alarm.event_class == "alarm" and alarm.category == "panic" and alarm.priority == 0
        assert alarm.position == (t.lat, t.lon) and alarm.qualifier == 1
        # The bit stays set in every report until acknowledged: no second alarm.
        assert await t.report(t.position(T0 + timedelta(seconds=1))) == 0
        assert len(rec.of(PANIC_CODE)) == 1
        assert await server.acknowledge_alarm(ESCORT.account)
        ack = next(m for m in t.received if m.msg_id == 0x8203)
        assert ack.body.alarm == 1 and ack.body.alarm_flow != 0
        assert t.alarm == 0
        assert await t.report(t.position(T0 + timedelta(seconds=2))) == 0
        assert [e.qualifier for e in rec.of(PANIC_CODE)] == [1, 3]


async def test_emergency_without_fix_uses_last_known_position():
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, ESCORT) as t:
        await t.report(t.position(T0))
        t.alarm = 1
        no_fix = jt808.position(0, 0, T0 + timedelta(seconds=5), alarm=1, status=())
        assert await t.report(no_fix) == 0
        [alarm] = rec.of(PANIC_CODE)
        assert alarm.position == (t.lat, t.lon) and alarm.values["position_from"] == "last fix"


async def test_other_alarm_bits_become_their_own_events():
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, HAZMAT) as t:
        t.alarm = (1 << 8) | (1 << 1) | (1 << 29)      # power cut, overspeed, collision
        await t.report(t.position(T0))
        by_code = {e.code: e for e in rec.events if e.code}
        assert by_code[301].event_class == "trouble" and by_code[301].zone == 8
        assert by_code[901].name == "Vehicle overspeed" and by_code[901].event_class == "other"
        assert 929 in by_code and PANIC_CODE not in by_code


async def test_batch_subpackages_and_unsupported():
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, ESCORT, version=2019) as t:
        positions = [t.position(T0 + timedelta(seconds=i)) for i in range(60)]
        assert await t.send_fragmented(0x0704, jt808.Batch(1, positions), size=300) == 0
        times = [e.device_time for e in rec.events]
        assert times == [int((T0 + timedelta(seconds=i)).timestamp()) for i in range(60)]
        assert (await t.call(t.message(0x0900, jt808.Raw(b"\x01")))).result == 3


async def test_reconnect_replaces_session_and_silence_goes_offline():
    rec = Recorder()
    # the liveness probe of the old link is kept well inside the session timeout
    async with center(rec.submit, session_timeout=0.5, limits=SessionLimits(liveness_probe=0.1)) as server:
        async with terminal(server, HAZMAT) as first:
            await first.report(first.position(T0))
            await first.go_silent()          # its network dropped: the old link is half-dead
            async with terminal(server, HAZMAT) as second:
                # the old link did not answer the liveness probe: replaced and closed
                await wait_for(lambda: len(server.sessions) == 1, what="old session closed")
                assert await second.report(second.position(T0 + timedelta(seconds=1))) == 0
                await wait_for(lambda: rec.of(OFFLINE_CODE), timeout=5, what="offline event")
                [offline] = rec.of(OFFLINE_CODE)
                assert offline.event_class == "trouble" and offline.position == (second.lat, second.lon)
                await wait_for(lambda: not second.connected, what="silent session closed")
        async with terminal(server, HAZMAT):
            await wait_for(lambda: len(rec.of(OFFLINE_CODE)) == 2, what="back online")
            assert [e.qualifier for e in rec.of(OFFLINE_CODE)] == [1, 3]


async def test_uncommitted_report_is_not_answered():
    async def failing_submit(event):
        raise OSError("disk full")

    async with center(failing_submit) as server, terminal(server, ESCORT) as t:
        with pytest.raises(asyncio.TimeoutError):
            await t.report(t.position(T0), timeout=0.5)


async def test_an_sos_is_acknowledged_without_waiting_for_queued_positions():
    """Under load positions queue behind thousands of others; the SOS report's
    answer waits only for the alarm's commit."""
    rec, positions_flow = Recorder(), asyncio.Event()

    async def slow_routine_submit(event):
        if event.priority != 0:
            await positions_flow.wait()          # the position queue is backed up
        return await rec.submit(event)

    async with center(slow_routine_submit) as server, terminal(server, ESCORT) as t:
        assert await t.press_panic(T0) == 0
        assert [e.code for e in rec.events] == [PANIC_CODE]
        positions_flow.set()
        await wait_for(lambda: len(rec.events) == 2, what="the position committed after")


@pytest.mark.parametrize("version", [2013, 2019])
async def test_lost_subpackages_are_asked_for_again(version):
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, HAZMAT, version=version) as t:
        positions = [t.position(T0 + timedelta(seconds=i)) for i in range(40)]
        assert await t.send_fragmented(0x0704, jt808.Batch(1, positions), size=200, lose={2, 4}) == 0
        [request] = [m for m in t.received if m.msg_id == 0x8003]
        assert request.version == version
        assert len(rec.events) == 40 and rec.events[-1].device_time == int((T0 + timedelta(seconds=39)).timestamp())
