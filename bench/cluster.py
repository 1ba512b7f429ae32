"""Embedded single process beside a two-node cluster, in one run, on this machine:

    .venv/bin/python bench/cluster.py [--seconds 8] [--panels 24] [--terminals 40]

Each side is real `jifang gateway` processes with the same receivers (DC-09,
JT/T 808) and a DC-09 forwarder to a 110 center (a jifang gateway in this
process, which also runs the load: simulated panels, gateway/panelsim.py, and
JT/T 808 terminals, gateway/vehiclesim.py):

  embedded   one process, SQLite (WAL, synchronous=FULL): ACK after its commit
  cluster    two node processes, [bus] a private 3-node NATS JetStream cluster (R3
             streams), [store] a private PostgreSQL (fsync and synchronous_commit
             on): ACK after the replicated PubAck

Phases, each --seconds long (link tests half of it):
  link tests every panel sends DC-09 NULLs one after the other: answered/s (what a
             large fleet of panels sends most; no bus, no store)
  alarms     every panel sends alarms one at a time, the next after the ACK (as a
             DC-09 panel does): events/s ACKed
  flood      every terminal reports positions one after the other as fast as
             they are answered, while a few panels send 2 alarms/s each:
             positions/s ACKed and stored, alarm latency p50/p99 (panel send ->
             ACK, and -> stored at 110) under that flood
  kill       panels at 4 alarms/s each; kill -9 of the node holding the 110
             forwarder's lease (the cluster's other node takes over; the embedded
             process is restarted at once, as systemd's Restart=always would):
             the longest silence at 110 around the kill, and the longest a panel
             waited for an ACK
  NATS kill  (cluster) the same load; kill -9 of the NATS node leading the first
             alarm stream, then its restart: silence at 110, longest ACK wait
CPU per component per event: user+system seconds from /proc/PID/stat over the
phase (gateway processes; postgres with its backends; the three nats-servers;
this process: load generator + 110), divided by the events ACKed in the phase.
Everything listens on free loopback ports and stops by itself. Figures depend on
the machine and what else runs on it: read the ratios; the load average is printed.
"""
import argparse
import asyncio
import logging
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import cluster_local  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.demo_cluster import NodeProcess, fleet_vehicles, lease_holders, to_toml  # noqa: E402
from gateway.panelsim import Panel  # noqa: E402
from gateway.vehiclesim import Terminal, fleet_phone, fleet_plate  # noqa: E402

