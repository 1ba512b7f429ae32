"""Simulated alarm panels speaking real SIA DC-09 (encrypted ADM-CID) to a gateway.

Stands in for the MicroPython panel firmware in `jifang demo`, the tests and the
bench, and behaves the way the standards ask a panel to:
  - every event goes into an offline buffer (1,000 events, GB 12663 / EN 50131
    grade 4) and leaves it only when the receiver ACKs it;
  - a retry keeps the sequence number and the time of occurrence ([H] extended
    data) and gets a fresh timestamp, so the receiver records it once;
  - a NAK or a silent receiver means retry with back-off; a DUH means the receiver
    will never take it, so it is dropped;
  - when idle it sends NULL link tests, which the receiver's supervision watches.

`Compound` runs a residential compound of such panels with a plausible mix of
traffic: arming and disarming, burglary alarms and restores, panic, fire, medical,
tamper, AC loss and low battery troubles.
"""
import asyncio
import collections
import logging
import random
import time

from gateway.tasks import cancel_and_wait
from protocols import contactid, dc09

log = logging.getLogger("jifang.panelsim")

OFFLINE_BUFFER = 1000


class _Pending:
    def __init__(self, report, seq, occurred, position=None):
        self.report = report
        self.seq = seq
        self.occurred = occurred
        self.position = position
        self.sent_at = None             # time.monotonic() of its first transmission
        self.acked_at = None            # ... and of its ACK
        self.acked = asyncio.get_running_loop().create_future()


class _UDPLink(asyncio.DatagramProtocol):
    def __init__(self):
        self.answers = asyncio.Queue()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        for frame in dc09.FrameReader().feed(data):
            self.answers.put_nowait(frame)


class Panel:
    def __init__(self, account, key, receiver, transport="tcp", link_test_interval=30.0,
                 ack_timeout=3.0, retry_max=5.0, failover=2):
        """`receiver`: (host, port), or a list of them, primary first: after `failover`
        failed attempts in a row the panel moves to the next one, as the firmware's
        reporter does (firmware/core/reporter.py), and stays there."""
        self.account = account
        self.key = key
        self.receivers = list(receiver) if isinstance(receiver, list) else [receiver]
        self.receiver_index = 0
        self.receiver = self.receivers[0]
        self.failover = failover
        self._failures = 0
        self.transport = transport
        self.link_test_interval = link_test_interval
        self.ack_timeout = ack_timeout
        self.retry_max = retry_max
        self.buffer = collections.deque()
        self.seq = 0
        self.acked = []                 # _Pending items the receiver ACKed, in order
        self.dropped = []               # refused with DUH, or evicted from a full buffer
        self.naks = 0
        self.silent = False             # True: send nothing (simulates a cut line)
        self._wakeup = asyncio.Event()
        self._reader = self._writer = self._udp = None
        self._frames = None
        self._task = None

    # -- what the panel's application does -------------------------------------

    def report(self, code, qualifier=contactid.QUALIFIER_NEW, zone=0, partition=1, position=None):
        """Queue an event; returns the pending item (its `.acked` future resolves on ACK)."""
        if len(self.buffer) >= OFFLINE_BUFFER:
            self.dropped.append(self.buffer.popleft())   # oldest goes, as real panels do
        item = _Pending(contactid.Report(self.account, qualifier, code, partition, zone),
                        self._next_seq(), int(time.time()), position)
        self.buffer.append(item)
        self._wakeup.set()
        return item

    def _next_seq(self):
        self.seq = self.seq % 9999 + 1
        return self.seq

    # -- the communicator ----------------------------------------------------------

    def start(self):
        self._task = asyncio.create_task(self.run(), name="panel-" + self.account)
        return self._task

    async def stop(self):
        await cancel_and_wait(self._task)
        await self._close()

    async def run(self):
        backoff = 0.2
        last_sent = time.monotonic()
        while True:
            if self.silent:
                await self._close()
                await asyncio.sleep(0.2)
                continue
            try:
                if self.buffer:
                    await self._transmit(self.buffer[0])
                    last_sent = time.monotonic()
                    backoff = 0.2
                    self._failures = 0
                    continue
                idle = self.link_test_interval - (time.monotonic() - last_sent)
                if idle <= 0:
                    await self._link_test()
                    last_sent = time.monotonic()
                    continue
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), idle)
                except asyncio.TimeoutError:
                    pass
            except (OSError, asyncio.TimeoutError, _Retry) as exc:
                await self._close()
                log.debug("panel retrying", extra={"account": self.account, "error": repr(exc)})
                self._failures += 1
                if len(self.receivers) > 1 and self._failures >= self.failover:
                    self._failures = 0
                    self.receiver_index = (self.receiver_index + 1) % len(self.receivers)
                    self.receiver = self.receivers[self.receiver_index]
                    backoff = 0.2           # a fresh receiver: no reason to wait long for it
                    continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max)

    async def _transmit(self, item):
        xdata = [("H", dc09.format_timestamp(dc09.from_seconds(item.occurred)))]
        if item.position:
            xdata += dc09.position_xdata(*item.position)
        msg = dc09.Message("ADM-CID", seq=item.seq, account=self.account, data=contactid.dc09_data(item.report),
                           xdata=xdata, timestamp=dc09.timestamp_now())
        if item.sent_at is None:
            item.sent_at = time.monotonic()
        answer = await self._exchange(msg)
        if answer == "DUH":
            self.dropped.append(self.buffer.popleft())
            if not item.acked.done():
                item.acked.set_result(False)
            return
        self.buffer.popleft()
        item.acked_at = time.monotonic()
        self.acked.append(item)
        if not item.acked.done():
            item.acked.set_result(True)

    async def _link_test(self):
        msg = dc09.Message("NULL", seq=self._next_seq(), account=self.account, timestamp=dc09.timestamp_now())
        await self._exchange(msg)

    async def _exchange(self, msg):
        """Send one message and wait for its answer: "ACK" or "DUH"; raises _Retry."""
        await self._open()
        frame = dc09.encode(msg, self.key)
        deadline = time.monotonic() + self.ack_timeout
        if self.transport == "udp":
            self._udp.transport.sendto(frame)
        else:
            self._writer.write(frame)
            await self._writer.drain()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Retry("no answer")
            for answer_frame in await asyncio.wait_for(self._read_frames(), remaining):
                try:
                    answer = dc09.decode(answer_frame, self.key)
                except dc09.DC09Error:
                    continue
                if dc09.is_ack_for(answer, msg):
                    return "ACK"
                if answer.token == "NAK":
                    self.naks += 1
                    raise _Retry("NAK")
                if answer.token == "DUH" and answer.seq == msg.seq:
                    return "DUH"

    async def _read_frames(self):
        if self.transport == "udp":
            return [await self._udp.answers.get()]
        while True:
            data = await self._reader.read(4096)
            if not data:
                raise ConnectionResetError("receiver closed the connection")
            frames = self._frames.feed(data)
            if frames:
                return frames

    async def _open(self):
        if self.transport == "udp":
            if self._udp is None:
                loop = asyncio.get_running_loop()
                _, self._udp = await loop.create_datagram_endpoint(_UDPLink, remote_addr=self.receiver)
        elif self._writer is None:
            self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(*self.receiver), self.ack_timeout)
            self._frames = dc09.FrameReader()

    async def _close(self):
        if self._udp is not None:
            self._udp.transport.close()
            self._udp = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


