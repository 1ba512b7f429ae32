"""The pipeline every Event goes through: validate, enrich, dedupe, commit, fan out.

    source --submit(event)--> validate -> enrich (device registry) -> supervision
           --> commit queue (alarms first) -> store (one fsync'd transaction per batch)
           --> outboxes of the forwarders, live listeners

`submit()` returns only after the event is durably in the store (or was already
there: a retried frame), which is what lets a source ACK the device.

Group commit: events waiting while a transaction is being fsync'd go into the next
transaction together, so N panels cost about one fsync per batch, not one each.
The waiting room is a priority queue: a panic alarm that arrives while a thousand
open/close reports wait is in the next transaction, whatever its arrival order.
"""
import asyncio
import heapq
import itertools
import logging

from gateway.store import StoredEvent
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.pipeline")

MAX_BATCH = 256


class InvalidEvent(ValueError):
    pass


class Pipeline:
    def __init__(self, config, store, metrics, supervision=None):
        self.config = config
        self.store = store
        self.metrics = metrics
        self.supervision = supervision    # gateway.supervision.Supervision: hears of every device event
        self.bus = None                   # gateway.bus.Bus in cluster mode: submit() publishes to it
        self._listeners = []              # callables(StoredEvent), e.g. outboxes
        self._waiting = []                # heap of (priority, arrival, event, future)
        self._arrival = itertools.count()
        self._wakeup = asyncio.Event()
        self._writer = None

    def add_listener(self, fn):
        self._listeners.append(fn)

    def start(self):
        self._writer = asyncio.create_task(self._write_batches(), name="pipeline-writer")

    async def stop(self):
        await cancel_and_wait(self._writer)
        self._writer = None
        # Whatever still waits was never committed: its source must not ACK it.
        while self._waiting:
            future = heapq.heappop(self._waiting)[3]
            if not future.done():
                future.set_exception(RuntimeError("gateway stopping: event not committed"))

    def validate(self, event):
        if not event.account or len(event.account) > 16:
            raise InvalidEvent("account %r is not 1-16 characters" % event.account)
        if not 0 <= event.code <= 999 or not 0 <= event.zone <= 999 or not 0 <= event.partition <= 99:
            raise InvalidEvent("code/zone/partition out of range")
        if event.device_time <= 0:
            raise InvalidEvent("no device time")

    def enrich(self, event):
        device = self.config.devices.get(event.account)
        if device is not None and event.site is None:
            return event.with_site(device.enrichment())
        return event

    async def submit(self, event):
        """Validate, enrich and durably commit one event. Returns the StoredEvent, or
        None when it was a duplicate of one already recorded. Raises InvalidEvent.

        With a bus (cluster mode, gateway/bus.py) "durably" is the replicated
        stream's PubAck: submit returns then, always None (the row id is known only
        where the ingest consumer commits it), and raises BusUnavailable when the
        bus did not take it. Either way, a source may ACK its device once it returns."""
        event = self.accept(event)
        if self.bus is not None:
            await self.bus.publish(event)
            return None
        return await self.commit(event)

    def accept(self, event):
        """What happens on the node that received the event, before it is made durable:
        validation, enrichment, and hearing from the device (supervision)."""
        self.validate(event)
        event = self.enrich(event)
        if self.supervision is not None and event.from_device:
            self.supervision.heard_from(event.account)
        return event

    async def commit(self, event):
        """Into the store with the next group commit (alarms first); returns the
        StoredEvent, or None for a duplicate. The bus's ingest consumer calls this
        for every message, after the receiving node's accept()."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (event.priority, next(self._arrival), event, future))
        self._wakeup.set()
        return await future

    async def _write_batches(self):
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                batch = [heapq.heappop(self._waiting) for _ in range(min(MAX_BATCH, len(self._waiting)))]
                events = [item[2] for item in batch]
                try:
                    ids = await self.store.append(events)
                except Exception as exc:       # the store failed: nobody gets an ACK
                    log.error("store commit failed", extra={"error": repr(exc), "events": len(events)})
                    for item in batch:
                        if not item[3].done():
                            item[3].set_exception(exc)
                    continue
                for (_, _, event, future), row_id in zip(batch, ids):
                    stored = StoredEvent(row_id, event) if row_id is not None else None
                    if stored is None:
                        self.metrics.inc("jifang_events_duplicate_total", source=event.source)
                    else:
                        self.metrics.inc("jifang_events_in_total", source=event.source, event_class=event.event_class)
                        for listener in self._listeners:
                            listener(stored)
                    if not future.done():
                        future.set_result(stored)
