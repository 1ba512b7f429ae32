# Keypad handling of the panel (split from panel.py so each module compiles in a
# small heap): code entry, arming, disarming/reset, programming commands, lockout.
# These functions become Panel methods (see panel.py).
from core.log import log
from panel import zones as Z
from panel.state import ALARM_CODE, FN_KEYS, MAXKEYS, dl as _dl


def on_key(self, kp, k, now):
    if kp.locked:
        log("KEYPAD", "%d locked" % kp.n)
        return
    if k == "P":
        kp.len = 0
        p = self.parts[kp.partition]
        if not p.holds(0):
            self.trigger(p, None, 120, True, now)
        return
    if k in FN_KEYS:
        s = bytes(kp.buf[:kp.len]).decode()
        kp.len = 0
        self.command(kp, s, k, now)
        return
    if kp.len < MAXKEYS:
        kp.buf[kp.len] = ord(k)
        kp.len += 1


def command(self, kp, s, fn, now):
    cmd = None
    if "*" in s:
        i = s.index("*")
        s, cmd = s[:i], s[i + 1:]
    u = self.users.by_pin(s)
    p = self.parts[kp.partition]
    if u is None or kp.partition not in u.partitions:
        kp.wrong += 1
        log("KEYPAD", "%d wrong code (%d)" % (kp.n, kp.wrong))
        self.beep(now, 1)
        if kp.wrong >= self.lockout_attempts:
            kp.locked = True
            kp.locked_until = _dl(now, self.lockout_time)
            log("LOCKOUT", "keypad %d for %ds" % (kp.n, self.lockout_time))
            self.emit(1, 461, p.n, kp.n)
        return
    kp.wrong = 0
    if cmd is not None:
        self.program(p, u, cmd, now)
        return
    if fn == "#":
        self.disarm(p, u, now)
    elif u.role != "installer":
        self.arm(p, u, "armed_away" if fn == "A" else "armed_home" if fn == "S" else "armed_night", now)


def program(self, p, u, cmd, now):
    if cmd.startswith("1") and len(cmd) > 1 and p.state == "disarmed":
        z = self.zone_by_n.get(int(cmd[1:]))
        if z is not None and z.partition == p.n:
            z.bypassed = not z.bypassed
            log("BYPASS", "zone %d %s" % (z.n, "on" if z.bypassed else "off"))
            self.emit(1 if z.bypassed else 3, 570, p.n, z.n)
            self.changed = True
    elif cmd == "4":
        p.chime = not p.chime
        log("CHIME", "p%d %s" % (p.n, "on" if p.chime else "off"))
    elif cmd == "6" and u.role == "installer" and p.state == "disarmed":
        p.walk = not p.walk
        log("WALKTEST", "p%d %s" % (p.n, "start" if p.walk else "end"))
        self.emit(1 if p.walk else 3, 607, p.n, u.n)
    else:
        log("KEYPAD", "bad command")


def ready(self, p, mode):
    for z in p.zones:
        if z.bypassed or z.type not in ("entry_exit", "instant", "perimeter", "interior") or z.type == "entry_exit":
            continue
        if z.cond != Z.NORMAL and self.zone_armed(z, mode):
            return z
    return None


def arm(self, p, u, mode, now):
    if p.state != "disarmed":
        return
    if p.nlatched:
        log("ARM", "p%d refused: alarm not reset" % p.n)
        return
    z = self.ready(p, mode)
    if z is not None:
        log("ARM", "p%d not ready: zone %d" % (p.n, z.n))
        self.beep(now, 1)
        return
    p.arm_mode = mode
    p.user = u.n
    for z in p.zones:
        z.trips = 0
        z.swung = False
    if u.role == "duress":
        self.emit(1, 121, p.n, u.n)
        log("DURESS", "p%d" % p.n)
    if self.exit_delay:
        p.deadline = _dl(now, self.exit_delay)
        self.set_state(p, "arming")
        log("ARM", "p%d %s exit delay %ds user %d" % (p.n, mode, self.exit_delay, u.n))
    else:
        self.armed(p, now)


def disarm(self, p, u, now):
    duress = u.role == "duress"
    if duress:
        self.emit(1, 121, p.n, u.n)        # silent: nothing local shows it
        log("DURESS", "p%d" % p.n)
    was = p.state
    if u.role == "installer" and was != "disarmed":
        log("DISARM", "installer code cannot disarm")
        return
    p.siren = False
    p.user = u.n
    if was != "disarmed":
        self.set_state(p, "disarmed")
        if p.closed_reported:
            self.emit(1, 401, p.n, u.n)
        p.closed_reported = False
        log("DISARM", "p%d user %d" % (p.n, u.n))
    # reset by hand: restores for latched alarms
    if p.nlatched:
        for i in range(p.nlatched):
            zn = p.latched[i]
            z = self.zone_by_n.get(zn)
            code = 120
            if z is not None:
                z.latched = False
                code = ALARM_CODE.get(z.type, 122 if z.silent else 120)
            self.emit(3, code, p.n, zn)
        p.nlatched = 0
        log("RESET", "p%d alarms reset" % p.n)
        self.changed = True
        self.save()
    for z in p.zones:
        z.trips = 0
        z.swung = False

