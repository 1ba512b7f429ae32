"""The one Event type that crosses the gateway: sources make them, sinks consume them.

An Event is immutable once made. Its canonical JSON (`to_json`) is what the store
hashes into the chain, so the serialisation must never depend on dict order or
float formatting: keys are sorted, times are integers (seconds or milliseconds).
"""
import json
import time
from dataclasses import dataclass, fields, replace

from protocols import contactid

# Contact ID's classes, plus what non-alarm sources produce: readings and positions
# ("telemetry"), and a device's own report of its state over the bus ("status",
# protocols/bus.py), both routine.
EVENT_CLASSES = contactid.EVENT_CLASSES + ("telemetry", "status")
CATEGORIES = contactid.CATEGORIES

# Priority tiers (every queue in the gateway serves a lower number first) and
# which class sits in which: one table for the gateway and the panel's queue,
# protocols/contactid_table.py. Telemetry and status are routine.
PRIORITY_LIFE_SAFETY = contactid.PRIORITY_LIFE_SAFETY
PRIORITY_TROUBLE = contactid.PRIORITY_TROUBLE
PRIORITY_ROUTINE = contactid.PRIORITY_ROUTINE
priority_of = contactid.priority_of


@dataclass(frozen=True)
class Event:
    account: str
    code: int                      # Contact ID event code (0 for telemetry)
    qualifier: int                 # 1 new / opening, 3 restore / closing, 6 status
    partition: int
    zone: int
    event_class: str
    category: str
    name: str                      # operator-readable name of the code
    sequence: int                  # sender's message sequence (dedup key part)
    device_time: int               # seconds since 1970 UTC, as the sender dated the event
    received_at_ms: int            # when this gateway received it
    source: str                    # "dc09/tcp", "dc09/udp", "mqtt", "supervision"
    site: dict | None = None       # enrichment from the device registry
    position: tuple | None = None  # (lat, lon) when the sender gave one
    values: dict | None = None     # telemetry readings
    raw: str = ""                  # the frame as received (encrypted frames stay encrypted)

    @property
    def priority(self):
        return priority_of(self.event_class)

    @property
    def dedup_key(self):
        """(account, sequence, device time, code, zone, qualifier): a retried frame maps to
        the same key. The qualifier keeps a trouble and its restore apart when they share
        a second and a sequence (supervision raises both with sequence 0)."""
        return "%s|%d|%d|%d|%d|%d" % (self.account, self.sequence, self.device_time, self.code, self.zone,
                                      self.qualifier)

    @property
    def is_restore(self):
        return self.qualifier == contactid.QUALIFIER_RESTORE

    @property
    def from_device(self):
        """Whether the device itself sent this, which proves it alive: not the gateway's
        own supervision, not the broker's last will (a status with online false)."""
        return is_from_device(self.source, self.event_class, self.values)

    def with_site(self, site):
        return replace(self, site=site)

    def to_dict(self):
        # Shallow: asdict() deep-copies and was half the cost of storing a position;
        # the dict is serialised or read, never mutated in depth.
        d = {name: getattr(self, name) for name in _FIELD_NAMES}
        if d["position"] is not None:
            d["position"] = list(d["position"])
        return d

    def to_json(self):
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        if d.get("position") is not None:
            d["position"] = tuple(d["position"])
        return cls(**d)


_FIELD_NAMES = tuple(f.name for f in fields(Event))


def is_from_device(source, event_class, values):
    """Event.from_device on the fields (the console reads events as dicts)."""
    if source == "supervision":
        return False
    return not (event_class == "status" and not (values or {}).get("online"))


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def now_ms():
    return int(time.time() * 1000)


def from_contact_id(report, *, sequence, device_time, source, raw="", position=None, received_at_ms=None):
    """An Event from a Contact ID report (how DC-09 ADM-CID, MQTT status and
    supervision all describe what happened)."""
    name, event_class, category = contactid.describe(report.code)
    return Event(account=report.account.upper(), code=report.code, qualifier=report.qualifier,
                 partition=report.partition, zone=report.zone, event_class=event_class,
                 category=category, name=name, sequence=sequence, device_time=int(device_time),
                 received_at_ms=received_at_ms if received_at_ms is not None else now_ms(),
                 source=source, position=position, raw=raw)


def describe_line(event):
    """One line for an operator's live feed."""
    when = time.strftime("%H:%M:%S", time.localtime(event.device_time))
    what = ("RESTORE " if event.is_restore else "") + event.name
    where = ""
    if event.site:
        where = " @ " + " / ".join(v for v in (event.site.get("site"), event.site.get("address")) if v)
    pos = " pos=%.5f,%.5f" % event.position if event.position else ""
    return "%s  %-9s acct %-6s %-28s zone %03d part %02d%s%s" % (
        when, event.event_class.upper(), event.account, what, event.zone, event.partition, where, pos)