free = cluster_local.free_tcp_udp_port


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class Setup:
    """One side of the comparison: its processes, and how to count what it stored."""

    def __init__(self, kind, folder, args, port110, key_hex, peer_hex, pg=None, nats=None):
        self.kind, self.folder, self.args = kind, folder, args
        self.pg, self.nats = pg, nats
        self.accounts = ["%04d" % (3001 + i) for i in range(args.panels)]
        self.url = pg.event_log("bench") if pg else None
        names = ["a", "b"] if kind == "cluster" else ["solo"]
        self.nodes = {}
        for name in names:
            (folder / name).mkdir(parents=True, exist_ok=True)
            dc, jt, http = free(), free(), free()
            doc = {"gateway": {"name": "bench-asc"},
                   "receiver": {"listen": "127.0.0.1:%d" % dc},
                   "http": {"listen": "127.0.0.1:%d" % http},
                   "devices": [{"account": a, "key_hex": key_hex} for a in self.accounts],
                   "forwarders": [{"name": "110", "type": "dc09", "receivers": ["127.0.0.1:%d" % port110],
                                   "key_hex": peer_hex, "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5}],
                   "jt808": {"listen": "127.0.0.1:%d" % jt},     # cluster: registrations shared in PostgreSQL
                   "vehicles": {"max_speed_kmh": 200, "fleet": fleet_vehicles(args.terminals)}}
            if kind == "cluster":
                doc["store"] = {"url": self.url}
                doc["cluster"] = {"node": name}
                doc["bus"] = {"url": nats.urls, "replicas": 3}
            else:
                doc["store"] = {"path": str(folder / name / "events.db")}
            path = folder / name / "node.toml"
            path.write_text(to_toml(doc), encoding="utf-8")
            self.nodes[name] = NodeProcess(name, path, folder / name / "gateway.log", dc, jt)

    async def start(self):
        first = True
        for node in self.nodes.values():
            node.start()
            await node.ready()
            if first and self.kind == "cluster":
                while lease_holders(self.url, ["forwarder:110"]).get("forwarder:110") != node.name:
                    await asyncio.sleep(0.1)
            first = False

    def stop(self):
        for node in self.nodes.values():
            node.stop()

    def stored(self):
        """Events in the log (every node's, for the cluster)."""
        if self.kind == "cluster":
            import psycopg
            with psycopg.connect(self.url) as conn:
                return conn.execute("SELECT count(*) FROM log WHERE kind = 'event'").fetchone()[0]
        with sqlite3.connect(self.folder / "solo" / "events.db", timeout=30) as conn:
            return conn.execute("SELECT count(*) FROM log WHERE kind = 'event'").fetchone()[0]

    def components(self):
        """{component: [pid, ...]} for the CPU figures."""
        out = {"gateway": [n.proc.pid for n in self.nodes.values() if n.alive()], "bench+110": [os.getpid()]}
        if self.pg is not None:
            out["postgres"] = cluster_local.process_tree(self.pg.pid)
        if self.nats is not None:
            out["nats"] = [n.proc.pid for n in self.nats.nodes if n.alive()]
        return out

    def panel_receivers(self, i):
        addr = {n: ("127.0.0.1", node.dc09_port) for n, node in self.nodes.items()}
        if self.kind == "cluster":
            return [addr["a"], addr["b"]] if i % 2 == 0 else [addr["b"], addr["a"]]
        return [addr["solo"]]

    def terminal_node(self, i):
        nodes = list(self.nodes.values())
        return nodes[i % len(nodes)]


def cpu_snapshot(setup):
    return {name: sum(cluster_local.cpu_seconds(p) or 0 for p in pids) for name, pids in setup.components().items()}


def cpu_delta(before, after):
    return {k: after.get(k, 0) - v for k, v in before.items()}


async def timed(setup, panels, loop, stop, seconds, counted, tolerate_errors=True):
    """Run loop(panel) for every panel for `seconds`, then stop them: (window in s,
    counted(started, window), CPU seconds per component over the window)."""
    before = cpu_snapshot(setup)
    started = time.monotonic()
    tasks = [asyncio.create_task(loop(p)) for p in panels]
    await asyncio.sleep(seconds)
    stop.set()
    window = time.monotonic() - started
    n = counted(started, window)
    cpu = cpu_delta(before, cpu_snapshot(setup))
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=tolerate_errors), 60)
    return window, n, cpu


async def alarms_phase(setup, panels, seconds):
    stop = asyncio.Event()
    acked = []

    async def loop(panel):
        zone = 0
        while not stop.is_set():
            zone = zone % 999 + 1
            item = panel.report(130, zone=zone)
            if await item.acked:
                acked.append(time.monotonic())

    window, n, cpu = await timed(setup, panels, loop, stop, seconds, lambda started, window: sum(
        1 for t in acked if t <= started + window), tolerate_errors=False)
    return {"alarms_per_s": n / window, "cpu_per_alarm": {k: v / max(1, n) for k, v in cpu.items()}}


async def nulls_phase(setup, panels, seconds):
    """Link tests (DC-09 NULL), one at a time per panel: what a million panels send
    most (one every reporting interval each); answered by the receiving node alone,
    never published nor stored."""
    stop = asyncio.Event()
    count = [0]

    async def loop(panel):
        while not stop.is_set():
            await panel._link_test()       # the simulator's own NULL exchange (raises on no answer)
            count[0] += 1

    window, n, cpu = await timed(setup, panels, loop, stop, seconds, lambda started, window: count[0])
    return {"nulls_per_s": n / window, "cpu_per_null": {k: v / max(1, n) for k, v in cpu.items()}}


