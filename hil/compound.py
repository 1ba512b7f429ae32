"""A residential compound on the real firmware: every panel a MicroPython process
(hil.firmware_panel.FirmwarePanel on the sim target), configured as a flat's panel,
and a resident per panel who uses it.

    panels = [FirmwarePanel(account, key, receiver, config=resident_panel_config(account, rnd)[0]) ...]
    compound = FirmwareCompound(panels, mean_gap=8, seed=1)
    compound.start(); ...; await compound.stop()

The resident only does what people do to a panel: types on its keypads (`PIN A`,
`PIN S`, `PIN #`, `P`), opens doors and windows (zone loops through the sim's
control socket), walks past the PIR, presses the panic button, smokes out the smoke
detector, pulls the mains plug, opens the cabinet, cuts a balcony window's loop, lets
the battery run low. Every report is the firmware's own: the state machine decides
(pending -> triggered -> 134, 131 at once, 120 latched until a code resets it, 301
after the AC-loss delay...), the persistent queue keeps it, and the DC-09 reporter
(AES) delivers it. Nothing is injected.

The panel (two partitions; 5 s entry and exit delays, 3 s AC-loss delay so a demo
shows things within a minute):

| zone | partition | type | wiring | what |
| --- | --- | --- | --- | --- |
| 1 | 1 flat | entry_exit | seol | front door (chime) |
| 2 | 1 | perimeter | dry | living-room window |
| 3 | 1 | perimeter | deol | balcony window (an open loop is a sensor tamper, 144) |
| 4 | 1 | interior | dry | hall PIR (follows the entry delay) |
| 5 | 1 | panic | dry | panic button by the bed (24 h, latches) |
| 6 | 1 | fire | seol | smoke detector (24 h, latches) |
| 7 | 2 storage | entry_exit | dry | storage-room door |
| 8 | 2 | interior | dry | storage-room PIR |

Users: 1 owner (both partitions), 2 family (the flat), 8 duress code, 99 installer;
PINs random per panel (seeded), stored as sha256(salt + PIN) like tools/provision.py.
"""
import asyncio
import logging
import random
import secrets

from hil.sim import pin_hash

log = logging.getLogger("jifang.compound")

ENTRY_DELAY = EXIT_DELAY = 5
AC_LOSS_DELAY = 3
SIREN_TIME = 30
DOOR, WINDOW, BALCONY, PIR, PANIC, SMOKE, STORE_DOOR, STORE_PIR = range(1, 9)

ZONES = [
    {"n": DOOR, "type": "entry_exit", "partition": 1, "wiring": "seol", "chime": True, "name": "front door"},
    {"n": WINDOW, "type": "perimeter", "partition": 1, "wiring": "dry", "name": "living-room window"},
    {"n": BALCONY, "type": "perimeter", "partition": 1, "wiring": "deol", "name": "balcony window"},
    {"n": PIR, "type": "interior", "partition": 1, "wiring": "dry", "name": "hall PIR"},
    {"n": PANIC, "type": "panic", "partition": 1, "wiring": "dry", "name": "panic button"},
    {"n": SMOKE, "type": "fire", "partition": 1, "wiring": "seol", "name": "smoke detector"},
    {"n": STORE_DOOR, "type": "entry_exit", "partition": 2, "wiring": "dry", "name": "storage door"},
    {"n": STORE_PIR, "type": "interior", "partition": 2, "wiring": "dry", "name": "storage PIR"},
]


def _pin(rnd):
    return "%04d" % rnd.randint(0, 9999)


def resident_panel_config(account, rnd, poll_ms=10):
    """(firmware config without the reporter, PINs by user number) for one flat."""
    salt = "%016x" % rnd.getrandbits(64)
    pins = {}
    while len(set(pins.values())) < 4:          # four different codes
        pins = {1: _pin(rnd), 2: _pin(rnd), 8: _pin(rnd), 99: _pin(rnd)}
    users = [
        {"n": 1, "pin": pin_hash(salt, pins[1]), "partitions": [1, 2]},
        {"n": 2, "pin": pin_hash(salt, pins[2]), "partitions": [1]},
        {"n": 8, "pin": pin_hash(salt, pins[8]), "partitions": [1, 2], "role": "duress"},
        {"n": 99, "pin": pin_hash(salt, pins[99]), "partitions": [1, 2], "role": "installer"},
    ]
    cfg = {
        "device_id": "panel-" + account, "account": account, "salt": salt,
        "partitions": [1, 2], "keypads": [{"partition": 1}, {"partition": 2}],
        "zones": ZONES, "users": users,
        "entry_delay": ENTRY_DELAY, "exit_delay": EXIT_DELAY, "siren_time": SIREN_TIME,
        "ac_loss_delay": AC_LOSS_DELAY, "test_interval": 0,
        # A condition must hold for two polls at least: debounce >= the poll period.
        "poll_ms": poll_ms, "debounce_ms": max(30, poll_ms + 10),
    }
    return cfg, pins


