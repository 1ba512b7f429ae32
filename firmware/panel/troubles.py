# Panel-wide troubles, reported armed or disarmed: AC loss (after a delay), low
# battery, cabinet tamper; and the periodic test report 602. A Panel method.
from core.compat import ticks_add, ticks_diff
from core.log import log, quiet as log_quiet
from panel.state import ARMED, dl as _dl, due as _due

def poll_troubles(self, now):
    hal = self.hal
    ac = hal.ac_ok()
    if ac != self.ac_ok:
        if not ac and ticks_diff(now, self.ac_since) < self.ac_loss_delay * 1000:
            pass
        else:
            self.ac_ok = ac
            self.emit(1 if not ac else 3, 301, 0, 0)
            if not log_quiet():
                log("TROUBLE", "ac %s" % ("lost" if not ac else "restored"))
            self.changed = True
    else:
        self.ac_since = now
    low = hal.battery_mv() < self.low_batt
    if low != self.batt_low:
        if ticks_diff(now, self.batt_since) >= 5000:
            self.batt_low = low
            self.emit(1 if low else 3, 302, 0, 0)
            if not log_quiet():
                log("TROUBLE", "battery %s" % ("low" if low else "ok"))
            self.changed = True
    else:
        self.batt_since = now
    t = hal.box_tamper()
    if t != self.box_tamper:
        self.box_tamper = t
        self.emit(1 if t else 3, 137, 0, 0)
        if not log_quiet():
            log("TROUBLE", "box tamper %s" % ("open" if t else "closed"))
        self.changed = True
        if t:
            self.beep(now, 2)
            for p in self.plist:
                if p.state in ARMED:
                    self.trigger(p, None, 0, True, now)
    self.out("led_trouble", 0 if (self.ac_ok and not self.batt_low and not self.box_tamper) else 1)
    if self.test_interval and _due(now, self.next_test):
        self.next_test = _dl(now, self.test_interval)
        self.emit(1, 602, 0, 0)
        log("TEST", "periodic 602")

