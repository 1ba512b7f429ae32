# Device-side: (1) the idle poll loop -- zones, keypads, timers, troubles -- runs
# with the heap locked (micropython.heap_lock: any allocation raises), so it
# allocates nothing; (2) bytes allocated (gc disabled) by an armed alarm: zone ->
# state machine -> triggered, saved to the state file -> persistent queue; and by
# the keypad codes that arm and disarm (PIN hashing: a user's action, not an event).
# argv: queue-file state-file
import gc
import sys
import micropython
from core import log
from core.fakeclock import FakeClock
from rig import DeliveredAtOnce
from core.users import pin_hash
from hal.sim import SimHal
from panel.panel import Panel
from panel.zones import NORMAL, ALARM

log.quiet(True)
PATH = sys.argv[1]
STATE = sys.argv[2]
cfg = {"salt": "s", "exit_delay": 0, "test_interval": 3600,
       "zones": [{"n": 2, "type": "instant", "wiring": "deol"}],
       "users": [{"n": 1, "pin": pin_hash("s", "1234")}]}
clock = FakeClock()
hal = SimHal(cfg)
events = DeliveredAtOnce(PATH, clock)
q = events.q
emit = events.emit


panel = Panel(cfg, hal, clock, emit, STATE)
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
ALARM_MV = z.mv_for(ALARM)             # computed before measuring: floats are heap objects
NORMAL_MV = z.mv_for(NORMAL)
kq = hal.keys[1]
hal.raw[2] = NORMAL_MV                 # the input's key exists before (a dict insert allocates)
run(100)
saves = panel.saves
before = n0 = alarm = 0                # module globals made before measuring (a new one grows the dict)
gc.collect()
gc.disable()
before = gc.mem_alloc()
n0 = events.n
hal.raw[2] = ALARM_MV
run(60)
hal.raw[2] = NORMAL_MV
run(60)
alarm = gc.mem_alloc() - before
assert panel.parts[1].state == "triggered" and panel.saves > saves
print("EVENT_ALLOC %d %d" % (events.n - n0, alarm))
before = gc.mem_alloc()
kq.extend("1234#")                     # disarm and reset: PIN check, restores, save
run(100)
assert panel.parts[1].state == "disarmed"
print("CODE_ALLOC disarm %d" % (gc.mem_alloc() - before))
gc.enable()
q.close()
