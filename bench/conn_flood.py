"""Connection floods against the DC-09 receiver (issue 11, 3), in one run:

1. idle flood: --idle connection attempts (default 10,000) from --addresses loopback
   source addresses (127.0.x.y), each sending nothing. Prints how many the gateway
   admitted and refused (per address / reserve / total), when it closed the admitted
   ones (min / median / max after connecting, against first_frame_timeout), and
   /healthz during the flood.
2. slow readers: --readers clients (default 100) that send link tests as fast as
   they can and never read an answer. Prints the gateway's RSS before, at its peak
   and after, and how many were cut as slow readers.
3. throughout both, one legitimate panel (its own address, known to the gateway
   from an earlier report) opens a new connection for each alarm, as panels do, and
   waits for its ACK: ACK latency p50 / p99 / max and failures, per phase. The panel
   runs in its own process, so its figures are the gateway's, not this process's
   event loop busy with 10,000 flood connections.

The gateway runs in its own process (python -m gateway.service) with its default
limits except those given here; the flood runs in this process.

Run:  .venv/bin/python bench/conn_flood.py [--idle 10000] [--addresses 320] [--readers 100]
                                           [--first-frame-timeout 30] [--seconds 10]
"""
import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from protocols import dc09                                                   # noqa: E402
from alarm_path import free_port      # noqa: E402  (a port free for both TCP and UDP; bench/ is on sys.path)

PANEL_KEY_TEXT = "0123456789ABCDEF"
PANEL_ADDRESS = "127.0.0.2"


def rss_mb(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(text, prefix):
    total = 0
    for line in text.splitlines():
        if line.startswith(prefix):
            total += float(line.split()[-1])
    return int(total)


class GatewayProcess:
    def __init__(self, workdir, first_frame_timeout):
        self.port, self.http_port = free_port(), free_port()
        self.config = Path(workdir) / "flood.toml"
        self.config.write_text("""[gateway]
name = "flood-bench"
[store]
path = "flood.db"
[receiver]
listen = "127.0.0.1:%d"
first_frame_timeout_seconds = %s
[http]
listen = "127.0.0.1:%d"
[[devices]]
account = "1001"
key_text = "%s"
[[devices]]
account = "1003"
""" % (self.port, first_frame_timeout, self.http_port, PANEL_KEY_TEXT))
        self.log = open(Path(workdir) / "gateway.log", "ab")

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.service", "--config", str(self.config),
                                      "--log-level", "WARNING"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gateway did not start (see %s)" % self.log.name)
                time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path), timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


class LegitPanel:
    """An encrypted panel from its own address: a fresh connection per alarm."""

    def __init__(self, port):
        self.port = port
        self.key = dc09.key_from_text(PANEL_KEY_TEXT)
        self.seq = 0
        self.latencies = []
        self.connects = []           # of each ACKed alarm, the part spent connecting
        self.failures = 0

    async def alarm(self):
        self.seq = self.seq % 9999 + 1
        msg = dc09.Message("ADM-CID", seq=self.seq, account="1001", data="#1001|1130 01 %03d" % (self.seq % 999 + 1),
                           timestamp=dc09.timestamp_now())
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port, local_addr=(PANEL_ADDRESS, 0)), 10)
            connected = time.perf_counter()
            writer.write(dc09.encode(msg, self.key))
            frames = dc09.FrameReader()
            while True:
                data = await asyncio.wait_for(reader.read(4096), 10)
                if not data:
                    raise ConnectionError("closed")
                got = frames.feed(data)
                if got:
                    break
            ok = dc09.is_ack_for(dc09.decode(got[0], self.key), msg)
            writer.close()
        except (OSError, asyncio.TimeoutError):
            ok = False
        if ok:
            self.latencies.append(time.perf_counter() - started)
            self.connects.append(connected - started)
        else:
            self.failures += 1
        return ok

    async def run(self, stop, interval=0.1):
        while not stop.is_set():
            await self.alarm()
            await asyncio.sleep(interval)

    async def run_elsewhere(self, stop):
        """run() in a child process until `stop` is set; its results become ours."""
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--panel-port", str(self.port), "--panel-seq", str(self.seq),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        await stop.wait()
        child.stdin.close()                  # the child's signal to stop and report
        out, _ = await child.communicate()
        result = json.loads(out)
        self.latencies += result["latencies"]
        self.connects += result["connects"]
        self.failures += result["failures"]
        self.seq = result["seq"]


    def report(self, phase):
        lat = sorted(self.latencies)
        if not lat:
            print("  legit panel during %s: no ACK at all, %d failures" % (phase, self.failures))
            return
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        con = sorted(self.connects)
        print("  legit panel during %s: %d alarms ACKed, ACK latency (connect + ACK) p50 %.1f ms, p99 %.1f ms, "
              "max %.1f ms (of which connecting: p50 %.1f ms, max %.1f ms); %d failed"
              % (phase, len(lat), statistics.median(lat) * 1e3, p99 * 1e3, lat[-1] * 1e3,
                 statistics.median(con) * 1e3, con[-1] * 1e3, self.failures))
        self.latencies, self.connects, self.failures = [], [], 0


