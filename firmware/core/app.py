# The device application: wires the HAL, the event queue, the panel or intercom
# logic, the DC-09 reporter and MQTT status, and runs them as asyncio tasks.
#
# Tasks: poll (every poll_ms: inputs -> state machines -> events), reporter,
# mqtt, status publisher, watchdog supervisor, and the HAL's own (the sim's control
# socket). The hardware watchdog is fed only while the poll loop has run within
# 2 s and the reporter loop within its own bound: a stuck task resets the board.
import gc
import asyncio
from core.compat import ticks_ms, ticks_diff
from core.log import log, quiet as log_quiet
from core.clock import Clock
from core.equeue import EventQueue
from protocols import bus
import hal as _hal

RESET_ZONE = {"power_on": 1, "wdt": 2, "soft": 3, "hard": 4, "brownout": 5, "deepsleep": 6}


class JsonOut:
    """A JSON object written into a buffer made once: the status (retained over
    MQTT) is written after every state change without allocating. Keys and values
    are copied character by character (single-character strings are interned, so
    iterating a str allocates nothing) and numbers digit by digit. Values are
    True/False/None, ints and plain identifiers (nothing here needs escaping)."""

    def __init__(self, size=384):
        self.buf = bytearray(size)
        self.n = 0

    def _c(self, c):
        self.buf[self.n] = c
        self.n += 1

    def _s(self, s):
        for ch in s:
            self._c(ord(ch))

    def _int(self, v):
        if v < 0:
            self._c(0x2D)
            v = -v
        d = 1
        while d * 10 <= v:
            d *= 10
        while d:
            self._c(0x30 + v // d % 10)
            d //= 10

    def begin(self, key=None):
        """The outer object (no key: starts over) or a member object."""
        if key is None:
            self.n = 0
        else:
            self.key(key)
        self._c(0x7B)

    def end(self):
        self._c(0x7D)

    def key(self, k):
        if self.buf[self.n - 1] != 0x7B:
            self._c(0x2C)
        self._c(0x22)
        if isinstance(k, int):
            self._int(k)
        else:
            self._s(k)
        self._c(0x22)
        self._c(0x3A)

    def put(self, k, v):
        self.key(k)
        if v is True or v is False or v is None:
            self._s("true" if v else "false" if v is False else "null")
        elif isinstance(v, int):
            self._int(v)
        else:
            self._c(0x22)
            self._s(v)
            self._c(0x22)


class App:
    def __init__(self, cfg, clock=None):
        self.cfg = cfg
        self.hal = _hal.load(cfg)
        self.clock = clock or Clock()    # tests: a FakeClock
        self.clock.offset = (cfg.get("sim") or {}).get("clock_offset", 0)   # a wrong RTC, in sim
        self.hang = False
        self.reset = self.hal.reset_cause()
        if not cfg.get("salt") and hasattr(self.hal, "nvs_salt"):
            cfg["salt"] = self.hal.nvs_salt() or ""     # provisioned into NVS on the ESP32
        self.queue = EventQueue(self.hal.state_path("events.q"), cfg.get("queue_capacity", 1024),
                                self.clock)
        if self.queue.discarded:
            log("QUEUE", "discarded %d torn/corrupt records" % self.queue.discarded)
        log("QUEUE", "recovered pending=%d next_seq=%d" % (self.queue.pending, self.queue.next_seq))
        self.role = cfg.get("role", "panel")
        if self.role == "intercom":
            from intercom.door import Intercom
            self.dev = Intercom(cfg, self.hal, self.clock, self.emit)
        else:
            from panel.panel import Panel
            self.dev = Panel(cfg, self.hal, self.clock, self.emit, self.hal.state_path("panel.state"))
        self.zones = self.dev.zones
        self.reporter = None
        if cfg.get("reporter"):
            from core.reporter import Reporter
            self.reporter = Reporter(cfg, self.hal, self.clock, self.queue)
        self.mqtt = None
        self.json = JsonOut()
        mc = cfg.get("mqtt")
        if mc:
            from core.mqtt import MQTT
            self.prefix = mc.get("prefix", bus.DEFAULT_PREFIX)
            # The account names the device on the bus as on DC-09: the gateway's registry key.
            self.status_topic = bus.device_topic(self.prefix, cfg.get("account") or cfg.get("device_id", "dev"),
                                                 bus.STATUS)
            self.mqtt = MQTT(self.hal, cfg.get("device_id", "dev"), mc["host"], mc.get("port", 1883),
                             mc.get("keepalive", 30), (self.status_topic, bus.WILL, True),
                             self.on_mqtt, (self.status_topic, self.json, self.status_json))
            if hasattr(self.dev, "subscriptions"):
                for t in self.dev.subscriptions():
                    self.mqtt.subscribe(t)
                self.dev.publish = self.mqtt.publish
        self.poll_beat = ticks_ms()
        self.alloc_max = 0               # live heap high-water (after collections)
        self.hal.attach(self)

    def emit(self, q, code, part=0, zone=0):
        seq = self.queue.push(q, code, part, zone)
        if not log_quiet():
            log("EVENT", "seq=%d q=%d code=%03d p=%d z=%d" % (seq, q, code, part, zone))
        if self.reporter is not None:
            self.reporter.notify()

    def on_mqtt(self, topic, payload):
        if hasattr(self.dev, "on_mqtt"):
            self.dev.on_mqtt(topic, payload)

    def status_json(self):
        """The status as JSON into self.json.buf; returns its length. Keys and values
        as protocols/bus_status.py says (the gateway checks them against it)."""
        w = self.json
        w.begin()
        self.dev.status_json(w)
        w.put("role", self.role)
        w.put("online", True)
        w.put("reset", self.reset)
        w.put("pending", self.queue.pending)
        if self.reporter is not None:
            w.put("link", self.reporter.link_ok)
        w.end()
        return w.n

    def status(self):
        """The status as a dict (the sim's control socket)."""
        import json
        n = self.status_json()
        return json.loads(bytes(self.json.buf[:n]))

    async def poll_task(self):
        period = self.cfg.get("poll_ms", 10)
        dev = self.dev
        clock = self.clock
        n = 0
        while not getattr(self.hal, "quit", False):
            if not self.hang:
                now = clock.ticks()
                try:
                    dev.poll(now)
                    self.poll_beat = now     # only a poll that completed counts as health
                except Exception as e:       # keep running; the watchdog judges
                    log("ERROR", "poll %r" % (e,))
            n += 1
            if n >= 100:                 # keep the heap tidy, predictably; track the peak
                n = 0
                gc.collect()
                a = gc.mem_alloc()
                if a > self.alloc_max:
                    self.alloc_max = a
            await asyncio.sleep_ms(period)

    async def status_task(self):
        # At most one status message per period, however many changes it covers;
        # the MQTT task writes the status as it is when it sends it.
        period = self.cfg.get("status_ms", 250)
        while True:
            await asyncio.sleep_ms(period)
            if self.dev.changed:
                self.dev.changed = False
                self.mqtt.status_changed()

    async def wdt_task(self):
        hal = self.hal
        hal.wdt_start(self.cfg.get("watchdog_ms", 8000))
        limit = 60000
        if self.reporter is not None:
            limit = self.reporter.ack_timeout * 3 + 30000
        while True:
            now = ticks_ms()
            ok = ticks_diff(now, self.poll_beat) < 2000
            if ok and self.reporter is not None:
                ok = ticks_diff(now, self.reporter.heartbeat) < limit
            if ok:
                hal.wdt_feed()
            else:
                log("WDT", "not fed: main loop unhealthy")
            await asyncio.sleep_ms(500)

    async def main(self):
        hal = self.hal
        await hal.serve()
        tasks = []
        tasks.append(asyncio.create_task(self.wdt_task()))
        await hal.net_up()
        hal.sync_time()
        self.emit(1, 305, 0, RESET_ZONE.get(self.reset, 0))   # system reset, with the cause
        if self.reporter is not None:
            tasks.append(asyncio.create_task(self.reporter.run()))
        if self.mqtt is not None:
            tasks.append(asyncio.create_task(self.mqtt.run()))
            tasks.append(asyncio.create_task(self.status_task()))
        hal.booted()
        gc.collect()
        log("READY", "role=%s reset=%s mem_free=%d mem_alloc=%d" % (
            self.role, self.reset, gc.mem_free(), gc.mem_alloc()))
        await self.poll_task()
        for t in tasks:
            t.cancel()
        self.queue.close()
        hal.shutdown()
        log("STOP", "clean")


def preload(cfg):
    """Import every module the role needs first, collecting after each: long-lived
    code then packs at the bottom of the heap instead of interleaving with the
    temporaries of later imports (fragmentation is what runs a small heap out)."""
    mods = ["hal.sim" if cfg.get("target", "sim") == "sim" else "hal.esp32"]
    if cfg.get("role", "panel") == "intercom":
        mods.append("intercom.door")
    else:
        mods.append("panel.panel")
    if cfg.get("reporter"):
        mods.append("core.reporter")
    if cfg.get("mqtt"):
        mods.append("core.mqtt")
    for m in mods:
        __import__(m)
        gc.collect()


def start(path):
    from core import config
    cfg = config.load(path)
    gc.collect()
    preload(cfg)
    app = App(cfg)
    gc.collect()
    asyncio.run(app.main())
