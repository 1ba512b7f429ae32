"""The panel's event queue and the gateway route every Contact ID code the same way:
one table (protocols/contactid_table.py) decides class and priority for both.

Every code 000-999 is pushed, in a shuffled order, into the firmware's own queue
(firmware/core/equeue.py, on CPython over a real file) and drained the way the
reporter drains it (next, read, ack); the same reports become gateway Events, ordered
the way the pipeline's waiting room and every forwarder's outbox order them
(priority tier, then arrival). The two orders must be the same list."""
import os
import random
import sys

from gateway.event import from_contact_id
from gateway.sinks.outbox import Outbox
from protocols import contactid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "firmware"))
from core.equeue import EventQueue  # noqa: E402

CODES = list(range(1000))


def _shuffled():
    codes = list(CODES)
    random.Random(14).shuffle(codes)
    return codes


def _event(code, arrival):
    return from_contact_id(contactid.Report("1234", 1, code, 1, 1), sequence=arrival, device_time=1_763_900_000,
                           source="test")


class _Everything:
    """A forwarder spec that takes every class (the outbox's only question to it)."""
    name = "all"

    def accepts(self, event_class, category):
        return True


class _Stored:
    def __init__(self, id, event):
        self.id, self.event = id, event


class _Gauges:
    def add_gauges(self, fn):
        pass


def test_every_code_leaves_the_panel_in_the_order_the_gateway_serves_it(tmp_path):
    codes = _shuffled()
    queue = EventQueue(str(tmp_path / "events.q"), len(codes))
    for code in codes:
        assert queue.push(1, code, 1, 1, when=1_763_900_000)
    panel_order, tiers = [], {}
    while queue.pending:
        slot = queue.next()
        assert queue.read(slot)
        panel_order.append(queue.fields[4])
        tiers[queue.fields[4]] = queue.fields[6]          # the tier the panel stored with it
        queue.ack(slot)
    queue.close()

    events = [_event(code, i) for i, code in enumerate(codes)]
    outbox = Outbox(_Everything(), store=None, metrics=_Gauges())
    for i, event in enumerate(events):
        outbox.offer(_Stored(i + 1, event))
    gateway_order = [s.event.code for tier in outbox.tiers for s in tier]
    waiting_room = [e.code for _, _, e in sorted((e.priority, i, e) for i, e in enumerate(events))]

    assert panel_order == gateway_order == waiting_room
    assert tiers == {e.code: e.priority for e in events}


def test_a_full_panel_queue_drops_what_the_gateway_would_serve_last(tmp_path):
    """Pushed past capacity, the panel keeps the most urgent events by the gateway's
    own measure: what survives is the gateway's first `capacity` events plus the
    panel's overflow report (624, a trouble)."""
    codes = _shuffled()
    capacity = 300
    queue = EventQueue(str(tmp_path / "events.q"), capacity)
    for code in codes:
        queue.push(1, code, 1, 1, when=1_763_900_000)
    kept = []
    for slot in range(capacity):
        if queue.meta[slot] and queue.read(slot):
            kept.append(queue.fields[4])
    queue.close()
    tier = {code: contactid.priority(code) for code in CODES}
    lost = set(CODES) - set(kept)
    assert len(kept) == capacity and 624 in kept and queue.dropped >= len(CODES) - capacity
    assert not [c for c in lost if tier[c] == contactid.PRIORITY_LIFE_SAFETY]      # no alarm lost
    assert max(tier[c] for c in kept) <= min(tier[c] for c in lost)              # nothing kept matters less


def test_the_access_codes_the_two_sides_used_to_disagree_on():
    """424 egress denied: routine (the panel queued it as an alarm); 426 door propped
    open: a trouble (the gateway raised it as an alarm); 423 forced access: an alarm."""
    for code, cls, tier in ((423, "alarm", 0), (424, "access", 2), (426, "trouble", 1)):
        assert contactid.classify(code)[0] == cls
        assert _event(code, 0).priority == tier == contactid.priority(code)
