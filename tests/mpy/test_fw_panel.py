# Panel state machine on a fake clock: every transition, on CPython and on the
# MicroPython unix port (tests/mpy/run.py). Plain asserts only.
try:
    import core.compat  # noqa: F401  (MicroPython: firmware/ is on MICROPYPATH)
except ImportError:
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware"))

from core import log as _log
from core.fakeclock import FakeClock
from core.config import merge
from core.users import pin_hash
from hal.sim import SimHal
from panel.panel import Panel

_log.quiet(True)
SALT = "a1b2c3"


def config(**kw):
    cfg = {
        "salt": SALT,
        "entry_delay": 10, "exit_delay": 20, "siren_time": 60,
        "swinger_limit": 2, "lockout_attempts": 3, "lockout_time": 30,
        "ac_loss_delay": 5, "test_interval": 3600, "debounce_ms": 30,
        "partitions": [1, 2],
        "keypads": [{"partition": 1}, {"partition": 2}],
        "zones": [
            {"n": 1, "type": "entry_exit", "partition": 1, "wiring": "seol"},
            {"n": 2, "type": "instant", "partition": 1, "wiring": "deol", "r1": 2200, "r2": 2200},
            {"n": 3, "type": "interior", "partition": 1, "chime": False},
            {"n": 4, "type": "perimeter", "partition": 1, "chime": True},
            {"n": 5, "type": "panic", "partition": 1},
            {"n": 6, "type": "panic", "partition": 1, "silent": True},
            {"n": 7, "type": "fire", "partition": 2},
            {"n": 8, "type": "medical", "partition": 2},
            {"n": 9, "type": "tamper", "partition": 2},
            {"n": 10, "type": "interior", "partition": 1, "night": True},
            {"n": 11, "type": "instant", "partition": 2},
        ],
        "users": [
            {"n": 1, "pin": pin_hash(SALT, "1234"), "partitions": [1, 2]},
            {"n": 2, "pin": pin_hash(SALT, "5678"), "partitions": [2]},
            {"n": 3, "pin": pin_hash(SALT, "9999"), "partitions": [1, 2], "role": "duress"},
            {"n": 90, "pin": pin_hash(SALT, "0000"), "partitions": [1, 2], "role": "installer"},
        ],
    }
    cfg.update(kw)
    return merge(cfg)


class Rig:
    def __init__(self, store=None, **kw):
        self.cfg = config(**kw)
        self.hal = SimHal(self.cfg)
        self.clock = FakeClock()
        self.events = []
        self.panel = Panel(self.cfg, self.hal, self.clock, self._emit, store)
        self.hal.attach(self.panel)
        self.run(100)

    def _emit(self, q, code, p, z):
        self.events.append((q, code, p, z))

    def run(self, ms, step=10):
        end = ms
        t = 0
        while t < end:
            self.clock.advance(step)
            t += step
            self.panel.poll(self.clock.ticks())

    def do(self, cmd, settle=100):
        assert self.hal.command(cmd) == "ok", cmd
        self.run(settle)

    def keys(self, s, kp=1):
        self.do("key %d %s" % (kp, s))

    def state(self, p=1):
        return self.panel.parts[p].state

    def codes(self):
        return [(q, c, z) for q, c, p, z in self.events]

    def take(self):
        e = self.events
        self.events = []
        return e

    def siren(self):
        return self.hal.outputs.get("siren", 0)


def armed_away(r):
    r.keys("1234A")
    assert r.state() == "arming"
    r.run(20000)
    assert r.state() == "armed_away"
    r.take()


def test_glitch_shorter_than_debounce_ignored():
    r = Rig()
    armed_away(r)
    r.hal.command("zone 2 alarm")
    r.run(20)
    r.hal.command("zone 2 normal")
    r.run(200)
    assert r.state() == "armed_away" and r.take() == []


# -- arming and disarming --------------------------------------------------------

def test_arm_away_exit_delay_then_disarm():
    r = Rig()
    assert r.state() == "disarmed"
    r.keys("1234A")
    assert r.state() == "arming"
    assert r.hal.outputs.get("buzzer") == 1
    r.run(19000)
    assert r.state() == "arming"
    r.run(1000)
    assert r.state() == "armed_away"
    assert (3, 401, 1) in r.codes()
    r.take()
    r.keys("1234#")
    assert r.state() == "disarmed"
    assert r.codes() == [(1, 401, 1)]


