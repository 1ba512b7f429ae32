"""The JetStream bus against a real 3-node NATS cluster (tests/support/nats.py) and
the real SQLite store: publish -> PubAck -> ingest -> store, deduplication across
nodes, kill -9 of a NATS node, alarms during a flood of positions."""
import asyncio
import sqlite3
import statistics
import time

import pytest

from gateway.bus import LANE_ALARMS, LANE_EVENTS, LANE_POSITIONS, BusUnavailable, lane_of, subject_for
from gateway.event import from_contact_id
from protocols import contactid
from tests.gateway.helpers import wait_for
from tests.support.busnode import alarm, bus_nodes, drained, opening, position, settings

pytestmark = pytest.mark.slow


async def keys_in_store(node):
    return [s.event.dedup_key for s in await node.store.events()]


def test_lanes_come_from_the_event_priority():
    assert lane_of(alarm(1)) == LANE_ALARMS                       # burglary 130
    trouble = from_contact_id(contactid.Report("1234", 1, 350, 0, 0), sequence=1, device_time=1, source="supervision")
    assert lane_of(trouble) == LANE_ALARMS                        # communication trouble
    assert lane_of(opening(1)) == LANE_EVENTS
    assert lane_of(position(1)) == LANE_POSITIONS
    assert subject_for(alarm(1)) == "jifang.alarms.alarm.1234"
    odd = alarm(1, account="12.*>")                               # never a wildcard or a new token
    assert subject_for(odd).count(".") == 3 and "*" not in subject_for(odd) and ">" not in subject_for(odd)


async def test_publish_is_stored_once_and_a_retry_on_another_node_is_deduplicated(tmp_path, nats_cluster):
    s = settings(nats_cluster.urls)
    db = tmp_path / "shared.db"          # both nodes write one store (step 1's shared PostgreSQL)
    async with bus_nodes([("a", db, s, True), ("b", db, s, True)]) as (a, b):
        events = [alarm(1), opening(2), position(3)]
        for event in events:
            assert await a.pipeline.submit(event) is None          # returns at the PubAck
        # The panel did not get node A's ACK and retries on its backup receiver, node B,
        # after its ACK timeout (seconds): by then A's second alarm copy, which goes on
        # after the first PubAck, is on its stream too. Without this wait B's copy
        # could land on that stream first and be the one not marked duplicate.
        await wait_for(lambda: not a.bus._background, what="node A's second alarm copy published")
        acks = [await b.bus.publish(event) for event in events]
        assert all(ack.duplicate for ack in acks)
        await wait_for(lambda: drained(a), what="bus drained")
        keys = await keys_in_store(a)
        assert sorted(keys) == sorted(e.dedup_key for e in events)


async def test_a_copy_past_the_duplicate_window_is_still_stored_once(tmp_path, nats_cluster):
    # The stream forgets a message id after its duplicate window; the store's dedup
    # key still records the event once.
    s = settings(nats_cluster.urls, duplicate_window=1.0)
    async with bus_nodes([("a", tmp_path / "s.db", s, True)]) as (a,):
        event = opening(7)
        first = await a.bus.publish(event)
        await asyncio.sleep(1.5)                                   # past the window
        second = await a.bus.publish(event)
        assert not first.duplicate and not second.duplicate       # the stream took it twice
        await wait_for(lambda: drained(a), what="bus drained")
        assert await keys_in_store(a) == [event.dedup_key]
        assert a.metrics.value("jifang_bus_ingest_duplicate_total", lane=LANE_EVENTS) == 1


async def test_a_redelivery_while_the_store_is_slow_is_stored_once(tmp_path, nats_cluster):
    # The store is held (another writer keeps SQLite's write lock) longer than the
    # consumer's ack_wait: JetStream delivers the message again while its first
    # commit is still waiting. Both commits go through once the lock is released;
    # the store's dedup key keeps one row.
    db = tmp_path / "s.db"
    s = settings(nats_cluster.urls, ack_wait=0.2)
    async with bus_nodes([("a", db, s, True)]) as (a,):
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            event = opening(5)
            await a.pipeline.submit(event)
            await wait_for(lambda: a.metrics.value("jifang_bus_redelivered_total", lane=LANE_EVENTS) >= 1,
                           what="a redelivery")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await wait_for(lambda: drained(a), what="bus drained")
        assert await keys_in_store(a) == [event.dedup_key]
        assert a.metrics.value("jifang_bus_ingest_duplicate_total", lane=LANE_EVENTS) >= 1


