"""0x0200 location bodies -> Events: the position itself, and alarm changes.

A position becomes a telemetry event carrying (lat, lon) and, in `values`, what
the Event type has no field for: speed, heading, altitude, the raw alarm and
status words, the fix flag, the extra items the codec names, and the edge's
sensor readings.

Alarms are level-triggered on the wire (a terminal keeps bit 0 set in every
report until the platform acknowledges it), so they are turned into events on
*change*: a bit that sets raises one event, a bit that clears raises its
restore. The same holds for the edge alarms carried in item 0xE1. The caller
keeps the previous alarm state per vehicle (not per connection, so a reconnect
does not raise the same alarm twice) and commits it only after the events are
stored.

A report whose values cannot be true (latitude past 90°, longitude past 180°, a
speed no road vehicle reaches, a time years old or far in the future: what a
terminal with a broken GNSS module, an unset clock or a fuzzer sends) is stored
as a refused report, with its reason and without a position: it never reaches
the map, the last known fix or the rules. Its alarm bits still count, with the
last known fix, and the receive time when the time was the impossible part. An
alarm word with nearly every bit set at once (0xFFFFFFFF) is a terminal fault,
not thirty alarms: one "terminal fault" trouble while it lasts, and a restore.
"""
import time
import zlib
from dataclasses import dataclass

from protocols import contactid
from protocols.jt808 import ITEMS, SOUTH, WEST
from gateway.vehicles.codes import (EDGE_ALARMS_ITEM, EDGE_VALUES_ITEM, POSITION_CODE, SOURCE_JT808,
                                    TERMINAL_FAULT_CODE, alarm_bit_code, make_event)

FIX_BIT = 1 << 1
# Held in the vehicle's alarm state above the 32 bits of the word: "in terminal
# fault". While it is set the word's bits are not compared (they are noise).
TERMINAL_FAULT = 1 << 32
WORD = 0xFFFFFFFF


@dataclass(frozen=True)
class ReportLimits:
    """What a report may say and still be believed. Config keys: [jt808]
    report_max_speed_kmh, report_max_age_days, report_max_ahead_seconds,
    alarm_burst_bits."""
    max_speed_kmh: float = 250.0         # above any road vehicle; 0xFFFF (6553.5) is a broken sensor
    max_age_days: float = 366.0          # a back-fill older than a year is a clock reset (2000-01-01)
    max_ahead_seconds: float = 86400.0   # a day: covers a terminal on the wrong time zone, not 2099
    alarm_burst_bits: int = 16           # this many bits set at once: a terminal fault


def refusal(pos, limits, now):
    """Why the report cannot be true, or None."""
    if not -90 <= pos.lat <= 90:
        return "latitude %s outside [-90, 90]" % pos.lat
    if not -180 <= pos.lon <= 180:
        return "longitude %s outside [-180, 180]" % pos.lon
    if pos.speed > limits.max_speed_kmh:
        return "speed %s km/h over %s" % (pos.speed, limits.max_speed_kmh)
    if pos.time is not None:
        t = pos.time.timestamp()
        if t > now + limits.max_ahead_seconds:
            return "time %s more than %d s ahead" % (pos.time.isoformat(), limits.max_ahead_seconds)
        if t < now - limits.max_age_days * 86400:
            return "time %s more than %g days old" % (pos.time.isoformat(), limits.max_age_days)
    return None


def time_is_plausible(pos, limits, now):
    if pos.time is None:
        return True
    t = pos.time.timestamp()
    return now - limits.max_age_days * 86400 <= t <= now + limits.max_ahead_seconds


def device_time_of(pos):
    """Seconds since 1970 of the report; the receive time when the terminal sent
    no time (all zeros: no fix since power-up)."""
    return int(pos.time.timestamp()) if pos.time is not None else int(time.time())


def has_fix(pos):
    return bool(pos.status & FIX_BIT) and not (pos.lat == 0 and pos.lon == 0)


def edge_alarms(pos):
    """The (code, zone) pairs an edge gateway says are active, from item 0xE1."""
    raw = pos.get(EDGE_ALARMS_ITEM)
    if not isinstance(raw, bytes):
        return frozenset()
    pairs = ((int.from_bytes(raw[i:i + 2], "big"), raw[i + 2]) for i in range(0, len(raw) - 2, 3))
    return frozenset((code, zone) for code, zone in pairs if 1 <= code <= 999)


def encode_edge_alarms(active):
    return b"".join(code.to_bytes(2, "big") + bytes([zone]) for code, zone in sorted(active))


def edge_values(pos):
    raw = pos.get(EDGE_VALUES_ITEM)
    if not isinstance(raw, bytes):
        return None
    out = {}
    for pair in raw.decode("ascii", "replace").split(";"):
        name, sep, value = pair.partition("=")
        if sep:
            try:
                out[name] = float(value)
            except ValueError:
                out[name] = value
    return out