async def panel_child(port, seq):
    """The child of run_elsewhere: alarms until stdin closes, then JSON on stdout."""
    panel = LegitPanel(port)
    panel.seq = seq
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)))
    await panel.run(stop)
    print(json.dumps({"latencies": panel.latencies, "connects": panel.connects, "failures": panel.failures,
                      "seq": panel.seq}))


async def idle_client(port, local, results, connect_gate):
    """Connect, send nothing, note when (and how) the gateway ends it."""
    started = time.monotonic()
    async with connect_gate:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0)), 20)
        except (OSError, asyncio.TimeoutError):
            results["connect_failed"] += 1      # reset by the gateway before the client saw it open
            return
    try:
        data = await reader.read(1)
        kind = "closed" if not data else "data"
    except ConnectionResetError:
        kind = "reset"
    elapsed = time.monotonic() - started
    # A refused connection is reset at once; an admitted one is closed at its deadline.
    if kind == "reset" and elapsed < 1:
        results["refused"] += 1
    else:
        results["close_times"].append(elapsed)
    writer.close()


async def slow_reader(port, local, stop, results):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    except OSError:
        results["connect_failed"] += 1
        return
    batch = b"".join(dc09.encode(dc09.Message("NULL", seq=i + 1, account="1003")) for i in range(50))
    try:
        while not stop.is_set():
            writer.write(batch)           # answers are never read
            await writer.drain()
            await asyncio.sleep(0.01)
    except (ConnectionError, OSError):
        results["cut"] += 1
    writer.close()


async def sample_rss(pid, stop, samples):
    while not stop.is_set():
        samples.append(rss_mb(pid))
        await asyncio.sleep(0.2)


