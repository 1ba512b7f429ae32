"""NMEA 0183 for vehicle GNSS receivers, on top of pynmea2.

pynmea2 does the framing (``$``, fields, ``*hh``), the checksum arithmetic and
knows each sentence's field layout; this module adds what an alarm gateway needs
and pynmea2 does not give:

* the checksum is required unless the caller opts out (``require_checksum=False``
  for devices that omit it) -- pynmea2 accepts a sentence without one;
* only GNSS talkers (GP, GN, BD, GB, GL, GA) and the sentence types vehicles use
  (RMC, GGA, VTG, GSA, GSV, GNS, ZDA) are accepted, anything else is refused
  with a reason;
* strict field checks: pynmea2 converts lazily and hands back the raw string when
  a conversion fails, and turns an empty latitude into 0.0. Here every field is
  checked (numbers, hemispheres, ranges, dates and times) and a void fix never
  yields a position, so (0, 0) never reaches a geofence or the 110 center;
* one error type, :class:`NMEAError`, whatever the input;
* a bounded stream splitter for serial ports, :class:`LineSplitter`.

A void fix (RMC status V or mode N, GGA quality 0, GNS mode all N, VTG mode N,
or empty fields) also drops speed and course: an overspeed rule must not fire
on a stale value the receiver repeats while it has no fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass

import pynmea2
from pynmea2 import nmea_utils

__all__ = [
    "GGA",
    "GNS",
    "GSA",
    "GSV",
    "RMC",
    "TALKERS",
    "VTG",
    "ZDA",
    "LineSplitter",
    "NMEAError",
    "Satellite",
    "Sentence",
    "decode",
    "with_checksum",
]

# GP GPS, GN multi-constellation, BD and GB BeiDou (BD from the Chinese TSCPB
# standard, GB from NMEA 4.10), GL GLONASS, GA Galileo.
TALKERS = frozenset({"GP", "GN", "BD", "GB", "GL", "GA"})

# NMEA allows 82 characters; real receivers exceed it (Trimble prints 8 decimals
# of minutes, Furuno pads GSV), so allow headroom but keep a bound.
MAX_SENTENCE_LENGTH = 256

KMH_PER_KNOT = 1.852
# The COCOM limit: civil receivers stop reporting above 1000 knots, so a larger
# speed is corruption, not a fast vehicle.
MAX_SPEED_KNOTS = 1000.0

REASONS = ("checksum", "talker", "sentence", "field", "range", "length")


class NMEAError(ValueError):
    """A sentence that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# --- decoded sentences ---------------------------------------------------------


def _jsonable(value):
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


@dataclass(frozen=True)
class Sentence:
    talker: str
    type: str

    def to_dict(self) -> dict:
        """JSON-ready: dates and times as ISO 8601 strings (times in UTC), missing values null."""
        return _jsonable(self)


@dataclass(frozen=True)
class RMC(Sentence):
    """Recommended minimum data: time, date, position, speed, course."""

    time: dt.time | None
    date: dt.date | None
    fix: bool
    lat: float | None
    lon: float | None
    speed_knots: float | None
    speed_kmh: float | None
    course: float | None
    magnetic_variation: float | None  # degrees, east positive
    mode: str | None  # FAA mode (NMEA 2.3+): A autonomous, D differential, N no fix, ...
    nav_status: str | None  # NMEA 4.10+: S safe, C caution, U unsafe, V not valid


@dataclass(frozen=True)
class GGA(Sentence):
    """Fix data: position, quality, satellites, HDOP, altitude."""

    time: dt.time | None
    fix: bool
    quality: int | None  # 0 none, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 estimated, ...
    lat: float | None
    lon: float | None
    satellites: int | None
    hdop: float | None
    altitude: float | None  # metres above mean sea level
    geoid_separation: float | None  # metres
    dgps_age: float | None  # seconds
    dgps_station: str | None


@dataclass(frozen=True)
class GNS(Sentence):
    """Multi-constellation fix data; ``mode`` has one letter per constellation."""

    time: dt.time | None
    fix: bool
    mode: str | None
    lat: float | None
    lon: float | None
    satellites: int | None
    hdop: float | None
    altitude: float | None
    geoid_separation: float | None
    dgps_age: float | None
    dgps_station: str | None
    nav_status: str | None


