"""JT/T 808 message bodies, both directions: location (0x0200, 0x0201, 0x0704),
registration and authentication, answers, parameters, tracking, alarm
acknowledgement, text. Each body class has decode(data, version),
encode(version), to_dict(version) and from_dict(d, version); BODIES maps message
ids to them, decode_body/encode_body dispatch. CPython only."""
import math
import struct
from dataclasses import dataclass, fields
from datetime import datetime

from protocols.jt808_codes import (GMT8, IO_STATES, LOAD_MASK, LOAD_SHIFT, LOADS, REGISTER_RESULTS, RESULTS,
                                   SIGNALS, SOUTH, WEST, JT808Error, alarm_table, code_from, flag_names,
                                   flags_from_names, name_or_code, status_table)


@dataclass(frozen=True)
class Raw:
    """A body kept as bytes: unknown message id, encrypted, or one fragment."""
    data: bytes

    def to_dict(self, version):
        return {"raw": self.data.hex()}

    @classmethod
    def from_dict(cls, d, version):
        return cls(bytes.fromhex(d["raw"]))


# --------------------------------------------------------------------------
# body helpers

def _gbk(data):
    return data.decode("gbk")


def _to_gbk(text):
    try:
        return text.encode("gbk")
    except UnicodeEncodeError as e:
        raise JT808Error("body", "not GBK: %s" % e) from None


def _fixed(data):
    """A fixed-width field: trailing NUL padding dropped."""
    return _gbk(data.rstrip(b"\x00"))


def _to_fixed(text, size):
    raw = _to_gbk(text)
    if len(raw) > size:
        raise JT808Error("body", "%r is longer than %d bytes" % (text, size))
    return raw.ljust(size, b"\x00")


def _bcd_time(raw):
    if raw == b"\x00" * 6:
        return None
    digits = raw.hex()
    if not digits.isdigit():
        raise JT808Error("body", "time %s is not BCD" % digits)
    y, mo, d, h, mi, s = (int(digits[i:i + 2]) for i in range(0, 12, 2))
    try:
        return datetime(2000 + y, mo, d, h, mi, s, tzinfo=GMT8)
    except ValueError:
        raise JT808Error("body", "time %s is not a date" % digits) from None


def _to_bcd_time(t):
    if t is None:
        return b"\x00" * 6
    if not 2000 <= t.year <= 2099:
        raise JT808Error("body", "year %d does not fit BCD YY" % t.year)
    return bytes.fromhex(t.strftime("%y%m%d%H%M%S"))


def _norm_time(t):
    if t is None:
        return None
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=GMT8)
    return t.astimezone(GMT8).replace(microsecond=0)


def _word(data):
    return int.from_bytes(data, "big")


# --------------------------------------------------------------------------
# 0x0200 extra items and 0x8103 parameters: (name, decode, encode) per id

def _uint(size, scale=1):
    if scale == 1:
        return (lambda raw: _check_len(raw, size) and _word(raw),
                lambda v: int(v).to_bytes(size, "big"))
    return (lambda raw: _check_len(raw, size) and _word(raw) / scale,
            lambda v: round(v * scale).to_bytes(size, "big"))


def _check_len(raw, size):
    if len(raw) != size:
        raise ValueError("expected %d bytes, got %d" % (size, len(raw)))
    return True


def _named_bits(size, table):
    return (lambda raw: _check_len(raw, size) and flag_names(_word(raw), table),
            lambda v: flags_from_names(v, table).to_bytes(size, "big"))


def _sign_magnitude_decode(raw):
    # 0x06 cabin temperature: "highest bit 1 means negative", not two's complement
    _check_len(raw, 2)
    v = _word(raw)
    return -(v & 0x7FFF) if v & 0x8000 else v


def _sign_magnitude_encode(v):
    return ((0x8000 | -v) if v < 0 else v).to_bytes(2, "big")


def _overspeed_decode(raw):
    if len(raw) == 1:
        return {"area_type": raw[0], "area_id": None}
    _check_len(raw, 5)
    return {"area_type": raw[0], "area_id": _word(raw[1:])}


def _overspeed_encode(v):
    if v["area_id"] is None:
        return bytes([v["area_type"]])
    return bytes([v["area_type"]]) + v["area_id"].to_bytes(4, "big")


