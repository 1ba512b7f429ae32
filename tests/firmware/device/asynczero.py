# Device-side proof that the app allocates nothing per event in steady state, on the
# real asyncio path: the reporter runs as it does on a panel (Reporter.run() as an
# asyncio task, its idle wait woken by notify(), the link a non-blocking socket
# polled for the ACK, NULL link tests when idle), beside a poll task that trips and
# restores a zone (deol tamper, Contact ID 144) through the panel's state machine
# into the persistent queue. The receiver is real (the pytest side, CPython, the
# shared codec): it decodes every frame and answers each with an encrypted ACK.
#   warm-up (connect, first events, first NULL), then
#   phase 1: N1 events with gc disabled: gc.mem_alloc() must not move (a heap_lock
#            would hide allocations MicroPython makes "if it can", tracebacks);
#   phase 2: N2 events with micropython.heap_lock(): any allocation raises.
# The panel's clock is a FakeClock (debounce in simulated time, so the run takes
# seconds); the reporter's timeouts and polls run on real ticks, as on a board.
# argv: N1 N2 queue-file host port
import gc
import sys
import asyncio
import micropython
from core import log
from core.fakeclock import FakeClock
from core.config import merge
from core.equeue import EventQueue
from hal.sim import SimHal
from panel.panel import Panel
from panel.zones import NORMAL, TAMPER
from core.reporter import Reporter

log.quiet(True)
N1 = int(sys.argv[1])
N2 = int(sys.argv[2])
PATH = sys.argv[3]
HOST = sys.argv[4]
PORT = int(sys.argv[5])
try:
    import os
    os.remove(PATH)
except OSError:
    pass

cfg = merge({"exit_delay": 0, "entry_delay": 0, "test_interval": 0,
             "partitions": [1], "keypads": [{"partition": 1}],
             "zones": [{"n": 2, "type": "instant", "partition": 1, "wiring": "deol"}],
             "reporter": {"receivers": [{"host": HOST, "port": PORT}],
                          "key_text": "0123456789ABCDEF",
                          "supervision": 0.05, "ack_poll_ms": 1}})
clock = FakeClock()
hal = SimHal(cfg)
q = EventQueue(PATH, 1024, clock)
rep = Reporter(cfg, hal, clock, q)
assert rep.fb is not None
events = [0]


def emit(qual, code, part, zone):        # App.emit, quiet
    q.push(qual, code, part, zone)
    events[0] += 1
    rep.notify()


panel = Panel(cfg, hal, clock, emit)
hal.attach(panel)
z = panel.zones[0]
TAMPER_MV = z.mv_for(TAMPER)
NORMAL_MV = z.mv_for(NORMAL)


async def drive(target):
    """The App's poll task: polls on the panel's clock, the zone flips every 60 ms of
    it; the next flip waits until the reporter has delivered (queue empty), and
    every 200 events the panel stays quiet for 70 ms of real time, so the reporter's
    idle wait runs out and it sends a NULL link test."""
    while events[0] < target:
        hal.raw[2] = TAMPER_MV if hal.raw[2] == NORMAL_MV else NORMAL_MV
        for _ in range(6):
            clock.advance(10)
            panel.poll(clock.ticks())
        while q.pending:
            await asyncio.sleep_ms(0)
        if events[0] % 200 == 0:
            await asyncio.sleep_ms(70)


async def main():
    task = asyncio.create_task(rep.run())
    hal.raw[2] = NORMAL_MV
    for _ in range(10):
        clock.advance(10)
        panel.poll(clock.ticks())
    await drive(200)                              # warm-up: connect, events, a NULL
    assert rep.nulls > 0, "no NULL in the warm-up"
    # counters read into locals one by one (a 4-tuple assignment would itself
    # allocate), the coroutine made before the baseline
    e0 = events[0]
    d0 = rep.sent
    n0 = rep.nulls
    run = drive(e0 + N1)
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    await run
    a1 = gc.mem_alloc()
    gc.enable()
    print("UNLOCKED_EVENTS %d delivered %d nulls %d allocated %d" % (
        events[0] - e0, rep.sent - d0, rep.nulls - n0, a1 - a0))
    e0 = events[0]
    d0 = rep.sent
    n0 = rep.nulls
    run = drive(e0 + N2)
    err = None
    gc.collect()
    free = gc.mem_free()
    micropython.heap_lock()
    try:
        await run
    except Exception as e:
        err = e
    micropython.heap_unlock()
    free2 = gc.mem_free()
    if err is not None:
        print("ALLOCATED after", events[0] - e0, "locked events:", repr(err))
        sys.print_exception(err)
        sys.exit(1)
    print("LOCKED_EVENTS %d delivered %d nulls %d mem_free %d %d" % (
        events[0] - e0, rep.sent - d0, rep.nulls - n0, free, free2))
    task.cancel()


asyncio.run(main())
q.close()