def test_disarm_during_exit_delay_reports_nothing():
    r = Rig()
    r.keys("1234A")
    r.run(5000)
    r.keys("1234#")
    assert r.state() == "disarmed" and r.take() == []


def test_exit_route_open_during_exit_delay_is_fine():
    r = Rig()
    r.keys("1234A")
    r.do("zone 1 alarm")
    r.do("zone 3 alarm")
    r.do("zone 1 normal")
    r.do("zone 3 normal")
    r.run(20000)
    assert r.state() == "armed_away"
    assert [e for e in r.codes() if e[0] == 1] == []


def test_instant_zone_during_exit_delay_triggers():
    r = Rig()
    r.keys("1234A")
    r.do("zone 2 alarm")
    assert r.state() == "triggered" and (1, 130, 2) in r.codes()


def test_arm_home_and_night_and_closing_codes():
    r = Rig()
    r.keys("1234S")
    r.run(20000)
    assert r.state() == "armed_home" and (3, 441, 1) in r.codes()
    r.keys("1234#")
    r.keys("1234N")
    r.run(20000)
    assert r.state() == "armed_night"


def test_not_ready_refuses_arming():
    r = Rig()
    r.do("zone 4 alarm")
    r.keys("1234A")
    assert r.state() == "disarmed"
    r.do("zone 4 normal")
    r.keys("1234A")
    assert r.state() == "arming"


def test_entry_delay_then_disarm_in_time():
    r = Rig()
    armed_away(r)
    r.do("zone 1 alarm")
    assert r.state() == "pending"
    r.run(5000)
    r.keys("1234#")
    assert r.state() == "disarmed"
    assert r.siren() == 0
    assert r.codes() == [(1, 401, 1)]


def test_entry_delay_expires_triggers():
    r = Rig()
    armed_away(r)
    r.do("zone 1 alarm")
    r.run(9700)
    assert r.state() == "pending" and r.siren() == 0
    r.run(300)
    assert r.state() == "triggered"
    assert (1, 134, 1) in r.codes()
    assert r.siren() == 1


def test_interior_follows_entry_zone():
    r = Rig()
    armed_away(r)
    r.do("zone 1 alarm")
    r.do("zone 3 alarm")
    assert r.state() == "pending" and r.take() == []


def test_interior_alone_is_instant_when_away():
    r = Rig()
    armed_away(r)
    r.do("zone 3 alarm")
    assert r.state() == "triggered" and (1, 132, 3) in r.codes()


def test_interior_bypassed_in_home_and_night_unless_night_zone():
    r = Rig()
    r.keys("1234S")
    r.run(20000)
    r.take()
    r.do("zone 3 alarm")
    r.do("zone 10 alarm")
    assert r.state() == "armed_home" and r.take() == []
    r.do("zone 3 normal")
    r.do("zone 10 normal")
    r.keys("1234#")
    r.keys("1234N")
    r.run(20000)
    r.take()
    r.do("zone 3 alarm")
    assert r.state() == "armed_night"
    r.do("zone 10 alarm")
    assert r.state() == "triggered" and (1, 132, 10) in r.codes()


def test_perimeter_zone_triggers_in_home():
    r = Rig()
    r.keys("1234S")
    r.run(20000)
    r.do("zone 4 alarm")
    assert r.state() == "triggered" and (1, 131, 4) in r.codes()


def test_siren_cut_off_but_alarm_holds():
    r = Rig()
    armed_away(r)
    r.do("zone 2 alarm")
    assert r.siren() == 1
    r.run(60000)
    assert r.siren() == 0
    assert r.state() == "triggered"          # holds until reset by hand
    r.do("zone 2 normal")
    r.run(5000)
    assert r.state() == "triggered"
    r.take()
    r.keys("1234#")
    assert r.state() == "disarmed"
    assert (1, 401, 1) in r.codes() and (3, 130, 2) in r.codes()


