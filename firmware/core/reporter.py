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
#   "ack_timeout": 5, "ack_poll_ms": 2, "failover": 3, "failback": 300, "supervision": 60,
#   "retry_max": 30 }
# After `failback` seconds on the backup the next message tries the primary again.
import asyncio
from core.log import log, quiet as log_quiet
from core.compat import ticks_ms, ticks_add, ticks_diff, wake
from protocols.dc09_link import Link, cid_data, days_from_civil, sealed


def _dc09():
    # The shared codec, imported when first needed: with an AES key the panel's own
    # frames (events and NULLs) and their ACKs go through Link (protocols/dc09_link.py,
    # buffers made once), and the codec (about 20 KB of heap as .mpy) is loaded only
    # for a frame Link does not read (a NAK without a time it can read, a plain-text
    # link).
    from protocols import dc09
    return dc09


def _key(rc):
    if rc.get("key_hex"):
        import binascii
        try:
            k = binascii.unhexlify(rc["key_hex"].strip())
        except (ValueError, TypeError):
            k = b""
        return k if len(k) in (16, 32) else _dc09().key_from_hex(rc["key_hex"])
    if rc.get("key_text"):
        k = rc["key_text"].encode()
        return k if len(k) in (16, 32) else _dc09().key_from_text(rc["key_text"])
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
        self.ack_poll = int(rc.get("ack_poll_ms", 2))
        self.failover = rc.get("failover", 3)
        self.supervision = int(rc.get("supervision", 60) * 1000)
        self.retry_max = int(rc.get("retry_max", 30) * 1000)
        self.failback = int(rc.get("failback", 300) * 1000)   # back to the primary after this
        self.switched = 0
        self.idx = 0
        self.fails = 0
        self.null_seq = 0
        self.nulls = 0                   # NULL link tests acknowledged
        self.task = None                 # the reporter's own task (run())
        self.idle = None                 # that task, while it sleeps with nothing to send
        # the link: a non-blocking socket (TCP: opened through asyncio, whose stream
        # is kept only to close it), read into rx_buf and framed into rx_frame
        self.sock = None
        self.stream = None
        self.gen = -1
        # answers (ACK, NAK, DUH) are under 200 bytes: a longer line is noise, dropped
        self.rx_buf = bytearray(128)
        self.rx_frame = bytearray(512)
        self.rx_len = -1                 # bytes of rx_frame so far; -1: waiting for an LF
        self.last_tx = ticks_ms()
        self.heartbeat = ticks_ms()
        self.sent = 0
        self.link_ok = False
        # events and NULLs: frames built and ACKs matched in buffers allocated here,
        # once (Link), when the link is encrypted and the account fits
        self.fb = self.fn = None
        if self.key is not None:
            import time
            days = days_from_civil(time.gmtime(0)[0], 1, 1)   # the port's epoch: 1970 unix, 2000 ESP32
            self.epoch = days * 86400
            try:
                self.fb = Link(self.key, self.account, self.rcv, self.prefix, days)
                self.fn = Link(self.fb, self.account, self.rcv, self.prefix, days, "NULL")
            except ValueError:
                self.fb = self.fn = None

    def notify(self):
        """An event is queued: wake the reporter now if it is idling (`idle` is set
        only while its task sleeps in _run's idle wait)."""
        t = self.idle
        if t is not None:
            self.idle = None
            wake(t)

    # -- link -----------------------------------------------------------------
    def _close(self):
        for s in (self.stream, self.sock):
            if s is not None:
                try:
                    s.close()
                except Exception:
                    pass
        self.stream = self.sock = None

    def _stale(self):
        """True when the link must be opened: none yet, the network came back under
        it (the HAL's net_gen), or the time to try the primary again has come."""
        if self.idx and ticks_diff(ticks_ms(), self.switched) >= self.failback:
            self._close()
            self.idx = 0
            self.fails = 0
            log("DC09", "back to receiver 0")
        gen = getattr(self.hal, "net_gen", 0)
        if gen != self.gen:
            self._close()
            self.gen = gen
        return self.sock is None

    async def _connect(self):
        r = self.receivers[self.idx]
        self.rx_len = -1
        if self.udp:
            import socket
            s = self.hal.udp_socket()
            s.setblocking(False)
            self.addr = socket.getaddrinfo(r["host"], r["port"])[0][-1]
            self.sock = s
        else:
            reader, self.stream = await asyncio.wait_for_ms(
                self.hal.open_connection(r["host"], r["port"]), self.ack_timeout)
            # the socket under the stream (non-blocking, as asyncio set it): written
            # and read directly, because StreamWriter.write() concatenates bytes
            # and StreamReader.read() returns new ones, per call
            self.sock = reader.s
            log("DC09", "connected %s:%d" % (r["host"], r["port"]))

    def _send(self, frame):
        if self.udp:
            self.sock.sendto(frame, self.addr)
        else:
            # one frame of a few hundred bytes, with nothing else in flight: a
            # socket that cannot take it whole is a link that is not draining
            n = self.sock.write(frame)
            if n != len(frame):
                raise OSError("short write")
        self.last_tx = ticks_ms()

    def _receive(self, seq, msg):
        """Read what the link holds now (never waits), frame it (LF ... CR: bytes
        before an LF and lines longer than rx_frame are dropped),
        and judge each frame. True once the ACK of the message has come; OSError
        for a NAK, a DUH or a closed link; False while nothing conclusive came."""
        buf = self.rx_buf
        fr = self.rx_frame
        k = self.rx_len
        while True:
            n = self.sock.readinto(buf)
            if n is None:                           # nothing more for now
                self.rx_len = k
                return False
            if n == 0 and not self.udp:
                raise OSError("connection closed")
            i = 0
            while i < n:
                c = buf[i]
                i += 1
                if c == 0x0A:
                    k = 0
                elif k < 0:
                    continue
                elif k >= len(fr):
                    k = -1
                    continue
                fr[k] = c
                k += 1
                if c == 0x0D:
                    self.rx_len = -1
                    if self._judge(fr, k, seq, msg):
                        return True                 # anything after the ACK is stale
                    k = -1

    def _judge(self, f, n, seq, msg):
        """The answer in f[:n]: True for the ACK of the message; raises for a NAK or
        DUH (taking the receiver's time from a NAK when ours is off); else False."""
        if msg is None:                             # a frame Link built: Link reads it
            if self.fb.is_ack(f, n, seq):
                return True
            t = self.fb.refused(f, n)
            if t is not None:
                if t:
                    self._correct(t - self.epoch - self.clock.time())
                raise OSError("NAK" if f[10] == 0x4E else "DUH")
            i = 11 if f[10] == 0x2A else 10
            if f[i:i + 4] == b'ACK"' and sealed(f, n):
                return False                        # a stale ACK (an earlier sequence):
                                                    # not worth loading the codec for
        dc09 = _dc09()
        try:
            resp = dc09.decode(bytes(f[:n]), self.key)
        except dc09.DC09Error as e:
            log("DC09", "bad response %s" % e.reason)
            return False
        if msg is not None and dc09.is_ack_for(resp, msg):
            return True
        if resp.token == "NAK" and resp.timestamp:
            self._clock_from(resp.timestamp, msg.timestamp if msg is not None else self._timestamp())
        if resp.token in ("NAK", "DUH"):
            raise OSError(resp.token)
        return False

    def _clock_from(self, theirs, ours):
        """A NAK carries the receiver's time: when ours is off by more than 10 s (so
        the receiver refuses our timestamps), take its time, and resend."""
        if ours is None:
            return
        dc09 = _dc09()
        self._correct(dc09.to_seconds(theirs) - dc09.to_seconds(ours))

    def _correct(self, d):
        if d > 10 or d < -10:
            self.clock.offset += d
            log("CLOCK", "corrected by %d s from the receiver's NAK" % d)

    def _timestamp(self):
        return tuple(self.clock.gmtime()[:6])

    def build(self, fields):
        """The event's Message, for a link Link does not build (no key); ValueError
        for a field wider than ADM-CID's digits."""
        seq, when, q, part, code, zone = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
        data = cid_data(self.account, q, code, part, zone)
        t = self.clock.gmtime(when)
        xdata = [("H", "%02d:%02d:%02d,%02d-%02d-%04d" % (t[3], t[4], t[5], t[1], t[2], t[0]))]
        return _dc09().Message("ADM-CID", (seq - 1) % 9999 + 1, self.account, self.rcv, self.prefix,
                            data, xdata, self._timestamp())

    def frame(self, f):
        """The frame of the event in queue fields `f`, built in place (no allocation):
        a memoryview of the builder's buffer, or None when the frame must come from
        dc09.encode (no key); ValueError for a field wider than ADM-CID's digits."""
        fb = self.fb
        if fb is None:
            return None
        fb.build((f[0] - 1) % 9999 + 1, f[2], f[4], f[3], f[5], f[1], self.clock.time())
        return fb.view

    def delivered(self, slot, seq, code):
        """The ACK came: remove the event from the queue."""
        self.queue.ack(slot, seq)
        self.sent += 1
        self.fails = 0
        self.link_ok = True
        if not log_quiet():
            log("DELIVERED", "seq=%d code=%03d rcv=%d" % (seq, code, self.idx))

    def _failed(self, seq, e):
        self._close()
        self.fails += 1
        self.link_ok = False
        log("DC09", "%s failed (%d) %r" % ("NULL" if seq < 0 else "seq %d" % seq, self.fails, e))
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
        self.task = asyncio.current_task()
        while True:
            try:
                await self._run()
            except Exception as e:
                self._close()
                log("ERROR", "reporter %r" % (e,))
                await asyncio.sleep_ms(500)

    async def _run(self):
        # One coroutine, and in steady state it awaits only asyncio.sleep_ms (whose
        # awaitable is a singleton): calling another coroutine would allocate it, so
        # the socket is polled (ack_poll ms) by the synchronous helpers above.
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
            msg = None
            if slot >= 0:                         # an event: alarms come first
                if not q.read(slot):
                    q.ack(slot)
                    continue
                seq = q.fields[0]
                code = q.fields[4]
                try:
                    frame = self.frame(q.fields)
                    if frame is None:
                        msg = self.build(q.fields)
                except ValueError:
                    # no receiver takes it (ADM-CID has no room for it), and retrying
                    # it would hold back every event queued behind it
                    log("DC09", "seq %d code %d does not fit ADM-CID: dropped" % (seq, code))
                    q.ack(slot, seq)
                    continue
                dseq = (seq - 1) % 9999 + 1
            else:
                wait = self.supervision - ticks_diff(ticks_ms(), self.last_tx)
                if wait > 0:                      # nothing to send: sleep until notify()
                    self.idle = self.task
                    try:
                        await asyncio.sleep_ms(wait if wait < 1000 else 1000)
                    finally:
                        self.idle = None
                    continue
                seq = -1                          # a NULL link test
                self.null_seq = dseq = self.null_seq % 9999 + 1
                frame = None
                if self.fn is not None:
                    self.fn.build(dseq, 0, 0, 0, 0, 0, self.clock.time())
                    frame = self.fn.view
                else:
                    msg = _dc09().Message("NULL", dseq, self.account, self.rcv,
                                          self.prefix, "", None, self._timestamp())
            try:
                if self._stale():
                    await self._connect()
                self._send(frame if msg is None else _dc09().encode(msg, self.key))
                deadline = ticks_add(self.last_tx, self.ack_timeout)
                while not self._receive(dseq, msg):
                    if ticks_diff(deadline, ticks_ms()) <= 0:
                        raise OSError("ack timeout")
                    await asyncio.sleep_ms(self.ack_poll)
            except Exception as e:
                self._failed(seq, e)
                await asyncio.sleep_ms(backoff)
                backoff = min(backoff * 2, self.retry_max)
                continue
            backoff = 250
            if seq >= 0:
                self.delivered(slot, seq, code)
            else:
                self.nulls += 1
                self.fails = 0
                self.link_ok = True
                if not log_quiet():
                    log("DC09", "NULL ack")

