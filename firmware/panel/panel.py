# The alarm panel: partitions and their state machine, keypads, panel troubles.
#
# States (as users say them): disarmed, arming (exit delay), armed_away,
# armed_home (stay), armed_night, pending (entry delay), triggered.
# Everything is driven by poll(now) with `now` in ticks from the clock the panel
# was given, so tests run it on a fake clock; inputs come from the HAL.
#
# Keypad grammar (one keypad per partition, keys 0-9 * # A S N P):
#   PIN A / PIN S / PIN N    arm away / home (stay) / night
#   PIN #                    disarm, or reset a latched alarm (hold until reset by hand)
#   PIN *1 zz #              toggle bypass of zone zz (disarmed only)
#   PIN *4 #                 toggle chime
#   PIN *6 #                 walk test on/off (installer code)
#   P                        keypad panic (audible, 120)
# A duress PIN disarms like any PIN and also sends a silent 121, with nothing local.
# Wrong codes: after `lockout_attempts` the keypad ignores keys for `lockout_time` s
# and 461 (wrong code entry) is reported.
from core.compat import ticks_add, ticks_diff
from core.log import log, quiet as log_quiet
from struct import pack_into, unpack_from
from protocols.crc import crc16_arc
from protocols import bus
from core.users import Users
from panel import zones as Z

from panel.state import ARMED, ALARM_CODE, MAXKEYS, dl as _dl, due as _due

# partition states and arm modes as saved (an index each)
_STATES = bus.PARTITION_STATES   # the state file stores the index
from panel import keypad as _keypad
from panel import troubles as _troubles


class Partition:
    def __init__(self, n):
        self.n = n
        self.led = "led_armed_%d" % n
        self.state = "disarmed"
        self.arm_mode = "armed_away"
        self.deadline = 0
        self.user = 0
        self.siren = False
        self.siren_until = 0
        self.closed_reported = False
        self.chime = False
        self.walk = False
        # zone numbers (0 = keypad) holding an alarm until reset, in the order they
        # latched: latched[:nlatched] of a list sized once (Panel: its zones + 1)
        self.latched = [0]
        self.nlatched = 0
        self.entry_zone = 0
        self.zones = []

    def holds(self, zn):
        for i in range(self.nlatched):
            if self.latched[i] == zn:
                return True
        return False


class Keypad:
    def __init__(self, n, partition):
        self.n = n
        self.partition = partition
        self.buf = bytearray(MAXKEYS)
        self.len = 0
        self.wrong = 0
        self.locked_until = 0
        self.locked = False


