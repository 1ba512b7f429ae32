# The building intercom (door station): calls by room number over MQTT, access by
# PIN or Wiegand card with per-user validity, the door relay, and door monitoring.
#
# Keypad: ROOM #  call a room (0 # or G calls the guard station); * PIN #  open with
# a PIN; # alone during a call hangs up. The "call" button calls the guard.
# Call signalling (JSON, QoS 0; topics in protocols/bus.py), prefix = config mqtt.prefix:
#   door -> <prefix>/room/<room>/call (or <prefix>/guard/call):
#           {"op": "ring"|"hangup"|"cancel", "door": id, "call": n}
#   unit -> <prefix>/door/<id>/call: {"op": "answer"|"reject"|"busy"|"hangup"|"open", "call": n}
# States: idle, ringing (ring_timeout s), talking (talk_timeout s).
# Access: granted -> door relay pulse (door_pulse_ms) and 422 (user in the zone
# field); refused -> 421; duress PIN -> the door opens as usual and a silent 121 is
# reported. Door contact: opening without a grant or exit request -> forced (423);
# open longer than held_open s -> held open (426); restores when it closes.
# Cabinet tamper -> 137. Events go through the same queue and reporter as a panel's.
import json
from core.compat import ticks_add, ticks_diff
from core.log import log
from core.users import Users
from intercom import wiegand
from protocols import bus

IDLE = "idle"
RINGING = "ringing"
TALKING = "talking"


def _dl(now, ms):
    return ticks_add(now, ms)


def _due(now, t):
    return ticks_diff(now, t) >= 0


