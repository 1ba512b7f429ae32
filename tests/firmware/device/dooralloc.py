# Device-side: the intercom's door alarms allocate nothing. A door contact that opens
# without an access grant (423 door forced open) and closes again (restore 423), 50
# times, through the intercom's poll, debounce and the persistent queue, with gc
# disabled: gc.mem_alloc() must not move. argv: queue-file
import gc
import sys
from core import log
from core.fakeclock import FakeClock
from rig import DeliveredAtOnce
from hal.sim import SimHal
from intercom.door import Intercom

log.quiet(True)
cfg = {"role": "intercom", "salt": "s", "users": []}
clock = FakeClock()
hal = SimHal(cfg)
events = DeliveredAtOnce(sys.argv[1], clock)
q = events.q
emit = events.emit


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
n0 = events.n
cycle(50)
print("DOOR_EVENTS %d allocated %d" % (events.n - n0, gc.mem_alloc() - before))
gc.enable()
q.close()
