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
import asyncio
import struct
from micropython import const
from core.log import log
from core.compat import ticks_ms, ticks_diff

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_SUBSCRIBE = const(0x82)
_PINGREQ = const(0xC0)


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
    def __init__(self, hal, client_id, host, port, keepalive=30, will=None, on_message=None):
        self.hal = hal
        self.client_id = client_id
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.will = will                  # (topic, payload, retain)
        self.on_message = on_message      # f(topic str, payload bytes)
        self.subs = []
        self.retained = {}                # topic -> payload, republished on reconnect
        self.out = []                     # (topic, payload, retain) waiting for a link
        self.wake = asyncio.Event()
        self.connected = False
        self.writer = None
        self.gen = -1

    def subscribe(self, topic):
        self.subs.append(topic)

    def publish(self, topic, payload, retain=False):
        """Queue a message; sent at once when connected. Retained messages are
        also kept and republished after every reconnect."""
        if isinstance(payload, str):
            payload = payload.encode()
        if retain:
            self.retained[topic] = payload
        if len(self.out) < 16:
            self.out.append((topic, payload, retain))
        self.wake.set()

    async def _connect(self):
        r, w = await asyncio.wait_for_ms(self.hal.open_connection(self.host, self.port), 5000)
        flags = 0x02                      # clean session
        payload = _str(self.client_id)
        if self.will:
            t, p, retain = self.will
            flags |= 0x04 | (0x20 if retain else 0)
            payload += _str(t) + _str(p)
        body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive) + payload
        w.write(_packet(_CONNECT, body))
        await w.drain()
        kind, data = await asyncio.wait_for_ms(self._read(r), 5000)
        if kind & 0xF0 != _CONNACK or data[1] != 0:
            raise OSError("connack %r" % (data,))
        self.reader = r
        self.writer = w
        pid = 1
        for t in self.subs:
            w.write(_packet(_SUBSCRIBE, struct.pack("!H", pid) + _str(t) + b"\x00"))
            pid += 1
        await w.drain()
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

    def _send_publish(self, topic, payload, retain):
        self.writer.write(_packet(_PUBLISH | (1 if retain else 0), _str(topic) + payload))

    async def _flush(self):
        while self.out:
            t, p, retain = self.out.pop(0)
            self._send_publish(t, p, retain)
        await self.writer.drain()

    async def _reader_task(self):
        try:
            await self._reader_loop()
        except Exception as e:               # EOF or reset: run() notices and reconnects
            log("MQTT", "read ended %r" % (e,))

    async def _reader_loop(self):
        while True:
            kind, data = await self._read(self.reader)
            self.last_rx = ticks_ms()
            if kind & 0xF0 == _PUBLISH:
                tl = (data[0] << 8) | data[1]
                topic = data[2:2 + tl].decode()
                off = 2 + tl + (2 if kind & 0x06 else 0)
                if self.on_message:
                    try:
                        self.on_message(topic, data[off:])
                    except Exception as e:
                        log("MQTT", "handler error %r" % (e,))

    async def run(self):
        backoff = 500
        while True:
            if not self.hal.net_ok():
                await asyncio.sleep_ms(200)
                continue
            reader = None
            try:
                await self._connect()
                backoff = 500
                for t, p in self.retained.items():
                    self._send_publish(t, p, True)
                await self._flush()
                reader = asyncio.create_task(self._reader_task())
                self.last_rx = last_ping = ticks_ms()
                while True:
                    if getattr(self.hal, "net_gen", 0) != self.gen or not self.hal.net_ok():
                        raise OSError("network changed")
                    if reader.done():
                        raise OSError("connection lost")
                    if ticks_diff(ticks_ms(), self.last_rx) > self.keepalive * 1500:
                        raise OSError("broker silent")   # no PINGRESP: a dead link
                    try:
                        await asyncio.wait_for_ms(self.wake.wait(), 200)
                    except asyncio.TimeoutError:
                        pass
                    self.wake.clear()
                    if self.out:
                        await self._flush()
                    if ticks_diff(ticks_ms(), last_ping) >= self.keepalive * 500:
                        self.writer.write(_packet(_PINGREQ, b""))   # every half keepalive
                        await self.writer.drain()
                        last_ping = ticks_ms()
            except Exception as e:
                log("MQTT", "down %r" % (e,))
            self.connected = False
            if reader is not None:
                reader.cancel()
            if self.writer is not None:
                try:
                    self.writer.close()
                except Exception:
                    pass
                self.writer = None
            await asyncio.sleep_ms(backoff)
            backoff = min(backoff * 2, 10000)
