"""Issue 11 §3 for the JT/T 808 center: the connection limits of gateway/netlimits.py
on its listener, each pushed past on loopback against a real gateway whose config
sets them small. Loopback addresses 127.0.0.2.. play distinct hosts. Close times
are printed (pytest -s), never asserted."""
import asyncio
import socket
import time

import aiohttp
import pytest

from gateway import config as config_module
from gateway.app import Gateway
from gateway.vehicles.server import net_defaults
from gateway.vehiclesim import Terminal
from protocols import jt808
from tests.gateway.helpers import address, wait_for
from tests.support.netclient import closed_by_server, trickle
from tests.support.ports import free_port

FLEET = [{"phone": "1380000%04d" % i, "plate": "ZA%05d" % i, "kind": "escort", "terminal_id": "T%05d" % i}
         for i in range(1, 9)]


def fleet_config(tmp_path, **limits):
    return config_module.from_dict({
        "gateway": {"name": "fleet"},
        "store": {"path": str(tmp_path / "fleet.db")},
        "http": {"listen": address(free_port())},
        "jt808": dict({"listen": address(free_port()), "session_timeout_seconds": 60}, **limits),
        "vehicles": {"fleet": FLEET},
    }, tmp_path, "fleet")


def terminal(i):
    v = FLEET[i]
    return Terminal(v["phone"], v["plate"], terminal_id=v["terminal_id"])


def jt808_port(gw):
    return gw.vehicle_center.server.port


def metric(gw, name, reason):
    prefix = '%s{listener="jt808",reason="%s"}' % (name, reason)
    for line in gw.metrics.render().splitlines():
        if line.startswith(prefix):
            return int(line.split()[-1])
    return 0


async def connect(gw, local="127.0.0.1"):
    return await asyncio.open_connection("127.0.0.1", jt808_port(gw), local_addr=(local, 0))


async def healthz(gw, http):
    async with http.get("http://127.0.0.1:%d/healthz" % gw.ops.address[1]) as r:
        return r.status, await r.json()


def undecodable_frame():
    """A frame the splitter passes (delimiters and check byte right) that is no
    message: a 0x0200 header announcing a 100-byte body that is not there."""
    header = b"\x02\x00" + (100).to_bytes(2, "big") + bytes.fromhex("013800000001") + b"\x00\x01"
    return b"\x7e" + jt808.escape(header + bytes([jt808.xor_check(header)])) + b"\x7e"


async def test_silent_half_sent_and_idle_connections_are_closed(tmp_path):
    cfg = fleet_config(tmp_path, first_frame_timeout_seconds=0.5, idle_timeout_seconds=1.5)
    async with Gateway(cfg) as gw:
        started = time.monotonic()
        reader, _ = await connect(gw)
        assert await closed_by_server(reader)
        silent_s = time.monotonic() - started
        # half a frame, then a byte at a time: trickling does not extend the deadline
        reader, writer = await connect(gw)
        frame = jt808.encode_frame(terminal(0).message(0x0002))
        writer.write(frame[:5])
        started = time.monotonic()
        await trickle(reader, writer, frame[5:-1])
        assert await closed_by_server(reader)
        partial_s = time.monotonic() - started
        # a logged-in terminal that goes quiet is closed at idle_timeout
        t = terminal(0)
        await t.login("127.0.0.1", jt808_port(gw))
        started = time.monotonic()
        await wait_for(lambda: not t.connected, what="the idle terminal closed")
        idle_s = time.monotonic() - started
        await t.close()
        print("closed after %.2f s silent, %.2f s half a frame (first_frame_timeout 0.5 s), "
              "%.2f s idle (idle_timeout 1.5 s)" % (silent_s, partial_s, idle_s))
        assert [metric(gw, "jifang_net_closed_total", r) for r in ("no_frame", "partial_frame", "idle")] == [1, 1, 1]


async def test_undecodable_frames_keep_no_connection_open_and_are_slowed(tmp_path):
    cfg = fleet_config(tmp_path, first_frame_timeout_seconds=1, max_frames_per_second=5, frame_burst=5)
    async with Gateway(cfg) as gw:
        reader, writer = await connect(gw)
        sent = 0
        started = time.monotonic()
        try:
            while sent < 1000 and not reader.at_eof():
                writer.write(undecodable_frame() * 10)
                await writer.drain()
                sent += 10
                await asyncio.sleep(0.01)
        except ConnectionError:
            pass
        assert await closed_by_server(reader)
        print("%d undecodable frames sent in %.2f s before the close" % (sent, time.monotonic() - started))
        assert metric(gw, "jifang_net_closed_total", "no_frame") == 1
        assert metric(gw, "jifang_net_throttled_total", "frame_rate") >= 1
        assert gw.vehicle_center.server.frames_bad >= 5
        writer.close()


