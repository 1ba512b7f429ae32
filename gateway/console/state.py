"""What the console keeps in memory: the alarm queue and each device's state.

Both are rebuilt at start-up from the event log and the console database, then
kept current by the pipeline's live listener, so a page load never scans the log.

The queue holds every alarm or trouble (priority tier 0 or 1, not a restore)
that has no disposition. It is left only through `dispose`: no timeout, no
restore and no dispatch takes an alarm off it.
"""
from gateway.event import PRIORITY_TROUBLE, is_from_device
from protocols import bus, contactid

QUEUE_MAX_PRIORITY = PRIORITY_TROUBLE
COMMUNICATION_TROUBLE = 350          # raised by the gateway's supervision when a device goes silent


def queue_key(item):
    """Life safety first, then the oldest: what an operator should take next is on top."""
    return item["priority"], item["received_at_ms"], item["id"]


def belongs_in_queue(event):
    return event["priority"] <= QUEUE_MAX_PRIORITY and event["qualifier"] != contactid.QUALIFIER_RESTORE


def new_queue_item(event, on_test=False):
    item = dict(event)
    item.update(assignee=None, assigned_at_ms=None, escalated_at_ms=None, dispatches=[], restored=False,
                on_test=on_test)
    return item


def apply_handling(item, handling):
    """Fold what the console database records about an alarm into its queue item."""
    if handling["assignments"]:
        latest = handling["assignments"][-1]
        item["assignee"], item["assigned_at_ms"] = latest["assignee"], latest["at_ms"]
    item["escalated_at_ms"] = handling["escalated_at_ms"]
    item["dispatches"] = [{"at_ms": d["at_ms"], "operator": d["operator"], "ok": bool(d["ok"]), "result": d["result"]}
                          for d in handling["dispatches"]]
    return item


class DeviceState:
    def __init__(self, account, registry_entry=None):
        self.account = account
        entry = registry_entry
        self.site = entry.site if entry else ""
        self.address = entry.address if entry else ""
        self.contact = entry.contact if entry else ""
        self.type = entry.type if entry else "unknown"
        self.registered = entry is not None
        self.offline = False
        self.troubles = {}            # (code, zone) -> {"name", "since_ms"}
        self.armed = None             # "armed", "disarmed" or None (not reported yet)
        self.last_report_ms = None
        self.position = None          # {"lat", "lon", "at_ms"}
        self.walk_test = None         # {"by", "since_ms"} while an installer tests the device
        self.walk_tests = []          # [(start_ms, end_ms or None)], to tell which alarms came during one
        self.status = None            # the device's last status over the bus (protocols/bus.py) + "at_ms"

    def apply(self, event):
        """Update from one event (events must come in log order)."""
        at = event["received_at_ms"]
        if is_from_device(event["source"], event["event_class"], event.get("values")):
            self.last_report_ms = max(self.last_report_ms or 0, at)
        if event["event_class"] == "status":
            # What the device says of itself. Its partitions decide "armed" as an opening
            # or closing does: whichever came last in the log.
            self.status = dict(event["values"] or {}, at_ms=at)
            armed = self.armed_by_status(self.status)
            if armed is not None:
                self.armed = armed
        restore = event["qualifier"] == contactid.QUALIFIER_RESTORE
        if event["event_class"] == "trouble":
            if event["code"] == COMMUNICATION_TROUBLE and event["source"] == "supervision":
                self.offline = not restore
            elif restore:
                self.troubles.pop((event["code"], event["zone"]), None)
            else:
                self.troubles.setdefault((event["code"], event["zone"]), {"name": event["name"], "since_ms": at})
        elif event["event_class"] == "open_close" and event["qualifier"] in (contactid.QUALIFIER_NEW, contactid.QUALIFIER_RESTORE):
            # Contact ID: qualifier 1 on a 4xx code is an opening (disarm), 3 a closing (arm).
            self.armed = "armed" if restore else "disarmed"
        if event.get("position"):
            lat, lon = event["position"]
            self.position = {"lat": lat, "lon": lon, "at_ms": at}

    @staticmethod
    def armed_by_status(status):
        """"armed" if any partition of a status is armed, "disarmed" if none is,
        None if it names no partitions (an intercom, a last will)."""
        parts = status.get("partitions")
        if not parts:
            return None
        return "armed" if any(s in bus.ARMED for s in parts.values()) else "disarmed"

    def on_test_at(self, at_ms):
        return any(start <= at_ms and (end is None or at_ms < end) for start, end in self.walk_tests)

    def walk_test_started(self, username, at_ms):
        self.walk_test = {"by": username, "since_ms": at_ms}
        self.walk_tests.append((at_ms, None))

    def walk_test_ended(self, at_ms):
        self.walk_test = None
        if self.walk_tests and self.walk_tests[-1][1] is None:
            self.walk_tests[-1] = (self.walk_tests[-1][0], at_ms)

    @property
    def state(self):
        if self.offline:
            return "offline"
        if self.troubles:
            return "trouble"
        return "online" if self.last_report_ms is not None else "unknown"

    def to_dict(self):
        return {"account": self.account, "site": self.site, "address": self.address, "contact": self.contact,
                "type": self.type, "registered": self.registered, "state": self.state, "armed": self.armed,
                "last_report_ms": self.last_report_ms, "position": self.position, "walk_test": self.walk_test,
                "status": self.status,
                "troubles": [{"code": c, "zone": z, **t} for (c, z), t in sorted(self.troubles.items())]}


