"""Two gateway processes share one PostgreSQL store; panels report to both. kill -9
of the node holding the 110 forwarder's lease (and supervision's, and
retention's): the other node takes every lease within 5 s (the issue's bound;
the figure is printed), resumes forwarding from the shared cursor, and the 110
receiver records every alarm a node ACKed, once, in order per account. The
panels of the dead node move to the survivor (their backup receiver)."""
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from gateway.lease import holders, lease_key
from gateway.panelsim import Panel
from gateway.store import verify
from tests.gateway.helpers import PANEL_KEY, PANEL_KEY_HEX, PEER_KEY_HEX, upper_config, wait_for
from tests.gateway.test_crash import listening
from gateway.app import Gateway
from tests.support.ports import free_tcp_udp_port

REPO = Path(__file__).resolve().parents[2]
ACCOUNTS = ["%04d" % (5001 + i) for i in range(8)]
LEASES = ("forwarder:110", "supervision", "retention")
TAKEOVER_BOUND_S = 5.0          # issue 12: "another node takes over within 5 s"


def node_toml(tmp_path, node, url, port, port110):
    devices = "".join('[[devices]]\naccount = "%s"\nkey_hex = "%s"\n\n' % (a, PANEL_KEY_HEX) for a in ACCOUNTS)
    path = tmp_path / ("%s.toml" % node)
    path.write_text("""[gateway]
name = "asc"
[store]
url = "%s"
[cluster]
node = "%s"
[receiver]
listen = "127.0.0.1:%d"
[[forwarders]]
name = "110"
type = "dc09"
receivers = ["127.0.0.1:%d"]
key_hex = "%s"
retry_initial_seconds = 0.05
retry_max_seconds = 0.5

%s""" % (url, node, port, port110, PEER_KEY_HEX, devices))
    return path


def start_node(config_path, log_path):
    return subprocess.Popen([sys.executable, "-m", "gateway.service", "--config", str(config_path)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))


def lease_holders(url):
    with psycopg.connect(url) as conn:
        held = holders(conn)
    return {name: held.get(lease_key(name)) for name in LEASES}


async def traffic(panel, stop):
    zone = 0
    while not stop.is_set():
        zone += 1
        panel.report(130, zone=zone)          # burglary alarms, each its own zone: zone order = send order
        await asyncio.sleep(0.05)


async def test_kill_9_of_the_lease_holder_the_other_node_takes_over_and_110_sees_each_alarm_once(tmp_path, pg_log):
    url = pg_log[2]
    ports = {"a": free_tcp_udp_port(), "b": free_tcp_udp_port()}
    port110 = free_tcp_udp_port()
    procs = {}
    panels, stop = [], asyncio.Event()
    try:
        async with Gateway(upper_config(tmp_path, port=port110)) as center:
            procs["a"] = start_node(node_toml(tmp_path, "a", url, ports["a"], port110), tmp_path / "a.log")
            await wait_for(lambda: listening(ports["a"]), what="node a listening")
            await wait_for(lambda: set(lease_holders(url).values()) == {"a"}, what="node a holds every lease")
            procs["b"] = start_node(node_toml(tmp_path, "b", url, ports["b"], port110), tmp_path / "b.log")
            await wait_for(lambda: listening(ports["b"]), what="node b listening")

            panels = [Panel(acct, PANEL_KEY, ("127.0.0.1", ports["a" if i % 2 else "b"]), ack_timeout=1,
                            retry_max=0.5) for i, acct in enumerate(ACCOUNTS)]
            for p in panels:
                p.start()
            senders = [asyncio.create_task(traffic(p, stop)) for p in panels]
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 60, what="60 alarms at 110")

            os.kill(procs["a"].pid, signal.SIGKILL)        # the holder, mid-stream
            killed_at = time.monotonic()
            procs["a"].wait()
            await wait_for(lambda: set(lease_holders(url).values()) == {"b"}, timeout=30, interval=0.02,
                           what="node b holds every lease")
            takeover = time.monotonic() - killed_at
            print("lease takeover after kill -9: %.2f s (bound %.0f s)" % (takeover, TAKEOVER_BOUND_S))
            assert takeover < TAKEOVER_BOUND_S

            for p in panels:                                # the dead node's panels fail over to b
                p.receiver = ("127.0.0.1", ports["b"])
            at_kill = sum(len(p.acked) for p in panels)
            await wait_for(lambda: sum(len(p.acked) for p in panels) >= at_kill + 80, what="ACKs after the kill")
            stop.set()
            await asyncio.gather(*senders)
            await wait_for(lambda: all(not p.buffer for p in panels), timeout=60, what="every panel buffer emptied")

            acked = {(p.account, item.report.zone) for p in panels for item in p.acked}
            assert not any(p.dropped for p in panels)
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= len(acked), timeout=60,
                           what="every ACKed alarm at 110")
            at_110 = [(s.event.account, s.event.zone) for s in await center.store.events()]
            assert len(at_110) == len(set(at_110))                  # once
            assert set(at_110) == acked                             # every one ACKed, nothing else
            for account in ACCOUNTS:                                # in order per account
                zones = [z for a, z in at_110 if a == account]
                assert zones == sorted(zones) and zones
            assert verify(url).ok
    finally:
        stop.set()
        for p in panels:
            await p.stop()
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
