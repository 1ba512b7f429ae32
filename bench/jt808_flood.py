"""Subpackage flood on the JT/T 808 center (issue 11 §4), RSS before and after:

    .venv/bin/python bench/jt808_flood.py [--connections 10] [--keys 64] [--packets 255]

A child process runs the center's JT/T 808 server (default SessionLimits, one
vehicle in its registry, events kept in memory) on a free loopback port. This
process then floods it as the issue's attacker did: `--connections`
connections that never authenticate, each writing `--keys` messages x
`--packets` subpackages of 1 KB without waiting for answers (what was 272 MB
held before the fix); then one authenticated terminal does the same, waiting for
each answer. Prints the center's RSS (from /proc) before, during and after each
flood, what was refused, and the subpackage bytes it held. Bounded: at most
connections x keys x packets KB are sent, and the run stops by itself.
"""
import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocols import jt808  # noqa: E402
from gateway.vehiclesim import Terminal, TerminalError  # noqa: E402

PHONE, PLATE = "13800000001", "粤B12345"
BODY = b"\xA5" * 1000


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def serve():
    """The child: a center that prints its port, then its counters on each line it reads."""
    from gateway.vehicles.registry import Registry, Vehicle
    from gateway.vehicles.server import JT808Server

    async def submit(event):
        return event

    server = JT808Server(Registry([Vehicle(phone=PHONE, plate=PLATE)], "bench-flood-secret-0123"), submit)
    await server.start("127.0.0.1", 0)
    print(server.port, flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        print("sessions=%d reassembly_bytes=%d refused=%s closed=%s" % (
            len(server.sessions), server.reassembly_bytes, dict(server.refused), dict(server.closed)), flush=True)
    await server.stop()


def frames(phone, keys, packets, flow0=0):
    flow = flow0
    for key in range(keys):
        for index in range(1, packets + 1):
            flow = (flow + 1) & 0xFFFF
            yield jt808.encode_frame(jt808.Message(0x0900 + key, phone, jt808.Raw(BODY), flow, 2013, (packets, index)))


async def unauthenticated(port, i, keys, packets):
    """Write everything without waiting; returns how many frames went out before the close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        for frame in frames("1390000%04d" % i, keys, packets):
            if writer.is_closing() or reader.at_eof():
                break
            writer.write(frame)
            sent += 1
            if sent % 64 == 0:
                await writer.drain()
                await asyncio.sleep(0)
    except ConnectionError:
        pass
    finally:
        writer.close()
    return sent


async def authenticated(port, keys, packets, before_close):
    t = Terminal(PHONE, PLATE, terminal_id="FLOOD01")
    await t.login("127.0.0.1", port)
    results = {}
    try:
        for key in range(keys):
            for index in range(1, packets + 1):
                msg = jt808.Message(0x0900 + key, t.phone, jt808.Raw(BODY), t.next_flow(), 2013, (packets, index))
                result = (await t.call(msg)).result
                results[result] = results.get(result, 0) + 1
    except TerminalError:
        pass
    finally:
        before_close()
        await t.close()
    return results


async def flood(args):
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    try:
        port = int(child.stdout.readline())

        def counters():
            child.stdin.write("\n")
            child.stdin.flush()
            return child.stdout.readline().strip()

        before = rss_mb(child.pid)
        print("center RSS before: %.1f MB" % before)
        started = time.monotonic()
        sent = await asyncio.gather(*(unauthenticated(port, i, args.keys, args.packets)
                                      for i in range(args.connections)))
        during = rss_mb(child.pid)
        print("%d unauthenticated connections x %d keys x %d packets of 1 KB offered: %d frames written before "
              "the center closed them (%.2f s)" % (args.connections, args.keys, args.packets, sum(sent),
                                                   time.monotonic() - started))
        await asyncio.sleep(0.5)
        print("center RSS after the unauthenticated flood: %.1f MB (during: %.1f MB)" % (rss_mb(child.pid), during))
        print("center: " + counters())
        held = []
        results = await authenticated(port, args.keys, args.packets,
                                      lambda: held.append((rss_mb(child.pid), counters())))
        print("authenticated terminal, same flood: answers %s (0 held, 1 refused over a bound)" % results)
        print("center RSS at the end of it, session still open: %.1f MB" % held[0][0])
        print("center: " + held[0][1])
        await asyncio.sleep(0.5)
        print("center RSS after the authenticated flood and its close: %.1f MB" % rss_mb(child.pid))
        print("center: " + counters())
    finally:
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--keys", type=int, default=64)
    parser.add_argument("--packets", type=int, default=255)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return 0
    if not (1 <= args.connections <= 100 and 1 <= args.keys <= 256 and 2 <= args.packets <= 255):
        parser.error("--connections 1..100, --keys 1..256, --packets 2..255")
    asyncio.run(flood(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
