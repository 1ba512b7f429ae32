"""The vehicle's GNSS receiver: NMEA 0183 from a serial port or a TCP socket.

`GnssReceiver` keeps the latest fix and judges the receiver's health from the
sentences themselves:
  - no fix: the receiver talks but has had no valid fix for `no_fix_seconds`
    (a tunnel or a car park is not a fault; a minute of nothing is);
  - antenna open / short: from the $xxTXT antenna status many receivers print
    (u-blox, AT6558/ATGM336H: "ANTSTATUS=OPEN", "=SHORT", "=OK");
  - stale data: no valid sentence at all for `stale_seconds` (cable cut,
    receiver dead, wrong baud rate).
Each problem is a trouble at the edge and a JT/T 808 alarm bit uplink
(4 GNSS fault, 5 antenna open, 6 antenna short).

`NMEASource` reads a stream into the receiver and reconnects forever: a GNSS
receiver that goes away is a trouble, never a reason to stop.
"""
import asyncio
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pynmea2

from protocols import nmea

log = logging.getLogger("jifang.vehicles.gnss")

PROBLEMS = ("no_fix", "antenna_open", "antenna_short", "stale")
_ANTENNA = re.compile(r"ANTSTATUS=(OK|OPEN|SHORT)")


@dataclass(frozen=True)
class Fix:
    lat: float
    lon: float
    speed_kmh: float
    course: float
    altitude: float
    satellites: int
    time: datetime          # UTC


class GnssReceiver:
    def __init__(self, no_fix_seconds=60.0, stale_seconds=5.0, clock=time.monotonic):
        self.no_fix_seconds = no_fix_seconds
        self.stale_seconds = stale_seconds
        self.clock = clock
        self.fix = None                  # the last valid fix, kept while there is none
        self.fix_valid = False
        self.antenna = "OK"
        self.sentences = 0
        self.refused = 0
        started = clock()
        self._last_sentence = started
        self._last_fix = started
        self._altitude = 0.0
        self._satellites = 0

    def feed_line(self, line):
        if line[3:6] == "TXT":
            self._antenna_status(line)
            return
        try:
            sentence = nmea.decode(line)
        except nmea.NMEAError:
            self.refused += 1
            return
        self.sentences += 1
        self._last_sentence = self.clock()
        if isinstance(sentence, nmea.GGA):
            if sentence.fix:
                self._altitude = sentence.altitude or 0.0
                self._satellites = sentence.satellites or 0
        elif isinstance(sentence, nmea.RMC):
            self.fix_valid = sentence.fix
            if sentence.fix and sentence.date and sentence.time:
                when = datetime.combine(sentence.date, sentence.time.replace(microsecond=0), timezone.utc)
                self.fix = Fix(sentence.lat, sentence.lon, sentence.speed_kmh or 0.0, sentence.course or 0.0,
                               self._altitude, self._satellites, when)
                self._last_fix = self._last_sentence

    def _antenna_status(self, line):
        # protocols/nmea.py does not decode TXT: check the checksum here, then read the status.
        try:
            pynmea2.parse(line, check=True)
        except pynmea2.ParseError:
            self.refused += 1
            return
        self._last_sentence = self.clock()
        match = _ANTENNA.search(line)
        if match:
            self.antenna = match.group(1)

    def problems(self):
        now = self.clock()
        out = set()
        if now - self._last_sentence > self.stale_seconds:
            out.add("stale")
        elif not self.fix_valid and now - self._last_fix > self.no_fix_seconds:
            out.add("no_fix")
        if self.antenna == "OPEN":
            out.add("antenna_open")
        elif self.antenna == "SHORT":
            out.add("antenna_short")
        return out


async def open_stream(serial=None, baudrate=9600, tcp=None):
    """(reader, writer) for a serial device (pyserial URL or path) or a TCP (host, port)."""
    if serial is not None:
        import serial_asyncio
        return await serial_asyncio.open_serial_connection(url=serial, baudrate=baudrate)
    return await asyncio.open_connection(*tcp)


class NMEASource:
    def __init__(self, receiver, *, serial=None, baudrate=9600, tcp=None, reconnect_seconds=2.0):
        if (serial is None) == (tcp is None):
            raise ValueError("give exactly one of serial= or tcp=")
        self.receiver = receiver
        self.serial, self.baudrate, self.tcp = serial, baudrate, tcp
        self.reconnect_seconds = reconnect_seconds
        self._task = None

    @property
    def where(self):
        return self.serial or "%s:%d" % self.tcp

    def start(self):
        self._task = asyncio.create_task(self._run(), name="nmea")

    async def stop(self):
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self):
        while True:
            writer = None
            try:
                reader, writer = await open_stream(self.serial, self.baudrate, self.tcp)
                splitter = nmea.LineSplitter()
                while True:
                    data = await reader.read(1024)
                    if not data:
                        break
                    for line in splitter.feed(data):
                        self.receiver.feed_line(line)
            except (OSError, asyncio.IncompleteReadError) as exc:
                log.warning("GNSS receiver unreachable", extra={"where": self.where, "error": repr(exc)})
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(self.reconnect_seconds)