async def test_a_full_stream_refuses_rather_than_drops(tmp_path, nats_cluster):
    # No ingest running (the store is away): the positions stream fills to
    # max_stream_messages, then publishes fail and the device gets no ACK. What was
    # acknowledged is all stored once ingest comes back (on nats-server 2.9 a
    # max_bytes limit would have deleted acknowledged messages here, see bus.py).
    s = settings(nats_cluster.urls, max_stream_messages=50, publish_timeout=0.3)
    async with bus_nodes([("a", tmp_path / "s.db", s, False)]) as (a,):
        accepted = []
        with pytest.raises(BusUnavailable):
            for seq in range(1000):
                event = position(seq)
                await a.pipeline.submit(event)
                accepted.append(event.dedup_key)
        assert len(accepted) == 50
        urgent = alarm(1)
        assert await a.pipeline.submit(urgent) is None              # the alarm lane is not full
        await a.start_ingest()
        await wait_for(lambda: drained(a), what="bus drained")
        keys = await keys_in_store(a)
        assert sorted(keys) == sorted(accepted + [urgent.dedup_key])


async def test_kill_9_of_a_nats_node_loses_no_alarm(tmp_path, nats_cluster):
    """A stream of alarms, the NATS node leading the first alarm stream killed with
    SIGKILL a third of the way through and restarted at two thirds. Each "panel"
    retries until it gets its ACK, as panels do. Every alarm is stored once, and the
    worst publish->stored delay stays under the 2 s the issue allows."""
    s = settings(nats_cluster.urls)
    count = 90
    async with bus_nodes([("a", tmp_path / "s.db", s, True)]) as (a,):
        assert await a.ingest.keep_leaders_apart()
        leader = (await a.ingest.leaders("JIFANG_ALARMS"))[0]
        victim = [n.name for n in nats_cluster.nodes].index(leader)
        delays, sent = {}, []

        async def panel(seq):
            event = alarm(seq)
            sent.append(event.dedup_key)
            started = time.monotonic()
            while True:
                try:
                    await a.pipeline.submit(event)
                    break
                except BusUnavailable:
                    continue
            await wait_for(lambda: event.dedup_key in a.stored_at, what="alarm %d stored" % seq)
            delays[seq] = a.stored_at[event.dedup_key] - started

        panels = []
        restart = None
        for seq in range(count):
            if seq == count // 3:
                nats_cluster.kill(victim)
            if seq == 2 * count // 3:
                restart = asyncio.create_task(asyncio.to_thread(nats_cluster.restart, victim))
            panels.append(asyncio.create_task(panel(seq)))
            await asyncio.sleep(0.03)
        await asyncio.gather(*panels)
        await restart
        await wait_for(lambda: drained(a), timeout=30, what="bus drained")
        keys = await keys_in_store(a)
        assert sorted(keys) == sorted(sent) and len(sent) == count
        worst = max(delays.values())
        print("\nkill -9 of NATS node %s (leader of JIFANG_ALARMS): %d alarms, max publish->stored delay %.3f s,"
              " p50 %.3f s" % (leader, count, worst, statistics.median(delays.values())))
        assert worst < 2.0


async def test_a_flood_of_positions_does_not_delay_alarms(tmp_path, nats_cluster):
    """10,000 positions wait on the bus (ingest not yet running) and more keep coming;
    then ingest starts and alarms are published. Each alarm is stored while the
    position backlog is still being worked off: the alarm lane never waits for it."""
    s = settings(nats_cluster.urls)
    backlog = 10_000
    async with bus_nodes([("a", tmp_path / "s.db", s, False)]) as (a,):
        for start in range(0, backlog, 500):          # 500 publishes in flight, each bounded by publish_timeout
            await asyncio.gather(*(a.bus.publish(position(seq)) for seq in range(start, start + 500)))

        flooding = True

        async def keep_flooding():
            # A flag, not only cancel(): nats-py swallows the cancel of a publish that
            # waits for its flusher, and the loop would go on.
            seq = backlog
            while flooding:
                await a.pipeline.submit(position(seq))
                seq += 1

        flood = asyncio.create_task(keep_flooding())
        await a.start_ingest()
        latencies, positions_stored_at = [], []
        try:
            for seq in range(20):
                event = alarm(seq)
                started = time.monotonic()
                await a.pipeline.submit(event)
                await wait_for(lambda: event.dedup_key in a.stored_at, interval=0.002, what="alarm stored")
                latencies.append(a.stored_at[event.dedup_key] - started)
                positions_stored_at.append(a.metrics.value("jifang_bus_ingested_total", lane=LANE_POSITIONS))
                await asyncio.sleep(0.02)
        finally:
            flooding = False
            flood.cancel()
            await asyncio.gather(flood, return_exceptions=True)
        latencies.sort()
        print("\nalarm publish->stored during a flood of positions: p50 %.1f ms, max %.1f ms (%d positions"
              " stored by the first alarm, %d by the last, of a backlog of %d)" % (
                  statistics.median(latencies) * 1000, latencies[-1] * 1000,
                  positions_stored_at[0], positions_stored_at[-1], backlog))
        # The first alarm, published when the whole backlog waited, did not wait for
        # it. (How far the later ones get depends on how fast this machine stores.)
        assert positions_stored_at[0] < backlog