def test_swinger_shutdown():
    r = Rig()
    armed_away(r)
    r.keys("1234#")
    r.keys("1234S")
    r.run(20000)
    r.take()
    for _ in range(4):
        r.do("zone 4 alarm")
        r.do("zone 4 normal")
    c = [e for e in r.codes() if e[1] == 131]
    assert len(c) == 2                       # swinger_limit = 2
    assert (1, 570, 4) in r.codes()          # shut down, reported once
    assert r.codes().count((1, 570, 4)) == 1


def test_duress_disarms_silently_and_reports_121():
    r = Rig()
    armed_away(r)
    r.do("zone 1 alarm")
    r.keys("9999#")
    assert r.state() == "disarmed"
    assert r.siren() == 0
    assert (1, 121, 3) in r.codes()
    assert (1, 401, 3) in r.codes()          # looks like any disarm
    assert r.hal.outputs.get("led_trouble", 0) == 0


def test_keypad_lockout():
    r = Rig()
    r.keys("1111A")
    r.keys("2222A")
    assert r.take() == []
    r.keys("3333A")
    assert r.codes() == [(1, 461, 1)]
    r.keys("1234A")                          # locked: even a good code is ignored
    assert r.state() == "disarmed"
    r.run(30000)
    r.keys("1234A")
    assert r.state() == "arming"


def test_wrong_partition_user_is_refused():
    r = Rig()
    r.keys("5678A", kp=1)                   # user 2 only has partition 2
    assert r.state(1) == "disarmed"
    r.keys("5678A", kp=2)
    assert r.state(2) == "arming" and r.state(1) == "disarmed"


def test_installer_cannot_disarm_but_walk_tests():
    r = Rig()
    armed_away(r)
    r.keys("0000#")
    assert r.state() == "armed_away"
    r.keys("1234#")
    r.take()
    r.keys("0000*6#")
    assert (1, 607, 90) in r.codes()
    r.do("zone 2 alarm")
    r.do("zone 2 normal")
    assert r.state() == "disarmed" and [e for e in r.codes() if e[1] == 130] == []
    r.keys("0000*6#")
    assert (3, 607, 90) in r.codes()


def test_bypass_and_chime():
    r = Rig()
    r.keys("1234*104#")
    assert r.panel.zone_by_n[4].bypassed and (1, 570, 4) in r.codes()
    r.keys("1234*4#")
    assert r.panel.parts[1].chime
    r.keys("1234A")
    r.run(20000)
    r.do("zone 4 alarm")
    assert r.state() == "armed_away"
    r.do("zone 4 normal")
    r.keys("1234#")
    r.keys("1234*104#")
    r.take()
    r.do("zone 4 alarm")                     # chime zone while disarmed
    assert r.hal.outputs.get("buzzer") == 1 and r.take() == []


def test_panic_latches_until_reset_and_reports_disarmed():
    r = Rig()
    r.do("zone 5 alarm")
    assert (1, 120, 5) in r.codes()
    assert r.state() == "triggered" and r.siren() == 1
    r.do("zone 5 normal")
    r.do("zone 5 alarm")
    assert r.codes().count((1, 120, 5)) == 1   # latched
    r.do("zone 5 normal")
    r.keys("1234A")
    assert r.state() == "triggered"
    r.keys("1234#")
    assert r.state() == "disarmed" and (3, 120, 5) in r.codes()


def test_silent_panic_no_siren():
    r = Rig()
    r.do("zone 6 alarm")
    assert (1, 122, 6) in r.codes()
    assert r.siren() == 0 and r.state() == "disarmed"
    r.keys("1234#")
    assert (3, 122, 6) in r.codes()


def test_fire_medical_tamper_zone_partition_2():
    r = Rig()
    r.do("zone 7 alarm")
    assert (1, 110, 7) in r.codes() and r.state(2) == "triggered" and r.siren() == 1
    assert r.state(1) == "disarmed"
    r.keys("5678#", kp=2)
    r.take()
    r.do("zone 8 alarm")
    assert (1, 100, 8) in r.codes()
    r.do("zone 9 alarm")
    assert (1, 137, 9) in r.codes()