class Intercom:
    def __init__(self, cfg, hal, clock, emit):
        self.cfg = cfg
        self.hal = hal
        self.clock = clock
        self.emit_cb = emit
        self.users = Users(cfg)
        self.id = cfg.get("device_id", "door1")
        ic = cfg.get("intercom") or {}
        self.pulse = ic.get("door_pulse_ms", 3000)
        self.grace = ic.get("grant_window_ms", 10000)
        self.held_open = ic.get("held_open", 30) * 1000
        self.ring_timeout = ic.get("ring_timeout", 30) * 1000
        self.talk_timeout = ic.get("talk_timeout", 120) * 1000
        self.lockout_attempts = cfg.get("lockout_attempts", 5)
        self.prefix = (cfg.get("mqtt") or {}).get("prefix", bus.DEFAULT_PREFIX)
        self.zones = ()
        self.publish = None          # set by main: f(topic, payload, retain=False)
        self.outs = {}
        self.buf = bytearray(16)
        self.blen = 0
        self.call_state = IDLE
        self.call_id = 0
        self.call_to = None
        self.call_deadline = 0
        self.relay_until = 0
        self.granted_until = 0
        self.door_open = False
        self.door_cand = 0
        self.door_since = 0
        self.door_opened_at = 0
        self.forced = False
        self.held = False
        self.tamper = False
        self.wrong = 0
        self.call_btn = 0
        self.exit_btn = 0
        self.changed = True

    def out(self, name, value):
        if self.outs.get(name) != value:
            self.outs[name] = value
            self.hal.output(name, value)

    def emit(self, q, code, part=0, zone=0):
        self.emit_cb(q, code, part, zone)

    # -- polling -------------------------------------------------------------------
    def poll(self, now):
        hal = self.hal
        k = hal.key(1)
        while k:
            self.on_key(k, now)
            k = hal.key(1)
        c = hal.card(1)
        while c:
            self.on_card(c[0], c[1], now)
            c = hal.card(1)
        b = hal.button("call")
        if b and not self.call_btn:
            self.call("guard", now)
        self.call_btn = b
        b = hal.button("exit")
        if b and not self.exit_btn:
            log("EXIT", "request to exit")
            self.open_door(now)
        self.exit_btn = b
        self.poll_door(now, hal.button("door"))
        t = hal.box_tamper()
        if t != self.tamper:
            self.tamper = t
            self.emit(1 if t else 3, 137, 0, 0)
            log("TAMPER", "open" if t else "closed")
            self.changed = True
        if self.relay_until and _due(now, self.relay_until):
            self.relay_until = 0
            self.out("door", 0)
        if self.call_state != IDLE and _due(now, self.call_deadline):
            if self.call_state == RINGING:
                log("CALL", "timeout")
                self._signal("cancel")
            else:
                log("CALL", "talk time over")
                self._signal("hangup")
            self.end_call()

    def poll_door(self, now, level):
        if level != self.door_cand:
            self.door_cand = level
            self.door_since = now
        elif bool(level) != self.door_open and ticks_diff(now, self.door_since) >= 30:
            self.door_open = bool(level)
            self.changed = True
            if self.door_open:
                self.door_opened_at = now
                if self.granted_until and not _due(now, self.granted_until):
                    log("DOOR", "opened")
                else:
                    self.forced = True
                    log("DOOR", "forced")
                    self.emit(1, 423, 0, 0)
                    self.out("buzzer", 1)
            else:
                log("DOOR", "closed")
                self.granted_until = 0
                if self.forced:
                    self.forced = False
                    self.emit(3, 423, 0, 0)
                if self.held:
                    self.held = False
                    self.emit(3, 426, 0, 0)
                self.out("buzzer", 0)
        if self.door_open and not self.held and not self.forced and ticks_diff(now, self.door_opened_at) >= self.held_open:
            self.held = True
            log("DOOR", "held open")
            self.emit(1, 426, 0, 0)
            self.out("buzzer", 1)

    def open_door(self, now):
        self.out("door", 1)
        self.relay_until = _dl(now, self.pulse) or 1
        self.granted_until = _dl(now, self.pulse + self.grace) or 1
        log("DOOR", "release %dms" % self.pulse)

    # -- access --------------------------------------------------------------------
    def access(self, u, how, now):
        if u is None:
            log("ACCESS", "denied %s" % how)
            self.emit(1, 421, 0, 0)
            self.wrong += 1
            if self.wrong == self.lockout_attempts:
                self.emit(1, 461, 0, 0)
            return
        if not u.valid_at(self.clock.time(), self.clock.gmtime()):
            log("ACCESS", "denied %s user %d outside validity" % (how, u.n))
            self.emit(1, 421, 0, u.n)
            return
        self.wrong = 0
        if u.role == "duress":
            self.emit(1, 121, 0, u.n)           # silent: the door opens as usual
        log("ACCESS", "granted %s user %d" % (how, u.n))
        self.emit(1, 422, 0, u.n)
        self.open_door(now)

    def on_card(self, nbits, value, now):
        n = wiegand.decode(nbits, value)
        if n is None:
            log("CARD", "bad frame %d bits" % nbits)
            return
        self.access(self.users.by_card(n), "card", now)

    def on_key(self, k, now):
        if k == "G":
            self.blen = 0
            self.call("guard", now)
            return
        if k == "#" or k == "C":
            s = bytes(self.buf[:self.blen]).decode()
            self.blen = 0
            if s.startswith("*"):
                self.access(self.users.by_pin(s[1:]), "pin", now)
            elif s == "":
                if self.call_state != IDLE:
                    log("CALL", "hangup by door")
                    self._signal("hangup")
                    self.end_call()
            elif s == "0":
                self.call("guard", now)
            else:
                self.call(s, now)
            return
        if self.blen < len(self.buf):
            self.buf[self.blen] = ord(k)
            self.blen += 1

    # -- calls -----------------------------------------------------------------------
    def _signal(self, op):
        if self.publish and self.call_to is not None:
            self.publish(bus.call_topic(self.prefix, self.call_to), json.dumps({"op": op, "door": self.id, "call": self.call_id}))

    def call(self, to, now):
        if self.call_state != IDLE:
            log("CALL", "busy: already calling %s" % self.call_to)
            return
        if not self.publish:
            log("CALL", "no MQTT link")
            return
        self.call_id += 1
        self.call_to = to
        self.call_state = RINGING
        self.call_deadline = _dl(now, self.ring_timeout)
        self._signal("ring")
        log("CALL", "ringing %s" % to)
        self.out("led_call", 1)
        self.changed = True

    def end_call(self):
        self.call_state = IDLE
        self.call_to = None
        self.out("led_call", 0)
        self.changed = True

    def on_mqtt(self, topic, payload):
        try:
            m = json.loads(payload)
        except ValueError:
            return
        if m.get("call") != self.call_id:
            return
        op = m.get("op")
        now = self.clock.ticks()
        if op == "open" and self.call_state != IDLE:
            log("ACCESS", "granted remote %s" % self.call_to)
            self.emit(1, 422, 0, 0)
            self.open_door(now)
            return
        if self.call_state == RINGING and op == "answer":
            self.call_state = TALKING
            self.call_deadline = _dl(now, self.talk_timeout)
            log("CALL", "answered")
            self.changed = True
        elif self.call_state != IDLE and op in ("reject", "busy", "hangup"):
            log("CALL", {"reject": "rejected", "busy": "busy", "hangup": "hangup by unit"}[op])
            self.end_call()

    def subscriptions(self):
        return [bus.door_topic(self.prefix, self.id)]

    def status_json(self, w):
        """The door station's part of the status (protocols/bus_status.py), into JsonOut w."""
        w.put("call", self.call_state)
        w.put("door", "open" if self.door_open else "closed")
        w.put("forced", self.forced)
        w.put("held", self.held)
        w.put("tamper", self.tamper)