class Panel:
    def __init__(self, cfg, hal, clock, emit, store=None):
        self.cfg = cfg
        self.store = store
        self.hal = hal
        self.clock = clock
        self.emit_cb = emit
        self.users = Users(cfg)
        self.parts = {}
        for n in cfg.get("partitions", [1]):
            self.parts[n] = Partition(n)
        self.plist = [self.parts[n] for n in cfg.get("partitions", [1])]
        deb = cfg.get("debounce_ms", 30)
        eol = cfg.get("eol", {})
        self.zones = [Z.Zone(zc, eol, deb) for zc in cfg.get("zones", [])]
        self.zone_by_n = {}
        for z in self.zones:
            self.zone_by_n[z.n] = z
            self.parts[z.partition].zones.append(z)
        for p in self.plist:
            p.latched = [0] * (len(p.zones) + 1)
        self.keypads = [Keypad(i + 1, k.get("partition", 1)) for i, k in enumerate(cfg.get("keypads", [{"partition": 1}]))]
        self.entry_delay = cfg.get("entry_delay", 30)
        self.exit_delay = cfg.get("exit_delay", 45)
        self.siren_time = cfg.get("siren_time", 240)
        self.swinger_limit = cfg.get("swinger_limit", 3)
        self.lockout_attempts = cfg.get("lockout_attempts", 5)
        self.lockout_time = cfg.get("lockout_time", 90)
        self.ac_loss_delay = cfg.get("ac_loss_delay", 30)
        self.low_batt = cfg.get("low_battery_mv", 11500)
        self.test_interval = cfg.get("test_interval", 86400)
        self.outs = {}
        self.changed = True          # state changed since last status publish
        # panel troubles
        now = clock.ticks()
        self.ac_ok = True
        self.ac_since = now
        self.batt_low = False
        self.batt_since = now
        self.box_tamper = False
        self.next_test = _dl(now, self.test_interval) if self.test_interval else 0
        self.next_trouble_poll = now
        self.beep_until = 0
        self.restore(now)

    # -- outputs and events -----------------------------------------------
    def out(self, name, value):
        if self.outs.get(name) != value:
            self.outs[name] = value
            self.hal.output(name, value)

    def emit(self, q, code, part=0, zone=0):
        self.emit_cb(q, code, part, zone)

    def set_state(self, p, st):
        if p.state != st:
            if not log_quiet():
                log("STATE", "p%d %s -> %s" % (p.n, p.state, st))
            p.state = st
            self.changed = True
            self.out(p.led, 1 if st in ARMED or st == "pending" or st == "arming" else 0)
            self.save()

    # -- state kept across power loss ----------------------------------------------
    # Partition states and latched alarms, so a panel that loses power comes back
    # armed, with its alarms still held. Two slots in one small file, written in
    # turn: "PS", a save count (4 bytes), per partition its state, arm mode, closing
    # reported, user (2), number latched and the latched zones (2 each, as many as
    # the partition can hold), then CRC-16/ARC. A write cut by power loss spoils
    # only the slot it was writing; restore takes the valid slot with the higher
    # count. The record is built in a buffer made once, into a file kept open, so a
    # state change allocates nothing (JSON, a temporary file and a rename cost about
    # 1 KB each, which is why this is not JSON).
    def save(self):
        f = self.sf
        if f is None:
            return
        r = self.rec
        self.saves += 1
        pack_into(">HI", r, 0, 0x5053, self.saves)
        i = 6
        for p in self.plist:
            pack_into(">BBBHB", r, i, _STATES.index(p.state), _STATES.index(p.arm_mode),
                      p.closed_reported, p.user, p.nlatched)
            i += 6
            for zn in p.latched:
                pack_into(">H", r, i, zn)
                i += 2
        pack_into("<H", r, i, crc16_arc(self.rec_body))
        f.seek((self.saves & 1) * len(r))
        f.write(r)
        f.flush()

    def restore(self, now):
        """Open the state file (made on first boot) and take the partitions' states
        from its newer valid slot."""
        self.sf = None
        self.saves = 0
        if not self.store:
            return
        n = 8
        for p in self.plist:
            n += 6 + 2 * len(p.latched)
        self.rec = bytearray(n)
        self.rec_body = memoryview(self.rec)[:n - 2]
        try:
            f = open(self.store, "r+b")
        except OSError:
            f = open(self.store, "wb")
            f.write(bytes(2 * n))
            f.close()
            f = open(self.store, "r+b")
        self.sf = f
        data = f.read(2 * n)
        rec = None
        for k in (0, 1):
            slot = data[k * n:(k + 1) * n]
            if len(slot) == n and slot[:2] == b"PS" and crc16_arc(slot[:-2]) == unpack_from("<H", slot, n - 2)[0]:
                c = unpack_from(">I", slot, 2)[0]
                if rec is None or c > self.saves:
                    self.saves = c
                    rec = slot
        if rec is None:
            return                               # first boot, or nothing valid: disarmed
        i = 6
        for p in self.plist:
            st, mode, closed, p.user, nl = unpack_from(">BBBHB", rec, i)
            i += 6
            for j in range(len(p.latched)):
                p.latched[j] = unpack_from(">H", rec, i)[0]
                i += 2
            p.nlatched = min(nl, len(p.latched))
            p.arm_mode = _STATES[mode]
            p.closed_reported = closed == 1
            for zn in p.latched[:p.nlatched]:
                z = self.zone_by_n.get(zn)
                if z is not None:
                    z.latched = True
            st = _STATES[st]
            if st == "arming":
                st = p.arm_mode                 # the exit delay had begun: armed
            elif st == "pending":                 # entry delay restarts
                p.deadline = _dl(now, self.entry_delay)
            if st == "triggered":
                p.siren = True                  # cutting the power does not silence it
                p.siren_until = _dl(now, self.siren_time)
            p.state = st
            log("STATE", "p%d restored %s" % (p.n, st))

    # -- main poll ---------------------------------------------------------
    def poll(self, now):
        hal = self.hal
        for z in self.zones:
            if z.poll(now, hal.zone_raw(z)):
                self.on_zone(z, now)
        for kp in self.keypads:
            if kp.locked and _due(now, kp.locked_until):
                kp.locked = False
                kp.wrong = 0
                log("KEYPAD", "%d unlocked" % kp.n)
            k = hal.key(kp.n)
            while k:
                self.on_key(kp, k, now)
                k = hal.key(kp.n)
        siren = False
        for p in self.plist:
            self.poll_partition(p, now)
            siren = siren or p.siren
        self.out("siren", 1 if siren else 0)
        if self.beep_until and _due(now, self.beep_until):
            self.beep_until = 0
        buzz = bool(self.beep_until)
        for p in self.plist:
            if p.state == "pending" or p.state == "arming":
                buzz = True
        self.out("buzzer", 1 if buzz else 0)
        if _due(now, self.next_trouble_poll):
            self.next_trouble_poll = ticks_add(now, 200)
            self.poll_troubles(now)

    def poll_partition(self, p, now):
        if p.state == "arming" and _due(now, p.deadline):
            self.armed(p, now)
        elif p.state == "pending" and _due(now, p.deadline):
            z = self.zone_by_n.get(p.entry_zone)
            if not log_quiet():
                log("ENTRY", "p%d entry delay expired" % p.n)
            self.trigger(p, z, 134, True, now)
        if p.siren and _due(now, p.siren_until):
            p.siren = False
            if not log_quiet():
                log("SIREN", "p%d cut-off" % p.n)

    def armed(self, p, now):
        st = p.arm_mode
        self.set_state(p, st)
        self.emit(3, 401 if st == "armed_away" else 441, p.n, p.user)
        p.closed_reported = True
        # zones still open when the exit delay ends
        for z in p.zones:
            if z.cond == Z.ALARM and not z.bypassed and self.zone_armed(z, st):
                self.burglary(p, z, now)

    def beep(self, now, s):
        self.beep_until = _dl(now, s) or 1

    # -- zones ---------------------------------------------------------------
    def zone_armed(self, z, st):
        if z.type == "interior":
            return st == "armed_away" or (st == "armed_night" and z.night)
        return True

    def on_zone(self, z, now):
        p = self.parts[z.partition]
        c = z.cond
        if not log_quiet():
            log("ZONE", "%d %s" % (z.n, Z.COND_NAMES[c]))
        if z.bypassed:
            return
        if p.walk:
            if not log_quiet():
                log("WALK", "zone %d %s" % (z.n, Z.COND_NAMES[c]))
            self.beep(now, 1)
            return
        if c == Z.TAMPER:
            z._tampered = True
            self.emit(1, 144, p.n, z.n)
            self.beep(now, 2)
            if p.state in ARMED or p.state == "pending":
                self.trigger(p, z, 0, True, now)
            return
        if c == Z.SHORT:
            z._short = True
            self.emit(1, 380, p.n, z.n)
            self.beep(now, 2)
            return
        if c == Z.NORMAL:
            if z._tampered:
                z._tampered = False
                self.emit(3, 144, p.n, z.n)
            if z._short:
                z._short = False
                self.emit(3, 380, p.n, z.n)
            return
        # ALARM
        t = z.type
        if t == "panic":
            if z.latched:
                return
            self.trigger(p, z, 122 if z.silent else 120, not z.silent, now)
            return
        if t == "fire" or t == "medical" or t == "tamper":
            if z.latched:
                return
            audible = t == "fire" or (t == "tamper" and p.state != "disarmed")
            if t == "tamper" and p.state == "disarmed":
                self.emit(1, 137, p.n, z.n)       # trouble, armed or disarmed
                self.beep(now, 2)
                return
            self.trigger(p, z, ALARM_CODE[t], audible, now)
            return
        st = p.state
        if st == "disarmed":
            if p.chime and z.chime:
                if not log_quiet():
                    log("CHIME", "zone %d" % z.n)
                self.beep(now, 1)
            return
        if st == "arming":
            if t == "instant" or t == "perimeter":
                self.burglary(p, z, now)
            return
        armed_mode = p.arm_mode
        if not self.zone_armed(z, armed_mode):
            return
        self.burglary(p, z, now)

    def burglary(self, p, z, now):
        if z.swung:
            return
        z.trips += 1
        if z.trips > self.swinger_limit:
            z.swung = True
            if not log_quiet():
                log("SWINGER", "zone %d shut down" % z.n)
            self.emit(1, 570, p.n, z.n)
            return
        t = z.type
        st = p.state
        if t == "entry_exit" and st != "triggered":
            if st != "pending":
                p.entry_zone = z.n
                p.deadline = _dl(now, self.entry_delay)
                self.set_state(p, "pending")
                if not log_quiet():
                    log("ENTRY", "p%d zone %d entry delay %ds" % (p.n, z.n, self.entry_delay))
            return
        if t == "interior" and st == "pending":
            if not log_quiet():
                log("FOLLOW", "zone %d follows entry" % z.n)
            return
        self.trigger(p, z, ALARM_CODE[t], True, now)

    def trigger(self, p, z, code, audible, now):
        zn = z.n if z else 0
        if code:
            self.emit(1, code, p.n, zn)
        if z is not None:
            z.latched = True
        if not p.holds(zn) and p.nlatched < len(p.latched):
            p.latched[p.nlatched] = zn
            p.nlatched += 1
        if not log_quiet():
            log("ALARM", "p%d zone %d code %d%s" % (p.n, zn, code, "" if audible else " silent"))
        if audible:
            self.set_state(p, "triggered")
            p.siren = True
            p.siren_until = _dl(now, self.siren_time)
        self.changed = True
        self.save()

    # -- keypad ----------------------------------------------------------------
    # keypad.py and troubles.py hold the rest of the methods
    on_key = _keypad.on_key
    command = _keypad.command
    program = _keypad.program
    ready = _keypad.ready
    arm = _keypad.arm
    disarm = _keypad.disarm
    poll_troubles = _troubles.poll_troubles

    # -- status ----------------------------------------------------------------
    def status_json(self, w):
        """The panel's part of the status (protocols/bus_status.py), into JsonOut w."""
        w.begin("partitions")
        for p in self.plist:
            w.put(p.n, p.state)
        w.end()
        w.put("ac", self.ac_ok)
        w.put("battery_low", self.batt_low)
        w.put("tamper", self.box_tamper)