async def paced(panel, stop, rate, sent, ack_lat, ack_times):
    zone = 0
    while not stop.is_set():
        zone = zone % 999 + 1
        item = panel.report(130, zone=zone)
        sent[(panel.account, zone, item.occurred)] = time.monotonic()

        def done(f, item=item, panel=panel):
            if not f.cancelled() and f.result():
                now = time.monotonic()
                ack_lat.append(now - sent[(panel.account, item.report.zone, item.occurred)])
                ack_times.setdefault(panel.account, []).append(now)
        item.acked.add_done_callback(done)
        try:
            await asyncio.wait_for(stop.wait(), 1 / rate)
        except asyncio.TimeoutError:
            pass


async def flood_phase(setup, panels, terminals, seconds, arrivals):
    stop = asyncio.Event()
    sent, ack_lat, reports = {}, [], [0]

    async def report_loop(t):
        while not stop.is_set():
            if await t.report(t.position(speed=50.0)) == 0:
                reports[0] += 1
            t.lat += 0.00002

    stored_before = setup.stored()
    before = cpu_snapshot(setup)
    started = time.monotonic()
    tasks = [asyncio.create_task(report_loop(t)) for t in terminals]
    tasks += [asyncio.create_task(paced(p, stop, 2, sent, ack_lat, {})) for p in panels[:6]]
    await asyncio.sleep(seconds)
    stop.set()
    window = time.monotonic() - started
    acked_positions = reports[0]
    cpu = cpu_delta(before, cpu_snapshot(setup))
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    # Stored: what the log gained in the window (the positions, and the few alarms).
    await asyncio.sleep(1)
    stored = setup.stored() - stored_before - len(ack_lat)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(k in arrivals for k in sent):
        await asyncio.sleep(0.2)
    to_110 = [arrivals[k] - sent[k] for k in sent if k in arrivals]
    return {"positions_acked_per_s": acked_positions / window, "positions_stored_per_s": stored / window,
            "ack_p50": pct(ack_lat, 0.5), "ack_p99": pct(ack_lat, 0.99),
            "at110_p50": pct(to_110, 0.5), "at110_p99": pct(to_110, 0.99), "alarms": len(sent),
            "cpu_per_position": {k: v / max(1, acked_positions) for k, v in cpu.items()}}


async def kill_phase(setup, panels, seconds, arrival_times):
    stop = asyncio.Event()
    sent, ack_lat, ack_times = {}, [], {}
    tasks = [asyncio.create_task(paced(p, stop, 4, sent, ack_lat, ack_times)) for p in panels]
    await asyncio.sleep(seconds / 3)
    victim = setup.nodes["a"] if setup.kind == "cluster" else setup.nodes["solo"]
    killed_at = time.monotonic()
    victim.kill9()
    if setup.kind != "cluster":
        victim.start()                         # what a supervisor does for a single process
        await victim.ready()
    await asyncio.sleep(seconds * 2 / 3)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(p.buffer for p in panels):
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    window = sorted(t for t in arrival_times if t >= killed_at - 1)
    gaps = [b - a for a, b in zip(window, window[1:])]
    first_after = min((t for t in arrival_times if t > killed_at), default=None)
    panel_waits = []
    for times in ack_times.values():
        around = sorted(t for t in times if t >= killed_at - 1)
        panel_waits += [b - a for a, b in zip(around, around[1:])]
    return {"gap_110": max(gaps) if gaps else float("nan"),
            "first_after": (first_after - killed_at) if first_after else float("nan"),
            "panel_wait": max(panel_waits) if panel_waits else float("nan")}