def _in_out_decode(raw):
    _check_len(raw, 6)
    return {"area_type": raw[0], "area_id": _word(raw[1:5]), "direction": raw[5]}


def _in_out_encode(v):
    return bytes([v["area_type"]]) + v["area_id"].to_bytes(4, "big") + bytes([v["direction"]])


def _section_decode(raw):
    _check_len(raw, 7)
    return {"section_id": _word(raw[:4]), "seconds": _word(raw[4:6]), "result": raw[6]}


def _section_encode(v):
    return v["section_id"].to_bytes(4, "big") + v["seconds"].to_bytes(2, "big") \
        + bytes([v["result"]])


def _analog_decode(raw):
    _check_len(raw, 4)
    return {"ad0": _word(raw[2:]), "ad1": _word(raw[:2])}   # AD0 is bits 0-15


def _analog_encode(v):
    return v["ad1"].to_bytes(2, "big") + v["ad0"].to_bytes(2, "big")


ITEMS = {
    0x01: ("mileage_km",) + _uint(4, 10),
    0x02: ("fuel_l",) + _uint(2, 10),
    0x03: ("tacho_speed_kmh",) + _uint(2, 10),
    0x04: ("alarm_event_id",) + _uint(2),
    0x05: ("tyre_pressure", list, bytes),            # one byte per tyre (2019)
    0x06: ("cabin_temp_c", _sign_magnitude_decode, _sign_magnitude_encode),
    0x11: ("overspeed", _overspeed_decode, _overspeed_encode),
    0x12: ("area_in_out", _in_out_decode, _in_out_encode),
    0x13: ("section_time", _section_decode, _section_encode),
    0x25: ("signals",) + _named_bits(4, SIGNALS),
    0x2A: ("io",) + _named_bits(2, IO_STATES),
    0x2B: ("analog", _analog_decode, _analog_encode),
    0x30: ("rssi",) + _uint(1),
    0x31: ("satellites",) + _uint(1),
}


PARAMS = {
    0x0001: ("heartbeat_s",) + _uint(4),
    0x0013: ("server", _gbk, _to_gbk),          # "host" (2013) or "host:port;…" (2019)
    0x0017: ("backup_server", _gbk, _to_gbk),
    0x0018: ("server_tcp_port",) + _uint(4),
    0x0019: ("server_udp_port",) + _uint(4),
    0x0020: ("report_strategy",) + _uint(4),        # 0 timed, 1 by distance, 2 both
    0x0027: ("sleep_interval_s",) + _uint(4),
    0x0028: ("emergency_interval_s",) + _uint(4),
    0x0029: ("default_interval_s",) + _uint(4),
    0x0055: ("max_speed_kmh",) + _uint(4),
    0x0056: ("overspeed_duration_s",) + _uint(4),
}


@dataclass(frozen=True)
class Item:
    """One id/value pair of a 0x0200 extra item or a 0x8103 parameter.
    `value` is bytes when the id is unknown or the value malformed (kept raw)."""
    id: int
    value: object

    @property
    def raw(self):
        return isinstance(self.value, bytes)


def _decode_value(table, item_id, raw):
    codec = table.get(item_id)
    if codec is not None:
        try:
            value = codec[1](raw)
            if codec[2](value) == raw:   # only a canonical value is kept decoded
                return Item(item_id, value)
        except (ValueError, IndexError, KeyError, OverflowError):
            pass
    return Item(item_id, bytes(raw))


def _encode_value(table, item):
    if item.raw:
        return item.value
    codec = table.get(item.id)
    if codec is None:
        raise JT808Error("body", "id 0x%X has no codec; give its value as bytes" % item.id)
    return codec[2](item.value)


def _item_to_dict(table, item, id_format):
    d = {"id": id_format % item.id}
    if item.raw:
        d["raw"] = item.value.hex()
    else:
        d["name"] = table.get(item.id, ("unknown",))[0]
        d["value"] = item.value
    return d


def _item_from_dict(d):
    item_id = d["id"]
    item_id = int(item_id, 16) if isinstance(item_id, str) else int(item_id)
    if "raw" in d:
        return Item(item_id, bytes.fromhex(d["raw"]))
    return Item(item_id, d["value"])


# --------------------------------------------------------------------------
# bodies

