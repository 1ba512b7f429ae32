# Zone loops: EOL decoding and debounce, on CPython and on the
# MicroPython unix port (tests/mpy/run.py). Plain asserts only.
try:
    import core.compat  # noqa: F401  (MicroPython: firmware/ is on MICROPYPATH)
except ImportError:
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware"))

from panel import zones as Z


# -- zones: decoding and debounce ---------------------------------------------

def test_seol_decoding():
    z = Z.Zone({"n": 1, "wiring": "seol"}, {"r1": 5600, "pullup": 4700, "vref_mv": 3300}, 30)
    assert z.decode(z.mv_for(Z.NORMAL)) == Z.NORMAL
    assert z.decode(3300) == Z.ALARM          # open loop
    assert z.decode(0) == Z.SHORT
    assert z.decode(Z.loop_mv(20000, 4700, 3300)) == Z.TAMPER   # foreign resistor
    assert z.decode(Z.loop_mv(5600 * 110 // 100, 4700, 3300)) == Z.NORMAL  # within tolerance


def test_deol_decoding():
    z = Z.Zone({"n": 1, "wiring": "deol", "r1": 2200, "r2": 2200}, {"pullup": 4700, "vref_mv": 3300}, 30)
    assert z.decode(Z.loop_mv(2200, 4700, 3300)) == Z.NORMAL
    assert z.decode(Z.loop_mv(4400, 4700, 3300)) == Z.ALARM
    assert z.decode(3300) == Z.TAMPER         # cut
    assert z.decode(0) == Z.SHORT
    assert z.decode(Z.loop_mv(100, 4700, 3300)) == Z.SHORT


def test_dry_contact_nc_and_no():
    z = Z.Zone({"n": 1}, {}, 30)
    assert z.decode(0) == Z.NORMAL and z.decode(1) == Z.ALARM
    z = Z.Zone({"n": 1, "nc": False}, {}, 30)
    assert z.decode(1) == Z.NORMAL and z.decode(0) == Z.ALARM


def test_debounce_needs_stable_condition():
    z = Z.Zone({"n": 1}, {}, 30)
    t = 0
    assert not z.poll(t, 1)
    for t in (10, 20):
        assert not z.poll(t, 1)
    assert not z.poll(25, 0)                  # glitch back: restarts
    assert not z.poll(30, 1)
    assert not z.poll(50, 1)
    assert z.poll(60, 1) and z.cond == Z.ALARM
