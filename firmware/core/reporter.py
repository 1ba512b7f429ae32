# Reporting to the alarm receiving center over SIA DC-09 (ADM-CID), through the
# shared codec protocols.dc09 (AES-CBC via cryptolib on the device).
#
# One event at a time from the persistent queue (alarms first): encode, send,
# wait for the ACK that matches sequence and account, and only then remove it
# from the queue. No ACK within ack_timeout (or a NAK/DUH, or a dead link) is a
# failure: retry with back-off; after `failover` consecutive failures switch to the
# other receiver (primary <-> backup). When idle, a NULL link test every
# `supervision` seconds keeps the receiver's supervision timer alive.
# The DC-09 sequence comes from the event's queue seq, so a retry (even after a
# restart) reuses it. The frame timestamp is the send time (receivers reject
# frames outside their window); the time the event happened goes in [H...].
#
# config "reporter": {
#   "receivers": [{"host": "10.0.0.5", "port": 12000}, {"host": ..., "port": ...}],
#   "transport": "tcp" | "udp", "key_hex": "..." | "key_text": "...",
#   "receiver": "R number hex" | null, "prefix": "0", "account": (default: config account),
#   "ack_timeout": 5, "failover": 3, "failback": 300, "supervision": 60, "retry_max": 30 }
# After `failback` seconds on the backup the next message tries the primary again.
import asyncio
from core.log import log
from core.compat import ticks_ms, ticks_add, ticks_diff
from protocols import dc09


def _key(rc):
    if rc.get("key_hex"):
        return dc09.key_from_hex(rc["key_hex"])
    if rc.get("key_text"):
        return dc09.key_from_text(rc["key_text"])
    return None