async def nats_kill_phase(setup, panels, seconds, arrival_times):
    """Cluster only: kill -9 of the NATS node leading the first alarm stream, with
    panels at 4 alarms/s each; then it is restarted. The longest silence at 110 and
    the longest ACK wait of an alarm sent around the kill."""
    import nats as nats_client
    nc = await nats_client.connect(servers=setup.nats.urls, connect_timeout=2)
    try:
        leader = (await nc.jsm().stream_info("JIFANG_ALARMS")).cluster.leader
    finally:
        await nc.close()
    victim = [n.name for n in setup.nats.nodes].index(leader)
    stop = asyncio.Event()
    sent, ack_lat, ack_times = {}, [], {}
    tasks = [asyncio.create_task(paced(p, stop, 4, sent, ack_lat, ack_times)) for p in panels]
    await asyncio.sleep(seconds / 3)
    killed_at = time.monotonic()
    setup.nats.kill(victim)
    await asyncio.sleep(seconds * 2 / 3)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    await asyncio.to_thread(setup.nats.restart, victim)
    window = sorted(t for t in arrival_times if t >= killed_at - 1)
    gaps = [b - a for a, b in zip(window, window[1:])]
    waits = [p_item.acked_at - p_item.sent_at for p in panels for p_item in p.acked
             if p_item.sent_at is not None and p_item.acked_at is not None
             and killed_at - 1 <= p_item.sent_at <= killed_at + seconds]
    return {"gap_110": max(gaps) if gaps else float("nan"), "ack_wait": max(waits) if waits else float("nan")}


async def run_side(kind, folder, args, pg=None, nats=None):
    key = secrets.token_bytes(16)
    peer = secrets.token_bytes(16)
    port110 = free()
    center_config = config_module.from_dict({
        "gateway": {"name": "bench-110"}, "store": {"path": str(folder / "110.db")},
        "receiver": {"listen": "127.0.0.1:%d" % port110},
        "devices": [{"account": "*", "key_hex": peer.hex().upper()}]}, folder, "bench-110")
    setup = Setup(kind, folder, args, port110, key.hex().upper(), peer.hex().upper(), pg, nats)
    arrivals, arrival_times = {}, []
    result = {}

    def on_110(stored):
        e = stored.event
        now = time.monotonic()
        arrivals[(e.account, e.zone, e.device_time)] = now
        arrival_times.append(now)

    panels, terminals = [], []
    try:
        async with Gateway(center_config) as center:
            center.pipeline.add_listener(on_110)
            await setup.start()
            panels = [Panel(a, key, setup.panel_receivers(i), ack_timeout=1, retry_max=0.5, failover=2,
                            link_test_interval=3600) for i, a in enumerate(setup.accounts)]   # NULLs only from the phase
            for p in panels:
                p.start()
            for i in range(args.terminals):
                t = Terminal(fleet_phone(i), fleet_plate(i), terminal_id="B%06d" % i)
                node = setup.terminal_node(i)
                await t.login("127.0.0.1", node.jt808_port)
                terminals.append(t)
            print("  %s: started (%s)" % (kind, ", ".join("%s pid %d" % (n, p.proc.pid) for n, p in setup.nodes.items())),
                  flush=True)
            result["nulls"] = await nulls_phase(setup, panels, args.seconds / 2)
            result["alarms"] = await alarms_phase(setup, panels, args.seconds)
            print("  %s: link-test and alarms phases done" % kind, flush=True)
            # Let the forwarder catch up before the next phase measures latency.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and center.metrics.total("jifang_events_in_total") < \
                    sum(len(p.acked) for p in panels):
                await asyncio.sleep(0.5)
            result["flood"] = await flood_phase(setup, panels, terminals, args.seconds, arrivals)
            print("  %s: flood phase done" % kind, flush=True)
            for t in terminals:
                await t.close()
            terminals = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and center.metrics.total("jifang_events_in_total") < \
                    sum(len(p.acked) for p in panels):
                await asyncio.sleep(0.5)
            result["kill"] = await kill_phase(setup, panels, args.seconds, arrival_times)
            print("  %s: kill phase done" % kind, flush=True)
            if kind == "cluster":
                result["nats_kill"] = await nats_kill_phase(setup, panels, args.seconds, arrival_times)
                print("  %s: NATS kill phase done" % kind, flush=True)
    finally:
        for t in terminals:
            await t.close()
        for p in panels:
            await p.stop()
        setup.stop()
    return result


def ms(v):
    return "%.1f" % (v * 1000)


def us(v):
    return "%.0f" % (v * 1e6)


