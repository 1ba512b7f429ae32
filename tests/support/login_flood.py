"""Issue 11 §1 harness: a gateway process (DC-09 receiver + console) under a console
login flood, and the DC-09 ACK latency a panel sees meanwhile.

Used by tests/console/test_login_flood.py (asserts the bound the issue demands)
and bench/login_flood.py (prints the figures). Three kinds of process, as in
production and an attack:
  - the gateway, `python -m gateway.service --config gateway.toml`, which starts
    its console (console.process = "child" unless told otherwise);
  - the attacker, `python -m tests.support.login_flood --url ...`: `clients`
    concurrent wrong logins in a loop, each from its own loopback address
    (127.0.1.x: the per-address throttle is evaded as a botnet would), until its
    stdin closes; it prints what it got as JSON. It runs at nice +10: on loopback
    it shares this machine's two cores with the gateway, which a real attacker on
    another machine would not;
  - this process: one panel on one TCP connection sending encrypted ADM-CID
    alarms one after the other, timing each from send to ACK.
"""
import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PANEL_ACCOUNT = "1001"
PANEL_KEY_HEX = "000102030405060708090A0B0C0D0E0F"
WRONG = "wrong password!"


def gateway_toml(workdir, receiver_port, console_port, process="child"):
    path = Path(workdir) / "gateway.toml"
    path.write_text("""[gateway]
name = "flood"
[store]
path = "events.db"
[receiver]
listen = "127.0.0.1:%d"
[[devices]]
account = "%s"
key_hex = "%s"
site = "Bank"
[console]
listen = "127.0.0.1:%d"
process = "%s"
# 100 browsers at once from one address: what this flood is about is the login
# throttle, not the connection limit (tests/console/test_console_net_limits.py)
max_connections_per_address = 128
""" % (receiver_port, PANEL_ACCOUNT, PANEL_KEY_HEX, console_port, process))
    return path


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class GatewayProcess:
    """`python -m gateway.service` on free ports, with a console whose accounts are
    the console tests' (tests/console/support.py USERS, PASSWORD)."""

    def __init__(self, workdir, process="child"):
        from tests.support.ports import free_port, free_tcp_udp_port
        self.workdir = Path(workdir)
        self.receiver_port, self.console_port = free_tcp_udp_port(), free_port()
        self.config = gateway_toml(workdir, self.receiver_port, self.console_port, process)
        self.console_url = "http://127.0.0.1:%d/" % self.console_port

    async def __aenter__(self):
        from tests.console.support import add_users
        await add_users(self.workdir / "console.sqlite")          # next to the event log, where the console looks
        self.log = open(self.workdir / "gateway.log", "ab")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.service", "--config", str(self.config),
                                      "--log-level", "WARNING"], cwd=self.workdir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while not (_listening(self.receiver_port) and _listening(self.console_port)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start (see %s)" % (self.workdir / "gateway.log"))
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class AlarmPanel:
    """One panel, one TCP connection, alarms one at a time; `latencies` in seconds."""

    def __init__(self, port):
        self.port = port
        self.seq = 0
        self.latencies = []

    async def __aenter__(self):
        from protocols import dc09
        self.key = dc09.key_from_hex(PANEL_KEY_HEX)
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.frames = dc09.FrameReader()
        self.queue = []
        return self

    async def alarm(self, code=130, zone=1):
        from protocols import dc09
        self.seq = self.seq % 9999 + 1
        msg = dc09.Message("ADM-CID", seq=self.seq, account=PANEL_ACCOUNT,
                           data="#%s|1%03d 01 %03d" % (PANEL_ACCOUNT, code, zone), timestamp=dc09.timestamp_now())
        frame = dc09.encode(msg, self.key)
        sent = time.perf_counter()
        self.writer.write(frame)
        await self.writer.drain()
        while not self.queue:
            data = await asyncio.wait_for(self.reader.read(4096), 30)
            assert data, "the receiver closed the connection"
            self.queue += self.frames.feed(data)
        answer = dc09.decode(self.queue.pop(0), self.key)
        self.latencies.append(time.perf_counter() - sent)
        assert dc09.is_ack_for(answer, msg), answer

    async def alarms(self, count, gap_s=0.01):
        for i in range(count):
            await self.alarm(zone=i % 99 + 1)
            await asyncio.sleep(gap_s)

    async def __aexit__(self, *exc):
        self.writer.close()
        await self.writer.wait_closed()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Flood:
    """The attacker process (see the module docstring)."""

    def __init__(self, url, clients=100):
        self.args = [sys.executable, "-m", "tests.support.login_flood", "--url", url, "--clients", str(clients)]

    async def __aenter__(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
        self.proc = await asyncio.create_subprocess_exec(*self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                         env=env, cwd=REPO)
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        assert line.strip() == b"flooding", line
        return self

    async def __aexit__(self, *exc):
        self.proc.stdin.close()
        out, _ = await asyncio.wait_for(self.proc.communicate(), 60)
        self.result = json.loads(out)


# -- the attacker --------------------------------------------------------------------


async def _flood(url, clients):
    import aiohttp
    statuses = {}
    stop = asyncio.Event()

    async def attacker(i):
        # Its own address, 127.0.1.1 ... : the per-address throttle sees 100 hosts.
        connector = aiohttp.TCPConnector(local_addr=("127.0.1.%d" % (i + 1), 0), limit=1)
        async with aiohttp.ClientSession(connector=connector) as http:
            n = 0
            while not stop.is_set():
                n += 1
                name = "guess-%d-%d" % (i, n)
                try:
                    async with http.post(url + "api/login", json={"username": name, "password": WRONG}) as r:
                        await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                except aiohttp.ClientError:
                    statuses["error"] = statuses.get("error", 0) + 1

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = [asyncio.create_task(attacker(i)) for i in range(clients)]
    print("flooding", flush=True)
    await reader.read()                              # until the test closes our stdin
    stop.set()
    await asyncio.gather(*tasks)
    print(json.dumps({str(k): v for k, v in statuses.items()}), flush=True)


def main():
    parser = argparse.ArgumentParser(description="wrong console logins, concurrently, until stdin closes")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=100)
    args = parser.parse_args()
    os.nice(10)
    asyncio.run(_flood(args.url, args.clients))


if __name__ == "__main__":
    main()
