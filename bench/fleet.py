"""Fleet load on the JT/T 808 center, in one run:

    .venv/bin/python bench/fleet.py [--terminals 1000] [--rate 1] [--seconds 30] [--panics 20] [--gc both]

This process runs the center gateway (pipeline, hash-chained SQLite store with
fsync per group commit, DC-09 forwarder) with the JT/T 808 server on its
pipeline. A 110 receiver (another jifang gateway) runs as a subprocess; the
simulated terminals (gateway.vehiclesim) run in `--sim-procs` subprocesses,
each registering, authenticating and reporting at `--rate` Hz. Once the fleet
is up, escort terminals in this process press their panic buttons one by one.

Prints: concurrent terminals held, positions per second stored, emergency-alarm
latency p50/p99 from the button press to the event stored at the 110 receiver
(and to the center's commit), the center's memory per connection, and the CPU
each process used. `--gc both` runs the whole bench twice, with the gateway's
collector thresholds (gateway.service.tune_gc) and then Python's default.
Everything listens on free loopback ports; the run stops by itself.
"""
import argparse
import asyncio
import gc
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import config as config_module  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.service import tune_gc  # noqa: E402
from gateway.vehicles.registry import Registry, Vehicle  # noqa: E402
from gateway.vehicles.server import JT808Server  # noqa: E402
from gateway.vehiclesim import Terminal, fleet_phone, fleet_plate  # noqa: E402
from tests.support.ports import free_port, free_tcp_udp_port  # noqa: E402

DEFAULT_GC = gc.get_threshold()
PEER_KEY_HEX = "F0E1D2C3B4A5968778695A4B3C2D1E0F"
SECRET = "bench-secret-0123456789"


def rss_kb(pid="self"):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid="self"):
    """User + system CPU seconds a process has used (/proc/<pid>/stat)."""
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def write_110_config(tmp, port):
    path = tmp / "110.toml"
    path.write_text('[gateway]\nname = "110"\n[store]\npath = "110.db"\n[receiver]\nlisten = "127.0.0.1:%d"\n'
                    '[[devices]]\naccount = "*"\nkey_hex = "%s"\n' % (port, PEER_KEY_HEX))
    return path


async def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("nothing listens on %d" % port)
            await asyncio.sleep(0.1)


def panics_at_110(db_path, accounts):
    """{account: received_at_ms} of the first panic each escort raised, as stored at the 110."""
    import json
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        out = {}
        for (body,) in db.execute("SELECT body FROM log WHERE kind = 'event' AND event_class = 'alarm' ORDER BY id"):
            ev = json.loads(body)
            if ev["code"] == 120 and ev["qualifier"] == 1 and ev["account"] in accounts:
                out.setdefault(ev["account"], ev["received_at_ms"])
        return out
    finally:
        db.close()