def test_eol_tamper_and_short_armed_or_disarmed():
    r = Rig()
    r.do("zone 2 tamper")
    assert (1, 144, 2) in r.codes() and r.state() == "disarmed"
    r.do("zone 2 normal")
    assert (3, 144, 2) in r.codes()
    r.do("zone 2 short")
    assert (1, 380, 2) in r.codes()
    r.do("zone 2 normal")
    assert (3, 380, 2) in r.codes()
    armed_away(r)
    r.do("zone 2 tamper")
    assert (1, 144, 2) in r.codes() and r.state() == "triggered"


def test_keypad_panic():
    r = Rig()
    r.keys("P")
    assert (1, 120, 0) in r.codes() and r.state() == "triggered"


def test_troubles_ac_battery_box_tamper_and_periodic_test():
    r = Rig()
    r.do("ac 0")
    r.run(4000)
    assert r.take() == []
    r.run(1500)
    assert r.codes() == [(1, 301, 0)]
    r.do("ac 1", settle=500)
    assert (3, 301, 0) in r.codes()
    r.take()
    r.do("battery 11000")
    r.run(5500)
    assert (1, 302, 0) in r.codes()
    r.do("tamper 1", settle=300)
    assert (1, 137, 0) in r.codes()
    assert r.hal.outputs.get("led_trouble") == 1
    r.take()
    r.run(3600 * 1000, step=1000)
    assert (1, 602, 0) in r.codes()


def test_partitions_independent():
    r = Rig()
    r.keys("1234A", kp=1)
    r.keys("5678A", kp=2)
    r.run(20000)
    assert r.state(1) == "armed_away" and r.state(2) == "armed_away"
    r.do("zone 11 alarm")
    assert r.state(2) == "triggered" and r.state(1) == "armed_away"


def _fresh(path):
    import os
    try:
        os.remove(path)
    except OSError:
        pass
    return path


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_state_survives_power_loss():
    store = _fresh("/tmp/jf_fw_panel.state")
    r = Rig(store=store)
    armed_away(r)
    r.do("zone 2 alarm")
    assert r.state() == "triggered"
    p2 = Panel(r.cfg, SimHal(r.cfg), r.clock, r._emit, store)
    p1 = p2.parts[1]
    assert p1.state == "triggered" and p1.latched[:p1.nlatched] == [2]
    assert p1.siren and p2.zone_by_n[2].latched
    assert p2.parts[2].state == "disarmed"
    # reset by hand after the restart: the restore is reported and the state saved
    r2 = Rig(store=store)
    r2.keys("1234#")
    assert r2.state() == "disarmed" and (3, 130, 1, 2) in r2.events
    p3 = Panel(r.cfg, SimHal(r.cfg), r.clock, r._emit, store)
    assert p3.parts[1].state == "disarmed" and p3.parts[1].nlatched == 0
    import os
    os.remove(store)


def test_state_file_write_cut_at_any_byte_keeps_the_previous_state():
    """Power lost while a save is being written: whatever prefix of the new record
    reached the file, the panel comes back in the state saved before it, never in a
    mix; with the whole record written, in the new state."""
    store = _fresh("/tmp/jf_fw_panel_torn.state")
    r = Rig(store=store)
    armed_away(r)
    k = r.panel.saves
    before = _read(store)
    r.do("zone 2 alarm")                 # saves k+1 (triggered) into slot (k+1) & 1, then k+2
    after = _read(store)
    n = len(before) // 2
    s = ((k + 1) & 1) * n
    for cut in range(n + 1):
        torn = bytearray(before)
        torn[s:s + cut] = after[s:s + cut]
        with open(store, "wb") as f:
            f.write(torn)
        p = Panel(r.cfg, SimHal(r.cfg), r.clock, r._emit, store).parts[1]
        if cut < n:
            assert p.state == "armed_away" and p.nlatched == 0, cut
        else:
            assert p.state == "triggered" and p.latched[:p.nlatched] == [2], cut
    with open(store, "wb") as f:         # both slots garbage: disarmed, not a crash
        f.write(b"\xff" * (2 * n))
    assert Panel(r.cfg, SimHal(r.cfg), r.clock, r._emit, store).parts[1].state == "disarmed"
    import os
    os.remove(store)