ARMED = ("armed_away", "armed_home", "armed_night")

# What a resident does, with weights, by the state of the flat's partition.
WHEN_DISARMED = [(30, "leave"), (8, "stay"), (10, "storage"), (3, "panic"), (2, "smoke"),
                 (5, "ac_loss"), (2, "cabinet_tamper"), (2, "sensor_tamper"), (2, "low_battery")]
WHEN_ARMED = [(30, "come_home"), (8, "window_intrusion"), (4, "door_intrusion"), (1, "duress"),
              (2, "panic"), (4, "ac_loss"), (1, "cabinet_tamper"), (8, "storage")]
# Each panel's first scene, so that any few panels show the range within a minute.
SHOWCASE = ["window_intrusion", "panic", "leave", "ac_loss", "door_intrusion", "smoke",
            "stay", "cabinet_tamper", "storage", "sensor_tamper", "come_home", "low_battery"]


class Resident:
    """One flat's people, acting on its panel through the sim's control socket."""

    def __init__(self, panel, pins, rnd):
        self.panel = panel
        self.pins = pins
        self.rnd = rnd

    async def keys(self, chars, keypad=1):
        await self.panel.act("key %d %s" % (keypad, chars))

    async def zone(self, n, state="alarm"):
        await self.panel.act("zone %d %s" % (n, state))

    async def pulse(self, n, low=0.3, high=1.5):
        await self.zone(n, "alarm")
        await asyncio.sleep(self.rnd.uniform(low, high))
        await self.zone(n, "normal")

    async def states(self):
        st = (await self.panel.act("get"))["status"]["partitions"]
        return st.get("1", "disarmed"), st.get("2", "disarmed")

    def code(self, who=None):
        return self.pins[who or self.rnd.choice((1, 1, 2))]

    async def settle(self):
        """Wait while a partition is counting an exit or entry delay."""
        for _ in range(40):
            flat, store = await self.states()
            if flat not in ("arming", "pending") and store not in ("arming", "pending"):
                return flat, store
            await asyncio.sleep(0.5)
        return flat, store

    # -- scenes ---------------------------------------------------------------------
    async def scene(self, name, flat, store):
        rnd = self.rnd
        if name in ("window_intrusion", "door_intrusion", "come_home", "duress") and flat not in ARMED:
            await self.leave("A")                    # they need an armed flat: arm it first
        if name == "leave":
            await self.leave("A")
        elif name == "stay":
            await self.leave("S")                    # armed home: 441
        elif name == "come_home":                    # door, hall, code within the entry delay
            await self.pulse(DOOR)
            if rnd.random() < 0.5:
                await self.pulse(PIR)
            await self.keys(self.code() + "#")
        elif name == "duress":                       # forced to disarm: silent 121 and 401
            await self.pulse(DOOR)
            await self.keys(self.pins[8] + "#")
        elif name == "window_intrusion":             # perimeter while armed: 131 at once
            await self.pulse(WINDOW if rnd.random() < 0.7 else BALCONY, 1, 4)
        elif name == "door_intrusion":               # no code within the entry delay: 134
            await self.pulse(DOOR)
            await asyncio.sleep(rnd.uniform(0.5, 2))
            await self.pulse(PIR)                    # follower: nothing until the delay ends
            await asyncio.sleep(ENTRY_DELAY + 1)
        elif name == "panic":                        # 120, latched until a code resets it
            if rnd.random() < 0.75:
                await self.pulse(PANIC, 0.2, 1)
            else:
                await self.keys("P")                 # the keypad's panic key
        elif name == "smoke":                        # 110, latched
            await self.pulse(SMOKE, 2, 5)
        elif name == "ac_loss":                      # 301 after the delay; restore on return
            await self.panel.act("ac 0")
            await asyncio.sleep(rnd.uniform(AC_LOSS_DELAY + 2, AC_LOSS_DELAY + 12))
            await self.panel.act("ac 1")
        elif name == "cabinet_tamper":               # 137 zone 0 (an alarm when armed)
            await self.panel.act("tamper 1")
            await asyncio.sleep(rnd.uniform(2, 6))
            await self.panel.act("tamper 0")
        elif name == "sensor_tamper":                # cut balcony loop: 144 (and restore)
            await self.zone(BALCONY, "tamper")
            await asyncio.sleep(rnd.uniform(2, 6))
            await self.zone(BALCONY, "normal")
        elif name == "low_battery":                  # 302 after 5 s low; restore after 5 s ok
            await self.panel.act("battery 11200")
            await asyncio.sleep(rnd.uniform(7, 12))
            await self.panel.act("battery 13200")
        elif name == "storage":
            if store == "disarmed":
                await self.keys(self.pins[1] + "A", keypad=2)
                await asyncio.sleep(1)
                await self.pulse(STORE_DOOR, 0.5, 2)     # leaving during the exit delay
            elif store in ARMED:
                await self.pulse(STORE_DOOR, 0.5, 2)     # entry delay, then the code
                await self.keys(self.pins[1] + "#", keypad=2)
            else:                                        # triggered: reset it
                await self.keys(self.pins[1] + "#", keypad=2)

    async def leave(self, mode):
        await self.keys(self.code() + mode)
        await asyncio.sleep(self.rnd.uniform(0.5, 2))
        await self.pulse(DOOR, 0.5, 1.5)             # out of the door during the exit delay
        await asyncio.sleep(EXIT_DELAY)

    async def reset(self, flat, store):
        """Someone comes and keys the code on a partition in alarm: 401 opening (when
        it was armed) and the restores of its latched alarms."""
        if flat == "triggered":
            await self.keys(self.code() + "#")
        if store == "triggered":
            await self.keys(self.pins[1] + "#", keypad=2)

    async def live(self, first, mean_gap):
        rnd = self.rnd
        await asyncio.to_thread(self.panel.wait_ready)
        await asyncio.sleep(rnd.uniform(0, mean_gap))
        name = first
        while True:
            try:
                flat, store = await self.settle()
                if flat == "triggered" or store == "triggered":
                    await self.reset(flat, store)    # the guard or the family answers the alarm
                else:
                    if name is None:
                        table = WHEN_ARMED if flat in ARMED else WHEN_DISARMED
                        name = rnd.choices([s for _, s in table], [w for w, _ in table])[0]
                    log.debug("panel %s: %s", self.panel.account, name)
                    await self.scene(name, flat, store)
                    name = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:                 # a panel that is down or restarting
                log.info("panel %s: resident waits (%r)", self.panel.account, exc)
                name = None
            await asyncio.sleep(rnd.expovariate(1 / mean_gap))


