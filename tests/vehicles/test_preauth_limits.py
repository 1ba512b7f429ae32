"""Issue 11 §4: what a JT/T 808 connection may cost the center before and after
it authenticates. Attacks on loopback, bounded in count and time; every limit
is pushed past and must bite."""
from datetime import datetime, timedelta

import pytest

from gateway.config import ConfigError
from gateway.vehicles import config as vehicles_config
from gateway.vehicles.server import SessionLimits
from gateway.vehiclesim import Terminal, TerminalError
from protocols import jt808
from tests.vehicles.support import ESCORT, HAZMAT, Recorder, center, terminal, wait_for

T0 = datetime(2026, 11, 23, 18, 0, 0, tzinfo=jt808.GMT8)
KB = b"\xA5" * 1000


def subpackage(t, key, total, index):
    """Packet `index` of `total` of a message 0x0900 + key (1000-byte bodies)."""
    return jt808.Message(0x0900 + key, t.phone, jt808.Raw(KB), t.next_flow(), t.version, (total, index))


async def answers_then_closed(t, frames):
    """Send each frame; the platform's results, until it closes the link."""
    results = []
    for msg in frames:
        try:
            results.append((await t.call(msg, timeout=5)).result)
        except TerminalError:
            break
    return results


async def test_unauthenticated_subpackage_flood_is_refused_closed_and_holds_nothing():
    """The attack of the issue: 10 connections that never authenticate, each
    sending subpackages of many messages. Each packet is answered "failure"
    (result 1, not 0 as before), nothing is held, and every connection is closed
    after unauthenticated_max_refused (default 3) frames."""
    limit = SessionLimits().unauthenticated_max_refused
    async with center(Recorder().submit) as server:
        flood = [Terminal("1380000%04d" % i, "X") for i in range(10)]
        for t in flood:
            await t.connect("127.0.0.1", server.port)
        for t in flood:
            frames = [subpackage(t, key, 255, 1) for key in range(64)]
            results = await answers_then_closed(t, frames)
            assert results == [1] * limit
            await wait_for(lambda: not t.connected, what="flooding connection closed")
            assert server.reassembly_bytes == 0
        await wait_for(lambda: not server.sessions, what="every flooding session gone")
        assert server.refused["subpackage before authentication"] == 10 * limit
        assert server.closed["unauthenticated_refused"] == 10
        for t in flood:
            await t.close()


async def test_only_register_authenticate_and_heartbeat_before_authentication():
    rec = Recorder()
    async with center(rec.submit) as server:
        async with terminal(server, ESCORT, login=False) as t:
            assert await t.heartbeat() == 0                       # allowed, answered, changes nothing
            assert not server.online(ESCORT.account)
            assert await t.report(t.position(T0)) == 1            # a position: refused
            assert (await t.call(t.message(0x0704, jt808.Batch(1, [t.position(T0)])))).result == 1
            assert server.refused["message 0x0200 before authentication"] == 1
            assert t.connected                                    # 2 refused: still below the limit
            result, code = await t.register()                     # a terminal may still log in
            assert result == 0 and await t.authenticate(code) == 0
            assert await t.report(t.position(T0)) == 0
        assert len(rec.events) == 1


async def test_refused_registrations_count_towards_the_close():
    """Trying registrations for vehicles not in the registry is refused frames too."""
    async with center(Recorder().submit, limits=SessionLimits(unauthenticated_max_refused=2)) as server:
        async with terminal(server, ESCORT, login=False) as t:
            t.phone = "13999999999"
            assert (await t.register())[0] == 2
            assert (await t.register())[0] == 2
            await wait_for(lambda: not t.connected, what="link closed after 2 refused registrations")
        assert server.closed["unauthenticated_refused"] == 1


async def test_connection_that_never_authenticates_is_closed_after_the_login_timeout():
    async with center(Recorder().submit, limits=SessionLimits(login_timeout=1)) as server:
        async with terminal(server, ESCORT, login=False) as idle, terminal(server, HAZMAT) as real:
            await wait_for(lambda: not idle.connected, timeout=10, what="idle unauthenticated link closed")
            assert server.closed["login_timeout"] == 1
            assert real.connected and await real.heartbeat() == 0   # an authenticated one is not touched


