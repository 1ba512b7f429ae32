"""kill -9 the gateway process while 20 panels send; after a restart every event it
ACKed is in its store once and reaches the 110 center exactly once."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from gateway.app import Gateway
from gateway.panelsim import Panel
from gateway.store import EventLog, verify
from protocols import contactid
from tests.gateway.helpers import PANEL_KEY_HEX, PANEL_KEY, PEER_KEY_HEX, upper_config, wait_for
from tests.support.ports import free_tcp_udp_port

REPO = Path(__file__).resolve().parents[2]
ACCOUNTS = ["%04d" % (3001 + i) for i in range(20)]


def asc_toml(tmp_path, port, port110):
    devices = "".join('[[devices]]\naccount = "%s"\nkey_hex = "%s"\n\n' % (a, PANEL_KEY_HEX) for a in ACCOUNTS)
    text = """[gateway]
name = "asc"
[store]
path = "asc.db"
[receiver]
listen = "127.0.0.1:%d"
[[forwarders]]
name = "110"
type = "dc09"
receivers = ["127.0.0.1:%d"]
key_hex = "%s"
retry_initial_seconds = 0.05
retry_max_seconds = 0.5

%s""" % (port, port110, PEER_KEY_HEX, devices)
    path = tmp_path / "asc.toml"
    path.write_text(text)
    return path


def start_gateway(config_path, log_path):
    return subprocess.Popen([sys.executable, "-m", "gateway.service", "--config", str(config_path)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


async def traffic(panel, stop):
    """Alarms and openings/closings, each with its own zone so every event is distinct."""
    zone = 0
    while not stop.is_set():
        zone += 1
        if zone % 3:
            panel.report(130, zone=zone)
        else:
            panel.report(401, contactid.QUALIFIER_RESTORE, zone=zone)
        await asyncio.sleep(0.02)


async def test_kill_9_loses_nothing_acked_and_110_gets_each_event_once(tmp_path):
    port, port110 = free_tcp_udp_port(), free_tcp_udp_port()
    config_path = asc_toml(tmp_path, port, port110)
    log_path = tmp_path / "asc.log"
    proc = start_gateway(config_path, log_path)
    panels, stop = [], asyncio.Event()
    try:
        async with Gateway(upper_config(tmp_path, port=port110)) as center:
            await wait_for(lambda: listening(port), what="gateway process listening")
            panels = [Panel(a, PANEL_KEY, ("127.0.0.1", port), ack_timeout=1, retry_max=0.5) for a in ACCOUNTS]
            for p in panels:
                p.start()
            senders = [asyncio.create_task(traffic(p, stop)) for p in panels]
            await wait_for(lambda: sum(len(p.acked) for p in panels) >= 150, what="150 ACKs before the crash")

            os.kill(proc.pid, signal.SIGKILL)           # mid-stream: frames in flight, batches uncommitted
            proc.wait()
            acked_before_crash = sum(len(p.acked) for p in panels)
            await asyncio.sleep(0.5)                    # panels buffer and retry meanwhile
            proc = start_gateway(config_path, log_path)
            await wait_for(lambda: sum(len(p.acked) for p in panels) >= acked_before_crash + 150,
                           what="ACKs after the restart")
            stop.set()
            await asyncio.gather(*senders)
            await wait_for(lambda: all(not p.buffer for p in panels), timeout=60, what="every panel buffer emptied")

            acked = {}
            for p in panels:
                for item in p.acked:
                    r = item.report
                    acked[(p.account, r.code, r.qualifier, r.zone)] = item.occurred
            log = EventLog(tmp_path / "asc.db")
            stored = [s.event for s in log.events()]
            log.close()
            stored_keys = [(e.account, e.code, e.qualifier, e.zone) for e in stored]
            assert len(stored_keys) == len(set(stored_keys))             # recorded once
            assert set(stored_keys) == set(acked)                        # nothing ACKed is missing
            alarms = {k for k in acked if k[1] == 130}
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= len(alarms), timeout=60,
                           what="every alarm at 110")
            at_110 = [(s.event.account, s.event.code, s.event.qualifier, s.event.zone) for s in await center.store.events()]
            assert sorted(at_110) == sorted(alarms)                      # exactly once, openings not relayed
            assert verify(tmp_path / "asc.db").ok
    finally:
        stop.set()
        for p in panels:
            await p.stop()
        proc.kill()
        proc.wait()
