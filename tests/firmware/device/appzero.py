# Device-side proof that the whole app allocates nothing per event, status included:
# the real App (core/app.py) wired as on a panel -- persistent queue, panel, DC-09
# reporter task, MQTT task and status task -- with a FakeClock for the panel's time
# (debounce in simulated time), asyncio on real ticks. MQTT keepalive 2 s: a ping
# and its answer every second go through the MQTT task during the measurement. Events alternate between a
# double-EOL zone (144 tamper / restore) and the cabinet tamper (137 / restore):
# every cabinet change changes the status, so it is written as JSON and published
# (retained) over MQTT to a real broker, while every event goes over DC-09 with AES
# to a real receiver (the pytest side decodes and ACKs).
#   warm-up, then phase 1: N1 events with gc disabled (gc.mem_alloc() must not move),
#   phase 2: N2 events with micropython.heap_lock() (any allocation raises).
# argv: N1 N2 state-dir dc09-port mqtt-host mqtt-port
import gc
import sys
import asyncio
import micropython
from core import log
from core.fakeclock import FakeClock
from core.config import merge
from core.app import App, preload
from panel.zones import NORMAL, TAMPER

log.quiet(True)
N1 = int(sys.argv[1])
N2 = int(sys.argv[2])
cfg = merge({"role": "panel", "device_id": "p1", "account": "1234", "state_dir": sys.argv[3],
             "exit_delay": 0, "entry_delay": 0, "test_interval": 0, "status_ms": 1,
             "partitions": [1], "keypads": [{"partition": 1}],
             "zones": [{"n": 2, "type": "instant", "partition": 1, "wiring": "deol"}],
             "reporter": {"receivers": [{"host": "127.0.0.1", "port": int(sys.argv[4])}],
                          "key_text": "0123456789ABCDEF", "supervision": 0.05, "ack_poll_ms": 1},
             "mqtt": {"host": sys.argv[5], "port": int(sys.argv[6]), "prefix": "jf", "keepalive": 2}})
# as core/app.py: start() does: modules first, collecting after each (a fragmented
# 128 KB heap can lack the contiguous block a late import needs)
gc.collect()
preload(cfg)
asyncio.open_connection                      # asyncio's lazy attribute, resolved now
clock = FakeClock()
app = App(cfg, clock)
gc.collect()
hal, dev, q, rep, mqtt = app.hal, app.dev, app.queue, app.reporter, app.mqtt
z = dev.zones[0]
TAMPER_MV = z.mv_for(TAMPER)
NORMAL_MV = z.mv_for(NORMAL)
step = [0]


def events():
    return q.next_seq


async def drive(target):
    """The poll task's work, on the panel's clock: flip the zone or the cabinet
    tamper, poll for 250 ms of it (debounce, trouble poll), then wait until the
    event is delivered and the status it changed is published; every 200 steps stay
    quiet for 70 ms of real time, so the reporter sends a NULL link test."""
    while events() < target:
        step[0] += 1
        if step[0] & 1:
            hal.raw[2] = TAMPER_MV if hal.raw[2] == NORMAL_MV else NORMAL_MV
        else:
            hal.tamper = not hal.tamper
        for _ in range(25):
            clock.advance(10)
            dev.poll(clock.ticks())
        while q.pending or dev.changed or mqtt.status_due or not mqtt.connected:
            await asyncio.sleep_ms(0)
        if step[0] % 200 == 0:
            await asyncio.sleep_ms(70)


async def main():
    tasks = [asyncio.create_task(rep.run()), asyncio.create_task(mqtt.run()),
             asyncio.create_task(app.status_task())]
    hal.raw[2] = NORMAL_MV
    for _ in range(10):
        clock.advance(10)
        dev.poll(clock.ticks())
    await drive(400)                              # warm-up: links up, events, status, a NULL
    assert rep.nulls > 0, "no NULL in the warm-up"
    e0 = events()
    d0 = rep.sent
    n0 = rep.nulls
    run = drive(e0 + N1)                          # the coroutine object, made before
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    await run
    a1 = gc.mem_alloc()
    gc.enable()
    print("UNLOCKED_EVENTS %d delivered %d nulls %d allocated %d" % (
        events() - e0, rep.sent - d0, rep.nulls - n0, a1 - a0))
    e0 = events()
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
        print("ALLOCATED after", events() - e0, "locked events:", repr(err))
        sys.print_exception(err)
        sys.exit(1)
    print("LOCKED_EVENTS %d delivered %d nulls %d mem_free %d %d" % (
        events() - e0, rep.sent - d0, rep.nulls - n0, free, free2))
    print("STATUS", bytes(app.json.buf[:app.status_json()]).decode())
    for t in tasks:
        t.cancel()


asyncio.run(main())
q.close()