def report(args, embedded, cluster):
    rows = [
        ("link tests (NULL) answered/s (%d panels)" % args.panels,
         "%.0f" % embedded["nulls"]["nulls_per_s"], "%.0f" % cluster["nulls"]["nulls_per_s"]),
        ("alarms ACKed/s (%d panels, one at a time)" % args.panels,
         "%.0f" % embedded["alarms"]["alarms_per_s"], "%.0f" % cluster["alarms"]["alarms_per_s"]),
        ("positions ACKed/s (%d terminals)" % args.terminals,
         "%.0f" % embedded["flood"]["positions_acked_per_s"], "%.0f" % cluster["flood"]["positions_acked_per_s"]),
        ("positions stored/s",
         "%.0f" % embedded["flood"]["positions_stored_per_s"], "%.0f" % cluster["flood"]["positions_stored_per_s"]),
        ("alarm ACK latency p50 / p99 ms (during the flood)",
         "%s / %s" % (ms(embedded["flood"]["ack_p50"]), ms(embedded["flood"]["ack_p99"])),
         "%s / %s" % (ms(cluster["flood"]["ack_p50"]), ms(cluster["flood"]["ack_p99"]))),
        ("alarm at 110 latency p50 / p99 ms (during the flood)",
         "%s / %s" % (ms(embedded["flood"]["at110_p50"]), ms(embedded["flood"]["at110_p99"])),
         "%s / %s" % (ms(cluster["flood"]["at110_p50"]), ms(cluster["flood"]["at110_p99"]))),
        ("kill -9: longest silence at 110, s",
         "%.2f" % embedded["kill"]["gap_110"], "%.2f" % cluster["kill"]["gap_110"]),
        ("kill -9: longest a panel waited for an ACK, s",
         "%.2f" % embedded["kill"]["panel_wait"], "%.2f" % cluster["kill"]["panel_wait"]),
        ("kill -9 of the alarm stream's NATS leader: longest silence at 110, s",
         "-", "%.2f" % cluster["nats_kill"]["gap_110"]),
        ("kill -9 of the alarm stream's NATS leader: longest ACK wait, s",
         "-", "%.2f" % cluster["nats_kill"]["ack_wait"]),
    ]
    for phase, unit, what in (("nulls", "cpu_per_null", "link test"), ("alarms", "cpu_per_alarm", "alarm"),
                              ("flood", "cpu_per_position", "position")):
        for comp in ("gateway", "postgres", "nats", "bench+110"):
            e = embedded[phase][unit].get(comp)
            c = cluster[phase][unit].get(comp)
            rows.append(("CPU us per %s: %s" % (what, comp),
                         us(e) if e is not None else "-", us(c) if c is not None else "-"))
    width = max(len(r[0]) for r in rows)
    print("\n== bench/cluster.py: %g s phases, %d CPUs, load average %.1f ==" % (
        args.seconds, os.cpu_count(), os.getloadavg()[0]))
    print("%-*s  %14s  %18s" % (width, "", "embedded", "cluster (2 nodes)"))
    for name, e, c in rows:
        print("%-*s  %14s  %18s" % (width, name, e, c))
    print("(embedded kill: the process restarted at once by the bench, as a supervisor would;"
          " cluster kill: node a, the 110 forwarder's holder, not restarted)")


async def main(args):
    problems = cluster_local.missing_engines()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="jifang-cluster-bench-") as tmp:
        folder = Path(tmp)
        print("embedded: one gateway process, SQLite", flush=True)
        embedded = await run_side("embedded", folder / "embedded", args)
        print("cluster: two gateway processes, 3 NATS nodes, PostgreSQL", flush=True)
        with cluster_local.running_postgres(fsync=True) as pg, \
                cluster_local.running_nats_cluster(folder / "nats", name="jifang-bench") as nats:
            cluster = await run_side("cluster", folder / "cluster", args, pg, nats)
    report(args, embedded, cluster)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)      # the kill makes clients log every reconnect
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--panels", type=int, default=24)
    parser.add_argument("--terminals", type=int, default=40)
    sys.exit(asyncio.run(main(parser.parse_args())))