@dataclass(frozen=True)
class VTG(Sentence):
    """Course and speed over ground."""

    fix: bool
    course: float | None
    course_magnetic: float | None
    speed_knots: float | None
    speed_kmh: float | None
    mode: str | None


@dataclass(frozen=True)
class GSA(Sentence):
    """DOP and the satellites used in the fix."""

    selection: str | None  # A automatic 2D/3D, M manual
    fix_type: int | None  # 1 none, 2 2D, 3 3D
    satellites: tuple[int, ...]
    pdop: float | None
    hdop: float | None
    vdop: float | None
    system_id: int | None  # NMEA 4.10+: 1 GPS, 2 GLONASS, 3 Galileo, 4 BeiDou, ...


@dataclass(frozen=True)
class Satellite:
    prn: int
    elevation: int | None  # degrees
    azimuth: int | None  # degrees from true north
    snr: int | None  # dB-Hz, None when not tracked


@dataclass(frozen=True)
class GSV(Sentence):
    """Satellites in view, one message of a sequence."""

    message_count: int
    message_number: int
    satellites_in_view: int
    satellites: tuple[Satellite, ...]
    signal_id: int | None  # NMEA 4.10+


@dataclass(frozen=True)
class ZDA(Sentence):
    """UTC time and date, and the local zone."""

    time: dt.time | None
    date: dt.date | None
    zone_hours: int | None
    zone_minutes: int | None


# --- field checks ----------------------------------------------------------------

_UNSIGNED = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")
_SIGNED = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_INT = re.compile(r"\d+")
_SIGNED_INT = re.compile(r"[+-]?\d+")
_TIME = re.compile(r"\d{6}(?:\.\d+)?")
_DATE = re.compile(r"\d{6}")
_DEGREES_MINUTES = re.compile(r"\d+\.\d+")
_MODES = "ADEFMNPRS"  # FAA mode letters
_NAV_STATUS = "SCUV"


class _Fields:
    """The data fields of one pynmea2 sentence, read by pynmea2's field name or by index."""

    def __init__(self, msg: pynmea2.TalkerSentence):
        self.type = msg.sentence_type
        self._data = msg.data
        self._index = type(msg).name_to_idx

    def __len__(self) -> int:
        return len(self._data)

    def text(self, key: str | int) -> str:
        i = self._index[key] if isinstance(key, str) else key
        return self._data[i] if i < len(self._data) else ""

    def error(self, reason: str, what: str, problem: str) -> NMEAError:
        return NMEAError(reason, f"{self.type} {what} {problem}")

    def number(self, key, what, *, low=None, high=None, signed=False) -> float | None:
        raw = self.text(key)
        if raw == "":
            return None
        if not (_SIGNED if signed else _UNSIGNED).fullmatch(raw):
            raise self.error("field", what, f"{raw!r} is not a number")
        value = float(raw)
        self._check(value, raw, what, low, high)
        return value

    def integer(self, key, what, *, low=None, high=None, signed=False) -> int | None:
        raw = self.text(key)
        if raw == "":
            return None
        if not (_SIGNED_INT if signed else _INT).fullmatch(raw):
            raise self.error("field", what, f"{raw!r} is not an integer")
        value = int(raw)
        self._check(value, raw, what, low, high)
        return value

    def _check(self, value, raw, what, low, high):
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.error("range", what, f"{raw} is outside {low}..{high}")

    def letter(self, key, what, allowed: str) -> str | None:
        raw = self.text(key)
        if raw == "":
            return None
        if len(raw) != 1 or raw not in allowed:
            raise self.error("field", what, f"{raw!r} is not one of {', '.join(allowed)}")
        return raw

    def unit(self, key, what, expected: str) -> None:
        raw = self.text(key)
        if raw not in ("", expected):
            raise self.error("field", what, f"unit {raw!r}, expected {expected!r}")

    def time(self, key) -> dt.time | None:
        raw = self.text(key)
        if raw == "":
            return None
        if not _TIME.fullmatch(raw):
            raise self.error("field", "time", f"{raw!r} is not hhmmss[.ss]")
        try:
            return nmea_utils.timestamp(raw)
        except ValueError:
            raise self.error("range", "time", f"{raw} is not a valid time of day") from None

    def date(self, key) -> dt.date | None:
        raw = self.text(key)
        if raw == "":
            return None
        if not _DATE.fullmatch(raw):
            raise self.error("field", "date", f"{raw!r} is not ddmmyy")
        try:
            return nmea_utils.datestamp(raw)
        except ValueError:
            raise self.error("range", "date", f"{raw} is not a valid date") from None

    def speed_knots(self, key) -> float | None:
        return self.number(key, "speed", high=MAX_SPEED_KNOTS)

    def course(self, key, what="course") -> float | None:
        return self.number(key, what, high=360.0)

    def position(self) -> tuple[float, float] | None:
        """(lat, lon) in signed decimal degrees, or None when all four fields are empty."""
        lat, lat_dir = self.text("lat"), self.text("lat_dir")
        lon, lon_dir = self.text("lon"), self.text("lon_dir")
        if not (lat or lat_dir or lon or lon_dir):
            return None
        if not (lat and lat_dir and lon and lon_dir):
            raise self.error("field", "position", "is incomplete (latitude, N/S, longitude and E/W all needed)")
        return (
            self._coordinate(lat, lat_dir, "NS", 90.0, "latitude"),
            self._coordinate(lon, lon_dir, "EW", 180.0, "longitude"),
        )

    def _coordinate(self, raw, hemisphere, hemispheres, limit, what) -> float:
        if hemisphere not in hemispheres or len(hemisphere) != 1:
            raise self.error("field", what, f"hemisphere {hemisphere!r} is not {' or '.join(hemispheres)}")
        if not _DEGREES_MINUTES.fullmatch(raw):
            raise self.error("field", what, f"{raw!r} is not degrees and minutes (dddmm.mmmm)")
        try:
            degrees = nmea_utils.dm_to_sd(raw)
        except ValueError:
            raise self.error("field", what, f"{raw!r} is not degrees and minutes (dddmm.mmmm)") from None
        minutes = float(raw[raw.index(".") - 2 :])
        if minutes >= 60.0:
            raise self.error("range", what, f"{raw} has {minutes} minutes")
        if degrees > limit:
            raise self.error("range", what, f"{raw} is beyond {limit:g} degrees")
        return -degrees if hemisphere in "SW" else degrees

    def require(self, minimum: int) -> None:
        if len(self) < minimum:
            raise self.error("field", "sentence", f"has {len(self)} fields, needs at least {minimum}")


