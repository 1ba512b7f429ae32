"""Connection limits (issue 11, 3), pushed past each one on loopback against a real
gateway, with the limits set small in its config so every test stays bounded.
Close times are printed (pytest -s), never asserted: bench/conn_flood.py measures
them at scale."""
import asyncio
import io
import json
import logging
import os
import resource
import socket
import time

import aiohttp
import pytest

from gateway import config as config_module, logs, netlimits
from gateway.app import Gateway
from protocols import dc09
from tests.gateway.helpers import RawClient, center_config, wait_for
from tests.support.netclient import closed_by_server, trickle
from tests.support.ports import free_port


def null(seq, account="1003"):
    """A plain link test from the plain-text account: authenticated as far as a
    plain account can be, and answered without touching the store."""
    return dc09.encode(dc09.Message("NULL", seq=seq, account=account))


async def connect(gw, local="127.0.0.1"):
    return await asyncio.open_connection("127.0.0.1", gw.receiver.address[1], local_addr=(local, 0))




async def acked(reader, writer, seq, account="1003"):
    writer.write(null(seq, account))
    await writer.drain()
    frames = dc09.FrameReader()
    while True:
        data = await asyncio.wait_for(reader.read(4096), 10)
        assert data, "closed instead of answering"
        for frame in frames.feed(data):
            return dc09.decode(frame).token == "ACK"


def closed(gw, reason):
    return gw.metrics.render().count('jifang_net_closed_total{listener="dc09",reason="%s"} 1' % reason) == 1


def refused(gw, reason, listener="dc09"):
    for line in gw.metrics.render().splitlines():
        if line.startswith('jifang_net_refused_total{listener="%s",reason="%s"}' % (listener, reason)):
            return int(line.split()[-1])
    return 0


# ---------------------------------------------------------------- timeouts

async def test_a_connection_that_sends_nothing_or_half_a_frame_is_closed(tmp_path):
    cfg = center_config(tmp_path, first_frame_timeout_seconds=0.5, idle_timeout_seconds=30)
    async with Gateway(cfg) as gw:
        started = time.monotonic()
        silent_reader, _ = await connect(gw)
        assert await closed_by_server(silent_reader)
        silent_s = time.monotonic() - started
        # half a frame, then one byte at a time: trickling does not extend the deadline
        reader, writer = await connect(gw)
        frame = null(1)
        writer.write(frame[:10])
        started = time.monotonic()
        await trickle(reader, writer, frame[10:-1])
        assert await closed_by_server(reader)
        partial_s = time.monotonic() - started
        print("closed after %.2f s silent, %.2f s half a frame (first_frame_timeout 0.5 s)" % (silent_s, partial_s))
        assert closed(gw, "no_frame") and closed(gw, "partial_frame")


async def test_a_connection_idle_between_frames_is_closed_and_nak_frames_keep_none_open(tmp_path):
    cfg = center_config(tmp_path, first_frame_timeout_seconds=0.5, idle_timeout_seconds=1.5)
    async with Gateway(cfg) as gw:
        reader, writer = await connect(gw)
        assert await acked(reader, writer, 1)
        started = time.monotonic()
        assert await closed_by_server(reader)
        print("closed %.2f s after its last frame (idle_timeout 1.5 s)" % (time.monotonic() - started))
        assert closed(gw, "idle")
        # frames that only earn NAKs are no progress: closed at first_frame_timeout
        reader, writer = await connect(gw)
        nak_frames = 0
        while not reader.at_eof() and nak_frames < 200:
            try:
                writer.write(null(2, account="9999"))       # unknown account: NAK
                await writer.drain()
                data = await asyncio.wait_for(reader.read(4096), 10)
            except ConnectionError:
                break
            if not data:
                break
            nak_frames += 1
            await asyncio.sleep(0.05)
        assert nak_frames < 200 and closed(gw, "no_frame")


def test_deadline_rules():
    now = [0.0]
    d = netlimits.Deadline(first=30, idle=600, clock=lambda: now[0])
    assert d.when == 30 and d.reason == "no_frame"
    now[0] = 10
    d.progress(0, pending=True)                 # half a frame
    assert d.when == 30                         # from the connection, not later
    now[0] = 20
    d.progress(1, pending=False)                # a frame completed
    assert d.when == 620 and d.reason == "idle"
    now[0] = 100
    d.progress(0, pending=True)                 # a new frame starts...
    now[0] = 129
    d.progress(0, pending=True)                 # ...and trickles
    assert d.when == 130 and d.reason == "partial_frame"
    d.progress(1, pending=False)
    assert d.when == 729


