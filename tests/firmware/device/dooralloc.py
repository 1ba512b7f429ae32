# Device-side: the intercom's door alarms allocate nothing. A door contact that opens
# without an access grant (423 door forced open) and closes again (restore 423), 50
# times, through the intercom's poll, debounce and the persistent queue, with gc
# disabled: gc.mem_alloc() must not move. argv: queue-file
import gc
import sys
from core import log
from core.fakeclock import FakeClock
from core.equeue import EventQueue
from hal.sim import SimHal
from intercom.door import Intercom

log.quiet(True)
cfg = {"role": "intercom", "salt": "s", "users": []}
clock = FakeClock()
hal = SimHal(cfg)
q = EventQueue(sys.argv[1], 1024, clock)
n = [0]


def emit(qual, code, part, zone):
    q.push(qual, code, part, zone)
    s = q.next()
    q.read(s)
    q.ack(s)
    n[0] += 1


door = Intercom(cfg, hal, clock, emit)
hal.attach(door)
for b in ("door", "call", "exit"):          # the inputs' keys exist before (a dict insert allocates)
    hal.buttons[b] = 0


def run(ms):
    for _ in range(ms // 10):
        clock.advance(10)
        door.poll(clock.ticks())


def cycle(times):
    for _ in range(times):
        hal.buttons["door"] = 1
        run(100)
        hal.buttons["door"] = 0
        run(100)


run(200)
cycle(2)
before = n0 = 0
gc.collect()
gc.disable()
before = gc.mem_alloc()
n0 = n[0]
cycle(50)
print("DOOR_EVENTS %d allocated %d" % (n[0] - n0, gc.mem_alloc() - before))
gc.enable()
q.close()