# --- per-type decoders ---------------------------------------------------------------


def _rmc(talker: str, f: _Fields) -> RMC:
    f.require(11)  # NMEA 2.0; 2.3 adds mode, 4.10 adds navigational status
    time, date = f.time("timestamp"), f.date("datestamp")
    status = f.letter("status", "status", "AV")
    mode = f.letter("mode_indicator", "mode", _MODES)
    nav_status = f.letter("nav_status", "navigational status", _NAV_STATUS)
    position = f.position()
    knots = f.speed_knots("spd_over_grnd")
    course = f.course("true_course")
    variation = f.number("mag_variation", "magnetic variation", high=180.0)
    variation_dir = f.letter("mag_var_dir", "magnetic variation direction", "EW")
    if variation is not None and variation_dir == "W":
        variation = -variation
    fix = status == "A" and mode != "N" and position is not None
    if not fix:
        position, knots, course = (None, None), None, None
    return RMC(
        talker, "RMC", time=time, date=date, fix=fix, lat=position[0], lon=position[1],
        speed_knots=knots, speed_kmh=None if knots is None else knots * KMH_PER_KNOT,
        course=course, magnetic_variation=variation, mode=mode, nav_status=nav_status,
    )


def _fix_data(f: _Fields, hdop_key: str):
    """Fields GGA and GNS share after their fix indicator: satellites, HDOP, heights, DGPS age."""
    return dict(
        satellites=f.integer("num_sats", "satellites in use", high=999),
        hdop=f.number(hdop_key, "HDOP"),
        altitude=f.number("altitude", "altitude", signed=True),
        geoid_separation=f.number("geo_sep", "geoid separation", signed=True),
        dgps_age=f.number("age_gps_data", "DGPS age"),
    )


def _gga(talker: str, f: _Fields) -> GGA:
    f.require(14)  # SiRF appends VDOP as a 15th field; extra fields are ignored
    time = f.time("timestamp")
    quality = f.integer("gps_qual", "fix quality", high=8)
    position = f.position()
    f.unit("altitude_units", "altitude", "M")
    f.unit("geo_sep_units", "geoid separation", "M")
    fix = quality not in (None, 0) and position is not None
    lat, lon = position if fix else (None, None)
    return GGA(
        talker, "GGA", time=time, fix=fix, quality=quality, lat=lat, lon=lon,
        dgps_station=f.text("ref_station_id") or None,
        **_fix_data(f, "horizontal_dil"),
    )


