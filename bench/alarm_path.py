"""The alarm path under load, in one run:

1. ingest: N concurrent panels (encrypted DC-09 over TCP, each waiting for its ACK
   before the next event, as panels do) against
     a. the jifang gateway (separate process; ACK after the fsync'd SQLite commit)
     b. pysiaalarm, the reference receiver (ACKs on receipt, stores nothing),
        also in its own process
   -> events ACKed per second.
2. alarm latency while saturated: the same N panels flood openings/closings, which
   the center also forwards upstream, so its intake and its outbox are both busy;
   one more panel sends alarms. Latency = alarm frame sent by the panel -> the 110
   receiver has it (our 110: committed, ACK being written; pysiaalarm: its callback,
   which runs after it wrote the ACK), p50 / p99, upstream being
     a. a jifang 110 gateway       b. pysiaalarm

3. backlog: alarms queued at the center while 110 is down, drained when it returns.

Run:  .venv/bin/python bench/alarm_path.py [--panels 50] [--seconds 5] [--alarms 100] [--backlog 2000]
Panels and the 110 receiver share this process; the alarm-service center runs in its
own process (as in production), so on a 2-core machine each gets about one core.
"""
import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway import config as config_module                                 # noqa: E402
from gateway.app import Gateway                                            # noqa: E402
from gateway.panelsim import Panel                                         # noqa: E402
from protocols import contactid, dc09                                      # noqa: E402

PANEL_KEY_TEXT = "0123456789ABCDEF"        # hex characters: pysiaalarm takes keys only in that form
PEER_KEY_TEXT = "FEDCBA9876543210"


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def accounts(n):
    return ["%04X" % (0x5000 + i) for i in range(n + 1)]       # the last one is the alarm panel


def center_toml(workdir, port, accts, upstream_port, forward_everything):
    devices = "".join('[[devices]]\naccount = "%s"\nkey_text = "%s"\n\n' % (a, PANEL_KEY_TEXT) for a in accts)
    forwarder = ""
    if upstream_port:
        forwarder = """[[forwarders]]
name = "110"
type = "dc09"
receivers = ["127.0.0.1:%d"]
key_text = "%s"
send_position = false
classes = %s
retry_initial_seconds = 0.05
retry_max_seconds = 0.5
""" % (upstream_port, PEER_KEY_TEXT, '["alarm", "trouble", "open_close"]' if forward_everything else '["alarm", "trouble"]')
    path = Path(workdir) / ("center-%d.toml" % port)
    path.write_text('[gateway]\nname = "bench-center"\n[store]\npath = "center-%d.db"\n[receiver]\nlisten = "127.0.0.1:%d"\n\n%s\n%s'
                    % (port, port, forwarder, devices))
    return path


async def wait_listening(port, proc_name, timeout=15):
    """Return once something accepts TCP connections on `port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not start" % proc_name)
            await asyncio.sleep(0.05)


class CenterProcess:
    def __init__(self, workdir, accts, upstream_port=None, forward_everything=False):
        self.port = free_port()
        self.config = center_toml(workdir, self.port, accts, upstream_port, forward_everything)
        self.log = open(Path(workdir) / "center.log", "ab")

    async def __aenter__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.service", "--config", str(self.config),
                                      "--log-level", "ERROR"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.log)
        await wait_listening(self.port, "center gateway (see center.log)")
        return self

    async def __aexit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


PYSIAALARM_SERVER = """
import asyncio, logging, sys
from pysiaalarm import SIAAccount
from pysiaalarm.aio import SIAClient
logging.disable(logging.CRITICAL)
async def ignore(event):
    pass
async def main(port, key, accounts):
    client = SIAClient("127.0.0.1", port, [SIAAccount(a, key) for a in accounts], ignore)
    await client.async_start()
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")))
"""


class PysiaalarmProcess:
    """pysiaalarm's receiver in a process of its own, like the center gateway."""

    def __init__(self, accts, key_text):
        self.port = free_port()
        self.args = [sys.executable, "-c", PYSIAALARM_SERVER, str(self.port), key_text, ",".join(accts)]

    async def __aenter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_listening(self.port, "pysiaalarm receiver")
        return self

    async def __aexit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