class _Retry(Exception):
    pass


# What a compound's panels send, with weights: mostly arming and disarming.
SCENARIO = [
    (30, "disarm"), (30, "arm"), (8, "burglary"), (3, "panic"), (2, "fire"), (2, "medical"),
    (3, "tamper"), (5, "ac_loss"), (4, "low_battery"),
]


class Compound:
    """A residential compound of panels with random, plausible traffic."""

    def __init__(self, panels, mean_gap=6.0, seed=None):
        self.panels = panels
        self.mean_gap = mean_gap
        self.random = random.Random(seed)
        self._tasks = []

    def start(self):
        for panel in self.panels:
            panel.start()
            self._tasks.append(asyncio.create_task(self._behave(panel)))

    async def stop(self):
        await cancel_and_wait(*self._tasks)
        for panel in self.panels:
            await panel.stop()

    async def _behave(self, panel):
        rnd = self.random
        await asyncio.sleep(rnd.uniform(0, self.mean_gap))
        while True:
            action = rnd.choices([a for _, a in SCENARIO], [w for w, _ in SCENARIO])[0]
            zone = rnd.randint(1, 16)
            user = rnd.randint(1, 8)
            if action == "disarm":
                panel.report(401, contactid.QUALIFIER_NEW, user)          # opening by user
            elif action == "arm":
                panel.report(401, contactid.QUALIFIER_RESTORE, user)      # closing by user
            elif action == "burglary":
                panel.report(130, zone=zone)
                await asyncio.sleep(rnd.uniform(2, 6))
                panel.report(130, contactid.QUALIFIER_RESTORE, zone)
            elif action == "panic":
                panel.report(120, zone=rnd.choice((91, 92)))               # latches: no restore until reset by hand
            elif action == "fire":
                panel.report(110, zone=zone)
            elif action == "medical":
                panel.report(100, zone=rnd.choice((93, 94)))
            elif action == "tamper":
                panel.report(137, zone=zone)
                await asyncio.sleep(rnd.uniform(2, 6))
                panel.report(137, contactid.QUALIFIER_RESTORE, zone)
            elif action == "ac_loss":
                panel.report(301, partition=0)
                await asyncio.sleep(rnd.uniform(3, 10))
                panel.report(301, contactid.QUALIFIER_RESTORE, partition=0)
            elif action == "low_battery":
                panel.report(302, partition=0)
            await asyncio.sleep(rnd.expovariate(1 / self.mean_gap))