def _gns(talker: str, f: _Fields) -> GNS:
    f.require(12)  # NMEA 4.10 adds navigational status as a 13th field
    time = f.time("timestamp")
    mode = f.text("mode_indicator") or None
    if mode is not None and not (len(mode) <= 8 and all(c in _MODES for c in mode)):
        raise f.error("field", "mode", f"{mode!r} is not a string of {_MODES} letters")
    position = f.position()
    nav_status = f.letter(12, "navigational status", _NAV_STATUS)
    fix = mode is not None and any(c != "N" for c in mode) and position is not None
    lat, lon = position if fix else (None, None)
    return GNS(
        talker, "GNS", time=time, fix=fix, mode=mode, lat=lat, lon=lon,
        dgps_station=f.text("diferential") or None,  # pynmea2's spelling of the field name
        nav_status=nav_status,
        **_fix_data(f, "hdop"),
    )


def _vtg(talker: str, f: _Fields) -> VTG:
    f.require(8)  # NMEA 2.3 adds the mode as a 9th field
    for key, symbol in (("true_track_sym", "T"), ("mag_track_sym", "M"),
                        ("spd_over_grnd_kts_sym", "N"), ("spd_over_grnd_kmph_sym", "K")):
        f.unit(key, "field marker", symbol)
    course = f.course("true_track")
    course_magnetic = f.course("mag_track", "magnetic course")
    knots = f.speed_knots("spd_over_grnd_kts")
    kmh = f.number("spd_over_grnd_kmph", "speed", high=MAX_SPEED_KNOTS * KMH_PER_KNOT)
    mode = f.letter("faa_mode", "mode", _MODES)
    fix = mode != "N"
    if knots is None and kmh is not None:
        knots = kmh / KMH_PER_KNOT
    elif kmh is None and knots is not None:
        kmh = knots * KMH_PER_KNOT
    if not fix:
        course = course_magnetic = knots = kmh = None
    return VTG(talker, "VTG", fix=fix, course=course, course_magnetic=course_magnetic,
               speed_knots=knots, speed_kmh=kmh, mode=mode)


def _gsa(talker: str, f: _Fields) -> GSA:
    f.require(17)  # NMEA 4.10 adds the system ID as an 18th field
    satellites = tuple(
        prn for i in range(2, 14)
        if (prn := f.integer(i, f"satellite {i - 1}", low=1, high=999)) is not None
    )
    # SiRF puts a fourth DOP where NMEA 4.10 puts the system ID: only a hex digit is an ID.
    system_id = f.text(17)
    return GSA(
        talker, "GSA",
        selection=f.letter("mode", "selection mode", "AM"),
        fix_type=f.integer("mode_fix_type", "fix type", low=1, high=3),
        satellites=satellites,
        pdop=f.number("pdop", "PDOP"),
        hdop=f.number("hdop", "HDOP"),
        vdop=f.number("vdop", "VDOP"),
        system_id=int(system_id, 16) if re.fullmatch(r"[0-9A-F]", system_id) else None,
    )


def _gsv(talker: str, f: _Fields) -> GSV:
    f.require(3)
    count = f.integer(0, "message count", low=1, high=99)
    number = f.integer(1, "message number", low=1, high=99)
    in_view = f.integer(2, "satellites in view", high=999)
    if count is None or number is None or in_view is None:
        raise f.error("field", "header", "needs message count, message number and satellites in view")
    if number > count:
        raise f.error("range", "message number", f"{number} is beyond the message count {count}")
    blocks, extra = divmod(len(f) - 3, 4)
    if extra not in (0, 1):
        raise f.error("field", "satellite blocks", f"{len(f) - 3} fields do not make blocks of 4 (+ signal ID)")
    satellites = []
    for b in range(blocks):
        i = 3 + 4 * b
        prn = f.integer(i, "satellite PRN", low=1, high=999)
        elevation = f.integer(i + 1, "elevation", low=-90, high=90, signed=True)
        azimuth = f.integer(i + 2, "azimuth", high=360)
        snr = f.integer(i + 3, "SNR", high=99)
        if prn is None:
            if (elevation, azimuth, snr) != (None, None, None):
                raise f.error("field", "satellite block", f"{b + 1} has data but no PRN")
            continue  # some receivers pad the last message with empty blocks
        satellites.append(Satellite(prn, elevation, azimuth, snr))
    signal_id = f.integer(len(f) - 1, "signal ID", high=15) if extra else None
    return GSV(talker, "GSV", message_count=count, message_number=number, satellites_in_view=in_view,
               satellites=tuple(satellites), signal_id=signal_id)