@dataclass(frozen=True)
class GeneralResponse:
    """0x0001 (terminal) and 0x8001 (platform) general response."""
    reply_flow: int
    reply_id: int
    result: int = 0

    _LAYOUT = struct.Struct(">HHB")

    @classmethod
    def decode(cls, data, version):
        if len(data) != 5:
            raise JT808Error("body", "general response is 5 bytes")
        return cls(*cls._LAYOUT.unpack(data))

    def encode(self, version):
        return self._LAYOUT.pack(self.reply_flow, self.reply_id, self.result)

    def to_dict(self, version):
        return {"reply_flow": self.reply_flow, "reply_id": "0x%04X" % self.reply_id,
                "result": name_or_code(self.result, RESULTS)}

    @classmethod
    def from_dict(cls, d, version):
        rid = d["reply_id"]
        return cls(int(d["reply_flow"]), int(rid, 16) if isinstance(rid, str) else int(rid),
                   code_from(d["result"], RESULTS))


# maker id / model / terminal id widths per edition; 2011 devices still register
# with the short layout under a 2013 header (Traccar's test has one)
REGISTER_SIZES = {2011: (5, 8, 7), 2013: (5, 20, 7), 2019: (11, 30, 30)}


@dataclass(frozen=True)
class Register:
    """0x0100 terminal registration."""
    province: int
    city: int
    maker: str
    model: str
    terminal_id: str
    plate_color: int
    plate: str
    legacy_2011: bool = False

    @classmethod
    def decode(cls, data, version):
        legacy = version == 2013 and len(data) < 4 + sum(REGISTER_SIZES[2013]) + 1
        m, t, i = REGISTER_SIZES[2011 if legacy else version]
        if len(data) < 5 + m + t + i:
            raise JT808Error("body", "registration too short")
        p = 4
        fields = []
        for size in (m, t, i):
            fields.append(_fixed(data[p:p + size]))
            p += size
        return cls(_word(data[0:2]), _word(data[2:4]), *fields, data[p], _gbk(data[p + 1:]),
                   legacy)

    def encode(self, version):
        m, t, i = REGISTER_SIZES[2011 if self.legacy_2011 else version]
        return struct.pack(">HH", self.province, self.city) + _to_fixed(self.maker, m) \
            + _to_fixed(self.model, t) + _to_fixed(self.terminal_id, i) \
            + bytes([self.plate_color]) + _to_gbk(self.plate)

    def to_dict(self, version):
        return {"province": self.province, "city": self.city, "maker": self.maker,
                "model": self.model, "terminal_id": self.terminal_id,
                "plate_color": self.plate_color, "plate": self.plate,
                "legacy_2011": self.legacy_2011}

    @classmethod
    def from_dict(cls, d, version):
        return cls(int(d["province"]), int(d["city"]), d["maker"], d["model"],
                   d["terminal_id"], int(d["plate_color"]), d["plate"],
                   bool(d.get("legacy_2011", False)))


@dataclass(frozen=True)
class RegisterResponse:
    """0x8100: the auth code comes only with result 0."""
    reply_flow: int
    result: int = 0
    auth_code: str = None

    @classmethod
    def decode(cls, data, version):
        if len(data) < 3:
            raise JT808Error("body", "register response too short")
        code = _gbk(data[3:]) if data[2] == 0 else None
        if data[2] != 0 and len(data) > 3:
            raise JT808Error("body", "auth code after a failed registration")
        return cls(_word(data[:2]), data[2], code)

    def encode(self, version):
        head = struct.pack(">HB", self.reply_flow, self.result)
        if self.result == 0:
            return head + _to_gbk(self.auth_code or "")
        if self.auth_code:
            raise JT808Error("body", "an auth code goes only with result 0")
        return head

    def to_dict(self, version):
        return {"reply_flow": self.reply_flow,
                "result": name_or_code(self.result, REGISTER_RESULTS),
                "auth_code": self.auth_code}

    @classmethod
    def from_dict(cls, d, version):
        return cls(int(d["reply_flow"]), code_from(d["result"], REGISTER_RESULTS),
                   d.get("auth_code"))

    def __post_init__(self):
        if self.result == 0 and self.auth_code is None:
            object.__setattr__(self, "auth_code", "")