async def run(args, collector):
    if collector == "default":
        gc.set_threshold(*DEFAULT_GC)
        print("\n#### collector: Python's default thresholds %s" % (gc.get_threshold(),), flush=True)
    else:
        tune_gc()                    # as `jifang gateway` runs it
        print("\n#### collector: the gateway's thresholds %s (gateway.service.tune_gc)" % (gc.get_threshold(),),
              flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="jifang-fleet-bench-"))
    port110, port808 = free_tcp_udp_port(), free_port()
    police = subprocess.Popen([sys.executable, "-m", "gateway.service", "--config", str(write_110_config(tmp, port110)),
                               "--log-level", "ERROR"], cwd=ROOT, stdout=subprocess.DEVNULL)
    escorts = [Vehicle(phone=str(15900000000 + i), plate="ESC%03d" % i, kind="escort") for i in range(args.panics)]
    fleet = [Vehicle(phone=fleet_phone(i), plate=fleet_plate(i)) for i in range(args.terminals)]
    config = config_module.from_dict({
        "gateway": {"name": "fleet-bench"}, "store": {"path": str(tmp / "center.db")},
        "forwarders": [{"name": "110", "type": "dc09", "receivers": ["127.0.0.1:%d" % port110],
                        "key_hex": PEER_KEY_HEX, "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5}]},
        tmp, "bench")
    sims = []
    try:
        await wait_port(port110)
        async with Gateway(config) as center:
            server = JT808Server(Registry(escorts + fleet), center.pipeline.submit, session_timeout=120)
            await server.start("127.0.0.1", port808)
            rss_idle = rss_kb()
            per_proc = -(-args.terminals // args.sim_procs)
            for k in range(args.sim_procs):
                first, count = k * per_proc, min(per_proc, args.terminals - k * per_proc)
                if count > 0:
                    sims.append(subprocess.Popen(
                        [sys.executable, "-m", "gateway.vehiclesim", "--center", "127.0.0.1:%d" % port808,
                         "--first", str(first), "--count", str(count), "--rate", str(args.rate),
                         "--seconds", "3600"],
                        cwd=ROOT, stdout=subprocess.PIPE, text=True))

            def held():
                return sum(1 for s in server.sessions if s.state is not None)

            started = time.monotonic()
            while held() < args.terminals and time.monotonic() - started < 60 + args.terminals / 200:
                await asyncio.sleep(0.5)
            ramp = time.monotonic() - started
            rss_loaded = rss_kb()
            print("ramp: %d terminals logged in after %.1f s" % (held(), ramp), flush=True)

            # Measurement window: positions stored per second while the fleet reports.
            events_before = center.metrics.total("jifang_events_in_total")
            cpu_before = [cpu_seconds()] + [cpu_seconds(s.pid) for s in sims]
            window_start = time.monotonic()
            peak_held = held()
            terminals = []
            for v in escorts:
                t = Terminal(v.phone, v.plate, terminal_id="E%06d" % int(v.phone[-6:]))
                await t.login("127.0.0.1", port808)
                terminals.append(t)
            press_ms, commit_ms = {}, {}
            spacing = max(0.05, (args.seconds * 0.8) / max(1, args.panics))
            for t, v in zip(terminals, escorts):
                await asyncio.sleep(spacing)
                t.alarm |= 1
                press_ms[v.account] = time.time() * 1000
                try:
                    if await t.report(t.position(), timeout=60) == 0:
                        commit_ms[v.account] = time.time() * 1000 - press_ms[v.account]
                except asyncio.TimeoutError:
                    pass                     # counted below: ACKs received vs presses
                peak_held = max(peak_held, held())
            while time.monotonic() - window_start < args.seconds:
                peak_held = max(peak_held, held())
                await asyncio.sleep(0.5)
            window = time.monotonic() - window_start
            stored = center.metrics.total("jifang_events_in_total") - events_before
            cpu_used = [(b - a) / window for a, b in zip(
                cpu_before, [cpu_seconds()] + [cpu_seconds(s.pid) for s in sims])]
            # Give the forwarder time to deliver the last alarms.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(panics_at_110(tmp / "110.db", press_ms)) < len(press_ms):
                await asyncio.sleep(0.2)
            at_110 = panics_at_110(tmp / "110.db", press_ms)
            for t in terminals:
                await t.close()
            for s in sims:
                s.terminate()                # the simulators stop their terminals and print their counts
            sim_stats = [s.communicate(timeout=120)[0].strip() for s in sims]
            # Let the reports already received be committed before stopping (a
            # saturated center has thousands queued).
            settled, last = 0, -1
            while settled < 3:
                now_total = center.metrics.total("jifang_events_in_total")
                settled = settled + 1 if now_total == last else 0
                last = now_total
                await asyncio.sleep(0.2)
            await server.stop()

        latencies = [at_110[a] - press_ms[a] for a in at_110]
        positions = stored - 2 * len(press_ms)       # minus the escorts' alarm events and their positions
        print("\n== bench/fleet.py: %d terminals at %s Hz, %d s window, %d panic presses, %d CPUs, "
              "switch interval %g s, load average %.1f ==" % (
                  args.terminals, args.rate, args.seconds, args.panics, os.cpu_count(), sys.getswitchinterval(),
                  os.getloadavg()[0]))
        print("concurrent terminals held:      %d (peak, authenticated sessions)" % peak_held)
        print("positions stored per second:    %.0f (offered: %.0f)" % (positions / window, args.terminals * args.rate))
        print("emergency alarm -> 110 stored:  p50 %.0f ms, p99 %.0f ms (%d/%d arrived)" % (
            percentile(latencies, 50), percentile(latencies, 99), len(at_110), len(press_ms)))
        print("emergency alarm -> center ACK:  p50 %.0f ms, p99 %.0f ms (%d/%d acknowledged)" % (
            percentile(list(commit_ms.values()), 50), percentile(list(commit_ms.values()), 99),
            len(commit_ms), len(press_ms)))
        if collector == "gateway" or args.gc != "both":
            print("center memory per connection:   %.1f KiB (RSS %d -> %d KiB)" % (
                (rss_loaded - rss_idle) / max(1, args.terminals), rss_idle, rss_loaded))
        else:                                  # the first run's heap is still in this process
            print("center memory per connection:   not measured (second run in this process)")
        print("simulator processes:            %s" % "; ".join(sim_stats))
        print("CPU during the window:          center %.0f %% of a core, simulators %s" % (
            100 * cpu_used[0], ", ".join("%.0f %%" % (100 * c) for c in cpu_used[1:])))
    finally:
        for p in sims + [police]:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1.0, help="reports per second per terminal")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    parser.add_argument("--panics", type=int, default=20, help="escort terminals that each press panic once")
    parser.add_argument("--sim-procs", type=int, default=1, help="simulator processes")
    parser.add_argument("--gc", choices=["gateway", "default", "both"], default="gateway",
                        help="collector thresholds: the gateway's (tune_gc), Python's default, or both"
                             " one after the other")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval for the center (seconds; Python's default is 0.005): the "
                             "store's thread needs the GIL between SQLite calls, and waits up to this long each time")
    args = parser.parse_args()
    from gateway import logs
    logs.setup("ERROR", [SECRET], "fleet-bench")       # errors only, as JSON lines: a saturated center logs offline vehicles by the thousand
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    for collector in (["gateway", "default"] if args.gc == "both" else [args.gc]):
        asyncio.run(run(args, collector))


if __name__ == "__main__":
    main()
