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
"""
import asyncio
import logging
import time

from protocols import contactid
from gateway.event import from_contact_id, now_ms
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.supervision")


class Supervision:
    def __init__(self, config, pipeline, clock=time.monotonic):
        self.config = config
        self.pipeline = pipeline
        self.clock = clock
        self.last_heard = {}         # account -> monotonic time
        self.intervals = {}          # account -> seconds
        self.last_link_test = {}     # account -> monotonic time of the previous link test
        self.in_trouble = set()
        self._task = None
        self._pending = set()

    async def start(self, store):
        now = self.clock()
        for account, device in self.config.devices.items():
            if account != "*" and device.reporting_interval:
                self.intervals[account] = device.reporting_interval
                self.last_heard[account] = now
        self.in_trouble = await store.open_communication_troubles()
        self._task = asyncio.create_task(self._watch(), name="supervision")

    async def stop(self):
        await cancel_and_wait(self._task, *self._pending)

    def heard_from(self, account, link_test=False):
        now = self.clock()
        if link_test:
            previous = self.last_link_test.get(account)
            self.last_link_test[account] = now
            device = self.config.devices.get(account)
            if previous is not None and not (device and device.reporting_interval):
                self.intervals[account] = max(1.0, (now - previous) * self.config.learned_interval_factor)
        self.last_heard[account] = now
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
            await self.pipeline.submit(event)
        except Exception as exc:
            log.error("could not record supervision event", extra={"account": event.account, "error": repr(exc)})

    def check(self):
        now = self.clock()
        for account, interval in self.intervals.items():
            if account not in self.in_trouble and now - self.last_heard.get(account, now) > interval:
                self.in_trouble.add(account)
                self._raise(account, contactid.QUALIFIER_NEW)

    async def _watch(self):
        while True:
            await asyncio.sleep(min([1.0] + [i / 4 for i in self.intervals.values()]))
            self.check()
