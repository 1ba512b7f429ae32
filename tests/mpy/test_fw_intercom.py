# Intercom logic on a fake clock (CPython and the MicroPython unix port): Wiegand
# frames, access with validity, door forced / held open, call states and timeouts.
try:
    import core.compat  # noqa: F401
except ImportError:
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware"))

import json
from core import log as _log
from core.fakeclock import FakeClock
from core.users import pin_hash
from hal.sim import SimHal
from intercom import wiegand
from intercom.door import Intercom

_log.quiet(True)


def test_wiegand_roundtrip_and_parity():
    for bits, n in ((26, (12 << 16) | 3456), (26, 0), (26, 0xFFFFFF), (34, 0x89ABCDEF), (34, 1)):
        f = wiegand.encode(bits, n)
        assert wiegand.decode(bits, f) == n
        assert wiegand.decode(bits, f ^ 1) is None                 # odd parity broken
        assert wiegand.decode(bits, f ^ (1 << (bits - 1))) is None  # even parity broken
    assert wiegand.decode(32, 5) is None


class Rig:
    def __init__(self):
        self.clock = FakeClock()
        now = self.clock.time()
        cfg = {"device_id": "d1", "salt": "x", "lockout_attempts": 3,
               "intercom": {"door_pulse_ms": 1000, "grant_window_ms": 2000, "held_open": 5,
                            "ring_timeout": 10, "talk_timeout": 20},
               "users": [{"n": 1, "pin": pin_hash("x", "2468"), "card": 77},
                         {"n": 2, "card": 78, "valid_to": now - 1},
                         {"n": 3, "card": 79, "valid_from": now + 3600},
                         {"n": 9, "pin": pin_hash("x", "1357"), "role": "duress"}]}
        self.hal = SimHal(cfg)
        self.ev = []
        self.sent = []
        self.ic = Intercom(cfg, self.hal, self.clock, lambda q, c, p, z: self.ev.append((q, c, z)))
        self.ic.publish = lambda t, p, retain=False: self.sent.append((t, json.loads(p)))
        self.hal.attach(self.ic)

    def run(self, ms):
        for _ in range(ms // 10):
            self.clock.advance(10)
            self.ic.poll(self.clock.ticks())

    def do(self, cmd, ms=100):
        assert self.hal.command(cmd) == "ok"
        self.run(ms)


def test_access_pin_card_validity_and_duress():
    r = Rig()
    r.do("key 1 *2468#")
    assert (1, 422, 1) in r.ev and r.hal.outputs["door"] == 1
    r.run(1000)
    assert r.hal.outputs["door"] == 0                 # relay pulse over
    r.do("card 1 26 %d" % wiegand.encode(26, 77))
    assert r.ev.count((1, 422, 1)) == 2
    r.do("card 1 26 %d" % wiegand.encode(26, 78))     # expired
    r.do("card 1 34 %d" % wiegand.encode(34, 79))     # not yet valid
    assert (1, 421, 2) in r.ev and (1, 421, 3) in r.ev
    r.ev = []
    r.do("key 1 *1357#")
    assert (1, 121, 9) in r.ev and (1, 422, 9) in r.ev
    r.do("key 1 *0000#")
    r.do("key 1 *0001#")
    r.do("key 1 *0002#")
    assert (1, 461, 0) in r.ev


def test_door_forced_held_and_exit_request():
    r = Rig()
    r.do("door open")
    assert (1, 423, 0) in r.ev and r.hal.outputs["buzzer"] == 1
    r.do("door closed")
    assert (3, 423, 0) in r.ev
    r.ev = []
    r.do("key 1 *2468#")
    r.do("door open")
    assert (1, 423, 0) not in r.ev
    r.run(4800)
    assert (1, 426, 0) not in r.ev
    r.run(300)
    assert (1, 426, 0) in r.ev
    r.do("door closed")
    assert (3, 426, 0) in r.ev
    r.ev = []
    r.run(3000)                                       # grant window over
    r.do("button exit 1")
    r.do("door open")
    assert r.ev == [] or (1, 423, 0) not in r.ev


def test_call_ring_answer_timeout():
    r = Rig()
    r.do("key 1 1201#")
    assert r.sent[-1] == ("jifang/room/1201/call", {"op": "ring", "door": "d1", "call": 1})
    r.run(10000)
    assert r.sent[-1][1]["op"] == "cancel" and r.ic.call_state == "idle"
    r.do("key 1 0#")
    assert r.sent[-1][0] == "jifang/guard/call"
    r.ic.on_mqtt("jifang/door/d1/call", b'{"op": "answer", "call": 2}')
    assert r.ic.call_state == "talking"
    r.ic.on_mqtt("jifang/door/d1/call", b'{"op": "hangup", "call": 1}')   # stale call id
    assert r.ic.call_state == "talking"
    r.run(20000)
    assert r.sent[-1][1]["op"] == "hangup" and r.ic.call_state == "idle"


def test_user_hours_window():
    from core.users import User
    u = User({"n": 1, "hours": [8 * 60, 18 * 60]})
    assert u.valid_at(0, (2026, 1, 1, 9, 0, 0))
    assert not u.valid_at(0, (2026, 1, 1, 18, 0, 0))
    n = User({"n": 2, "hours": [22 * 60, 6 * 60]})            # a night shift over midnight
    assert n.valid_at(0, (2026, 1, 1, 23, 30, 0)) and n.valid_at(0, (2026, 1, 1, 5, 59, 0))
    assert not n.valid_at(0, (2026, 1, 1, 12, 0, 0))
