"""One forwarder's view of the store: what it still has to deliver, alarms first.

The store is the outbox. At start-up the outbox loads every event after the
forwarder's durable watermark that it has not delivered yet; while running, the
pipeline hands it each newly committed event. Nothing is ever taken off the
outbox until the forwarder has confirmation from upstream, so a crash or a long
outage upstream loses nothing: the next start reloads the same pending events.

Order: one FIFO per priority tier. `next()` serves the lowest non-empty tier, so a
panic alarm never waits behind openings, closings or telemetry, however many are
queued; within a tier events go in commit order, which keeps each account's
events in order. (An alarm may overtake an older, lower-priority event of the
same account; life safety wins over strict per-account order across tiers.)

The watermark persisted after each delivery is the id below which everything is
delivered or filtered out; ids delivered above it (alarms that overtook) are
remembered separately so a restart does not send them again.

Operator dispatches (the console's "dispatch to 110") come before every tier: an
operator verified that alarm. They bypass the class filter, are kept in the store
until the upstream confirmed them, and never move the watermark.
"""
import asyncio
import collections
import logging
import time

from gateway.event import PRIORITY_ROUTINE

log = logging.getLogger("jifang.outbox")


class Outbox:
    def __init__(self, spec, store, metrics):
        self.name = spec.name
        self.spec = spec
        self.store = store
        self.tiers = [collections.deque() for _ in range(PRIORITY_ROUTINE + 1)]
        self.dispatches = collections.deque()
        self.watermark = 0
        self.last_seen = 0
        self._changed = asyncio.Event()
        self._cursor_writes = set()
        metrics.add_gauges(self._gauges)

    async def load(self):
        self.watermark, done = await self.store.cursor(self.name)
        self.last_seen = self.watermark
        for stored in await self.store.pending(self.watermark, done):
            self.offer(stored)
        for stored in await self.store.dispatched(self.name):
            self._queue_dispatch(stored)

    async def reload(self):
        """Start again from the store (cluster mode: this node just took the
        forwarder's lease, and the cursor may have moved on another node)."""
        self.clear()
        await self.load()

    def clear(self):
        """Forget what is queued (cluster mode: the lease went to another node, which
        reloads the same events from the store)."""
        self.tiers = [collections.deque() for _ in self.tiers]
        self.dispatches.clear()

    async def poll_dispatches(self):
        """Queue the dispatches requested on any node (cluster mode: the console an
        operator used may be on another node than this forwarder)."""
        for stored in await self.store.dispatched(self.name):
            self._queue_dispatch(stored)

    async def dispatch(self, stored):
        """Send this stored event whatever the filter says; durable before it returns."""
        await self.store.request_dispatch(self.name, stored.id)
        self._queue_dispatch(stored)

    def _queue_dispatch(self, stored):
        if all(item.id != stored.id for item in self.dispatches):
            self.dispatches.append(stored)
            self._changed.set()

    def offer(self, stored):
        """Pipeline listener: called once per committed event, in commit order."""
        self.last_seen = max(self.last_seen, stored.id)
        ev = stored.event
        if self.spec.accepts(ev.event_class, ev.category):
            self.tiers[ev.priority].append(stored)
            self._changed.set()

    def peek(self):
        if self.dispatches:
            return self.dispatches[0]
        for tier in self.tiers:
            if tier:
                return tier[0]
        return None

    async def next(self):
        """The event to deliver now (it stays in the outbox until `delivered`)."""
        while True:
            item = self.peek()
            if item is not None:
                return item
            self._changed.clear()
            await self._changed.wait()

    def delivered(self, stored):
        """Take a confirmed event off the outbox. The cursor is written to the store in
        the background, in order: the forwarder moves on to the next (maybe an alarm)
        without waiting for the store. If the gateway dies before the write, the event
        is sent again after the restart, and the upstream's dedup key absorbs it."""
        dispatched = [item for item in self.dispatches if item.id == stored.id]
        for item in dispatched:
            self.dispatches.remove(item)
            self._background(self.store.dispatch_delivered(self.name, stored.id))
        tier = self.tiers[stored.event.priority]
        if stored not in tier:       # a dispatch of an event the filter had left out
            return
        tier.remove(stored)
        heads = [tier[0].id for tier in self.tiers if tier]
        self.watermark = (min(heads) - 1) if heads else self.last_seen
        self._background(self.store.mark_delivered(self.name, stored.id, self.watermark))

    def _background(self, write):
        task = asyncio.create_task(write)
        self._cursor_writes.add(task)
        task.add_done_callback(self._cursor_written)

    def _cursor_written(self, task):
        self._cursor_writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("forwarder cursor not saved (events may be sent again after a restart)",
                      extra={"forwarder": self.name, "error": repr(task.exception())})

    async def flush(self):
        """Wait for the cursor writes still in flight (before the store closes)."""
        while self._cursor_writes:
            await asyncio.gather(*list(self._cursor_writes), return_exceptions=True)

    def depth(self):
        return len(self.dispatches) + sum(len(t) for t in self.tiers)

    def oldest_age(self):
        queues = [self.dispatches] + self.tiers
        oldest = min((q[0].event.received_at_ms for q in queues if q), default=None)
        return 0 if oldest is None else max(0.0, time.time() - oldest / 1000)

    def _gauges(self):
        return [("jifang_queue_depth", {"forwarder": self.name}, self.depth()),
                ("jifang_oldest_unforwarded_seconds", {"forwarder": self.name}, self.oldest_age())]