@dataclass(frozen=True)
class Authenticate:
    """0x0102.  2013: the auth code fills the body.  2019: code length BYTE,
    code, IMEI BYTE[15], software version BYTE[20] (NUL padded), as SmallChi
    and EMQX read the 2019 text."""
    code: str
    imei: str = None
    software_version: str = None

    @classmethod
    def decode(cls, data, version):
        if version == 2013:
            return cls(_gbk(data))
        n = data[0]
        if len(data) != 1 + n + 35:
            raise JT808Error("body", "2019 authentication is 36 bytes plus the code")
        return cls(_gbk(data[1:1 + n]), _fixed(data[1 + n:16 + n]), _fixed(data[16 + n:]))

    def encode(self, version):
        code = _to_gbk(self.code)
        if version == 2013:
            return code
        if len(code) > 255:
            raise JT808Error("body", "auth code over 255 bytes")
        return bytes([len(code)]) + code + _to_fixed(self.imei or "", 15) \
            + _to_fixed(self.software_version or "", 20)

    def to_dict(self, version):
        d = {"code": self.code}
        if version == 2019:
            d.update(imei=self.imei, software_version=self.software_version)
        return d

    @classmethod
    def from_dict(cls, d, version):
        if version == 2019:
            return cls(d["code"], d.get("imei") or "", d.get("software_version") or "")
        return cls(d["code"])


# The 28-byte basic block, one layout both ways:
#   alarm      DWORD   flags (ALARMS_2013 / ALARMS_2019)
#   status     DWORD   flags (STATUS_2013 / STATUS_2019), load in bits 8-9
#   lat        DWORD   degrees x 10^6, sign from status bit 2 (south)
#   lon        DWORD   degrees x 10^6, sign from status bit 3 (west)
#   altitude   WORD    metres; signed like Traccar, because devices below sea level
#                      (the Turpan depression is -154 m) send two's complement
#   speed      WORD    0.1 km/h
#   direction  WORD    0-359, north 0, clockwise
#   time       BCD[6]  YYMMDDhhmmss, GMT+8
# With struct, not construct: construct's parse left a reference cycle behind on
# every call (the result Container and its BytesIO stream), and at fleet rates that
# garbage kept CPython's cyclic collector running often enough to cost a fifth of
# the center's time (bench/fleet.py).
LOCATION_BLOCK = struct.Struct(">IIIIhHH6s")