def _zda(talker: str, f: _Fields) -> ZDA:
    f.require(6)
    day = f.integer("day", "day", low=1, high=31)
    month = f.integer("month", "month", low=1, high=12)
    year_text = f.text("year")
    if year_text and len(year_text) != 4:
        raise f.error("field", "year", f"{year_text!r} is not four digits")
    year = f.integer("year", "year")
    parts = (day, month, year)
    if all(p is None for p in parts):
        date = None
    elif any(p is None for p in parts):
        raise f.error("field", "date", "is incomplete (day, month and year all needed)")
    else:
        try:
            date = dt.date(year, month, day)
        except ValueError:
            raise f.error("range", "date", f"{year:04d}-{month:02d}-{day:02d} does not exist") from None
    return ZDA(
        talker, "ZDA", time=f.time("timestamp"), date=date,
        zone_hours=f.integer("local_zone", "zone hours", low=-13, high=13, signed=True),
        zone_minutes=f.integer("local_zone_minutes", "zone minutes", low=-59, high=59, signed=True),
    )


_DECODERS = {"RMC": _rmc, "GGA": _gga, "GNS": _gns, "VTG": _vtg, "GSA": _gsa, "GSV": _gsv, "ZDA": _zda}

# Printable ASCII: pynmea2 would take Unicode digits for numbers and letters for talkers.
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_CHECKSUM_TAIL = re.compile(r"\*[0-9A-Fa-f]{2}")


def decode(sentence: str, *, require_checksum: bool = True) -> Sentence:
    """Decode one sentence (with or without CR LF) into an RMC, GGA, GNS, VTG, GSA, GSV or ZDA.

    Raises :class:`NMEAError` -- and nothing else -- for any input that is not a
    well-formed, checksummed, in-range sentence of a supported talker and type.
    """
    if not isinstance(sentence, str):
        raise NMEAError("sentence", f"expected str, got {type(sentence).__name__}")
    line = sentence.strip()
    if len(line) > MAX_SENTENCE_LENGTH:
        raise NMEAError("length", f"{len(line)} characters, more than {MAX_SENTENCE_LENGTH}")
    if not _PRINTABLE.fullmatch(line):
        raise NMEAError("sentence", "contains characters other than printable ASCII")
    if not line.startswith("$"):
        raise NMEAError("sentence", "does not start with '$'")
    star = line.find("*")
    if star >= 0 and not _CHECKSUM_TAIL.fullmatch(line[star:]):
        raise NMEAError("checksum", f"malformed checksum field {line[star:]!r}, expected '*' and two hex digits")
    try:
        msg = pynmea2.parse(line, check=require_checksum)
    except pynmea2.ChecksumError as exc:
        problem = exc.args[0][0]
        if star < 0:
            problem = "checksum missing (use require_checksum=False for devices that omit it)"
        raise NMEAError("checksum", problem) from None
    except pynmea2.ParseError as exc:  # also SentenceTypeError
        raise NMEAError("sentence", str(exc.args[0][0])) from None
    if not isinstance(msg, pynmea2.TalkerSentence):
        raise NMEAError("sentence", f"{type(msg).__name__} (proprietary or query) is not decoded here")
    if msg.talker not in TALKERS:
        raise NMEAError("talker", f"{msg.talker!r} is not a GNSS talker ({', '.join(sorted(TALKERS))})")
    decoder = _DECODERS.get(msg.sentence_type)
    if decoder is None:
        raise NMEAError("sentence", f"{msg.sentence_type} is not decoded here ({', '.join(_DECODERS)})")
    return decoder(msg.talker, _Fields(msg))


_BODY = re.compile(r"[\x20-\x7e]+")


def with_checksum(body: str) -> str:
    """``"GPRMC,..."`` (with or without the leading ``$``) -> ``"$GPRMC,...*hh"``, for simulators."""
    text = body[1:] if body.startswith("$") else body
    if not _BODY.fullmatch(text) or "$" in text or "*" in text:
        raise NMEAError("sentence", "body must be printable ASCII without '$' (except leading) or '*'")
    return f"${text}*{pynmea2.NMEASentence.checksum(text):02X}"