async def main(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))      # this process holds the flood's sockets
    with tempfile.TemporaryDirectory() as workdir, GatewayProcess(workdir, args.first_frame_timeout) as gw:
        panel = LegitPanel(gw.port)
        assert await panel.alarm(), "the legit panel's first alarm was not ACKed"   # now a known address
        panel.latencies = []
        base_rss = rss_mb(gw.proc.pid)
        print("gateway pid %d, RSS %.1f MB at rest, limits: defaults, first_frame_timeout %s s"
              % (gw.proc.pid, base_rss, args.first_frame_timeout))
        panel.connects = []
        for _ in range(20):
            await panel.alarm()
        panel.report("rest")

        # 1. idle flood
        print("1. idle flood: %d connection attempts from %d addresses, sending nothing"
              % (args.idle, args.addresses))
        results = {"refused": 0, "close_times": [], "connect_failed": 0}
        stop = asyncio.Event()
        rss = []
        sampler = asyncio.create_task(sample_rss(gw.proc.pid, stop, rss))
        panel_task = asyncio.create_task(panel.run_elsewhere(stop))
        gate = asyncio.Semaphore(500)
        addresses = ["127.0.%d.%d" % (1 + i // 250, 1 + i % 250) for i in range(args.addresses)]
        flood = [asyncio.create_task(idle_client(gw.port, addresses[i % len(addresses)], results, gate))
                 for i in range(args.idle)]
        await asyncio.sleep(min(5, args.first_frame_timeout / 2))
        status, body = await asyncio.to_thread(gw.http, "/healthz")
        print("  /healthz during the flood: %d %s" % (status, json.loads(body).get("problems")))
        await asyncio.gather(*flood)
        stop.set()
        await asyncio.gather(sampler, panel_task)
        _, text = await asyncio.to_thread(gw.http, "/metrics")
        times = sorted(results["close_times"])
        print("  admitted %d, refused %d (reset at once: %d, reset while connecting: %d); gateway counts "
              "per_address %d, reserved %d, total %d"
              % (len(times), results["refused"] + results["connect_failed"], results["refused"], results["connect_failed"],
                 metric(text, 'jifang_net_refused_total{listener="dc09",reason="per_address"}'),
                 metric(text, 'jifang_net_refused_total{listener="dc09",reason="reserved"}'),
                 metric(text, 'jifang_net_refused_total{listener="dc09",reason="total"}')))
        if times:
            print("  idle connections closed, counted from the connect attempt: min %.2f s, median %.2f s, max %.2f s (first_frame_timeout %s s)"
                  % (times[0], statistics.median(times), times[-1], args.first_frame_timeout))
        print("  gateway RSS: %.1f MB at rest, peak %.1f MB during the flood" % (base_rss, max(rss or [0])))
        panel.report("the idle flood")

        # 2. slow readers
        print("2. %d clients sending link tests for %d s, never reading an answer" % (args.readers, args.seconds))
        before = rss_mb(gw.proc.pid)
        cpu_before, wall_before = cpu_seconds(gw.proc.pid), time.monotonic()
        results = {"cut": 0, "connect_failed": 0}
        stop = asyncio.Event()
        rss = []
        sampler = asyncio.create_task(sample_rss(gw.proc.pid, stop, rss))
        panel_task = asyncio.create_task(panel.run_elsewhere(stop))
        readers = [asyncio.create_task(slow_reader(gw.port, addresses[i % len(addresses)], stop, results))
                   for i in range(args.readers)]
        await asyncio.sleep(args.seconds)
        cpu = (cpu_seconds(gw.proc.pid) - cpu_before) / (time.monotonic() - wall_before)
        stop.set()
        await asyncio.gather(sampler, panel_task, *readers)
        await asyncio.sleep(1)
        _, text = await asyncio.to_thread(gw.http, "/metrics")
        print("  gateway RSS: %.1f MB before, peak %.1f MB with %d non-reading clients, %.1f MB after"
              % (before, max(rss or [0]), args.readers, rss_mb(gw.proc.pid)))
        print("  cut as slow readers (gateway count): %d; idle/partial closes so far: %d"
              % (metric(text, 'jifang_net_closed_total{listener="dc09",reason="slow_reader"}'),
                 metric(text, 'jifang_net_closed_total{listener="dc09",reason="no_frame"}')
                 + metric(text, 'jifang_net_closed_total{listener="dc09",reason="partial_frame"}')))
        print("  gateway CPU while they sent: %.0f %% of a core; link tests answered: %d"
              % (cpu * 100, metric(text, 'jifang_frames_total{token="NULL"}')))
        panel.report("the slow readers")
        log = (Path(workdir) / "gateway.log").read_text().splitlines()
        not_json = 0
        for line in log:
            try:
                json.loads(line)
            except ValueError:
                not_json += 1
        print("gateway log: %d lines, %d not JSON, %d summing up suppressed lines"
              % (len(log), not_json, sum('"suppressed"' in line for line in log)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=10000, help="idle connection attempts")
    parser.add_argument("--addresses", type=int, default=320, help="source addresses they come from")
    parser.add_argument("--readers", type=int, default=100, help="clients that never read")
    parser.add_argument("--seconds", type=float, default=10, help="how long the slow readers send")
    parser.add_argument("--first-frame-timeout", type=float, default=30)
    parser.add_argument("--panel-port", type=int, help=argparse.SUPPRESS)     # the legit panel's own process
    parser.add_argument("--panel-seq", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(panel_child(args.panel_port, args.panel_seq) if args.panel_port else main(args))