def encode_edge_values(values, limit=255):
    """"name=value;..." for item 0xE2, cut at whole pairs to fit one item."""
    out = b""
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        pair = ("%s=%s;" % (name, round(value, 3) if isinstance(value, float) else value)).encode("ascii", "replace")
        if len(out) + len(pair) > limit:
            break
        out += pair
    return out


def position_values(pos, fix):
    values = {"speed_kmh": pos.speed, "heading": pos.direction, "altitude_m": pos.altitude,
              "alarm": pos.alarm, "status": pos.status & ~(SOUTH | WEST), "fix": fix}
    for item in pos.items:
        if not item.raw and item.id in ITEMS and isinstance(item.value, (int, float)):
            values[ITEMS[item.id][0]] = item.value
    sensors = edge_values(pos)
    if sensors:
        values["sensors"] = sensors
    return values


def report_events(vehicle, prev_bits, prev_edge, pos, version, raw, body, last_fix, limits=ReportLimits(),
                  now=None):
    """(events, new bits, new edge set) for one 0x0200 body, given the alarm bits
    and edge alarms the vehicle reported before (`body`: the body's bytes; `raw`:
    what to record as received, hex). Alarm events carry the
    report's position, or the last known fix when this report has none (an SOS
    from a tunnel still reaches the police with where the vehicle was). The first
    event is the position (position None and values["refused"] = the reason when
    the report cannot be true: the caller feeds no rule with it)."""
    now = time.time() if now is None else now
    refused = refusal(pos, limits, now)
    t = device_time_of(pos) if time_is_plausible(pos, limits, now) else int(now)
    fix = has_fix(pos) and refused is None
    here = (pos.lat, pos.lon) if fix else None
    values = position_values(pos, fix)
    name = "Position"
    if refused is not None:
        values.update(refused=refused, lat=pos.lat, lon=pos.lon,
                      device_time_reported=pos.time.isoformat() if pos.time is not None else None)
        name = "Position report refused"
    # Positions carry no site: the account names the vehicle, and the registry
    # entry would be repeated in every one of millions of rows. Alarms carry it.
    # A position's sequence is a checksum of its body: the same report sent again
    # (a retry, a back-fill of what did arrive) is recorded once, while two
    # different reports in the same second (JT/T 808 times have 1 s resolution)
    # are both kept.
    events = [make_event(vehicle.account, POSITION_CODE, name=name, qualifier=contactid.QUALIFIER_STATUS,
                         sequence=zlib.crc32(body) & 0x7FFFFFFF, device_time=t, source=SOURCE_JT808,
                         position=here, values=values, raw=raw)]
    where = here or last_fix
    alarm_values = {"speed_kmh": pos.speed, "heading": pos.direction, "fix": fix}
    if here is None and where is not None:
        alarm_values["position_from"] = "last fix"
    in_fault, prev_word = prev_bits & TERMINAL_FAULT, prev_bits & WORD
    if bin(pos.alarm & WORD).count("1") >= limits.alarm_burst_bits:
        new_bits = prev_word | TERMINAL_FAULT
        if not in_fault:
            events.append(_fault_event(vehicle, contactid.QUALIFIER_NEW, pos, t, where, alarm_values, raw))
    else:
        new_bits = pos.alarm
        if in_fault:
            events.append(_fault_event(vehicle, contactid.QUALIFIER_RESTORE, pos, t, where, alarm_values, raw))
        changed = pos.alarm ^ prev_word
        for bit in range(32):
            if changed >> bit & 1:
                code, bit_name = alarm_bit_code(bit, version)
                qualifier = contactid.QUALIFIER_NEW if pos.alarm >> bit & 1 else contactid.QUALIFIER_RESTORE
                events.append(make_event(vehicle.account, code, name=bit_name, qualifier=qualifier, zone=bit,
                                         device_time=t, source=SOURCE_JT808, position=where,
                                         values=dict(alarm_values, alarm_bit=bit), raw=raw, site=vehicle.site))
    active = edge_alarms(pos)
    for code, zone in sorted(active ^ prev_edge):
        qualifier = contactid.QUALIFIER_NEW if (code, zone) in active else contactid.QUALIFIER_RESTORE
        events.append(make_event(vehicle.account, code, qualifier=qualifier, zone=zone, device_time=t,
                                 source=SOURCE_JT808, position=where, values=dict(alarm_values, edge=True),
                                 raw=raw, site=vehicle.site))
    return events, new_bits, active


def _fault_event(vehicle, qualifier, pos, t, where, alarm_values, raw):
    return make_event(vehicle.account, TERMINAL_FAULT_CODE, name="Terminal fault (alarm word %08X)" % (pos.alarm & WORD)
                      if qualifier == contactid.QUALIFIER_NEW else "Terminal fault",
                      qualifier=qualifier, zone=0, device_time=t, source=SOURCE_JT808, position=where,
                      values=dict(alarm_values, alarm=pos.alarm), raw=raw, site=vehicle.site)
