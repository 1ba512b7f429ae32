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
import os
from core.log import log, quiet as log_quiet
from core.compat import ticks_ms, ticks_add, ticks_diff, wake
from protocols.crc import _ARC_TABLE


def _dc09():
    # The shared codec, imported when first needed: with an AES key the panel's own
    # frames (events and NULLs) and their ACKs go through Link (below), and the codec (about
    # 20 KB of heap as .mpy) is loaded only for a frame Link does not handle (a
    # NAK, a DUH, a plain-text link, a field too wide).
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
        # once (Link, below), when the link is encrypted and the account fits
        self.fb = self.fn = None
        if self.key is not None:
            import time
            y = time.gmtime(0)[0]             # the port's epoch: 1970 unix, 2000 ESP32
            days = (y - 1970) * 365 + (y - 1969) // 4
            self.epoch = days * 86400
            try:
                self.fb = Link(self.key, self.account, self.rcv, self.prefix, days)
                self.fn = Link(self.key, self.account, self.rcv, self.prefix, days, "NULL")
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
            if f[i:i + 4] == b'ACK"' and self.fb._crc(f, n):
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
        seq, when, q, part, code, zone = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
        # ADM-CID data "#ACCT|QEEE GG ZZZ", as contactid.dc09_data() writes it (a test
        # checks they agree): formatted here so the panel does not load contactid.
        data = "#%s|%d%03d %02d %03d" % (self.account, q, code, part, zone)
        t = self.clock.gmtime(when)
        xdata = [("H", "%02d:%02d:%02d,%02d-%02d-%04d" % (t[3], t[4], t[5], t[1], t[2], t[0]))]
        return _dc09().Message("ADM-CID", (seq - 1) % 9999 + 1, self.account, self.rcv, self.prefix,
                            data, xdata, self._timestamp())

    def frame(self, f):
        """The frame of the event in queue fields `f`, built in place (no allocation):
        a memoryview of the builder's buffer, or None when the frame must come from
        dc09.encode (no key, or a field wider than ADM-CID's digits)."""
        fb = self.fb
        if fb is None or f[2] > 9 or f[3] > 99 or f[4] > 999 or f[5] > 999:
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
                frame = self.frame(q.fields)
                if frame is None:
                    msg = self.build(q.fields)
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


# ---------------------------------------------------------------- DC-09 without allocation
# The encrypted ADM-CID and NULL frames of protocols.dc09 (the shared codec,
# unchanged) and the ACK check, in buffers allocated once (Link). After __init__
# nothing here allocates on MicroPython (tests/firmware/test_memory.py runs it with
# the heap locked): digits and hex are written byte by byte, AES-CBC is chained by
# hand over one ECB cipher object per direction (cryptolib's CBC object cannot
# restart its IV), and the pad is AES over a counter seeded from os.urandom
# (os.urandom() would allocate per frame). Byte for byte what dc09.encode() writes
# (tests/mpy/test_dc09_builder.py, both interpreters). Here rather than in protocols/:
# one file less on the device's filesystem, and one class with few names (every
# name and function costs heap when the .mpy is loaded).

