"""DC-09 forwarder: sends events upstream (a 110 center, or another jifang gateway's
receiver) as encrypted ADM-CID frames over TCP, one at a time, each confirmed by
its ACK before the next is sent (that keeps per-account order, and it is all that
pysiaalarm can handle: it reads one frame per read()).

Retries and relays must be recognisable as the same event upstream, whose dedup
key is (account, sequence, device time, code, zone). So the frame carries
  - the panel's account,
  - a sequence derived from the event's row id (the same on every retry, also after
    a restart),
  - the time the event occurred as extended data [H...]; the frame's own timestamp
    is the time of sending, as replay protection requires (an alarm queued for an
    hour would otherwise fall outside the receiver's window).

ACKs are matched by sequence and account only (pysiaalarm writes "None" for the
receiver number). NAK -> retry later with a fresh timestamp, on the receiver's clock
if its NAK shows ours is off; DUH -> refused for good.

Link tests: with `link_account` set, a NULL message goes up every
`link_test_seconds`, so the upstream supervises this gateway like a panel.

Failover: receivers[0] is the primary. Two failed attempts in a row move to the
next receiver; while on a backup, the primary is probed at most every
`failback_after` seconds and used again as soon as it accepts a connection.
"""
import asyncio
import logging
import time

from protocols import contactid, dc09
from gateway.sinks.forwarder import DeliveryError, Forwarder, Rejected

log = logging.getLogger("jifang.forward.dc09")

FAILURES_BEFORE_FAILOVER = 2


def sequence_for(row_id):
    return (row_id - 1) % 9999 + 1      # 0001..9999, as the standard wraps


def message_for(stored, spec, timestamp):
    ev = stored.event
    if not 100 <= ev.code <= 999:          # telemetry and positions have no Contact ID code
        raise dc09.DC09Error("format", "%s event has no Contact ID code" % ev.event_class)
    report = contactid.Report(ev.account, ev.qualifier, ev.code, ev.partition, ev.zone)
    xdata = [("H", dc09.format_timestamp(dc09.from_seconds(ev.device_time)))]
    if ev.position and spec.send_position:
        xdata += dc09.position_xdata(*ev.position)
    return dc09.Message("ADM-CID", seq=sequence_for(stored.id), account=ev.account,
                        receiver=spec.receiver_number, prefix=spec.prefix,
                        data=contactid.dc09_data(report), xdata=xdata, timestamp=timestamp)


class DC09Forwarder(Forwarder):
    def __init__(self, spec, outbox, metrics):
        super().__init__(spec, outbox, metrics)
        self.active = 0                 # index into spec.receivers
        self.failures = 0
        self.switched_at = time.monotonic()
        self.reader = self.writer = None
        self.frames = None
        self.link_seq = 0
        self.clock_offset = 0           # seconds the upstream's clock is ahead of ours (from its NAKs)
        self.heartbeat_interval = spec.link_test_seconds or None

    def _timestamp(self):
        return dc09.from_seconds(int(time.time()) + self.clock_offset)

    @property
    def receiver(self):
        return self.spec.receivers[self.active]

    async def _connect(self, index):
        host, port = self.spec.receivers[index]
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.spec.ack_timeout)
        return reader, writer

    async def _ensure_connected(self):
        if self.active != 0 and time.monotonic() - self.switched_at >= self.spec.failback_after:
            self.switched_at = time.monotonic()          # probe the primary at most this often
            try:
                conn = await self._connect(0)
            except (OSError, asyncio.TimeoutError):
                conn = None
            if conn is not None:
                await self.close()
                self.reader, self.writer = conn
                self.frames = dc09.FrameReader()
                self.active, self.failures = 0, 0
                log.warning("failed back to the primary receiver", extra={"forwarder": self.name, "receiver": "%s:%d" % self.receiver})
        if self.writer is None:
            self.reader, self.writer = await self._connect(self.active)
            self.frames = dc09.FrameReader()

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass
        self.reader = self.writer = None

    async def deliver(self, stored):
        try:
            msg = message_for(stored, self.spec, self._timestamp())
        except (contactid.ContactIDError, dc09.DC09Error) as exc:
            raise Rejected("not expressible as DC-09 ADM-CID: %s" % exc)
        await self._exchange(msg)

    async def heartbeat(self):
        """Every link_test_seconds a NULL link test under link_account, so the
        upstream's supervision sees this link alive (and raises a 350 for it when it
        is not). Sent even while events flow: those carry the panels' accounts."""
        self.link_seq = self.link_seq % 9999 + 1
        msg = dc09.Message("NULL", seq=self.link_seq, account=self.spec.link_account,
                           receiver=self.spec.receiver_number, prefix=self.spec.prefix, timestamp=self._timestamp())
        await self._exchange(msg)

    async def _exchange(self, msg):
        """Send one message and wait for its ACK; failover bookkeeping on failure."""
        address = self.receiver
        try:
            await self._ensure_connected()
            self.writer.write(dc09.encode(msg, self.spec.key))
            await self.writer.drain()
            await asyncio.wait_for(self._await_answer(msg), self.spec.ack_timeout)
            self.failures = 0
        except Rejected:
            raise
        except (DeliveryError, OSError, asyncio.TimeoutError) as exc:
            await self.close()
            self.failures += 1
            if self.failures >= FAILURES_BEFORE_FAILOVER and len(self.spec.receivers) > 1:
                self.active = (self.active + 1) % len(self.spec.receivers)
                self.failures = 0
                self.switched_at = time.monotonic()
                log.warning("failing over to the next receiver", extra={"forwarder": self.name, "receiver": "%s:%d" % self.receiver})
            if isinstance(exc, asyncio.TimeoutError):
                raise DeliveryError("timeout", "no answer from %s:%d" % address)
            raise

    def _adopt_receiver_time(self, nak):
        """A NAK carries the receiver's time (DC-09 says so for exactly this): if our
        timestamps fall outside its window, the retry is stamped on its clock."""
        if nak.timestamp is None:
            return
        offset = dc09.to_seconds(nak.timestamp) - int(time.time())
        if abs(offset - self.clock_offset) > 5:
            log.warning("receiver clock differs; stamping frames on its time",
                        extra={"forwarder": self.name, "offset_s": offset})
            self.clock_offset = offset

    async def _await_answer(self, msg):
        while True:
            data = await self.reader.read(4096)
            if not data:
                raise DeliveryError("closed", "receiver closed the connection")
            for frame in self.frames.feed(data):
                try:
                    answer = dc09.decode(frame, self.spec.key)
                except dc09.DC09Error as exc:
                    log.warning("unreadable answer from receiver", extra={"forwarder": self.name, "reason": exc.reason,
                                                                         "error": exc.message})
                    continue
                if dc09.is_ack_for(answer, msg):
                    return
                if answer.token == "NAK":
                    self._adopt_receiver_time(answer)
                    raise DeliveryError("nak", "receiver NAKed sequence %04d" % msg.seq)
                if answer.token == "DUH" and answer.seq == msg.seq:
                    raise Rejected("receiver answered DUH to %s" % msg.data)
                # An ACK for an earlier, timed-out frame: ignore it, keep waiting.