async def test_per_address_limit_counts_only_terminals_not_logged_in(tmp_path):
    cfg = fleet_config(tmp_path, max_connections_per_address=3)
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as http:
        port = jt808_port(gw)
        waiting = [terminal(i) for i in range(3)]
        for t in waiting:
            await t.connect("127.0.0.1", port, local_addr=("127.0.0.4", 0))
        await wait_for(lambda: len(gw.vehicle_center.server.sessions) == 3, what="3 connections")
        reader, _ = await connect(gw, "127.0.0.4")              # the 4th from that address
        assert await closed_by_server(reader)
        assert metric(gw, "jifang_net_refused_total", "per_address") == 1
        # one logs in: it no longer counts, so another terminal of that address gets in
        result, waiting[0].auth_code = await waiting[0].register()
        assert result == 0 and await waiting[0].authenticate(waiting[0].auth_code) == 0
        late = terminal(3)
        await late.login("127.0.0.1", port, local_addr=("127.0.0.4", 0))
        assert await late.heartbeat() == 0
        # one host at its own limit does not make the node unhealthy
        assert (await healthz(gw, http))[0] == 200
        for t in waiting + [late]:
            await t.close()


async def test_total_limit_keeps_a_reserve_for_known_addresses_and_healthz_says_degraded(tmp_path):
    cfg = fleet_config(tmp_path, max_connections=6, reserved_connections=2, max_connections_per_address=100)
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as http:
        port = jt808_port(gw)
        known = terminal(0)
        await known.login("127.0.0.1", port, local_addr=("127.0.0.2", 0))   # its address is known from now on
        flood = [await connect(gw, "127.0.0.3") for _ in range(3)]          # unknown: up to 6 - 2
        await wait_for(lambda: len(gw.vehicle_center.server.sessions) == 4, what="4 connections")
        reader, _ = await connect(gw, "127.0.0.3")
        assert await closed_by_server(reader)
        assert metric(gw, "jifang_net_refused_total", "reserved") == 1
        status, body = await healthz(gw, http)
        assert status == 503 and any("jt808: only the 2 slots reserved" in p for p in body["problems"]), body
        # terminals from the known address still get in, into the reserve, and report
        more = [terminal(1), terminal(2)]
        for t in more:
            await t.login("127.0.0.1", port, local_addr=("127.0.0.2", 0))
            assert await t.report() == 0
        reader, _ = await connect(gw, "127.0.0.2")                          # 7th: past the total
        assert await closed_by_server(reader)
        assert metric(gw, "jifang_net_refused_total", "total") == 1
        status, body = await healthz(gw, http)
        assert any("jt808: connection limit reached (6)" in p for p in body["problems"]), body
        for t in [known] + more:
            await t.close()
        for _, w in flood:
            w.close()


async def test_a_terminal_that_never_reads_its_answers_is_cut(tmp_path):
    cfg = fleet_config(tmp_path, max_output_bytes=512, socket_send_buffer_bytes=4096,
                       first_frame_timeout_seconds=1)
    async with Gateway(cfg) as gw:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)      # before connect: the window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", jt808_port(gw)))
        t = terminal(0)
        await t.connect(None, None, sock=sock)
        result, code = await t.register()
        assert result == 0 and await t.authenticate(code) == 0
        await t.go_silent()                                  # reads nothing from now on
        beats = b"".join(jt808.encode_frame(t.message(0x0002)) for _ in range(100))
        sent, started = 0, time.monotonic()
        try:
            while sent < 200000 and not metric(gw, "jifang_net_closed_total", "slow_reader"):
                t.writer.write(beats)
                await t.writer.drain()
                sent += 100
                await asyncio.sleep(0.005)       # the center (same loop) keeps up with the reading
        except ConnectionError:
            pass
        await wait_for(lambda: metric(gw, "jifang_net_closed_total", "slow_reader") == 1, what="the slow reader cut")
        print("cut after %d heartbeats sent, %.2f s, answers unread" % (sent, time.monotonic() - started))
        assert sent < 200000 and not gw.vehicle_center.server.sessions
        await t.close()


def test_every_listener_limit_is_a_jt808_key(tmp_path):
    cfg = fleet_config(tmp_path, max_connections=10, max_connections_per_address=2, reserved_connections=3,
                       first_frame_timeout_seconds=5, idle_timeout_seconds=60, max_output_bytes=1024,
                       accept_backoff_max_seconds=1, known_addresses=50, socket_send_buffer_bytes=8192,
                       max_frames_per_second=7, frame_burst=9)
    n = cfg.vehicles.jt808.net_limits
    assert (n.max_connections, n.max_per_address, n.reserved, n.first_frame_timeout, n.idle_timeout, n.max_output,
            n.accept_backoff_max, n.known_addresses, n.send_buffer, n.frame_rate, n.frame_burst) \
        == (10, 2, 3, 5, 60, 1024, 1, 50, 8192, 7, 9)
    assert n.read_limit == net_defaults().read_limit == jt808.MAX_FRAME * 2
    d = fleet_config(tmp_path).vehicles.jt808.net_limits
    assert (d.max_connections, d.max_per_address, d.reserved, d.first_frame_timeout, d.idle_timeout) \
        == (12000, 1000, 1000, 30, 600)
    with pytest.raises(config_module.ConfigError, match="jt808.reserved_connections"):
        fleet_config(tmp_path, max_connections=10, reserved_connections=10)