@dataclass(frozen=True)
class Position:
    """0x0200 body (also inside 0x0201 and 0x0704).

    lat/lon are rounded to the wire's 10^-6 degree; a negative one sets the
    south/west status bit and a set bit makes it negative, so the two never
    disagree.  `items` keeps the extra items in wire order; `tail` keeps bytes
    after the last well-formed item (vendor data that is not id/length/value).
    """
    lat: float
    lon: float
    time: datetime = None
    speed: float = 0.0          # km/h, 0.1 resolution
    direction: int = 0
    altitude: int = 0           # metres
    alarm: int = 0
    status: int = 0
    items: tuple = ()
    tail: bytes = b""

    def __post_init__(self):
        status = self.status
        lat, lon = round(abs(self.lat), 6), round(abs(self.lon), 6)
        if math.copysign(1, self.lat) < 0:
            status |= SOUTH
        if math.copysign(1, self.lon) < 0:
            status |= WEST
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "lat", -lat if status & SOUTH else lat)
        object.__setattr__(self, "lon", -lon if status & WEST else lon)
        object.__setattr__(self, "speed", round(self.speed, 1))
        object.__setattr__(self, "time", _norm_time(self.time))
        object.__setattr__(self, "items", tuple(self.items))

    def get(self, item_id, default=None):
        """Value of the first extra item with this id."""
        for item in self.items:
            if item.id == item_id:
                return item.value
        return default

    @classmethod
    def decode(cls, data, version):
        if len(data) < 28:
            raise JT808Error("body", "location is at least 28 bytes")
        alarm, status, lat, lon, altitude, speed, direction, when = LOCATION_BLOCK.unpack_from(data)
        items, pos, n = [], 28, len(data)
        while pos + 2 <= n and pos + 2 + data[pos + 1] <= n:
            end = pos + 2 + data[pos + 1]
            items.append(_decode_value(ITEMS, data[pos], data[pos + 2:end]))
            pos = end
        lat /= 1e6
        lon /= 1e6
        return cls(-lat if status & SOUTH else lat, -lon if status & WEST else lon,
                   _bcd_time(when), speed / 10, direction, altitude,
                   alarm, status, tuple(items), data[pos:])

    def encode(self, version):
        out = [LOCATION_BLOCK.pack(
            self.alarm, self.status, round(abs(self.lat) * 1e6), round(abs(self.lon) * 1e6),
            self.altitude, round(self.speed * 10), self.direction, _to_bcd_time(self.time))]
        for item in self.items:
            value = _encode_value(ITEMS, item)
            if len(value) > 255:
                raise JT808Error("body", "item 0x%02X longer than 255 bytes" % item.id)
            out.append(bytes([item.id, len(value)]) + value)
        out.append(self.tail)
        return b"".join(out)

    def to_dict(self, version):
        return {
            "alarm": flag_names(self.alarm, alarm_table(version)),
            "status": flag_names(self.status, status_table(version), skip=LOAD_MASK),
            "load": LOADS[(self.status & LOAD_MASK) >> LOAD_SHIFT],
            "lat": self.lat, "lon": self.lon, "altitude": self.altitude,
            "speed": self.speed, "direction": self.direction,
            "time": self.time.isoformat() if self.time else None,
            "items": [_item_to_dict(ITEMS, i, "0x%02X") for i in self.items],
            "tail": self.tail.hex(),
        }

    @classmethod
    def from_dict(cls, d, version):
        load = code_from(d.get("load", "empty"), LOADS)
        status = flags_from_names(d.get("status", []), status_table(version))
        return cls(float(d["lat"]), float(d["lon"]), d.get("time"),
                   float(d.get("speed", 0)), int(d.get("direction", 0)),
                   int(d.get("altitude", 0)),
                   flags_from_names(d.get("alarm", []), alarm_table(version)),
                   status | load << LOAD_SHIFT,
                   tuple(_item_from_dict(i) for i in d.get("items", [])),
                   bytes.fromhex(d.get("tail", "")))


@dataclass(frozen=True)
class LocationReply:
    """0x0201: answer to a 0x8201 position query."""
    reply_flow: int
    position: Position

    @classmethod
    def decode(cls, data, version):
        return cls(_word(data[:2]), Position.decode(data[2:], version))

    def encode(self, version):
        return struct.pack(">H", self.reply_flow) + self.position.encode(version)

    def to_dict(self, version):
        return {"reply_flow": self.reply_flow, "position": self.position.to_dict(version)}

    @classmethod
    def from_dict(cls, d, version):
        return cls(int(d["reply_flow"]), Position.from_dict(d["position"], version))


BATCH_KINDS = {0: "normal", 1: "backfill"}    # backfill: stored while out of coverage


@dataclass(frozen=True)
class Batch:
    """0x0704: count WORD, kind BYTE, then (length WORD, 0x0200 body) each."""
    kind: int
    positions: tuple

    def __post_init__(self):
        object.__setattr__(self, "positions", tuple(self.positions))

    @classmethod
    def decode(cls, data, version):
        count, kind = struct.unpack_from(">HB", data)
        positions, pos = [], 3
        for _ in range(count):
            size = _word(data[pos:pos + 2])
            if pos + 2 + size > len(data):
                raise JT808Error("body", "batch item runs past the body")
            positions.append(Position.decode(data[pos + 2:pos + 2 + size], version))
            pos += 2 + size
        if pos != len(data):
            raise JT808Error("body", "%d bytes after %d positions" % (len(data) - pos, count))
        return cls(kind, positions)

    def encode(self, version):
        out = [struct.pack(">HB", len(self.positions), self.kind)]
        for p in self.positions:
            body = p.encode(version)
            out.append(struct.pack(">H", len(body)) + body)
        return b"".join(out)

    def to_dict(self, version):
        return {"kind": name_or_code(self.kind, BATCH_KINDS),
                "positions": [p.to_dict(version) for p in self.positions]}

    @classmethod
    def from_dict(cls, d, version):
        return cls(code_from(d["kind"], BATCH_KINDS),
                   [Position.from_dict(p, version) for p in d["positions"]])


