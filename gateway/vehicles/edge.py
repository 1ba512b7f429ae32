"""The vehicle computer: GNSS + sensors -> reports and alarms.

`EdgeVehicle` holds what the vehicle knows right now (the last fix, each Modbus
device's readings and active alarms, the GNSS receiver's problems) and turns it
into:
  - a JT/T 808 report every `report_interval` seconds, and at once whenever an
    alarm starts or ends, handed to the uplink (which stores it durably first);
  - Events for the vehicle's own gateway pipeline when one is given (`submit`):
    that is the DC-09 uplink option, where the pipeline's dc09 forwarder sends
    alarms upstream with the position in [X...][Y...].

How alarms ride on JT/T 808: a panic input sets the emergency bit (0), which
latches, like a real terminal's SOS, until the center acknowledges it (0x8203);
GNSS problems set bits 4 (fault, stale or no fix), 5 (antenna open), 6 (antenna
short); every other sensor alarm and trouble goes in extra item 0xE1 as
(Contact ID code, zone), and the readings in 0xE2.
"""
import asyncio
import logging
import time
from datetime import datetime

from protocols import contactid, jt808
from gateway.vehicles.codes import EDGE_ALARMS_ITEM, EDGE_VALUES_ITEM, PANIC_CODE, SOURCE_EDGE, make_event
from gateway.vehicles.reports import encode_edge_alarms, encode_edge_values

log = logging.getLogger("jifang.vehicles.edge")

GNSS_BITS = {"stale": 4, "no_fix": 4, "antenna_open": 5, "antenna_short": 6}
GNSS_TROUBLES = {"no_fix": (330, 1, "GNSS: no fix"), "antenna_open": (330, 2, "GNSS antenna open"),
                 "antenna_short": (330, 3, "GNSS antenna short"), "stale": (330, 4, "GNSS receiver silent")}


class EdgeVehicle:
    def __init__(self, account, *, receiver=None, uplink=None, submit=None, report_interval=1.0):
        self.account = account
        self.receiver = receiver
        self.uplink = uplink
        self.submit = submit
        self.report_interval = report_interval
        self.rules = {}                 # device name -> SensorRules
        self.readings = {}              # device name -> {point: value}
        self.alarms = {}                # device name -> {(code, zone): name}
        self.gnss_problems = set()
        self.emergency = False          # latched until the center acknowledges it
        self._tracking = None           # (interval, until) while the center asked for tracking
        self._task = None
        self._pending = set()
        if uplink is not None:
            uplink.on_alarm_ack = self.alarm_acknowledged
            uplink.current_position = self.position_report
            uplink.on_tracking = self.track

    # -- sensors -----------------------------------------------------------------------------

    def add_device(self, rules):
        """Callbacks (on_values, on_silent) for a ModbusPoller of this device."""
        name = rules.device_name
        self.rules[name] = rules
        self.alarms[name] = {}

        def on_values(values):
            self.readings[name] = values
            self._set_alarms(name, rules.evaluate(values, self.position()))

        def on_silent(silent):
            self._set_alarms(name, rules.silent() if silent else {})

        return on_values, on_silent

    def position(self):
        fix = self.receiver.fix if self.receiver is not None else None
        return (fix.lat, fix.lon) if fix is not None and self.receiver.fix_valid else None

    def _set_alarms(self, device, active):
        before = self.alarms[device]
        if active == before:
            return
        self.alarms[device] = active
        for key in active.keys() - before.keys():
            if key[0] == PANIC_CODE:
                self.emergency = True
            self._event(key[0], key[1], active[key], contactid.QUALIFIER_NEW)
        for key in before.keys() - active.keys():
            self._event(key[0], key[1], before[key], contactid.QUALIFIER_RESTORE)
        log.warning("vehicle alarms changed", extra={"device": device, "active": sorted(active.values())})
        self._later(self.report())              # alarms do not wait for the next tick

    def alarm_acknowledged(self, bits):
        if bits & 1:
            self.emergency = False

    def track(self, interval, validity):
        """0x8202 temporary tracking: report every `interval` s for the next
        `validity` s, then back to the configured interval (interval 0 stops it)."""
        if interval and validity:
            self._tracking = (interval, time.monotonic() + validity)
        else:
            self._tracking = None

    @property
    def current_interval(self):
        if self._tracking is not None and time.monotonic() < self._tracking[1]:
            return self._tracking[0]
        return self.report_interval

    def check_gnss(self):
        if self.receiver is None:
            return
        problems = self.receiver.problems()
        if problems == self.gnss_problems:
            return
        for problem in problems - self.gnss_problems:
            code, zone, name = GNSS_TROUBLES[problem]
            self._event(code, zone, name, contactid.QUALIFIER_NEW)
        for problem in self.gnss_problems - problems:
            code, zone, name = GNSS_TROUBLES[problem]
            self._event(code, zone, name, contactid.QUALIFIER_RESTORE)
        self.gnss_problems = problems
        self._later(self.report())

    # -- reports ---------------------------------------------------------------------------------

    def position_report(self, when=None):
        """The 0x0200 body describing the vehicle now (or dated `when`)."""
        fix = self.receiver.fix if self.receiver is not None else None
        alarm = 1 if self.emergency else 0
        for problem in self.gnss_problems:
            alarm |= 1 << GNSS_BITS[problem]
        status = ["gps", "beidou"]
        if fix is not None and self.receiver.fix_valid:
            status.append("fixed")
        edge = {key for active in self.alarms.values() for key in active if key[0] != PANIC_CODE}
        items = []
        if edge:
            items.append(jt808.Item(EDGE_ALARMS_ITEM, encode_edge_alarms(edge)))
        readings = {k: v for values in self.readings.values() for k, v in values.items()}
        if readings:
            items.append(jt808.Item(EDGE_VALUES_ITEM, encode_edge_values(readings)))
        if when is None:
            when = datetime.now(jt808.GMT8)
        if fix is None:
            return jt808.position(0.0, 0.0, when, alarm=alarm, status=status, items=items)
        return jt808.position(fix.lat, fix.lon, when, speed=fix.speed_kmh, direction=int(fix.course) % 360,
                              altitude=int(fix.altitude), alarm=alarm, status=status, items=items,
                              satellites=min(fix.satellites, 255))

    async def report(self, when=None):
        if self.uplink is not None:
            await self.uplink.record(self.position_report(when))

    # -- events for the vehicle's own pipeline ---------------------------------------------------

    def _event(self, code, zone, name, qualifier):
        if self.submit is None:
            return
        event = make_event(self.account, code, name=name, qualifier=qualifier, zone=zone,
                           device_time=time.time(), source=SOURCE_EDGE, position=self.position())
        self._later(self._submit(event))

    async def _submit(self, event):
        try:
            await self.submit(event)
        except Exception as exc:
            log.error("edge event not recorded", extra={"code": event.code, "error": repr(exc)})

    def _later(self, coro):
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self):
        self._task = asyncio.create_task(self._run(), name="edge-vehicle")

    async def stop(self):
        tasks = [t for t in (self._task, *self._pending) if t]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self):
        while True:
            self.check_gnss()
            await self.report()
            await asyncio.sleep(self.current_interval)
