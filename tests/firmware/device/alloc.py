# Device-side: (1) the idle poll loop -- zones, keypads, timers, troubles -- runs
# with the heap locked (micropython.heap_lock: any allocation raises), so it
# allocates nothing; (2) bytes allocated per event (garbage, reclaimed by the next
# collection) for an alarm through the state machine and the persistent queue.
import gc
import sys
import micropython
from core import log
from core.fakeclock import FakeClock
from core.equeue import EventQueue
from core.users import pin_hash
from hal.sim import SimHal
from panel.panel import Panel
from panel.zones import NORMAL, ALARM

log.quiet(True)
PATH = sys.argv[1]
cfg = {"salt": "s", "exit_delay": 0, "test_interval": 3600,
       "zones": [{"n": 2, "type": "instant", "wiring": "deol"}],
       "users": [{"n": 1, "pin": pin_hash("s", "1234")}]}
clock = FakeClock()
hal = SimHal(cfg)
q = EventQueue(PATH, 1024, clock)
n = [0]


def emit(qual, code, part, zone):
    q.push(qual, code, part, zone)
    s = q.next()
    q.read(s)
    q.ack(s)
    n[0] += 1


panel = Panel(cfg, hal, clock, emit)
hal.attach(panel)


def run(ms):
    for _ in range(ms // 10):
        clock.advance(10)
        panel.poll(clock.ticks())


run(200)
hal.keys.setdefault(1, []).extend("1234A")
run(100)
gc.collect()
micropython.heap_lock()
try:
    run(10000)                    # 1,000 idle polls, armed
    print("IDLE_ALLOC_FREE 1")
except MemoryError:
    print("IDLE_ALLOC_FREE 0")
micropython.heap_unlock()
z = panel.zones[0]
gc.collect()
gc.disable()
before = gc.mem_alloc()
n0 = n[0]
hal.raw[2] = z.mv_for(ALARM)
run(60)
hal.raw[2] = z.mv_for(NORMAL)
run(60)
print("EVENT_ALLOC %d %d" % (n[0] - n0, gc.mem_alloc() - before))
gc.enable()
q.close()
