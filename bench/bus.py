"""The JetStream bus, in one run, on a private 3-node NATS cluster (R3 streams):

    .venv/bin/python bench/bus.py [--alarms 200] [--flood 20000] [--kill-alarms 90]

Prints, each from a real gateway node half (store, pipeline, bus, ingest: the code of
gateway/, tests/support/busnode.py assembles it):
  1. alarm latency from submit (the receiver's call) to the store commit, p50/p99,
     on an idle bus;
  2. the same while a flood of positions is published as fast as this process can
     and ingested into the same store; with the positions/s stored meanwhile;
  3. the worst alarm delay when the NATS node leading the first alarm stream is
     killed with SIGKILL, with one alarm stream (alarm_copies = 1) and with two
     (the default): the figure that made the second copy necessary.
The SQLite store fsyncs every group commit, as in production. Everything listens
on free loopback ports and stops by itself.
"""
import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.bus import LANE_POSITIONS, BusUnavailable  # noqa: E402
from tests.support.busnode import alarm, bus_nodes, position, settings  # noqa: E402
from tests.support.nats import running_nats_cluster  # noqa: E402


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


_SEQ = iter(range(1, 10**9))


async def alarm_latencies(node, count, interval=0.01):
    """Publish->stored for `count` alarms sent one at a time, as panels send them."""
    out = []
    for _ in range(count):
        event = alarm(next(_SEQ))          # a fresh sequence each: never a duplicate of an earlier one
        started = time.monotonic()
        await node.pipeline.submit(event)
        while event.dedup_key not in node.stored_at:
            await asyncio.sleep(0.0005)
        out.append(node.stored_at[event.dedup_key] - started)
        await asyncio.sleep(interval)
    return out


async def idle_and_flood(urls, folder, alarms, flood):
    async with bus_nodes([("bench", folder / "flood.db", settings(urls), True)]) as (node,):
        idle = await alarm_latencies(node, alarms)
        print("alarms, idle bus:            p50 %6.1f ms  p99 %6.1f ms  (%d alarms)" % (
            statistics.median(idle) * 1000, pct(idle, 0.99) * 1000, len(idle)))

        async def flooder(start):
            # 200 publishes in flight: a fleet center's many terminal connections
            for base in range(start, start + flood, 200):
                await asyncio.gather(*(node.pipeline.submit(position(seq)) for seq in range(base, base + 200)))

        before = node.metrics.value("jifang_bus_ingested_total", lane=LANE_POSITIONS)
        began = time.monotonic()
        task = asyncio.create_task(flooder(10_000_000))
        busy = []
        while not task.done() and len(busy) < alarms:
            busy += await alarm_latencies(node, 1)
        await task
        stored = node.metrics.value("jifang_bus_ingested_total", lane=LANE_POSITIONS) - before
        elapsed = time.monotonic() - began
        print("alarms, during a position flood: p50 %6.1f ms  p99 %6.1f ms  (%d alarms; %d positions"
              " stored in %.1f s = %.0f/s)" % (statistics.median(busy) * 1000, pct(busy, 0.99) * 1000,
                                             len(busy), stored, elapsed, stored / elapsed))


async def kill_leader(cluster, folder, copies, count):
    async with bus_nodes([("bench", folder / ("kill%d.db" % copies), settings(cluster.urls, alarm_copies=copies),
                           True)]) as (node,):
        if copies > 1:
            await node.ingest.keep_leaders_apart()
        leader = (await node.ingest.leaders("JIFANG_ALARMS"))[0]
        victim = [n.name for n in cluster.nodes].index(leader)
        delays = []

        async def panel(seq):
            event = alarm(seq)
            started = time.monotonic()
            while True:
                try:
                    await node.pipeline.submit(event)
                    break
                except BusUnavailable:
                    continue
            while event.dedup_key not in node.stored_at:
                await asyncio.sleep(0.001)
            delays.append(node.stored_at[event.dedup_key] - started)

        panels = []
        for seq in range(count):
            if seq == count // 3:
                cluster.kill(victim)
            panels.append(asyncio.create_task(panel(seq)))
            await asyncio.sleep(0.03)
        await asyncio.wait_for(asyncio.gather(*panels), 60)
        print("kill -9 of the alarm stream's leader (%s), %d alarm stream%s: worst alarm delay %.2f s,"
              " p50 %.1f ms, %d/%d stored" % (leader, copies, "s" if copies > 1 else "", max(delays),
                                             statistics.median(delays) * 1000, len(delays), count))
    await asyncio.to_thread(cluster.restart, victim)


async def main(args):
    with tempfile.TemporaryDirectory(prefix="jifang-bus-") as tmp:
        folder = Path(tmp)
        with running_nats_cluster(folder / "nats") as cluster:
            await idle_and_flood(cluster.urls, folder, args.alarms, args.flood)
            for copies in (1, 2):
                await kill_leader(cluster, folder, copies, args.kill_alarms)


if __name__ == "__main__":
    import logging
    logging.basicConfig(level=logging.ERROR)      # the kill makes the client log every reconnect
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, default=200, help="alarms per latency figure")
    parser.add_argument("--flood", type=int, default=20_000, help="positions in the flood")
    parser.add_argument("--kill-alarms", type=int, default=90, help="alarms sent across each NATS node kill")
    asyncio.run(main(parser.parse_args()))