# ---------------------------------------------------------------- connection counts

async def test_per_address_limit_counts_only_connections_not_yet_authenticated(tmp_path):
    cfg = center_config(tmp_path, max_connections_per_address=3)
    cfg.http_listen = ("127.0.0.1", free_port())
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as http:
        silent = [await connect(gw) for _ in range(3)]
        await wait_for(lambda: len(gw.receiver.connections) == 3, what="3 connections")
        reader, _ = await connect(gw)                       # the 4th from the same address
        assert await closed_by_server(reader)
        assert refused(gw, "per_address") == 1
        # one of them authenticates: it no longer counts, another may connect
        assert await acked(*silent[0], 1)
        reader, writer = await connect(gw)
        assert await acked(reader, writer, 2)
        # one host hitting its own limit does not make the node unhealthy
        async with http.get("http://127.0.0.1:%d/healthz" % gw.ops.address[1]) as r:
            assert r.status == 200
        for _, w in silent + [(reader, writer)]:
            w.close()


async def test_total_limit_keeps_a_reserve_for_known_panels_and_healthz_says_degraded(tmp_path):
    cfg = center_config(tmp_path, max_connections=6, reserved_connections=2, max_connections_per_address=100)
    cfg.http_listen = ("127.0.0.1", free_port())
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as http:
        base = "http://127.0.0.1:%d/healthz" % gw.ops.address[1]
        known = await connect(gw, "127.0.0.2")              # a panel that has reported before
        assert await acked(*known, 1)
        flood = [await connect(gw, "127.0.0.3") for _ in range(3)]   # unknown: up to 6 - 2
        await wait_for(lambda: len(gw.receiver.connections) == 4, what="4 connections")
        reader, _ = await connect(gw, "127.0.0.3")
        assert await closed_by_server(reader)
        assert refused(gw, "reserved") == 1
        async with http.get(base) as r:
            body = await r.json()
        assert r.status == 503 and body["status"] == "degraded"
        assert any("reserved for known clients" in p for p in body["problems"]), body
        # the known panel still gets in, into the reserve, and its alarm is ACKed
        second = await connect(gw, "127.0.0.2")
        assert await acked(*second, 2)
        third = await connect(gw, "127.0.0.2")
        assert await acked(*third, 3)
        reader, _ = await connect(gw, "127.0.0.2")          # 7th: past the total, even known
        assert await closed_by_server(reader)
        assert refused(gw, "total") == 1
        async with http.get(base) as r:
            assert any("connection limit reached (6)" in p for p in (await r.json())["problems"])
        for _, w in [known, second, third] + flood:
            w.close()


async def test_a_client_that_never_reads_is_cut(tmp_path):
    cfg = center_config(tmp_path, max_output_bytes=512, socket_send_buffer_bytes=4096,
                        first_frame_timeout_seconds=1, max_frames_per_second=1e6, frame_burst=10**6)
    async with Gateway(cfg) as gw:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect: the window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", gw.receiver.address[1]))
        reader, writer = await asyncio.open_connection(sock=sock)
        batch = b"".join(null(i % 9999 + 1) for i in range(100))
        sent = 0
        started = time.monotonic()
        try:
            while sent < 20000 and not closed(gw, "slow_reader"):    # answers are never read
                writer.write(batch)
                await writer.drain()
                sent += 100
                await asyncio.sleep(0)
        except ConnectionError:
            pass
        await wait_for(lambda: closed(gw, "slow_reader"), what="the slow reader cut")
        print("cut after %d link tests sent, %.2f s, answers unread" % (sent, time.monotonic() - started))
        assert sent < 20000
        writer.close()