class _FixedBody:
    """A body that is one struct of its fields, in their order, the same in both
    versions (0x8202, 0x8203): the subclass names FORMAT and, for errors, WHAT."""
    FORMAT = ""
    WHAT = ""

    @classmethod
    def decode(cls, data, version):
        size = struct.calcsize(cls.FORMAT)
        if len(data) != size:
            raise JT808Error("body", "%s is %d bytes" % (cls.WHAT, size))
        return cls(*struct.unpack(cls.FORMAT, data))

    def encode(self, version):
        return struct.pack(self.FORMAT, *(getattr(self, f.name) for f in fields(self)))


@dataclass(frozen=True)
class TrackingControl(_FixedBody):
    """0x8202 temporary tracking: report every `interval` s for `validity` s
    (interval 0 stops tracking)."""
    interval: int
    validity: int
    FORMAT = ">HI"
    WHAT = "tracking control"

    def to_dict(self, version):
        return {"interval": self.interval, "validity": self.validity}

    @classmethod
    def from_dict(cls, d, version):
        return cls(int(d["interval"]), int(d["validity"]))


@dataclass(frozen=True)
class AlarmAck(_FixedBody):
    """0x8203 manual alarm acknowledgement: the alarm's flow (0 = all of these
    types) and the alarm bits being acknowledged."""
    alarm_flow: int
    alarm: int
    FORMAT = ">HI"
    WHAT = "alarm ack"

    def to_dict(self, version):
        return {"alarm_flow": self.alarm_flow,
                "alarm": flag_names(self.alarm, alarm_table(version))}

    @classmethod
    def from_dict(cls, d, version):
        return cls(int(d["alarm_flow"]), flags_from_names(d["alarm"], alarm_table(version)))


# 0x8300 flag bits.  2013: 0 urgent, 2 display, 3 TTS, 4 advertising screen,
# 5 CAN fault code (else navigation).  2019: bits 0-1 01 service / 10 urgent /
# 11 notice, 2 display, 3 TTS, 5 as 2013.  Kept as an int: the 2019 bits 0-1
# are one field, so names per bit would mislead.
TEXT_TYPES = {1: "notice", 2: "service"}


@dataclass(frozen=True)
class Text:
    """0x8300 text message; 2019 inserts a text-type BYTE after the flag."""
    flags: int
    text: str
    text_type: int = None

    @classmethod
    def decode(cls, data, version):
        if version == 2019:
            return cls(data[0], _gbk(data[2:]), data[1])
        return cls(data[0], _gbk(data[1:]))

    def encode(self, version):
        if version == 2019:
            return bytes([self.flags, 1 if self.text_type is None else self.text_type]) \
                + _to_gbk(self.text)
        return bytes([self.flags]) + _to_gbk(self.text)

    def to_dict(self, version):
        d = {"flags": self.flags, "text": self.text}
        if version == 2019:
            d["text_type"] = name_or_code(self.text_type, TEXT_TYPES)
        return d

    @classmethod
    def from_dict(cls, d, version):
        if version == 2019:
            return cls(int(d["flags"]), d["text"], code_from(d.get("text_type", 1), TEXT_TYPES))
        return cls(int(d["flags"]), d["text"])


def _decode_params(data, pos):
    count = data[pos]
    pos += 1
    params = []
    for _ in range(count):
        param_id = struct.unpack_from(">I", data, pos)[0]
        size = data[pos + 4]
        if pos + 5 + size > len(data):
            raise JT808Error("body", "parameter 0x%04X runs past the body" % param_id)
        params.append(_decode_value(PARAMS, param_id, data[pos + 5:pos + 5 + size]))
        pos += 5 + size
    if pos != len(data):
        raise JT808Error("body", "%d bytes after %d parameters" % (len(data) - pos, count))
    return tuple(params)


def _encode_params(params):
    if len(params) > 255:
        raise JT808Error("body", "at most 255 parameters")
    out = [bytes([len(params)])]
    for p in params:
        value = _encode_value(PARAMS, p)
        if len(value) > 255:
            raise JT808Error("body", "parameter 0x%04X longer than 255 bytes" % p.id)
        out.append(struct.pack(">IB", p.id, len(value)) + value)
    return b"".join(out)


class _ParamList:
    """What 0x8103 and 0x0104 share: a `params` tuple and a lookup by id."""

    def __post_init__(self):
        object.__setattr__(self, "params", tuple(self.params))

    def get(self, param_id, default=None):
        return next((p.value for p in self.params if p.id == param_id), default)


