"""Supervision: a device that stays silent past its reporting interval raises a
communication trouble (Contact ID 350, new), and its next message a restore
(350, restore). Both go through the pipeline like any event, so they are stored
and forwarded as troubles.

Interval: from the device registry (`reporting_interval_seconds`); a device with
none configured is supervised once it has sent two link tests, at
`learned_interval_factor` times the gap between them (3 by default, so one lost
link test is not a trouble).

Any message restarts the timer (DC-09 says so), not only link tests. After a
restart the gateway gives every device one full interval, and remembers from the
store which devices were already in trouble, so it neither raises a second trouble
nor forgets the restore.

Cluster mode (docs/cluster.md): a panel may report to any node, and may move
from one to another (its backup receiver). Every node records when it heard each
account and flushes that to the store's shared last-heard table every
`heard_flush` seconds (wall-clock ms; the newest of all nodes wins). Only the node
holding the "supervision" lease watches: before each check it merges the shared
table into its own, so a panel now reporting to another node is not silent, and
a device in trouble that reports anywhere gets its restore from the watcher.
"""
import asyncio
import logging
import time

from protocols import contactid
from gateway.event import from_contact_id, now_ms
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.supervision")


class Supervision:
    def __init__(self, config, clock=time.monotonic):
        self.config = config
        self.submit = None           # async fn(event): the pipeline's, given at start
        self.clock = clock
        self.last_heard = {}         # account -> monotonic time
        self.intervals = {}          # account -> seconds
        self.last_link_test = {}     # account -> monotonic time of the previous link test
        self.in_trouble = set()
        self.trouble_since = {}      # account -> monotonic time its trouble was raised
        self._task = None
        self._pending = set()
        self._store = None           # cluster mode: the shared store
        self._unflushed = {}         # account -> (wall-clock ms, learned interval or None), since the last flush
        self._flusher = None
        self.watching = True         # cluster mode: only while this node holds the lease

    async def start(self, store, submit):
        """One node: watch every device; `submit` records its troubles and restores."""
        self.submit = submit
        now = self.clock()
        for account, device in self.config.devices.items():
            if account != "*" and device.reporting_interval:
                self.intervals[account] = device.reporting_interval
                self.last_heard[account] = now
        self.in_trouble = await store.open_communication_troubles()
        self._task = asyncio.create_task(self._watch(), name="supervision")

    async def stop(self):
        await cancel_and_wait(self._task, self._flusher, *self._pending)
        self._task = self._flusher = None
        if self._store is not None:
            await self._flush()      # what this node heard last, for the next watcher

    # -- cluster mode --------------------------------------------------------------

    async def start_shared(self, store, submit, heard_flush):
        """Every node: record what it hears in the shared table; watch only under the lease."""
        self.submit = submit
        now = self.clock()
        for account, device in self.config.devices.items():
            if account != "*" and device.reporting_interval:
                self.intervals[account] = device.reporting_interval
                self.last_heard[account] = now
        self._store = store
        self.watching = False
        self._flusher = asyncio.create_task(self._flush_periodically(heard_flush), name="supervision-flush")

    async def take_over(self):
        """This node got the supervision lease: learn what the others heard and who is
        in trouble already, then watch."""
        since = await self._store.communication_troubles_since()
        mono, wall = self.clock(), now_ms()
        self.in_trouble = set(since)
        self.trouble_since = {account: mono - max(0, wall - ms) / 1000 for account, ms in since.items()}
        await self._merge_shared()
        self.watching = True
        self._task = asyncio.create_task(self._watch(), name="supervision")

    async def hand_over(self):
        self.watching = False
        await cancel_and_wait(self._task)
        self._task = None
        self.in_trouble = set()

    async def _flush(self):
        heard, self._unflushed = self._unflushed, {}
        try:
            await self._store.record_heard(heard)
        except Exception as exc:
            for account, value in heard.items():      # keep them for the next flush
                self._unflushed.setdefault(account, value)
            log.warning("could not share last-heard", extra={"accounts": len(heard), "error": repr(exc)})

    async def _flush_periodically(self, interval):
        while True:
            await asyncio.sleep(interval)
            await self._flush()

    async def _merge_shared(self):
        """Fold the other nodes' last-heard into ours (their wall-clock times become
        our monotonic ones) and restore the accounts in trouble heard since."""
        shared = await self._store.shared_heard()
        mono, wall = self.clock(), now_ms()
        for account, (heard_ms, interval) in shared.items():
            heard = mono - max(0, wall - heard_ms) / 1000
            if heard > self.last_heard.get(account, float("-inf")):
                self.last_heard[account] = heard
            device = self.config.devices.get(account)
            if interval and not (device and device.reporting_interval):
                self.intervals[account] = interval
        for account in list(self.in_trouble):
            if self.last_heard.get(account, float("-inf")) > self.trouble_since.get(account, mono):
                self.in_trouble.discard(account)
                self._raise(account, contactid.QUALIFIER_RESTORE)

    def heard_from(self, account, link_test=False):
        now = self.clock()
        if link_test:
            previous = self.last_link_test.get(account)
            self.last_link_test[account] = now
            device = self.config.devices.get(account)
            if previous is not None and not (device and device.reporting_interval):
                self.intervals[account] = max(1.0, (now - previous) * self.config.learned_interval_factor)
        self.last_heard[account] = now
        if self._store is not None:
            self._unflushed[account] = (now_ms(), self.intervals.get(account) if link_test else None)
        if account in self.in_trouble:
            self.in_trouble.discard(account)
            self._raise(account, contactid.QUALIFIER_RESTORE)

    def _raise(self, account, qualifier):
        report = contactid.Report(account, qualifier, 350, 0, 0)
        now = now_ms()
        # Made once, here, so dedup only has to keep a trouble and its restore in the
        # same second apart: the milliseconds serve as the sequence.
        event = from_contact_id(report, sequence=now % 10000, device_time=now // 1000, source="supervision",
                                received_at_ms=now)
        log.warning("communication %s" % ("trouble" if qualifier == 1 else "restored"),
                    extra={"account": account, "interval_s": self.intervals.get(account)})
        task = asyncio.create_task(self._submit(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _submit(self, event):
        try:
            await self.submit(event)
        except Exception as exc:
            log.error("could not record supervision event", extra={"account": event.account, "error": repr(exc)})

    def check(self):
        now = self.clock()
        for account, interval in self.intervals.items():
            if account not in self.in_trouble and now - self.last_heard.get(account, now) > interval:
                self.in_trouble.add(account)
                self.trouble_since[account] = now
                self._raise(account, contactid.QUALIFIER_NEW)

    async def _watch(self):
        while True:
            await asyncio.sleep(min([1.0] + [i / 4 for i in self.intervals.values()]))
            if self._store is not None:
                try:
                    await self._merge_shared()
                except Exception as exc:
                    # Without the others' last-heard a check could raise false troubles.
                    log.warning("shared last-heard unreadable; check skipped", extra={"error": repr(exc)})
                    continue
            self.check()
