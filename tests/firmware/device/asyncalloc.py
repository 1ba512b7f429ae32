# Device-side measurement (not a proof): bytes the asyncio reporter path allocates
# per event, with gc disabled, by step. argv: queue-file host port
import gc
import sys
import asyncio
from core import log
from core.fakeclock import FakeClock
from core.config import merge
from core.equeue import EventQueue
from hal.sim import SimHal
from core.reporter import Reporter

log.quiet(True)
PATH, HOST, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = merge({"reporter": {"receivers": [{"host": HOST, "port": PORT}],
                          "key_text": "0123456789ABCDEF"}})
clock = FakeClock()
hal = SimHal(cfg)
q = EventQueue(PATH, 1024, clock)
rep = Reporter(cfg, hal, clock, q)
N = 20
tot = {}


def add(k, v):
    tot[k] = tot.get(k, 0) + v


async def one():
    q.push(1, 144, 1, 2)
    slot = q.next()
    a = gc.mem_alloc()
    q.read(slot)
    seq = q.fields[0]
    frame = rep.frame(q.fields)
    b = gc.mem_alloc()
    add("queue read + frame build (Link.build)", b - a)
    rep.writer.write(frame)
    c = gc.mem_alloc()
    add("StreamWriter.write(memoryview)", c - b)
    await rep.writer.drain()
    d = gc.mem_alloc()
    add("await StreamWriter.drain()", d - c)
    data = await asyncio.wait_for_ms(rep.reader.read(512), 5000)
    e = gc.mem_alloc()
    add("await wait_for_ms(StreamReader.read(512))", e - d)
    fr = rep._frames(data)
    f = gc.mem_alloc()
    add("Reporter._frames (bytes of the ACK, list)", f - e)
    ok = rep.fb.is_ack(fr[0], len(fr[0]), (seq - 1) % 9999 + 1)
    rep.delivered(slot, seq, 144)
    g = gc.mem_alloc()
    add("Link.is_ack + delivered (queue ack)", g - f)
    assert ok


async def main():
    await rep._link()
    for _ in range(5):
        await one()
    tot.clear()
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for _ in range(N):
        await one()
    total = gc.mem_alloc() - a0
    gc.enable()
    for k in tot:
        print("STEP %d %s" % (tot[k] // N, k))
    print("TOTAL %d" % (total // N))

asyncio.run(main())
