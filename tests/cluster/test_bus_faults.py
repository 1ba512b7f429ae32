"""The bus's own limits against a real NATS cluster in trouble: a node that stops
reading (SIGSTOP: the process is there, the socket is open, nothing moves) must not
hang a gateway's shutdown, and a node that starts while JetStream has no quorum
waits for the election instead of failing its start."""
import asyncio
import os
import signal
import time

import pytest

from gateway.bus import CLOSE_TIMEOUT, FLUSH_TIMEOUT, Bus, BusSettings, active_streams

pytestmark = pytest.mark.slow


async def test_closing_a_connection_to_a_frozen_cluster_is_bounded(nats_cluster):
    bus = Bus(BusSettings(servers=nats_cluster.urls), name="frozen")
    await bus.connect()
    pids = [n.pid for n in nats_cluster.nodes]
    for pid in pids:                      # every node, so the client has nowhere to reconnect to
        os.kill(pid, signal.SIGSTOP)
    try:
        # Fill the kernel's socket buffers and the client's own: the server reads nothing,
        # so a publish soon waits for room that never comes or finds nats-py's outbound
        # buffer full (the product's publishes are bounded by publish_timeout).
        payload = b"x" * 512 * 1024

        stop = asyncio.Event()

        async def fill():
            while not stop.is_set():      # a flag: nats-py swallows the cancel of a blocked publish
                await bus.bulk.publish("jifang.test.fill", payload)

        filling = asyncio.create_task(fill())
        await asyncio.wait([filling], timeout=1.0)
        stop.set()
        async with asyncio.timeout(FLUSH_TIMEOUT + 2):   # a blocked publish ends by itself
            await asyncio.gather(filling, return_exceptions=True)
        started = time.monotonic()
        # Without the bound, nats-py's close() waits on drain() for as long as the node is frozen.
        async with asyncio.timeout(CLOSE_TIMEOUT * len(set(map(id, bus.connections.values()))) + 5):
            await bus.close()
        took = time.monotonic() - started
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert bus.connections == {}
    assert took < CLOSE_TIMEOUT * 3 + 2


async def test_a_node_starting_without_a_jetstream_quorum_waits_for_it(nats_cluster):
    survivor, *others = nats_cluster.nodes
    for index in (1, 2):
        nats_cluster.kill(index)
    bus = Bus(BusSettings(servers=[survivor.url]), name="early")
    await bus.connect()
    try:
        creating = asyncio.create_task(bus.ensure_streams())
        await asyncio.sleep(7)               # past a JetStream API request's own 5 s timeout
        assert not creating.done(), "streams created without a quorum: %r" % (creating.result(),)
        others[0].start()                 # two of three: a quorum again
        await asyncio.wait_for(creating, 40)
        names = [info.config.name for info in await bus.bulk.jsm().streams_info()]
        assert set(names) >= {name for _, name, _ in active_streams(bus.settings)}
    finally:
        await bus.close()