async def test_udp_datagrams_past_the_in_flight_limit_are_dropped(tmp_path):
    cfg = center_config(tmp_path, udp_max_in_flight=4, udp_max_in_flight_per_address=3, udp_reserved_in_flight=1)
    async with Gateway(cfg) as gw:
        protocol = gw.receiver.udp_protocol
        frame = dc09.encode(dc09.Message("ADM-CID", seq=1, account="1003", data="#1003|1130 01 001"))
        # the transport hands datagrams over one by one, without waiting for their tasks
        for i in range(5):
            protocol.datagram_received(frame, ("127.0.0.9", 4000 + i))
        assert len(protocol.tasks) == 3 and refused(gw, "per_address", "dc09/udp") == 2
        protocol.datagram_received(frame, ("127.0.0.10", 4000))     # unknown: the reserve is not for it
        assert len(protocol.tasks) == 3 and refused(gw, "reserved", "dc09/udp") == 1
        gw.receiver.udp_limiter.mark_known("127.0.0.11")             # as after an authenticated datagram
        gw.receiver.udp_limiter.mark_known("127.0.0.12")
        protocol.datagram_received(frame, ("127.0.0.11", 4000))     # known: takes the reserve
        protocol.datagram_received(frame, ("127.0.0.12", 4000))     # past the total, even known
        assert len(protocol.tasks) == 4 and refused(gw, "total", "dc09/udp") == 1
        assert any("dc09/udp" in reason for reason in gw.degraded())
        await wait_for(lambda: not protocol.tasks, what="datagrams handled")
        assert len(await gw.store.events()) == 1                # the same event, recorded once


def test_limiter_units():
    limiter = netlimits.ConnectionLimiter("t", max_total=3, max_per_address=2, reserved=1)
    a = limiter.admit("a")
    b = limiter.admit("a")
    assert limiter.admit("a") is None                      # per address
    a.promote()                                            # authenticated: "a" is known
    c = limiter.admit("a")
    assert c is not None and limiter.in_use == 3
    assert limiter.admit("b") is None                      # total
    b.release()
    assert limiter.admit("b") is None                      # only the reserve left: "b" unknown
    d = limiter.admit("a")                                 # "a" known: takes the reserve
    assert d is not None
    for t in (a, c, d, d):                                 # release is idempotent
        t.release()
    assert limiter.in_use == 0 and not limiter.unauthenticated
    assert {r for r in limiter.counts} == {("refused", "per_address"), ("refused", "total"),
                                           ("refused", "reserved")}
    assert len(limiter.degraded()) == 2                    # total and reserved, not per_address
    known = netlimits.ConnectionLimiter("t", 10, 10, known_addresses=2)
    for address in "xyz":
        known.mark_known(address)
    assert list(known.known) == ["y", "z"]                 # bounded, oldest forgotten


# ---------------------------------------------------------------- accept() out of descriptors

async def test_accept_out_of_file_descriptors_backs_off_and_recovers(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="jifang")
    cfg = center_config(tmp_path, accept_backoff_max_seconds=0.2)
    async with Gateway(cfg) as gw:
        sock = socket.socket()                     # made before descriptors run out
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        probe = os.open(os.devnull, os.O_RDONLY)   # the lowest free descriptor number...
        os.close(probe)
        resource.setrlimit(resource.RLIMIT_NOFILE, (probe, hard))   # ...is now past the limit
        try:
            sock.connect(("127.0.0.1", gw.receiver.address[1]))         # completes in the backlog
            await wait_for(lambda: "EMFILE" in gw.metrics.render() and gw.degraded(), what="accept errors")
            await asyncio.sleep(0.5)
            errors = [line for line in gw.metrics.render().splitlines()
                      if line.startswith("jifang_net_accept_errors_total")]
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        print("accept errors while out of descriptors for ~0.5 s:", errors)
        assert any("accept" in reason for reason in gw.degraded())
        # descriptors are back: the waiting connection is accepted and answered
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        assert await acked(reader, writer, 1)
        assert any("accept() failed" in r.getMessage() for r in caplog.records)
        writer.close()


# ---------------------------------------------------------------- logs

def test_asyncio_errors_are_json_lines_and_floods_are_summed_up():
    stream = io.StringIO()
    handler = logs.setup("INFO", [], "asc", stream=stream)
    now = [0.0]
    handler.clock = lambda: now[0]
    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(logs.loop_exception_handler)
        for i in range(1000):
            try:
                raise OSError(24, "Too many open files")
            except OSError as exc:
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": exc, "socket": "<socket %d>" % i})
        logging.getLogger("asyncio").warning("a warning of asyncio's own")
        now[0] += logs.RATE_INTERVAL + 1
        logs.flush_suppressed()
    finally:
        loop.close()
        logs.teardown(handler)
    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]           # every line is one JSON object
    print("1000 asyncio errors -> %d lines" % len(lines))
    accept = [e for e in entries if e["msg"].startswith("socket.accept()")]
    assert len(accept) == logs.RATE_BURST + 1
    assert "Traceback" in accept[0]["exception"] and accept[0]["asyncio_socket"] == "'<socket 0>'"
    assert accept[-1]["suppressed"] == 1000 - logs.RATE_BURST and "<socket 999>" in accept[-1]["asyncio_socket"]
    assert any(e["logger"] == "asyncio" for e in entries)    # other libraries' records too


