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
"""
import time
import zlib

from protocols import contactid
from protocols.jt808 import ITEMS, SOUTH, WEST
from gateway.vehicles.codes import (EDGE_ALARMS_ITEM, EDGE_VALUES_ITEM, POSITION_CODE, SOURCE_JT808,
                                    alarm_bit_code, make_event)

FIX_BIT = 1 << 1


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


def report_events(vehicle, prev_bits, prev_edge, pos, version, raw, body, last_fix):
    """(events, new bits, new edge set) for one 0x0200 body, given the alarm bits
    and edge alarms the vehicle reported before (`body`: the body's bytes; `raw`:
    what to record as received, hex). Alarm events carry the
    report's position, or the last known fix when this report has none (an SOS
    from a tunnel still reaches the police with where the vehicle was)."""
    t = device_time_of(pos)
    fix = has_fix(pos)
    here = (pos.lat, pos.lon) if fix else None
    values = position_values(pos, fix)
    # Positions carry no site: the account names the vehicle, and the registry
    # entry would be repeated in every one of millions of rows. Alarms carry it.
    # A position's sequence is a checksum of its body: the same report sent again
    # (a retry, a back-fill of what did arrive) is recorded once, while two
    # different reports in the same second (JT/T 808 times have 1 s resolution)
    # are both kept.
    events = [make_event(vehicle.account, POSITION_CODE, name="Position", qualifier=contactid.QUALIFIER_STATUS,
                         sequence=zlib.crc32(body) & 0x7FFFFFFF, device_time=t, source=SOURCE_JT808,
                         position=here, values=values, raw=raw)]
    where = here or last_fix
    alarm_values = {"speed_kmh": pos.speed, "heading": pos.direction, "fix": fix}
    if here is None and where is not None:
        alarm_values["position_from"] = "last fix"
    changed = pos.alarm ^ prev_bits
    for bit in range(32):
        if changed >> bit & 1:
            code, name = alarm_bit_code(bit, version)
            qualifier = contactid.QUALIFIER_NEW if pos.alarm >> bit & 1 else contactid.QUALIFIER_RESTORE
            events.append(make_event(vehicle.account, code, name=name, qualifier=qualifier, zone=bit,
                                     device_time=t, source=SOURCE_JT808, position=where,
                                     values=dict(alarm_values, alarm_bit=bit), raw=raw, site=vehicle.site))
    active = edge_alarms(pos)
    for code, zone in sorted(active ^ prev_edge):
        qualifier = contactid.QUALIFIER_NEW if (code, zone) in active else contactid.QUALIFIER_RESTORE
        events.append(make_event(vehicle.account, code, qualifier=qualifier, zone=zone, device_time=t,
                                 source=SOURCE_JT808, position=where, values=dict(alarm_values, edge=True),
                                 raw=raw, site=vehicle.site))
    return events, pos.alarm, active
