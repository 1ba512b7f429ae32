# A small asyncio MQTT 3.1.1 client for the panel and the intercom.
#
# Why our own: micropython-lib's umqtt is blocking (and umqtt.robust can hang on
# QoS 1), and Peter Hinch's mqtt_as, the resilient asyncio client, manages WiFi
# itself (network.WLAN), which the unix port used for simulation does not have.
# This client does what the devices need and no more: CONNECT with a last will,
# QoS 0 publish (retained status, call signalling), QoS 0 subscribe, keepalive
# pings (a broker silent for 1.5 keepalives is a dead link), and reconnect with
# back-off (resubscribing and republishing the retained
# status). Sockets come from the HAL so the sim can pull the network. Messages are
# kept under 1 KiB.
# The status (retained) is written as it is when it is sent, into a packet buffer
# made once, straight to the non-blocking socket: after a state change nothing is
# allocated. Other messages (call signalling: a person's action) are queued.
# Everything is written to the socket directly, whole or not at all: a message of a
# few hundred bytes that a socket with nothing in flight cannot take means a link
# that is not draining, and it is reconnected.
import asyncio
import struct
from micropython import const
from core.log import log
from core.compat import ticks_ms, ticks_diff, wake

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_SUBSCRIBE = const(0x82)
_PINGREQ = b"\xc0\x00"


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _packet(kind, body):
    n = len(body)
    hdr = bytearray([kind])
    while True:
        d = n & 0x7F
        n >>= 7
        hdr.append(d | 0x80 if n else d)
        if not n:
            break
    return bytes(hdr) + body