# dc09._PAD_ALPHABET (a test checks they agree): this module does not import the
# codec at load time, so a panel with an encrypted link never loads it for its own traffic.
_PAD = b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ\\^_`abcdefghijklmnopqrstuvwxyz{}~"

try:
    from cryptolib import aes

    def _ecb(key, encrypt):
        return aes(key, 1)
except ImportError:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    class _ecb:
        def __init__(self, key, encrypt):
            c = Cipher(algorithms.AES(key), modes.ECB())
            self.c = c.encryptor() if encrypt else c.decryptor()

        def encrypt(self, src, dst):
            dst[:] = self.c.update(bytes(src))

        decrypt = encrypt

_HEX = b"0123456789ABCDEF"


class Link:
    """build(): the encrypted ADM-CID frame of one event ("#ACCT|QEEE GG ZZZ",
    [Hhh:mm:ss,MM-DD-YYYY] of the event, the send timestamp), byte for byte what
    dc09.encode() writes for that message and pad, into self.out (self.view: a
    memoryview of it). is_ack(): dc09.decode() + is_ack_for() for the answer."""

    def __init__(self, key, account, receiver=None, prefix="0", epoch_days=0, token="ADM-CID"):
        # what dc09.encode() would refuse, refused here (ValueError)
        if len(key) not in (16, 32) or not 0 < len(account) <= 16 or account.strip(
                "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"):
            raise ValueError("key/account")
        for v in (prefix, receiver or "0"):
            if not (0 < len(v) <= 6) or v.strip("0123456789ABCDEFabcdef"):
                raise ValueError("prefix/receiver")
        head = ('"*%s"0000%sL%s#%s[' % (token, "" if receiver is None else "R" + receiver,
                                        prefix, account)).encode()
        a = len(account)
        # clear text: pad |#ACCT|QEEE GG ZZZ][Hhh:mm:ss,MM-DD-YYYY]_hh:mm:ss,MM-DD-YYYY
        # (a NULL: pad ]_hh:mm:ss,MM-DD-YYYY)
        if token == "NULL":
            clear = b"]_" + b"0" * 19
        else:
            clear = ("|#%s|QEEE GG ZZZ][H%s]_" % (account, "0" * 19)).encode() + b"0" * 19
        pad = 16 + (-len(clear)) % 16
        self.pad = pad
        self.plain = bytearray(pad) + clear
        n = 9 + len(head) + 2 * len(self.plain) + 1
        self.out = bytearray(b"\n00000000" + head + b"0" * (n - 10 - len(head)) + b"\r")
        self.view = memoryview(self.out)
        # data, hex, epoch, last digit of the sequence, timestamp
        self.at = (pad + a + 3 if token != "NULL" else -1, 9 + len(head), epoch_days,
                   15 + len(token), len(self.plain) - 19)
        self.acct = account.upper().encode()
        self.s = (bytearray(16), bytearray(16), bytearray(os.urandom(16)), bytearray(16))
        self.e = _ecb(key, True)
        self.d = _ecb(key, False)

    def _num(self, at, v, width):
        b = self.plain
        i = at + width - 1
        while i >= at:
            b[i] = 0x30 + v % 10
            v //= 10
            i -= 1

    def build(self, seq, qualifier, code, partition, zone, when, now, pad=None):
        """seq 1-9999; `when` (the event; ignored for a NULL) and `now` (the timestamp) in seconds since
        1970-01-01 UTC + epoch_days (10957 on the ESP32 port: its epoch is 2000, which
        also keeps the seconds small ints on a 32-bit port until 2034). `pad`: tests
        only, the bytes dc09.encode() would draw. Returns the frame's length."""
        p = self.plain
        blk, enc, ctr, rnd = self.s
        n = self.pad
        i = 0
        while i < n:                               # the pad
            if pad is not None:
                p[i] = pad[i]
                i += 1
                continue
            j = 0
            while j < 16:                          # counter += 1
                ctr[j] = (ctr[j] + 1) & 0xFF
                if ctr[j]:
                    break
                j += 1
            self.e.encrypt(ctr, rnd)
            j = 0
            while j < 16 and i < n:
                p[i] = _PAD[rnd[j] % len(_PAD)]
                i += 1
                j += 1
        at, hx, epoch, sq, ts = self.at
        secs = now
        if at >= 0:
            self._num(at, qualifier, 1)
            self._num(at + 1, code, 3)
            self._num(at + 5, partition, 2)
            self._num(at + 8, zone, 3)
            at += 14
            secs = when
        else:
            at = ts
        while at <= ts:                            # [H...] then _timestamp
            # the civil date as dc09.from_seconds() finds it, inline (a helper
            # returning (y, m, d) would allocate the tuple)
            days = secs // 86400
            rem = secs - days * 86400
            z = days + epoch + 719468
            era = (z if z >= 0 else z - 146096) // 146097
            doe = z - era * 146097
            yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
            doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
            mp = (5 * doy + 2) // 153
            m = mp + (3 if mp < 10 else -9)
            self._num(at, rem // 3600, 2)
            p[at + 2] = 0x3A
            self._num(at + 3, rem % 3600 // 60, 2)
            p[at + 5] = 0x3A
            self._num(at + 6, rem % 60, 2)
            p[at + 8] = 0x2C
            self._num(at + 9, m, 2)
            p[at + 11] = 0x2D
            self._num(at + 12, doy - (153 * mp + 2) // 5 + 1, 2)
            p[at + 14] = 0x2D
            self._num(at + 15, yoe + era * 400 + (m <= 2), 4)
            at += 21
            secs = now
        out = self.out
        for j in range(16):
            enc[j] = 0
        k = 0
        n = len(p)
        while k < n:                               # AES-CBC, zero IV, hex into the frame
            for j in range(16):
                blk[j] = p[k + j] ^ enc[j]
            self.e.encrypt(blk, enc)
            for j in range(16):
                out[hx] = _HEX[enc[j] >> 4]
                out[hx + 1] = _HEX[enc[j] & 15]
                hx += 2
            k += 16
        n = len(out)
        for i in range(sq, sq - 4, -1):            # the sequence after '"*ADM-CID"'
            out[i] = 0x30 + seq % 10
            seq //= 10
        c = 0
        t = _ARC_TABLE
        for i in range(9, n - 1):
            c = (c >> 8) ^ t[(c ^ out[i]) & 0xFF]
        v = (c << 16) | (n - 10)                   # CRC and length, 8 hex digits
        for i in range(8, 0, -1):
            out[i] = _HEX[v & 15]
            v >>= 4
        return n

    def _crc(self, f, n):
        """f[:n] is LF ... CR with a right CRC and length (hex) and a quote after."""
        if n < 16 or f[0] != 0x0A or f[n - 1] != 0x0D or f[9] != 0x22:
            return False
        v = 0
        for i in range(1, 9):                      # CRC and length
            c = f[i] - 48
            if c > 9:
                c = (f[i] | 32) - 87
                if c < 10:
                    return False
            if c < 0 or c > 15:
                return False
            v = (v << 4) | c
        c = 0
        t = _ARC_TABLE
        for i in range(9, n - 1):
            c = (c >> 8) ^ t[(c ^ f[i]) & 0xFF]
        return v == (c << 16) | (n - 10)

    def refused(self, f, n):
        """A DUH: 0. A NAK: the receiver's time in seconds since 1970-01-01 UTC (0 if
        it has none). Else None: not a NAK/DUH this can read (the codec judges it)."""
        if not self._crc(f, n):
            return None
        if f[10:14] == b'DUH"':
            return 0
        if f[10:14] != b'NAK"':
            return None
        i = f.find(b"]_", 0, n)
        if i < 0:
            return 0
        t = f[i + 2:n - 1]                         # hh:mm:ss,MM-DD-YYYY
        if len(t) != 19:
            return None
        try:
            y = int(t[15:19])
            m = int(t[9:11])
            d = int(t[12:14])
            secs = int(t[0:2]) * 3600 + int(t[3:5]) * 60 + int(t[6:8])
        except ValueError:
            return None
        y -= m <= 2                                # dc09._days_from_civil
        era = y // 400
        yoe = y - era * 400
        doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
        return (era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468) * 86400 + secs

    def is_ack(self, f, n, seq):
        """True when frame f[:n] (LF ... CR) is the ACK of `seq` for our account: CRC
        and length right, token ACK, or *ACK whose clear text (decrypted with the key)
        holds "]" and is printable after it, as dc09.decode() requires; same sequence
        and account (any case), as dc09.is_ack_for()."""
        if not self._crc(f, n):
            return False
        i = 11 if f[10] == 0x2A else 10            # "*": encrypted
        if f[i] != 0x41 or f[i + 1] != 0x43 or f[i + 2] != 0x4B or f[i + 3] != 0x22:
            return False                           # 'ACK"'
        v = 0
        for j in range(i + 4, i + 8):
            c = f[j] - 48
            if c < 0 or c > 9:
                return False
            v = v * 10 + c
        if v != seq:
            return False
        i += 8
        while i < n and f[i] != 0x23:              # "#" account
            i += 1
        a = self.acct
        if i + len(a) + 2 >= n:                    # "#ACCT[" and more before the CR
            return False
        for j in range(len(a)):
            i += 1
            c = f[i]
            if 0x61 <= c <= 0x7A:
                c -= 32
            if c != a[j]:
                return False
        i += 1
        if f[i] != 0x5B:                           # "["
            return False
        if f[10] != 0x2A:
            return True
        k = i + 1
        end = n - 1
        if (end - k) % 32 or end - k > 256:
            return False
        blk, clr, _, prev = self.s
        for j in range(16):
            prev[j] = 0
        seen = False
        while k < end:
            for j in range(32):
                c = f[k]
                d = c - 48
                if d > 9:
                    d = (c | 32) - 87
                    if d < 10:
                        return False
                if d < 0 or d > 15:
                    return False
                if j & 1:
                    blk[j >> 1] = (v << 4) | d
                else:
                    v = d
                k += 1
            self.d.decrypt(blk, clr)
            for j in range(16):
                c = clr[j] ^ prev[j]
                prev[j] = blk[j]
                if c == 0x5D:
                    seen = True
                elif seen and (c < 0x20 or c > 0x7E):
                    return False
        return seen
