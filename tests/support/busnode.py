"""A gateway node's bus half, for tests and bench/bus.py: the real Store, Pipeline,
Bus and Ingest of gateway/, without the receivers (the caller plays the receiver
and calls `node.pipeline.submit(event)`, exactly as a source does).

Several nodes may share one SQLite file: SQLite serialises their transactions, which
is enough to stand in for step 1's shared PostgreSQL here.
"""
import asyncio
import contextlib
import time

import nats.errors

from gateway import config as config_module
from gateway.bus import Bus, BusSettings, Ingest, active_streams
from gateway.event import from_contact_id, now_ms
from gateway.metrics import Metrics
from gateway.pipeline import Pipeline
from gateway.store import Store
from gateway.vehicles.codes import SOURCE_JT808, make_event
from protocols import contactid


class BusNode:
    def __init__(self, name, store_path, settings, ingest=True):
        self.name = name
        self.config = config_module.from_dict({"gateway": {"name": name}, "store": {"path": str(store_path)}})
        self.metrics = Metrics()
        self.store = Store(store_path)
        self.pipeline = Pipeline(self.config, self.store, self.metrics)
        self.bus = Bus(settings, self.metrics, name)
        self.ingest = Ingest(self.bus, self.pipeline) if ingest else None
        self.stored_at = {}               # dedup key -> time.monotonic() of its store commit, on this node
        self.pipeline.add_listener(self._stored)

    def _stored(self, stored):
        self.stored_at[stored.event.dedup_key] = time.monotonic()

    async def start(self):
        await self.store.open()
        self.pipeline.start()
        await self.bus.connect()
        await self.bus.ensure_streams()
        self.pipeline.bus = self.bus
        if self.ingest is not None:
            await self.ingest.start()

    async def start_ingest(self):
        self.ingest = Ingest(self.bus, self.pipeline)
        await self.ingest.start()

    async def stop(self):
        if self.ingest is not None:
            await self.ingest.stop()
        await self.bus.close()
        await self.pipeline.stop()
        await self.store.close()


@contextlib.asynccontextmanager
async def bus_nodes(specs):
    """specs: [(name, store_path, BusSettings, ingest?)]; yields the started nodes."""
    nodes = [BusNode(*spec) for spec in specs]
    started = []
    try:
        for node in nodes:
            await node.start()
            started.append(node)
        yield nodes
    finally:
        for node in reversed(started):
            await node.stop()


def settings(urls, **kw):
    return BusSettings(servers=list(urls), **kw)


def alarm(seq, account="1234", code=130, zone=15):
    """A burglary alarm as the DC-09 receiver makes it (life-safety lane)."""
    return from_contact_id(contactid.Report(account, 1, code, 1, zone), sequence=seq,
                           device_time=now_ms() // 1000, source="dc09/tcp")


def position(seq, account="13800000001"):
    """A JT/T 808 position as the fleet center makes it (positions lane)."""
    return make_event(account, 0, sequence=seq, device_time=now_ms() // 1000, source=SOURCE_JT808,
                      position=(39.9 + seq * 1e-6, 116.4))


def opening(seq, account="1234"):
    """A closing report (routine events lane)."""
    return from_contact_id(contactid.Report(account, 3, 401, 1, 2), sequence=seq,
                           device_time=now_ms() // 1000, source="dc09/tcp")


async def drained(node):
    """Every stream empty and nothing delivered-but-unacked: each message published so
    far has been committed and acked, so the store's content is final."""
    jsm = node.bus.bulk.jsm()
    for _, name, _ in active_streams(node.bus.settings):
        try:
            info = await jsm.stream_info(name)
            consumer = await jsm.consumer_info(name, "ingest")
        except (nats.errors.Error, asyncio.TimeoutError):   # a leader election (kill, step-down) under way
            return False
        if info.state.messages or consumer.num_ack_pending or consumer.num_pending:
            return False
    return True
