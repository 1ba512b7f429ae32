# Zone inputs: decode a raw reading (digital level, or millivolts from an ADC1 pin
# across an end-of-line resistor network) into a condition, and debounce it by
# polling (Pin.irq on the ESP32 is scheduled, not hard, so the panel polls every
# few ms and a condition must hold >= debounce_ms before it counts).
#
# EOL wiring: a pull-up `pullup` ohms to `vref_mv` feeds the loop; the loop's
# resistance R to ground gives v = vref * R / (pullup + R), so R = pullup * v / (vref - v).
#   seol (single EOL r1): R ~ r1 normal, open -> alarm, ~0 -> short, anything else -> tamper
#   deol (double EOL r1, r2): R ~ r1 normal, R ~ r1 + r2 alarm, open -> tamper, ~0 -> short
#   dry  (no resistor): contact closed = normal, open = alarm ("nc": false inverts)
# Short is a fault (reported as sensor trouble 380), tamper a sensor tamper (144);
# both report armed or disarmed. This is the DSC convention.
from core.compat import const, ticks_diff

NORMAL = const(0)
ALARM = const(1)
TAMPER = const(2)
SHORT = const(3)
COND_NAMES = ("normal", "alarm", "tamper", "short")

# zone types (literals in the code: "entry_exit", "instant", "perimeter", "interior",
# "panic", "fire", "medical", "tamper")

_OPEN_MARGIN_MV = const(40)   # within this of vref: loop open


def near(r, target, tol_pct):
    d = r - target
    if d < 0:
        d = -d
    return d * 100 <= target * tol_pct


def decode(raw, wiring, r1, r2, pullup, vref, tol, nc=True):
    """Condition of a loop from its raw reading. Integer arithmetic only."""
    if wiring == "dry":
        active = raw != 0 if nc else raw == 0
        return ALARM if active else NORMAL
    v = raw
    if v >= vref - _OPEN_MARGIN_MV:
        return ALARM if r2 == 0 else TAMPER        # open loop
    if v <= 0:
        return SHORT
    r = pullup * v // (vref - v)
    if r * 100 < r1 * 15:                          # well under r1: a short
        return SHORT
    if near(r, r1, tol):
        return NORMAL
    if r2 and near(r, r1 + r2, tol):
        return ALARM
    return TAMPER                                  # a foreign resistance: tampered loop


def loop_mv(ohms, pullup, vref):
    """Millivolts a loop of `ohms` gives (None = open); used by the sim HAL."""
    if ohms is None:
        return vref
    return vref * ohms // (pullup + ohms)


class Zone:
    def __init__(self, zc, eol, debounce_ms):
        self.n = zc["n"]
        self.name = zc.get("name", "zone %d" % self.n)
        self.type = zc.get("type", "instant")
        if self.type not in ("entry_exit", "instant", "perimeter", "interior", "panic", "fire", "medical", "tamper"):
            raise ValueError("zone %d: unknown type %s" % (self.n, self.type))
        self.partition = zc.get("partition", 1)
        self.wiring = zc.get("wiring", "dry")
        self.r1 = zc.get("r1", eol.get("r1", 5600))
        self.r2 = zc.get("r2", eol.get("r2", 0) if self.wiring == "deol" else 0)
        if self.wiring == "deol" and not self.r2:
            self.r2 = 6800
        if self.wiring == "seol":
            self.r2 = 0
        self.pullup = eol.get("pullup", 4700)
        self.vref = eol.get("vref_mv", 3300)
        self.tol = eol.get("tolerance", 30)
        self.nc = zc.get("nc", True)
        self.silent = zc.get("silent", False)
        self.chime = zc.get("chime", False)
        self.night = zc.get("night", False)     # interior zone armed in night mode
        self.bypassed = zc.get("bypass", False)
        self.debounce = debounce_ms
        self.input = zc.get("input")            # ESP32 pin description, see hal/esp32.py
        self.cond = NORMAL                      # debounced condition
        self._cand = NORMAL
        self._since = 0
        self.trips = 0                          # swinger count in the armed period
        self.swung = False                      # shut down by swinger
        self.latched = False                    # alarm held until reset by hand
        self._tampered = False
        self._short = False

    def decode(self, raw):
        return decode(raw, self.wiring, self.r1, self.r2, self.pullup, self.vref, self.tol, self.nc)

    def poll(self, now, raw):
        """Feed one sample; True when the debounced condition changed."""
        c = self.decode(raw)
        if c != self._cand:
            self._cand = c
            self._since = now
            return False
        if c != self.cond and ticks_diff(now, self._since) >= self.debounce:
            self.cond = c
            return True
        return False

    def mv_for(self, cond):
        """Millivolts that a loop in `cond` reads (sim HAL)."""
        if self.wiring == "dry":
            return 1 if (cond == ALARM) == self.nc else 0
        if cond == NORMAL:
            return loop_mv(self.r1, self.pullup, self.vref)
        if cond == SHORT:
            return 0
        if cond == ALARM:
            return loop_mv(None if not self.r2 else self.r1 + self.r2, self.pullup, self.vref)
        # tamper: open on a double-EOL loop, a foreign resistance on a single one
        return loop_mv(None if self.r2 else self.r1 * 3, self.pullup, self.vref)
