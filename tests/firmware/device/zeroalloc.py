# Device-side proof that the steady-state event path allocates nothing: with the heap
# locked (micropython.heap_lock(): any allocation raises MemoryError), N events each go
#   zone loop (deol tamper / restore) -> debounce -> the panel's state machine
#   -> the persistent queue (record committed to the file) -> the reporter's frame
#   (dc09tx.Link.build: ADM-CID, AES-128, [H...], timestamp) -> TCP write to a real
#   receiver (the pytest side, CPython, decodes every frame and answers an encrypted
#   ACK) -> ACK read into a buffer and matched (dc09tx.Link.is_ack: CRC, seq, account,
#   AES) -> queue record removed (Reporter.delivered).
# The first events and the connection run unlocked (warm-up); the console is quiet
# (log.quiet: per-event lines are formatted only when the console is on).
# argv: N queue-file host port
import gc
import sys
import socket
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
N = int(sys.argv[1])
PATH = sys.argv[2]
HOST = sys.argv[3]
PORT = int(sys.argv[4])
WARM = 20
try:
    import os
    os.remove(PATH)
except OSError:
    pass

cfg = merge({"exit_delay": 0, "entry_delay": 0, "test_interval": 0,
             "partitions": [1], "keypads": [{"partition": 1}],
             "zones": [{"n": 2, "type": "instant", "partition": 1, "wiring": "deol"}],
             "reporter": {"receivers": [{"host": HOST, "port": PORT}],
                          "key_text": "0123456789ABCDEF"}})
clock = FakeClock()
hal = SimHal(cfg)
q = EventQueue(PATH, 1024, clock)
rep = Reporter(cfg, hal, clock, q)
assert rep.fb is not None
events = [0]
delivered = [0]


def emit(qual, code, part, zone):        # what App.emit does, less the asyncio notify
    q.push(qual, code, part, zone)
    events[0] += 1


sock = socket.socket()
sock.connect(socket.getaddrinfo(HOST, PORT)[0][-1])
rx = bytearray(512)
one = bytearray(1)


def deliver():
    """What Reporter._run does for one event, with a blocking socket."""
    while True:
        slot = q.next()
        if slot < 0:
            return
        q.read(slot)
        seq = q.fields[0]
        code = q.fields[4]
        sock.write(rep.frame(q.fields))
        n = 0                           # byte by byte: a blocking readinto fills
        while n == 0 or rx[n - 1] != 13:   # its whole buffer before it returns
            if not sock.readinto(one, 1):
                raise OSError(0)
            rx[n] = one[0]
            n += 1
        if not rep.fb.is_ack(rx, n, (seq - 1) % 9999 + 1):
            raise ValueError(seq)
        rep.delivered(slot, seq, code)
        delivered[0] += 1


panel = Panel(cfg, hal, clock, emit)
hal.attach(panel)
z = panel.zones[0]
TAMPER_MV = z.mv_for(TAMPER)
NORMAL_MV = z.mv_for(NORMAL)


def run(ms):
    for _ in range(ms // 10):
        clock.advance(10)
        panel.poll(clock.ticks())
        deliver()


def cycle(n):
    while events[0] < n:
        hal.raw[2] = TAMPER_MV          # 144 tamper
        run(60)
        hal.raw[2] = NORMAL_MV          # 144 restore
        run(60)
        if events[0] % 50 == 0:
            run(2100)                   # now and then the 2 s beep ends: buzzer off, on


run(100)
cycle(WARM)
gc.collect()
free = gc.mem_free()
target = WARM + N
err = None
micropython.heap_lock()
try:
    cycle(target)
except Exception as e:
    err = e
micropython.heap_unlock()
if err is not None:
    print("ALLOCATED after", events[0] - WARM, "locked events:", repr(err))
    sys.print_exception(err)
    sys.exit(1)
print("LOCKED_EVENTS %d delivered %d mem_free %d %d" % (events[0] - WARM, delivered[0] - WARM, free,
                                                         gc.mem_free()))
sock.close()
q.close()