async def flood(panel, stop, code=401):
    """Keep the panel's buffer non-empty: it sends as fast as ACKs come back."""
    zone = 0
    while not stop.is_set():
        while len(panel.buffer) < 5:
            zone = zone % 999 + 1
            panel.report(code, contactid.QUALIFIER_RESTORE, zone=zone)
        await asyncio.sleep(0.005)


async def ingest(port, accts, seconds):
    key = dc09.key_from_text(PANEL_KEY_TEXT)
    panels = [Panel(a, key, ("127.0.0.1", port), ack_timeout=10, link_test_interval=3600) for a in accts]
    stop = asyncio.Event()
    for p in panels:
        p.start()
    tasks = [asyncio.create_task(flood(p, stop)) for p in panels]
    await asyncio.sleep(1.0)                                   # warm up: connections open
    before = sum(len(p.acked) for p in panels)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    acked = sum(len(p.acked) for p in panels) - before
    elapsed = time.monotonic() - t0
    stop.set()
    await asyncio.gather(*tasks)
    for p in panels:
        await p.stop()
    return acked / elapsed


async def alarm_latency(center_port, accts, arrivals, alarms):
    """Flood openings/closings from all but the last account; the last sends alarms.
    `arrivals`: dict zone -> monotonic arrival time at the 110, filled by the receiver."""
    key = dc09.key_from_text(PANEL_KEY_TEXT)
    flooders = [Panel(a, key, ("127.0.0.1", center_port), ack_timeout=10, link_test_interval=3600) for a in accts[:-1]]
    alarm_panel = Panel(accts[-1], key, ("127.0.0.1", center_port), ack_timeout=10, link_test_interval=3600)
    stop = asyncio.Event()
    for p in flooders + [alarm_panel]:
        p.start()
    tasks = [asyncio.create_task(flood(p, stop)) for p in flooders]
    await asyncio.sleep(1.0)                                   # saturate first
    sent = {}
    for zone in range(1, alarms + 1):
        item = alarm_panel.report(130, zone=zone)
        await asyncio.wait_for(item.acked, 30)
        sent[zone] = item.sent_at
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + 30
    while len([z for z in sent if z in arrivals]) < len(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    for p in flooders + [alarm_panel]:
        await p.stop()
    latencies = sorted((arrivals[z] - sent[z]) * 1000 for z in sent if z in arrivals)
    return latencies, len(sent) - len(latencies)


def percentile(values, p):
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def pysiaalarm_receiver(port, accts, key_text, on_event):
    from pysiaalarm import SIAAccount
    from pysiaalarm.aio import SIAClient
    client = SIAClient("127.0.0.1", port, [SIAAccount(a, key_text) for a in accts], on_event)
    await client.async_start()
    return client


async def main(args):
    import logging
    logging.getLogger("pysiaalarm").setLevel(logging.CRITICAL)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)     # pysiaalarm's handlers complain when stopped
    logging.getLogger("jifang").setLevel(logging.WARNING)
    accts = accounts(args.panels)
    workdir = tempfile.mkdtemp(prefix="jifang-bench-")
    print("alarm path bench: %d panels, %d s ingest windows, %d alarms; cpus=%d; work dir %s"
          % (args.panels, args.seconds, args.alarms, os.cpu_count(), workdir))

    # 1a. ingest into the jifang gateway (durable)
    async with CenterProcess(workdir, accts) as center:
        rate = await ingest(center.port, accts[:-1], args.seconds)
    print("ingest  jifang gateway (fsync'd SQLite, ACK after commit): %8.0f events/s" % rate)

    # 1b. ingest into pysiaalarm (nothing stored), also in its own process
    async with PysiaalarmProcess(accts, PANEL_KEY_TEXT) as sia:
        rate = await ingest(sia.port, accts[:-1], args.seconds)
    print("ingest  pysiaalarm reference (ACK on receipt, no storage): %8.0f events/s" % rate)

    # 2a. alarm latency, center -> jifang 110 gateway, center saturated
    arrivals = {}
    port110 = free_port()
    cfg110 = config_module.from_dict({
        "gateway": {"name": "bench-110"}, "store": {"path": str(Path(workdir) / "110.db")},
        "receiver": {"listen": "127.0.0.1:%d" % port110},
        "devices": [{"account": "*", "key_text": PEER_KEY_TEXT}]})
    async with Gateway(cfg110) as gw110:
        def arrived(stored):
            ev = stored.event
            if ev.account == accts[-1] and ev.code == 130:
                arrivals.setdefault(ev.zone, time.monotonic())
        gw110.pipeline.add_listener(arrived)
        async with CenterProcess(workdir, accts, port110, forward_everything=True) as center:
            latencies, lost = await alarm_latency(center.port, accts, arrivals, args.alarms)
        backlog = gw110.metrics.total("jifang_events_in_total")
    report("jifang 110 gateway", latencies, lost, backlog)

    # 2b. the same, with pysiaalarm as the 110 receiver
    arrivals = {}
    port110 = free_port()

    async def on_event(event):
        if event.account == accts[-1] and event.code == "BA":
            arrivals.setdefault(int(event.ri), time.monotonic())

    client = await pysiaalarm_receiver(port110, accts, PEER_KEY_TEXT, on_event)
    async with CenterProcess(workdir, accts, port110, forward_everything=True) as center:
        latencies, lost = await alarm_latency(center.port, accts, arrivals, args.alarms)
    await client.async_stop()
    report("pysiaalarm as 110", latencies, lost, None)

    # 3. backlog drain: alarms queued at the center while 110 is down, then 110 returns
    port110 = free_port()
    cfg110 = config_module.from_dict({
        "gateway": {"name": "bench-110b"}, "store": {"path": str(Path(workdir) / "110b.db")},
        "receiver": {"listen": "127.0.0.1:%d" % port110},
        "devices": [{"account": "*", "key_text": PEER_KEY_TEXT}]})
    async with CenterProcess(workdir, accts, port110) as center:
        queued = await queue_alarms(center.port, accts[:-1], args.backlog)
        t0 = time.monotonic()
        async with Gateway(cfg110) as gw110:
            while gw110.metrics.total("jifang_events_in_total") < queued:
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - t0
    print("backlog %d alarms queued while 110 was down: delivered to the jifang 110 in %.1f s (%.0f/s)"
          % (queued, elapsed, queued / elapsed))


async def queue_alarms(port, accts, total):
    key = dc09.key_from_text(PANEL_KEY_TEXT)
    panels = [Panel(a, key, ("127.0.0.1", port), ack_timeout=10, link_test_interval=3600) for a in accts]
    items = [panels[i % len(panels)].report(130, zone=i // len(panels) % 999 + 1) for i in range(total)]
    for p in panels:
        p.start()
    await asyncio.wait_for(asyncio.gather(*(i.acked for i in items)), 120)
    for p in panels:
        await p.stop()
    return total


def report(upstream, latencies, lost, upstream_events):
    if not latencies:
        print("alarm latency -> %s: no alarm arrived" % upstream)
        return
    extra = "; 110 recorded %d events in all" % upstream_events if upstream_events is not None else ""
    print("alarm latency (panel frame sent -> %s has it), center saturated with openings/closings: "
          "p50 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d, missing %d%s)"
          % (upstream, percentile(latencies, 50), percentile(latencies, 99), latencies[-1], len(latencies), lost, extra))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--alarms", type=int, default=100)
    parser.add_argument("--backlog", type=int, default=2000, help="alarms queued while 110 is down")
    asyncio.run(main(parser.parse_args()))