class LiveState:
    def __init__(self, registry):
        self.registry = registry
        self.queue = {}               # event id -> queue item
        self.devices = {a: DeviceState(a, d) for a, d in registry.items()}
        self.listeners = []           # fn(kind, payload): "alarm", "alarm-disposed", "device"

    def device(self, account):
        if account not in self.devices:
            self.devices[account] = DeviceState(account, self.registry.get(account))
        return self.devices[account]

    def load(self, last_report, state_events, queued, handling, walk_tests):
        for row in walk_tests:
            device = self.device(row["account"])
            if row["action"] == "start":
                device.walk_test_started(row["username"], row["at_ms"])
            else:
                device.walk_test_ended(row["at_ms"])
        for account, at in last_report.items():
            if account:
                self.device(account).last_report_ms = at
        for event in state_events:
            self.device(event["account"]).apply(event)
        for event in queued:
            on_test = self.device(event["account"]).on_test_at(event["received_at_ms"])
            self.queue[event["id"]] = apply_handling(new_queue_item(event, on_test), handling[event["id"]])

    def on_event(self, event):
        """A newly committed event (from the pipeline listener)."""
        device = self.device(event["account"])
        device.apply(event)
        self._emit("device", device.to_dict())
        if event["qualifier"] == contactid.QUALIFIER_RESTORE:
            for item in self.queue.values():
                if (item["account"], item["code"], item["zone"]) == (event["account"], event["code"], event["zone"]):
                    item["restored"] = True
                    self._emit("alarm", item)
        if belongs_in_queue(event):
            # An alarm during a walk test is still queued (nothing is dropped unseen);
            # it is marked so the operator knows to expect it and disposes of it as a test.
            item = self.queue[event["id"]] = new_queue_item(event, device.walk_test is not None)
            self._emit("alarm", item)

    def walk_test(self, account, action, username, at_ms):
        device = self.device(account)
        if action == "start":
            device.walk_test_started(username, at_ms)
        else:
            device.walk_test_ended(at_ms)
        self._emit("device", device.to_dict())

    def sorted_queue(self):
        return sorted(self.queue.values(), key=queue_key)

    def assigned(self, event_id, assignee, at_ms):
        item = self.queue[event_id]
        item["assignee"], item["assigned_at_ms"] = assignee, at_ms
        self._emit("alarm", item)

    def dispatched(self, event_id, dispatch):
        item = self.queue[event_id]
        item["dispatches"].append(dispatch)
        self._emit("alarm", item)

    def escalated(self, event_id, at_ms):
        item = self.queue[event_id]
        item["escalated_at_ms"] = at_ms
        self._emit("alarm", item)

    def disposed(self, event_id, disposition):
        self.queue.pop(event_id, None)
        self._emit("alarm-disposed", {"id": event_id, "outcome": disposition["outcome"],
                                      "operator": disposition["operator"]})

    def _emit(self, kind, payload):
        for fn in self.listeners:
            fn(kind, payload)
