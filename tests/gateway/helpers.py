"""Shared helpers for the gateway tests: configs on free loopback ports, waiting
for a condition (bounded, never a timing assertion), raw DC-09 exchanges."""
import asyncio
import time

from gateway import config as config_module
from protocols import dc09
from tests.support.ports import free_tcp_udp_port

PANEL_KEY_HEX = "000102030405060708090A0B0C0D0E0F"
PANEL_KEY = dc09.key_from_hex(PANEL_KEY_HEX)
TEXT_KEY = "ABCDEF0123456789"             # hex characters, so pysiaalarm accepts it too
PEER_KEY_HEX = "F0E1D2C3B4A5968778695A4B3C2D1E0F"
PEER_KEY = dc09.key_from_hex(PEER_KEY_HEX)


def address(port):
    return "127.0.0.1:%d" % port


def center_config(tmp_path, name="asc", port=None, upstream=None, devices=None, forwarders=None, **receiver):
    """A gateway receiving on a free port. `upstream`: list of ports for a DC-09
    forwarder named "up" using the peering key."""
    port = port or free_tcp_udp_port()
    data = {
        "gateway": {"name": name},
        "store": {"path": str(tmp_path / ("%s.db" % name))},
        "receiver": dict({"listen": address(port)}, **receiver),
        "devices": devices if devices is not None else [
            {"account": "1001", "key_hex": PANEL_KEY_HEX, "site": "Bldg 1"},
            {"account": "1002", "key_text": TEXT_KEY, "site": "Bldg 2"},
            {"account": "1003", "site": "Guard house (plain text)"},
        ],
        "forwarders": list(forwarders or []),
    }
    if upstream:
        data["forwarders"].append({"name": "up", "type": "dc09", "receivers": [address(p) for p in upstream],
                                   "key_hex": PEER_KEY_HEX, "ack_timeout_seconds": 2,
                                   "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5,
                                   "failback_seconds": 1})
    return config_module.from_dict(data, tmp_path, name)


def upper_config(tmp_path, name="110", port=None, upstream=None, forwarders=None):
    """A higher-level gateway taking any account under the peering key."""
    return center_config(tmp_path, name, port, upstream,
                         devices=[{"account": "*", "key_hex": PEER_KEY_HEX}], forwarders=forwarders)


async def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Poll until predicate() (sync or async) is truthy; fail the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(interval)


def adm_cid(account, code, qualifier=1, zone=1, partition=1, seq=1, occurred=None, timestamp=None):
    xdata = [("H", dc09.format_timestamp(dc09.from_seconds(occurred)))] if occurred else []
    return dc09.Message("ADM-CID", seq=seq, account=account,
                        data="#%s|%d%03d %02d %03d" % (account, qualifier, code, partition, zone),
                        xdata=xdata, timestamp=timestamp or dc09.timestamp_now())


class RawClient:
    """A TCP connection to a receiver that sends bytes and reads answer frames."""

    async def connect(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.frames = dc09.FrameReader()
        self.queue = []
        return self

    async def send(self, data):
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, key=None, timeout=10):
        while not self.queue:
            data = await asyncio.wait_for(self.reader.read(4096), timeout)
            assert data, "receiver closed the connection"
            self.queue += self.frames.feed(data)
        return dc09.decode(self.queue.pop(0), key)

    async def close(self):
        self.writer.close()
        await self.writer.wait_closed()