class MQTT:
    def __init__(self, hal, client_id, host, port, keepalive=30, will=None, on_message=None, status=None):
        self.hal = hal
        self.client_id = client_id
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.will = will                  # (topic, payload, retain)
        self.on_message = on_message      # f(topic str, payload bytes)
        self.subs = []
        self.out = []                     # (topic, payload) waiting for a link
        self.connected = False
        self.writer = None
        self.sock = None
        self.gen = -1
        self.task = None                  # run()'s task, and while it idles
        self.idle = None
        # (topic, JsonOut, fill): fill() writes the status into JsonOut.buf, returns its length
        self.status = None
        self.status_due = False
        self.poll_ms = 50                 # how often the broker's packets are read
        self.rx = bytearray(512)          # packets from the broker (call signals: ~100 B)
        self.rn = 0
        self.chunk = bytearray(64)
        if status is not None:
            topic, w, fill = status
            self.status = (topic.encode(), w, fill)
            self.pkt = bytearray(len(w.buf) + len(topic) + 5)

    def subscribe(self, topic):
        self.subs.append(topic)

    def publish(self, topic, payload):
        """Queue a message (QoS 0, not retained: call signalling); sent at once
        when connected. The one retained message, the status, has its own path
        (status_changed)."""
        if isinstance(payload, str):
            payload = payload.encode()
        if len(self.out) < 16:
            self.out.append((topic, payload))
        self._wake()

    def status_changed(self):
        """Send the status (retained) as soon as the link allows."""
        self.status_due = True
        self._wake()

    def _wake(self):
        t = self.idle
        if t is not None:
            self.idle = None
            wake(t)

    def _write(self, buf, n=-1):
        n = len(buf) if n < 0 else n
        if self.sock.write(buf, 0, n) != n:
            raise OSError("short write")

    async def _connect(self):
        r, w = await asyncio.wait_for_ms(self.hal.open_connection(self.host, self.port), 5000)
        flags = 0x02                      # clean session
        payload = _str(self.client_id)
        if self.will:
            t, p, retain = self.will
            flags |= 0x04 | (0x20 if retain else 0)
            payload += _str(t) + _str(p)
        body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive) + payload
        self.writer = w
        self.sock = r.s                   # the stream's socket, non-blocking (see _write)
        self._write(_packet(_CONNECT, body))
        kind, data = await asyncio.wait_for_ms(self._read(r), 5000)
        if kind & 0xF0 != _CONNACK or data[1] != 0:
            raise OSError("connack %r" % (data,))
        pid = 1
        for t in self.subs:
            self._write(_packet(_SUBSCRIBE, struct.pack("!H", pid) + _str(t) + b"\x00"))
            pid += 1
        self.connected = True
        self.gen = getattr(self.hal, "net_gen", 0)
        log("MQTT", "connected %s:%d" % (self.host, self.port))

    async def _read(self, r):
        b = await r.readexactly(1)
        kind = b[0]
        n = 0
        shift = 0
        while True:
            d = (await r.readexactly(1))[0]
            n |= (d & 0x7F) << shift
            shift += 7
            if not d & 0x80:
                break
        data = await r.readexactly(n) if n else b""
        return kind, data

    def _send_publish(self, topic, payload):
        self._write(_packet(_PUBLISH, _str(topic) + payload))

    def _send_status(self):
        """PUBLISH (retained) of the status as it is now, built in self.pkt."""
        topic, w, fill = self.status
        n = fill()
        t = len(topic)
        body = 2 + t + n
        p = self.pkt
        p[0] = _PUBLISH | 1
        i = 1
        while True:                       # remaining length, 7 bits a byte
            d = body & 0x7F
            body >>= 7
            p[i] = d | 0x80 if body else d
            i += 1
            if not body:
                break
        p[i] = t >> 8
        p[i + 1] = t & 0xFF
        i += 2
        p[i:i + t] = topic
        i += t
        src = w.buf
        for j in range(n):
            p[i + j] = src[j]
        self._write(p, i + n)
        self.status_due = False

    def _flush(self):
        while self.out:
            t, p = self.out.pop(0)
            self._send_publish(t, p)
        if self.status_due:
            self._send_status()

    def _receive(self):
        """Read what the broker sent (never waits) into self.rx and act on each whole
        packet: any packet proves the link alive (PINGRESP, SUBACK); a PUBLISH goes
        to on_message. Polled by run() rather than awaited in a reader task: awaiting
        a stream allocates per read, and a keepalive answer every 15 s would then be
        the one thing allocating on an idle device."""
        rx = self.rx
        while True:
            n = self.sock.readinto(self.chunk)
            if n is None:
                return
            if n == 0:
                raise OSError("connection closed")
            self.last_rx = ticks_ms()
            if self.rn + n > len(rx):
                raise OSError("packet over %d bytes" % len(rx))
            for i in range(n):
                rx[self.rn + i] = self.chunk[i]
            self.rn += n
            while self.rn >= 2:
                size = 0                          # remaining length, 7 bits a byte
                shift = 0
                i = 1
                whole = False
                while i < self.rn and i < 5:
                    d = rx[i]
                    i += 1
                    size |= (d & 0x7F) << shift
                    shift += 7
                    if not d & 0x80:
                        whole = True
                        break
                if not whole and i >= 5:
                    raise OSError("bad remaining length")
                if not whole or i + size > self.rn:
                    break                         # the packet is not all here yet
                if rx[0] & 0xF0 == _PUBLISH and self.on_message:
                    tl = (rx[i] << 8) | rx[i + 1]
                    off = i + 2 + tl + (2 if rx[0] & 0x06 else 0)
                    try:
                        self.on_message(bytes(rx[i + 2:i + 2 + tl]).decode(), bytes(rx[off:i + size]))
                    except Exception as e:
                        log("MQTT", "handler error %r" % (e,))
                end = i + size
                for j in range(self.rn - end):  # the next packet to the front
                    rx[j] = rx[end + j]
                self.rn -= end

    async def run(self):
        self.task = asyncio.current_task()
        backoff = 500
        while True:
            if not self.hal.net_ok():
                await asyncio.sleep_ms(200)
                continue
            try:
                await self._connect()
                backoff = 500
                self.status_due = self.status is not None
                self._flush()
                self.rn = 0
                self.last_rx = last_ping = ticks_ms()
                while True:
                    if getattr(self.hal, "net_gen", 0) != self.gen or not self.hal.net_ok():
                        raise OSError("network changed")
                    self._receive()
                    if ticks_diff(ticks_ms(), self.last_rx) > self.keepalive * 1500:
                        raise OSError("broker silent")   # no PINGRESP: a dead link
                    if not self.out and not self.status_due:
                        self.idle = self.task     # until publish() or the next read
                        try:
                            await asyncio.sleep_ms(self.poll_ms)
                        finally:
                            self.idle = None
                    self._flush()
                    if ticks_diff(ticks_ms(), last_ping) >= self.keepalive * 500:
                        self._write(_PINGREQ)     # every half keepalive
                        last_ping = ticks_ms()
            except Exception as e:
                log("MQTT", "down %r" % (e,))
            self.connected = False
            if self.writer is not None:
                try:
                    self.writer.close()
                except Exception:
                    pass
                self.writer = self.sock = None
            await asyncio.sleep_ms(backoff)
            backoff = min(backoff * 2, 10000)
