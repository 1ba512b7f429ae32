# Device-side soak (runs on the MicroPython unix port from the .mpy build, heap
# capped): drives the whole panel pipeline -- zone polling, the state machine, the
# persistent queue, DC-09 frame building and AES encryption, ack -- for N events
# on a fake clock, and prints gc.mem_free() after a collection every 1,000 events.
import gc
import sys
import micropython
from core import log
from core.fakeclock import FakeClock
from core.config import merge
from core.equeue import EventQueue
from core.users import pin_hash
from hal.sim import SimHal
from panel.panel import Panel
from panel.zones import NORMAL, ALARM
from core.reporter import Reporter
from protocols import dc09

log.quiet(True)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
PATH = sys.argv[2] if len(sys.argv) > 2 else "/tmp/jf_soak.q"
try:
    import os
    os.remove(PATH)
except OSError:
    pass

cfg = merge({"salt": "s", "exit_delay": 0, "entry_delay": 0, "test_interval": 0,
             "partitions": [1], "keypads": [{"partition": 1}],
             "zones": [{"n": 2, "type": "instant", "partition": 1, "wiring": "deol"}],
             "users": [{"n": 1, "pin": pin_hash("s", "1234")}],
             "reporter": {"receivers": [{"host": "127.0.0.1", "port": 1}], "key_text": "0123456789ABCDEF"}})
clock = FakeClock()
hal = SimHal(cfg)
q = EventQueue(PATH, 1024, clock)
rep = Reporter(cfg, hal, clock, q)
key = rep.key
sent = [0]


def emit(qual, code, part, zone):
    q.push(qual, code, part, zone)
    slot = q.next()
    q.read(slot)
    frame = rep.frame(q.fields)          # the reporter's own path: built in place
    assert frame is not None
    q.ack(slot, q.fields[0])
    sent[0] += 1


panel = Panel(cfg, hal, clock, emit)
hal.attach(panel)
z = panel.zones[0]
ALARM_MV = z.mv_for(ALARM)
NORMAL_MV = z.mv_for(NORMAL)
kq = hal.keys.setdefault(1, [])


def run(ms):
    for _ in range(ms // 10):
        clock.advance(10)
        panel.poll(clock.ticks())


ARM = "1234A"
DISARM = "1234#"
run(100)
gc.collect()
base = gc.mem_free()
print("START mem_free", base)
next_mark = 1000
while sent[0] < N:
    kq.extend(ARM)
    run(50)
    hal.raw[2] = ALARM_MV
    run(50)
    hal.raw[2] = NORMAL_MV
    run(50)
    kq.extend(DISARM)
    run(50)
    if sent[0] >= next_mark:
        gc.collect()
        print("MEM", sent[0], gc.mem_free())
        next_mark += 1000
gc.collect()
print("END events", sent[0], "mem_free", gc.mem_free(), "peak", micropython.mem_peak())
q.close()
