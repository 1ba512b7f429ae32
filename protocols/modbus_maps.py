"""Modbus register maps, as data, for the field devices the gateway polls.

A map lists a device's points: which register table a point lives in (coil,
discrete input, holding or input register), its address, its data type and word
order, how raw values scale to engineering units, and the alarm thresholds a rule
can use. :func:`decode_registers` turns the blocks a poller read into engineering
values and :func:`encode_values` does the reverse (for simulators and for
writing set points); the two are symmetric. No I/O here: the gateway's Modbus
RTU/TCP source does the reading.

The built-in maps (:data:`ALARM_HOST`, :data:`HAZMAT_TANK`, :data:`ESCORT_VAULT`)
describe *generic* device profiles, not any vendor's product. Real devices differ
in addresses, scaling and word order, so a site config supplies its own map in
the same plain dict / TOML shape and :func:`load_map` validates it, naming the
bad key and the fix. The shape::

    name = "hazmat-tank"
    description = "..."                      # optional

    [[points]]
    name = "tank_pressure"                   # lower_snake_case, unique
    register = "input"                       # coil | discrete | holding | input
    address = 0                              # 0-based protocol address
    type = "f32"                             # bool | u16 | s16 | u32 | s32 | f32
    word_order = "big"                       # 32-bit types: big (high word first) | little
    scale = 1.0                              # engineering = raw * scale + offset
    offset = 0.0
    unit = "kPa"
    alarm = { high = 1600, high_high = 1800 }

    [[points]]
    name = "vault_door"
    register = "input"
    address = 0
    type = "u16"
    states = { 0 = "closed", 1 = "open", 2 = "forced" }   # raw code -> label
    alarm = { when = ["forced"] }

    [[points]]
    name = "tamper"                          # one bit of a status register
    register = "input"
    address = 16
    type = "bool"
    bit = 0
    alarm = { when = true }

TOML keys are strings, so ``states`` keys may be ``"0"`` as well as ``0``. An
optional ``count`` is checked against the type (a 32-bit type takes 2 registers).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "ALARM_HOST",
    "ESCORT_VAULT",
    "HAZMAT_TANK",
    "MAPS",
    "Alarm",
    "Block",
    "DeviceMap",
    "ModbusMapError",
    "Point",
    "decode_registers",
    "encode_values",
    "evaluate_alarms",
    "load_map",
]


class ModbusMapError(ValueError):
    """A map that does not validate, or values that do not fit it."""


REGISTER_TABLES = ("coil", "discrete", "holding", "input")
BIT_TABLES = ("coil", "discrete")
DATA_TYPES = ("bool", "u16", "s16", "u32", "s32", "f32")
WORD_ORDERS = ("big", "little")

# struct formats, big-endian within the value: Modbus sends each register high byte first.
_STRUCT = {"u16": ">H", "s16": ">h", "u32": ">I", "s32": ">i", "f32": ">f"}
_WORDS = {"bool": 1, "u16": 1, "s16": 1, "u32": 2, "s32": 2, "f32": 2}

# One read request must cover a table's block: the Modbus limits per request.
MAX_READ = {"coil": 2000, "discrete": 2000, "holding": 125, "input": 125}

THRESHOLD_LEVELS = ("low_low", "low", "high", "high_high")


@dataclass(frozen=True)
class Alarm:
    """Alarm thresholds for a numeric point, or alarming values for a bool or state point.

    Thresholds are inclusive: a value at or above ``high`` is high.
    """

    low_low: float | None = None
    low: float | None = None
    high: float | None = None
    high_high: float | None = None
    when: frozenset = frozenset()  # True, or state labels


@dataclass(frozen=True)
class Point:
    name: str
    register: str
    address: int
    type: str
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    word_order: str = "big"
    bit: int | None = None  # a bool held in one bit of a holding or input register
    states: Mapping[int, str] | None = None
    alarm: Alarm | None = None

    @property
    def count(self) -> int:
        """Registers (or bits, in the coil and discrete tables) the point occupies."""
        return _WORDS[self.type]


@dataclass(frozen=True)
class Block:
    """The contiguous range of one table that a poller reads in one request."""

    start: int
    count: int


@dataclass(frozen=True)
class DeviceMap:
    name: str
    description: str
    points: tuple[Point, ...]

    @property
    def blocks(self) -> dict[str, Block]:
        """Per register table used: the block covering all of its points."""
        spans: dict[str, Block] = {}
        for table in REGISTER_TABLES:
            points = [p for p in self.points if p.register == table]
            if points:
                start = min(p.address for p in points)
                end = max(p.address + p.count for p in points)
                spans[table] = Block(start, end - start)
        return spans

    def point(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        raise ModbusMapError(f"{self.name}: no point named {name!r}")


# --- loading and validation --------------------------------------------------------

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_CODE = re.compile(r"-?\d{1,10}")
_POINT_KEYS = {"name", "register", "address", "count", "type", "scale", "offset", "unit",
               "word_order", "bit", "states", "alarm"}
_ALARM_KEYS = set(THRESHOLD_LEVELS) | {"when"}


def _fail(where: str, problem: str, fix: str) -> ModbusMapError:
    return ModbusMapError(f"{where}: {problem}; {fix}")


def _is_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


def load_map(data: Mapping[str, Any]) -> DeviceMap:
    """Build and validate a :class:`DeviceMap` from a plain dict (e.g. parsed TOML)."""
    if not isinstance(data, Mapping):
        raise _fail("map", f"is a {type(data).__name__}", "give a table with 'name' and 'points'")
    unknown = set(data) - {"name", "description", "points"}
    if unknown:
        raise _fail(f"map.{sorted(map(str, unknown))[0]}", "is not a map key", "use name, description, points")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise _fail("map.name", f"is {name!r}", "give the device profile a non-empty string name")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(f"{name}.description", f"is {description!r}", "make it a string")
    raw_points = data.get("points")
    if not isinstance(raw_points, Sequence) or isinstance(raw_points, (str, bytes)) or not raw_points:
        raise _fail(f"{name}.points", "is missing or empty", "give a list of point tables ([[points]])")
    points = tuple(_load_point(f"{name}.points[{i}]", p) for i, p in enumerate(raw_points))
    device_map = DeviceMap(name, description, points)
    _check_layout(device_map)
    return device_map


def _load_point(where: str, data) -> Point:
    if not isinstance(data, Mapping):
        raise _fail(where, f"is a {type(data).__name__}", "make each point a table")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _fail(f"{where}.name", f"is {name!r}", "use a lower_snake_case identifier")
    where = f"{where} ({name})"
    unknown = set(data) - _POINT_KEYS
    if unknown:
        raise _fail(f"{where}.{sorted(map(str, unknown))[0]}", "is not a point key",
                    f"use only {', '.join(sorted(_POINT_KEYS))}")
    for key in ("register", "address", "type"):
        if key not in data:
            raise _fail(f"{where}.{key}", "is missing", "every point needs register, address and type")

    register, type_ = data["register"], data["type"]
    if register not in REGISTER_TABLES:
        raise _fail(f"{where}.register", f"is {register!r}", f"use one of {', '.join(REGISTER_TABLES)}")
    if type_ not in DATA_TYPES:
        raise _fail(f"{where}.type", f"is {type_!r}", f"use one of {', '.join(DATA_TYPES)}")
    address = data["address"]
    if not isinstance(address, int) or isinstance(address, bool) or not 0 <= address <= 0xFFFF:
        raise _fail(f"{where}.address", f"is {address!r}", "use the 0-based protocol address, 0..65535 "
                    "(for a 4xxxx/3xxxx reference number, subtract the table base and 1)")
    if address + _WORDS[type_] - 1 > 0xFFFF:
        raise _fail(f"{where}.address", f"{address} leaves no room for a {type_}", "move the point down")
    if "count" in data and data["count"] != _WORDS[type_]:
        raise _fail(f"{where}.count", f"is {data['count']!r} but a {type_} takes {_WORDS[type_]}",
                    "drop count (it follows from type) or fix the type")

    if register in BIT_TABLES:
        if type_ != "bool":
            raise _fail(f"{where}.type", f"is {type_!r} in the {register} table",
                        "coils and discrete inputs hold single bits: use type = \"bool\"")
        for key in ("bit", "scale", "offset", "word_order", "states", "unit"):
            if key in data:
                raise _fail(f"{where}.{key}", f"does not apply to a {register}", f"remove {key}")
    elif type_ == "bool":
        bit = data.get("bit")
        if not isinstance(bit, int) or isinstance(bit, bool) or not 0 <= bit <= 15:
            raise _fail(f"{where}.bit", f"is {bit!r}",
                        "a bool in a register needs the bit number, 0 (least significant) to 15")
        for key in ("scale", "offset", "word_order", "states", "unit"):
            if key in data:
                raise _fail(f"{where}.{key}", "does not apply to a bool", f"remove {key}")
    elif "bit" in data:
        raise _fail(f"{where}.bit", f"does not apply to a {type_}", "remove bit, or use type = \"bool\"")

    scale, offset = data.get("scale", 1.0), data.get("offset", 0.0)
    if not _is_number(scale) or scale == 0:
        raise _fail(f"{where}.scale", f"is {scale!r}", "use a finite non-zero number (engineering = raw * scale + offset)")
    if not _is_number(offset):
        raise _fail(f"{where}.offset", f"is {offset!r}", "use a finite number")
    unit = data.get("unit", "")
    if not isinstance(unit, str):
        raise _fail(f"{where}.unit", f"is {unit!r}", "make it a string such as \"kPa\"")
    word_order = data.get("word_order", "big")
    if "word_order" in data and _WORDS[type_] != 2:
        raise _fail(f"{where}.word_order", f"does not apply to a 16-bit {type_}", "remove word_order")
    if word_order not in WORD_ORDERS:
        raise _fail(f"{where}.word_order", f"is {word_order!r}",
                    "use \"big\" (high word first, ABCD) or \"little\" (low word first, CDAB)")

    states = _load_states(where, data, type_, scale, offset)
    alarm = _load_alarm(where, data.get("alarm"), type_, states) if "alarm" in data else None
    return Point(name, register, address, type_, float(scale), float(offset), unit,
                 word_order, data.get("bit"), states, alarm)


def _load_states(where, data, type_, scale, offset) -> Mapping[int, str] | None:
    if "states" not in data:
        return None
    states = data["states"]
    if type_ not in ("u16", "s16", "u32", "s32"):
        raise _fail(f"{where}.states", f"do not apply to a {type_}", "use an integer type for coded states")
    if scale != 1 or offset != 0:
        raise _fail(f"{where}.states", "are raw codes", "remove scale and offset from a point with states")
    if not isinstance(states, Mapping) or not states:
        raise _fail(f"{where}.states", f"is {states!r}", "give a table of code = \"label\"")
    low, high = _raw_limits(type_)
    codes: dict[int, str] = {}
    for key, label in states.items():
        if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and _CODE.fullmatch(key))):
            raise _fail(f"{where}.states.{key}", "is not an integer code", "use codes such as 0, 1, 2")
        code = int(key)
        if not low <= code <= high:
            raise _fail(f"{where}.states.{key}", f"is outside {type_} ({low}..{high})", "fix the code")
        if not isinstance(label, str) or not _NAME.fullmatch(label):
            raise _fail(f"{where}.states.{key}", f"label {label!r}", "use a lower_snake_case label")
        if code in codes or label in codes.values():
            raise _fail(f"{where}.states.{key}", "repeats a code or label", "make codes and labels unique")
        codes[code] = label
    return codes


def _load_alarm(where, data, type_, states) -> Alarm:
    where = f"{where}.alarm"
    if not isinstance(data, Mapping) or not data:
        raise _fail(where, f"is {data!r}", "give a table such as { high = 1600 } or { when = true }")
    unknown = set(data) - _ALARM_KEYS
    if unknown:
        raise _fail(f"{where}.{sorted(map(str, unknown))[0]}", "is not an alarm key", f"use {', '.join(sorted(_ALARM_KEYS))}")
    discrete = type_ == "bool" or states is not None
    if discrete:
        if set(data) != {"when"}:
            raise _fail(where, "has thresholds on a bool or state point",
                        "use { when = true } or { when = [\"label\", ...] }")
        when = data["when"]
        when = list(when) if isinstance(when, (list, tuple)) else [when]
        allowed = [True, False] if type_ == "bool" else list(states.values())
        for value in when:
            if value not in allowed or isinstance(value, bool) != (type_ == "bool"):
                raise _fail(f"{where}.when", f"value {value!r} cannot occur", f"use values from {allowed}")
        return Alarm(when=frozenset(when))
    if "when" in data:
        raise _fail(f"{where}.when", "applies to bool and state points", "use low_low, low, high, high_high")
    levels = {}
    for level in THRESHOLD_LEVELS:
        if level in data:
            if not _is_number(data[level]):
                raise _fail(f"{where}.{level}", f"is {data[level]!r}", "use a number in the point's unit")
            levels[level] = float(data[level])
    ordered = [levels[k] for k in THRESHOLD_LEVELS if k in levels]
    if ordered != sorted(ordered):
        raise _fail(where, f"thresholds {levels} are out of order", "keep low_low <= low <= high <= high_high")
    return Alarm(**levels)


def _check_layout(device_map: DeviceMap) -> None:
    """Names unique, no two points on the same register (unless distinct bits), one read per table."""
    seen: set[str] = set()
    owners: dict[tuple[str, int], list[Point]] = {}
    for p in device_map.points:
        if p.name in seen:
            raise _fail(f"{device_map.name}.points ({p.name})", "repeats a name", "give each point its own name")
        seen.add(p.name)
        for address in range(p.address, p.address + p.count):
            for other in owners.setdefault((p.register, address), []):
                shared_bits = p.bit is not None and other.bit is not None and p.bit != other.bit
                if not shared_bits:
                    raise _fail(f"{device_map.name}.points ({p.name}).address",
                                f"{p.register} {address} is also used by {other.name}",
                                "move one of them, or give bools in one register distinct bits")
            owners[(p.register, address)].append(p)
    for table, block in device_map.blocks.items():
        if block.count > MAX_READ[table]:
            raise _fail(f"{device_map.name}.points", f"{table} points span {block.count} addresses, "
                        f"one request reads at most {MAX_READ[table]}",
                        "keep each table's points together or split the device into two maps")


# --- conversion ---------------------------------------------------------------------------


def _raw_limits(type_: str) -> tuple[int, int]:
    bits = 16 * _WORDS[type_]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if type_.startswith("s") else (0, (1 << bits) - 1)


def _words_to_raw(words: Sequence[int], p: Point) -> int | float:
    ordered = list(reversed(words)) if p.word_order == "little" else list(words)
    return struct.unpack(_STRUCT[p.type], b"".join(w.to_bytes(2, "big") for w in ordered))[0]


def _raw_to_words(raw: int | float, p: Point) -> list[int]:
    data = struct.pack(_STRUCT[p.type], raw)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return list(reversed(words)) if p.word_order == "little" else words


UNKNOWN_STATE_PREFIX = "unknown_"


def is_unknown_state(value) -> bool:
    """True for the label a coded point gets when the device sends a code the map lacks."""
    return isinstance(value, str) and value.startswith(UNKNOWN_STATE_PREFIX)


def _engineering(raw: int | float, p: Point):
    if p.states is not None:
        # A code the profile does not know must not fail the whole device: the same
        # read may carry a panic input. It decodes as "unknown_<code>", which
        # is_unknown_state() flags so the poller can raise a device trouble.
        return p.states.get(raw, UNKNOWN_STATE_PREFIX + str(raw))
    if p.type == "f32" and not math.isfinite(raw):
        return None  # devices report NaN for a failed sensor
    if p.scale == 1 and p.offset == 0:
        return raw
    value = raw * p.scale + p.offset
    if p.type == "f32":
        return value
    # 123 * 0.1 is 12.300000000000001 in binary floating point: an integer raw value
    # scaled by a decimal step has no more decimals than the step and the offset.
    return round(value, max(_decimals(p.scale), _decimals(p.offset)))


def _decimals(x: float) -> int:
    return max(0, -Decimal(repr(x)).as_tuple().exponent)


def _check_block(device_map: DeviceMap, blocks: Mapping[str, Sequence], table: str, block: Block):
    values = blocks.get(table)
    if values is None or len(values) < block.count:
        got = "nothing" if values is None else f"{len(values)} values"
        raise ModbusMapError(f"{device_map.name}: the {table} block needs {block.count} values "
                             f"from address {block.start}, got {got}")
    for value in values[: block.count]:
        if table in BIT_TABLES:
            if value not in (0, 1):  # True/False compare equal to 1/0
                raise ModbusMapError(f"{device_map.name}: {table} value {value!r} is not a bit")
        elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
            raise ModbusMapError(f"{device_map.name}: {table} value {value!r} is not a 16-bit register")
    return values


def decode_registers(device_map: DeviceMap, blocks: Mapping[str, Sequence[int | bool]]) -> dict[str, Any]:
    """Blocks read from the device -> {point name: engineering value}.

    ``blocks`` holds, for each table in ``device_map.blocks``, the values read from
    that block's start address: bools (or 0/1) for coils and discrete inputs,
    16-bit words for registers. Longer reads are fine (pymodbus pads bit reads
    to a byte). Bools come back as bool, coded states as their label, scaled
    values as float, unscaled integers as int, and an f32 NaN as None.
    """
    layout = device_map.blocks
    checked = {table: _check_block(device_map, blocks, table, block) for table, block in layout.items()}
    values: dict[str, Any] = {}
    for p in device_map.points:
        offset = p.address - layout[p.register].start
        chunk = checked[p.register][offset : offset + p.count]
        if p.register in BIT_TABLES:
            values[p.name] = bool(chunk[0])
        elif p.type == "bool":
            values[p.name] = bool(chunk[0] >> p.bit & 1)
        else:
            values[p.name] = _engineering(_words_to_raw(chunk, p), p)
    return values


def _raw_value(value, p: Point) -> int | float:
    if p.states is not None:
        codes = {label: code for code, label in p.states.items()}
        if value not in codes:
            raise ModbusMapError(f"{p.name}: {value!r} is not one of {sorted(codes)}")
        return codes[value]
    if p.type == "f32" and value is None:
        return math.nan
    if not _is_number(value):
        raise ModbusMapError(f"{p.name}: {value!r} is not a finite number")
    raw = (value - p.offset) / p.scale
    if p.type == "f32":
        return raw
    raw = round(raw)
    low, high = _raw_limits(p.type)
    if not low <= raw <= high:
        raise ModbusMapError(f"{p.name}: {value!r} {p.unit} needs raw {raw}, outside {p.type} ({low}..{high})")
    return raw


def encode_values(device_map: DeviceMap, values: Mapping[str, Any]) -> dict[str, list]:
    """{point name: engineering value} for every point -> blocks, as :func:`decode_registers` takes them.

    Integer points round to the nearest raw step; unmapped addresses inside a
    block are 0 (False for bits).
    """
    names = {p.name for p in device_map.points}
    missing, unknown = names - set(values), set(values) - names
    if missing or unknown:
        raise ModbusMapError(f"{device_map.name}: missing values for {sorted(missing)}, "
                             f"unknown points {sorted(map(str, unknown))}")
    layout = device_map.blocks
    blocks: dict[str, list] = {
        table: [False if table in BIT_TABLES else 0] * block.count for table, block in layout.items()
    }
    for p in device_map.points:
        value = values[p.name]
        offset = p.address - layout[p.register].start
        if p.type == "bool":
            if not isinstance(value, bool):
                raise ModbusMapError(f"{p.name}: {value!r} is not a bool")
            if p.register in BIT_TABLES:
                blocks[p.register][offset] = value
            elif value:
                blocks[p.register][offset] |= 1 << p.bit
            continue
        try:
            words = _raw_to_words(_raw_value(value, p), p)
        except (struct.error, OverflowError) as exc:
            raise ModbusMapError(f"{p.name}: {value!r} does not fit a {p.type}: {exc}") from None
        blocks[p.register][offset : offset + p.count] = words
    return blocks


def evaluate_alarms(device_map: DeviceMap, values: Mapping[str, Any]) -> dict[str, str]:
    """{point name: level} for the points in alarm: high_high, high, low, low_low, or active.

    The most severe level wins; points without a value (None) are skipped.
    """
    active: dict[str, str] = {}
    for p in device_map.points:
        a, value = p.alarm, values.get(p.name)
        if a is None or value is None:
            continue
        if a.when:
            if value in a.when:
                active[p.name] = "active"
            continue
        for level, hit in (("high_high", a.high_high is not None and value >= a.high_high),
                           ("low_low", a.low_low is not None and value <= a.low_low),
                           ("high", a.high is not None and value >= a.high),
                           ("low", a.low is not None and value <= a.low)):
            if hit:
                active[p.name] = level
                break
    return active


# --- generic device profiles ---------------------------------------------------------------
# Example addresses and thresholds: a site config overrides them with the vendor's.

_ZONE_STATES = {0: "normal", 1: "alarm", 2: "trouble", 3: "bypassed"}
_ARM_STATES = {0: "disarmed", 1: "armed_away", 2: "armed_stay"}

ALARM_HOST = load_map({
    "name": "alarm-host",
    "description": "Bus alarm host: zone states, partition arming, tamper and power status, outputs.",
    "points": [
        *({"name": f"zone_{z:02d}", "register": "input", "address": z - 1, "type": "u16",
           "states": _ZONE_STATES, "alarm": {"when": ["alarm"]}} for z in range(1, 17)),
        {"name": "tamper", "register": "input", "address": 16, "type": "bool", "bit": 0,
         "alarm": {"when": True}},
        {"name": "ac_fail", "register": "input", "address": 16, "type": "bool", "bit": 1,
         "alarm": {"when": True}},
        {"name": "low_battery", "register": "input", "address": 16, "type": "bool", "bit": 2,
         "alarm": {"when": True}},
        {"name": "battery_voltage", "register": "input", "address": 17, "type": "u16",
         "scale": 0.01, "unit": "V", "alarm": {"low": 11.5, "low_low": 10.5}},
        # Holding registers, so the gateway can arm and disarm by writing them.
        *({"name": f"partition_{n}_arm", "register": "holding", "address": n - 1, "type": "u16",
           "states": _ARM_STATES} for n in range(1, 5)),
        {"name": "siren", "register": "coil", "address": 0, "type": "bool"},
        {"name": "strobe", "register": "coil", "address": 1, "type": "bool"},
    ],
})

HAZMAT_TANK = load_map({
    "name": "hazmat-tank",
    "description": "Hazmat tank sensors: pressure, temperature, level, valve and leak detectors.",
    "points": [
        {"name": "tank_pressure", "register": "input", "address": 0, "type": "f32", "word_order": "big",
         "unit": "kPa", "alarm": {"high": 1600.0, "high_high": 1800.0}},
        {"name": "tank_temperature", "register": "input", "address": 2, "type": "s16", "scale": 0.1,
         "unit": "°C", "alarm": {"high": 50.0, "high_high": 60.0}},
        {"name": "level_percent", "register": "input", "address": 3, "type": "u16", "scale": 0.1,
         "unit": "%", "alarm": {"low_low": 5.0, "low": 10.0, "high": 90.0, "high_high": 95.0}},
        {"name": "level_mm", "register": "input", "address": 4, "type": "u32", "word_order": "big",
         "unit": "mm"},
        {"name": "valve_open", "register": "discrete", "address": 0, "type": "bool"},
        # Any leak detector raises the leak alarm.
        {"name": "leak_1", "register": "discrete", "address": 1, "type": "bool", "alarm": {"when": True}},
        {"name": "leak_2", "register": "discrete", "address": 2, "type": "bool", "alarm": {"when": True}},
    ],
})

ESCORT_VAULT = load_map({
    "name": "escort-vault",
    "description": "Cash-in-transit vehicle: vault door, cash box, panic inputs.",
    "points": [
        {"name": "vault_door", "register": "input", "address": 0, "type": "u16",
         "states": {0: "closed", 1: "open", 2: "forced"}, "alarm": {"when": ["forced"]}},
        {"name": "cash_box", "register": "input", "address": 1, "type": "u16",
         "states": {0: "locked", 1: "unlocked", 2: "removed"}, "alarm": {"when": ["removed"]}},
        {"name": "panic_driver", "register": "discrete", "address": 0, "type": "bool", "alarm": {"when": True}},
        {"name": "panic_guard", "register": "discrete", "address": 1, "type": "bool", "alarm": {"when": True}},
        {"name": "panic_rear", "register": "discrete", "address": 2, "type": "bool", "alarm": {"when": True}},
    ],
})

MAPS = {m.name: m for m in (ALARM_HOST, HAZMAT_TANK, ESCORT_VAULT)}