class FirmwareCompound:
    """A compound of firmware panels, each with a resident (like panelsim.Compound).
    A panel process that dies (a watchdog reset) is booted again, as a board would."""

    def __init__(self, panels, pins, mean_gap=8.0, seed=None):
        self.panels = panels
        self.pins = pins                  # {account: {user: PIN}}
        self.mean_gap = mean_gap
        self.seed = seed if seed is not None else secrets.randbits(32)
        self._tasks = []

    def start(self):
        for i, panel in enumerate(self.panels):
            panel.start()
            rnd = random.Random("%s/%s" % (self.seed, panel.account))
            resident = Resident(panel, self.pins[panel.account], rnd)
            self._tasks.append(asyncio.create_task(resident.live(SHOWCASE[i % len(SHOWCASE)], self.mean_gap),
                                                   name="resident-" + panel.account))
        self._tasks.append(asyncio.create_task(self._watch(), name="compound-watch"))

    async def _watch(self):
        while True:
            await asyncio.sleep(2)
            for panel in self.panels:
                # exit 0: stopped by quit or by a Ctrl-C that reached it too; any other
                # end (the sim watchdog's kill -9, a crash) is a board that resets.
                if not panel.stopping and not panel.alive() and panel.dut.proc.returncode not in (0, -2):
                    log.warning("panel %s stopped (exit %s): booting it again",
                                panel.account, panel.dut.proc.returncode)
                    await asyncio.to_thread(panel.start)

    async def stop(self):
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.gather(*(panel.stop() for panel in self.panels))