class Reporter:
    def __init__(self, cfg, hal, clock, queue):
        rc = cfg.get("reporter") or {}
        self.hal = hal
        self.clock = clock
        self.queue = queue
        self.receivers = rc.get("receivers", [])
        self.udp = rc.get("transport", "tcp") == "udp"
        self.key = _key(rc)
        self.rcv = rc.get("receiver")
        self.prefix = rc.get("prefix", "0")
        self.account = rc.get("account", cfg.get("account", "1234")).upper()
        self.ack_timeout = int(rc.get("ack_timeout", 5) * 1000)
        self.failover = rc.get("failover", 3)
        self.supervision = int(rc.get("supervision", 60) * 1000)
        self.retry_max = int(rc.get("retry_max", 30) * 1000)
        self.failback = int(rc.get("failback", 300) * 1000)   # back to the primary after this
        self.switched = 0
        self.idx = 0
        self.fails = 0
        self.null_seq = 0
        self.wake = asyncio.Event()
        self.reader = None
        self.writer = None
        self.sock = None
        self.gen = -1
        self.frames = None
        self.last_tx = ticks_ms()
        self.heartbeat = ticks_ms()
        self.sent = 0
        self.link_ok = False

    def notify(self):
        self.wake.set()

    # -- link -----------------------------------------------------------------
    def _close(self):
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:
                pass
        if self.sock is not None:
            try:
                self.sock.close()
            except Exception:
                pass
        self.reader = self.writer = self.sock = None

    async def _link(self):
        if self.idx and ticks_diff(ticks_ms(), self.switched) >= self.failback:
            self._close()                 # time to try the primary again
            self.idx = 0
            self.fails = 0
            log("DC09", "back to receiver 0")
        gen = getattr(self.hal, "net_gen", 0)
        if gen != self.gen:
            self._close()
            self.gen = gen
        if self.reader is not None or self.sock is not None:
            return
        r = self.receivers[self.idx]
        self.frames = dc09.FrameReader()
        if self.udp:
            import socket
            s = self.hal.udp_socket()
            s.setblocking(False)
            self.addr = socket.getaddrinfo(r["host"], r["port"])[0][-1]
            self.sock = s
        else:
            self.reader, self.writer = await asyncio.wait_for_ms(
                self.hal.open_connection(r["host"], r["port"]), self.ack_timeout)
            log("DC09", "connected %s:%d" % (r["host"], r["port"]))

    async def _exchange(self, msg):
        """Send msg; True once its ACK arrives."""
        await self._link()
        frame = dc09.encode(msg, self.key)
        if self.udp:
            self.sock.sendto(frame, self.addr)
        else:
            self.writer.write(frame)
            await self.writer.drain()
        self.last_tx = ticks_ms()
        deadline = ticks_add(ticks_ms(), self.ack_timeout)
        while True:
            left = ticks_diff(deadline, ticks_ms())
            if left <= 0:
                raise OSError("ack timeout")
            if self.udp:
                try:
                    data = self.sock.recv(1024)
                except OSError:
                    await asyncio.sleep_ms(10)
                    continue
            else:
                data = await asyncio.wait_for_ms(self.reader.read(512), left)
                if not data:
                    raise OSError("connection closed")
            for f in self.frames.feed(data):
                try:
                    resp = dc09.decode(f, self.key)
                except dc09.DC09Error as e:
                    log("DC09", "bad response %s" % e.reason)
                    continue
                if dc09.is_ack_for(resp, msg):
                    return True
                if resp.token == "NAK" and resp.timestamp:
                    self._clock_from(resp.timestamp, msg.timestamp)
                if resp.token in ("NAK", "DUH"):
                    raise OSError(resp.token)

    def _clock_from(self, theirs, ours):
        """A NAK carries the receiver's time: when ours is off by more than 10 s (so
        the receiver refuses our timestamps), take its time, and resend."""
        if ours is None:
            return
        d = dc09.to_seconds(theirs) - dc09.to_seconds(ours)
        if d > 10 or d < -10:
            self.clock.offset += d
            log("CLOCK", "corrected by %d s from the receiver's NAK" % d)

    def _timestamp(self):
        return tuple(self.clock.gmtime()[:6])

    def build(self, fields):
        seq, when, q, part, code, zone = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
        # ADM-CID data "#ACCT|QEEE GG ZZZ", as contactid.dc09_data() writes it (a test
        # checks they agree): formatted here so the panel does not load contactid.
        data = "#%s|%d%03d %02d %03d" % (self.account, q, code, part, zone)
        t = self.clock.gmtime(when)
        xdata = [("H", "%02d:%02d:%02d,%02d-%02d-%04d" % (t[3], t[4], t[5], t[1], t[2], t[0]))]
        return dc09.Message("ADM-CID", (seq - 1) % 9999 + 1, self.account, self.rcv, self.prefix,
                            data, xdata, self._timestamp())

    def _failed(self, what, e):
        self._close()
        self.fails += 1
        self.link_ok = False
        log("DC09", "%s failed (%d) %r" % (what, self.fails, e))
        if self.fails >= self.failover and len(self.receivers) > 1:
            self.idx = (self.idx + 1) % len(self.receivers)
            self.fails = 0
            self.switched = ticks_ms()
            r = self.receivers[self.idx]
            log("DC09", "switch to receiver %d %s:%d" % (self.idx, r["host"], r["port"]))

    # -- main loop ----------------------------------------------------------------
    async def run(self):
        """Never ends: an unexpected error (MemoryError included) is logged and the
        loop goes on after a pause; its heartbeat feeds the watchdog supervisor."""
        if not self.receivers:
            log("DC09", "no receivers configured")
            return
        while True:
            try:
                await self._run()
            except Exception as e:
                self._close()
                log("ERROR", "reporter %r" % (e,))
                await asyncio.sleep_ms(500)

    async def _run(self):
        q = self.queue
        backoff = 250
        while True:
            self.heartbeat = ticks_ms()
            if not self.hal.net_ok():
                self._close()
                backoff = 250
                await asyncio.sleep_ms(100)
                continue
            slot = q.next()
            if slot < 0:
                wait = self.supervision - ticks_diff(ticks_ms(), self.last_tx)
                if wait > 0:
                    try:
                        await asyncio.wait_for_ms(self.wake.wait(), min(wait, 1000))
                    except asyncio.TimeoutError:
                        pass
                    self.wake.clear()
                    continue
                self.null_seq = self.null_seq % 9999 + 1
                msg = dc09.Message("NULL", self.null_seq, self.account, self.rcv, self.prefix,
                                   "", None, self._timestamp())
                try:
                    await self._exchange(msg)
                    log("DC09", "NULL ack")
                    self.fails = 0
                    self.link_ok = True
                except Exception as e:
                    self._failed("NULL", e)
                    await asyncio.sleep_ms(backoff)
                    backoff = min(backoff * 2, self.retry_max)
                continue
            if not q.read(slot):
                q.ack(slot)
                continue
            seq = q.fields[0]
            code = q.fields[4]
            msg = self.build(q.fields)
            try:
                await self._exchange(msg)
            except Exception as e:
                self._failed("seq %d" % seq, e)
                await asyncio.sleep_ms(backoff)
                backoff = min(backoff * 2, self.retry_max)
                continue
            q.ack(slot, seq)
            self.sent += 1
            self.fails = 0
            backoff = 250
            self.link_ok = True
            log("DELIVERED", "seq=%d code=%03d rcv=%d" % (seq, code, self.idx))