@dataclass(frozen=True)
class SetParams(_ParamList):
    """0x8103: count BYTE, then (id DWORD, length BYTE, value) each."""
    params: tuple

    @classmethod
    def decode(cls, data, version):
        return cls(_decode_params(data, 0))

    def encode(self, version):
        return _encode_params(self.params)

    def to_dict(self, version):
        return {"params": [_item_to_dict(PARAMS, p, "0x%04X") for p in self.params]}

    @classmethod
    def from_dict(cls, d, version):
        return cls([_item_from_dict(p) for p in d["params"]])


@dataclass(frozen=True)
class ParamsReply(_ParamList):
    """0x0104: reply flow WORD, then the 0x8103 parameter list."""
    reply_flow: int
    params: tuple

    @classmethod
    def decode(cls, data, version):
        return cls(_word(data[:2]), _decode_params(data, 2))

    def encode(self, version):
        return struct.pack(">H", self.reply_flow) + _encode_params(self.params)

    def to_dict(self, version):
        return {"reply_flow": self.reply_flow,
                "params": [_item_to_dict(PARAMS, p, "0x%04X") for p in self.params]}

    @classmethod
    def from_dict(cls, d, version):
        return cls(int(d["reply_flow"]), [_item_from_dict(p) for p in d["params"]])


BODIES = {
    0x0001: GeneralResponse, 0x8001: GeneralResponse,
    0x0100: Register, 0x8100: RegisterResponse, 0x0102: Authenticate,
    0x0200: Position, 0x0201: LocationReply, 0x0704: Batch,
    0x8202: TrackingControl, 0x8203: AlarmAck, 0x8300: Text,
    0x8103: SetParams, 0x0104: ParamsReply,
}
EMPTY_BODIES = {0x0002, 0x0003, 0x8104, 0x8201}


def body_class(msg_id, encryption, packet):
    if encryption or packet:
        return Raw
    return BODIES.get(msg_id, Raw)


def decode_body(msg_id, data, version):
    """Decode one body (already reassembled); JT808Error("body") on any fault."""
    if msg_id in EMPTY_BODIES:
        if data:
            raise JT808Error("body", "0x%04X carries no body" % msg_id)
        return None
    cls = BODIES.get(msg_id, Raw)
    if cls is Raw:
        return Raw(bytes(data))
    try:
        return cls.decode(bytes(data), version)
    except JT808Error:
        raise
    except (struct.error, ValueError, IndexError) as e:
        raise JT808Error("body", "0x%04X: %s" % (msg_id, e)) from None


def encode_body(msg_id, body, version):
    if body is None:
        if msg_id in EMPTY_BODIES or msg_id not in BODIES:
            return b""
        raise JT808Error("unsupported", "0x%04X needs a body" % msg_id)
    if isinstance(body, Raw):
        return body.data
    if msg_id in EMPTY_BODIES or not isinstance(body, BODIES.get(msg_id, ())):
        raise JT808Error("unsupported", "0x%04X cannot carry %s" % (msg_id, type(body).__name__))
    try:
        return body.encode(version)
    except JT808Error:
        raise
    except (struct.error, ValueError, OverflowError, TypeError, AttributeError) as e:
        raise JT808Error("body", "0x%04X: %s" % (msg_id, e)) from None



# --------------------------------------------------------------------------
# builders

def position(lat, lon, time=None, speed=0.0, direction=0, altitude=0,
             alarm=(), status=("fixed", "gps"), items=(), version=2013, **extra):
    """A 0x0200 body.  alarm/status: names (or ints); items: (id, value)
    pairs, or keywords by item name (mileage_km=12.5, satellites=9).
    time defaults to now."""
    if time is None:
        time = datetime.now(GMT8)
    by_name = {v[0]: k for k, v in ITEMS.items()}
    items = [i if isinstance(i, Item) else Item(*i) for i in items]
    for name, value in extra.items():
        if name not in by_name:
            raise TypeError("unknown extra item %r" % name)
        items.append(Item(by_name[name], value))
    return Position(lat, lon, time, speed, direction, altitude,
                    flags_from_names(alarm, alarm_table(version)),
                    flags_from_names(status, status_table(version)), tuple(items))