# ---------------------------------------------------------------- config

def test_every_limit_is_a_config_key(tmp_path):
    cfg = center_config(tmp_path, max_connections=10, max_connections_per_address=2, reserved_connections=3,
                        first_frame_timeout_seconds=5, idle_timeout_seconds=60, max_output_bytes=1024,
                        accept_backoff_max_seconds=1, known_addresses=50, socket_send_buffer_bytes=8192,
                        udp_max_in_flight=8, udp_max_in_flight_per_address=2, udp_reserved_in_flight=1)
    t, u = cfg.receiver_limits, cfg.udp_limits
    assert (t.max_connections, t.max_per_address, t.reserved, t.first_frame_timeout, t.idle_timeout,
            t.max_output, t.accept_backoff_max, t.known_addresses, t.send_buffer) == (10, 2, 3, 5, 60, 1024, 1, 50, 8192)
    assert (u.max_connections, u.max_per_address, u.reserved) == (8, 2, 1)
    defaults = center_config(tmp_path).receiver_limits
    assert (defaults.max_connections, defaults.max_per_address, defaults.reserved,
            defaults.first_frame_timeout, defaults.idle_timeout) == (2000, 32, 200, 30, 600)
    with pytest.raises(config_module.ConfigError, match="reserved_connections"):
        center_config(tmp_path, max_connections=10, reserved_connections=10)


# ---------------------------------------------------------------- frame rate

def throttled(gw):
    return metric_value(gw, 'jifang_net_throttled_total{listener="dc09",reason="frame_rate"}')


def metric_value(gw, prefix):
    for line in gw.metrics.render().splitlines():
        if line.startswith(prefix):
            return int(line.split()[-1])
    return 0


async def read_answers(reader, n):
    frames, got = dc09.FrameReader(), []
    while len(got) < n:
        data = await asyncio.wait_for(reader.read(65536), 20)
        assert data, "closed"
        got += frames.feed(data)
    return got


async def test_frames_anyone_can_make_are_slowed_past_the_rate_encrypted_ones_never(tmp_path):
    from tests.gateway.helpers import PANEL_KEY
    cfg = center_config(tmp_path, max_frames_per_second=50, frame_burst=10)
    async with Gateway(cfg) as gw:
        reader, writer = await connect(gw)
        writer.write(b"".join(null(i + 1) for i in range(40)))       # plain link tests, past the burst
        started = time.monotonic()
        answers = await read_answers(reader, 40)
        writer.write(null(41))                         # read only once the 30 over the burst are paid
        answers += await read_answers(reader, 1)
        print("41 plain frames at a rate of 50/s, burst 10: answered in %.2f s" % (time.monotonic() - started))
        assert len(answers) == 41 and all(dc09.decode(a).token == "ACK" for a in answers)   # slowed, none dropped
        assert throttled(gw) >= 1
        before = throttled(gw)
        reader, writer = await connect(gw, "127.0.0.5")
        now = dc09.timestamp_now()
        writer.write(b"".join(dc09.encode(dc09.Message("NULL", seq=i + 1, account="1001", timestamp=now), PANEL_KEY)
                              for i in range(40)))
        answers = await read_answers(reader, 40)
        assert all(dc09.decode(a, PANEL_KEY).token == "ACK" for a in answers)
        assert throttled(gw) == before                               # proven by the key: never slowed


def test_frame_rate_bucket():
    now = [0.0]
    bucket = netlimits.FrameRate(rate=10, burst=5, clock=lambda: now[0])
    assert bucket.delay(5) == 0
    assert bucket.delay(2) == 0.2                    # 2 over: 0.2 s at 10/s
    now[0] = 1.0
    assert bucket.delay(3) == 0                      # refilled (to the burst, no more)
