"""Following the shared log (cluster mode): whatever any node commits reaches this
node's forwarders (when it holds their lease) and its console.

On one node the pipeline hands each committed event to its listeners. With
several nodes an event committed on node A must reach the forwarder running on
node B, so in cluster mode those consumers read the log instead: from a position,
in id order, in batches. Ids are issued in commit order under the chain head's
lock (gateway/pgstore.py), so a reader that has read up to id N has missed nothing
below N: following by id is complete.

Every append NOTIFYs at commit; one LISTEN connection per node wakes the
followers at once. The notification is only a hint: they also read every
`follow_poll` seconds, so a lost notification (the LISTEN connection was down)
delays an event by at most that.
"""
import asyncio
import logging

from gateway.pgstore import CHANNEL
from gateway.tasks import cancel_and_wait

log = logging.getLogger("jifang.follow")

FOLLOW_BATCH = 500


class LogNotifier:
    def __init__(self, url, poll):
        self.url, self.poll = url, poll
        self.generation = 0
        self._cond = asyncio.Condition()
        self._task = None

    def start(self):
        self._task = asyncio.create_task(self._listen(), name="log-notifier")

    async def stop(self):
        await cancel_and_wait(self._task)

    async def _bump(self):
        async with self._cond:
            self.generation += 1
            self._cond.notify_all()

    async def wait(self, seen, timeout):
        """Return once a notification newer than generation `seen` came, or after timeout."""
        async with self._cond:
            if self.generation == seen:
                try:
                    await asyncio.wait_for(self._cond.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
            return self.generation

    async def _listen(self):
        import psycopg
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, application_name="jifang-follow")
                try:
                    await conn.execute("LISTEN %s" % CHANNEL)
                    await self._bump()            # whatever was committed while we were not listening
                    async for _ in conn.notifies():
                        await self._bump()
                finally:
                    await conn.close()
            except (psycopg.Error, OSError) as exc:
                log.warning("log notifications lost; polling meanwhile", extra={"error": repr(exc)})
            await asyncio.sleep(self.poll)


async def follow(store, after, callback, notifier, poll, name="follower"):
    """Call callback(StoredEvent) for every event with id > `after`, in id order,
    forever. A store error is logged and retried: nothing is skipped."""
    position = after
    generation = notifier.generation
    while True:
        try:
            batch = await store.events(after=position, limit=FOLLOW_BATCH)
        except Exception as exc:
            log.warning("cannot read the log; retrying", extra={"follower": name, "after": position, "error": repr(exc)})
            await asyncio.sleep(poll)
            continue
        for stored in batch:
            callback(stored)
            position = stored.id
        if len(batch) < FOLLOW_BATCH:
            generation = await notifier.wait(generation, poll)