async def test_authenticated_session_over_its_reassembly_bounds_is_refused_with_a_count():
    limits = SessionLimits(reassembly_session_bytes=8 * 1024, reassembly_max_messages=2, reassembly_max_packets=64)
    async with center(Recorder().submit, limits=limits) as server, terminal(server, ESCORT) as t:
        # two messages at once are joined, a third is refused (nothing evicted)
        assert [(await t.call(subpackage(t, key, 2, 1))).result for key in (1, 2, 3)] == [0, 0, 1]
        # completing them gives their bytes back (0x0901/0x0902 are then "unsupported")
        assert [(await t.call(subpackage(t, key, 2, 2))).result for key in (1, 2)] == [3, 3]
        assert server.reassembly_bytes == 0
        # packets of one message: 8 KiB holds 6 of (1000 + 256 overhead), the 7th is over
        results = [(await t.call(subpackage(t, 0, 64, i))).result for i in range(1, 10)]
        assert results == [0] * 6 + [1] * 3
        assert server.refused["subpackage over a reassembly limit"] == 4
        assert server.reassembly_bytes == 6 * 1256
        # more packets than a message may have: a bad message
        assert (await t.call(subpackage(t, 0, 65, 1))).result == 2
        assert server.refused["subpackage invalid"] == 1
        assert t.connected and await t.heartbeat() == 0     # refused packets, not a refused terminal
    await wait_for(lambda: server.reassembly_bytes == 0, what="memory given back when the session went")


async def test_reassembly_is_bounded_across_sessions_and_expires():
    limits = SessionLimits(reassembly_session_bytes=8 * 1024, reassembly_total_bytes=9 * 1024,
                           reassembly_timeout=1)
    async with center(Recorder().submit, limits=limits) as server:
        async with terminal(server, ESCORT) as a, terminal(server, HAZMAT) as b:
            assert [(await a.call(subpackage(a, 0, 64, i))).result for i in range(1, 7)] == [0] * 6
            # b is within its own bound but the total (9 KiB) is reached
            assert [(await b.call(subpackage(b, 0, 64, i))).result for i in range(1, 4)] == [0, 1, 1]
            assert server.reassembly_bytes <= limits.reassembly_total_bytes
            # a partial message silent past reassembly_timeout is dropped by the watchdog
            await wait_for(lambda: server.reassembly_bytes == 0, timeout=10, what="partial messages expired")
            assert (await b.call(subpackage(b, 0, 64, 1))).result == 0


async def test_whole_fragmented_batch_still_arrives_within_the_default_bounds():
    """The bounds leave the real use alone: a 0x0704 back-fill in subpackages."""
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, ESCORT, version=2019) as t:
        positions = [t.position(T0 + timedelta(seconds=i)) for i in range(200)]
        assert await t.send_fragmented(0x0704, jt808.Batch(1, positions), size=500) == 0
        assert len(rec.events) == 200 and server.reassembly_bytes == 0


def test_limit_keys_defaults_and_range():
    base = {"listen": "127.0.0.1:17808", "auth_secret": "0123456789abcdef0123"}
    vc = vehicles_config.from_dict({"jt808": dict(base)})
    assert vc.jt808.limits == SessionLimits()
    vc = vehicles_config.from_dict({"jt808": dict(base, login_timeout_seconds=5, unauthenticated_max_refused=1,
                                                  reassembly_session_bytes=65536, reassembly_total_bytes=1 << 20,
                                                  reassembly_max_messages=2, reassembly_max_packets=32,
                                                  reassembly_timeout_seconds=10)})
    assert vc.jt808.limits == SessionLimits(5, 1, 2, 32, 65536, 1 << 20, 10)
    for key, value in (("login_timeout_seconds", 0), ("unauthenticated_max_refused", 0),
                       ("reassembly_total_bytes", 8192)):
        with pytest.raises(ConfigError) as e:
            vehicles_config.from_dict({"jt808": dict(base, **{key: value})})
        assert "jt808.%s" % key in str(e.value)
