"""Property: whatever arrives and whatever is delivered in between (alarms
overtaking older routine events), an outbox reloaded from the store after a stop
holds exactly the events not yet delivered: none lost, none sent twice."""
import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings, strategies as st

from gateway.config import Forwarder as ForwarderSpec
from gateway.metrics import Metrics
from gateway.sinks.outbox import Outbox
from gateway.store import Store, StoredEvent
from tests.gateway.test_store import event

# 130 alarm (tier 0), 301 trouble (tier 1), 401 opening/closing (tier 2), 602 test (filtered out)
steps = st.lists(st.one_of(st.tuples(st.just("arrive"), st.lists(st.sampled_from([130, 301, 401, 602]), min_size=1, max_size=4)),
                           st.tuples(st.just("deliver"), st.integers(1, 3)),
                           st.just(("restart", None))), max_size=25)


@settings(max_examples=40, deadline=None)
@given(steps=steps)
def test_reloaded_outbox_holds_exactly_what_was_not_delivered(steps):
    asyncio.run(scenario(steps))


async def scenario(steps):
    path = Path(tempfile.mkdtemp()) / "events.db"
    spec = ForwarderSpec(name="110", type="dc09", classes=("alarm", "trouble", "open_close"), categories=())
    store = Store(path)
    await store.open()
    outbox = Outbox(spec, store, Metrics())
    await outbox.load()
    seq, undelivered = 0, set()
    for kind, arg in steps:
        if kind == "arrive":
            events = []
            for code in arg:
                seq += 1
                events.append(event(seq, code, zone=seq % 999))
            ids = await store.append(events)
            for row_id, ev in zip(ids, events):
                outbox.offer(StoredEvent(row_id, ev))
                if ev.code != 602:
                    undelivered.add(row_id)
        elif kind == "deliver":
            for _ in range(arg):
                head = outbox.peek()
                if head is None:
                    break
                pending_tiers = [s.event.priority for t in outbox.tiers for s in t]
                assert head.event.priority == min(pending_tiers)        # life safety first
                assert head.id == min(s.id for s in outbox.tiers[head.event.priority])   # FIFO in a tier
                outbox.delivered(head)
                undelivered.discard(head.id)
        else:
            await outbox.flush()
            outbox = Outbox(spec, store, Metrics())
            await outbox.load()
        assert {s.id for t in outbox.tiers for s in t} == undelivered
    await outbox.flush()
    await store.close()