def _dm(value: float, degree_digits: int) -> str:
    """Decimal degrees -> NMEA's dddmm.mmmm (magnitude only; the hemisphere is a field)."""
    tenthousandths = round(abs(value) * 600000)        # 1e-4 minute is about 0.2 m
    degrees, rest = divmod(tenthousandths, 600000)
    return "%0*d%02d.%04d" % (degree_digits, degrees, rest // 10000, rest % 10000)


def rmc_sentence(when, lat: float | None, lon: float | None, speed_knots: float = 0.0,
                 course: float = 0.0, talker: str = "GN") -> str:
    """An RMC sentence for simulators (NMEA 4.10 with mode A); a position of None
    gives a void fix (status V, empty fields), as a receiver without a fix sends it."""
    hhmmss = when.strftime("%H%M%S.00")
    ddmmyy = when.strftime("%d%m%y")
    if lat is None or lon is None:
        return with_checksum("%sRMC,%s,V,,,,,,,%s,,,N,V" % (talker, hhmmss, ddmmyy))
    return with_checksum("%sRMC,%s,A,%s,%s,%s,%s,%.2f,%.2f,%s,,,A,V" % (
        talker, hhmmss, _dm(lat, 2), "N" if lat >= 0 else "S", _dm(lon, 3), "E" if lon >= 0 else "W",
        speed_knots, course, ddmmyy))


def gga_sentence(when, lat: float | None, lon: float | None, satellites: int = 8,
                 hdop: float = 1.0, altitude: float = 0.0, talker: str = "GN") -> str:
    """A GGA sentence for simulators; a position of None gives quality 0 (no fix)."""
    hhmmss = when.strftime("%H%M%S.00")
    if lat is None or lon is None:
        return with_checksum("%sGGA,%s,,,,,0,00,99.99,,,,,," % (talker, hhmmss))
    return with_checksum("%sGGA,%s,%s,%s,%s,%s,1,%02d,%.2f,%.1f,M,0.0,M,," % (
        talker, hhmmss, _dm(lat, 2), "N" if lat >= 0 else "S", _dm(lon, 3), "E" if lon >= 0 else "W",
        satellites, hdop, altitude))


# --- stream framing -------------------------------------------------------------

_EOL = re.compile(rb"[\r\n]")
_PRINTABLE_BYTES = re.compile(rb"[\x20-\x7e]+")


class LineSplitter:
    """Turn a serial byte stream into candidate sentences, with bounded memory.

    ``feed(bytes)`` returns the complete lines that start with ``$`` (noise before
    the last ``$`` of a line is cut off, so a sentence truncated by a dropped byte
    does not swallow the next one). CR, LF or both end a line. What cannot be a
    sentence is dropped and counted: ``overlong`` counts lines longer than
    ``max_line`` (the rest of such a line is skipped up to its end), ``garbage``
    counts lines or line prefixes that are not sentence text. The splitter does
    not check checksums: :func:`decode` does.
    """

    def __init__(self, max_line: int = 256):
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self.overlong = 0
        self.garbage = 0
        self._line = bytearray()
        self._skipping = False  # inside an over-long line, until its end

    @property
    def pending(self) -> int:
        """Bytes held for a line not yet ended; never more than ``max_line``."""
        return len(self._line)

    def feed(self, data: bytes) -> list[str]:
        sentences: list[str] = []
        start = 0
        for eol in _EOL.finditer(data):
            self._append(data[start : eol.start()])
            self._end_line(sentences)
            start = eol.end()
        self._append(data[start:])
        return sentences

    def _append(self, chunk: bytes) -> None:
        if self._skipping or not chunk:
            return
        if len(self._line) + len(chunk) > self.max_line:
            self.overlong += 1
            self._line.clear()
            self._skipping = True
            return
        self._line += chunk

    def _end_line(self, sentences: list[str]) -> None:
        line = bytes(self._line).strip()
        self._line.clear()
        if self._skipping:
            self._skipping = False
            return
        if not line:
            return  # the empty "line" between CR and LF
        start = line.rfind(b"$")
        if start != 0:
            self.garbage += 1
            if start < 0:
                return
        sentence = line[start:]
        if not _PRINTABLE_BYTES.fullmatch(sentence):
            self.garbage += 1
            return
        sentences.append(sentence.decode("ascii"))
