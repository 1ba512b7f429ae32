# The simulation HAL on the MicroPython unix port. Inputs and outputs live in this
# object; a test drives them through a line-based control socket on 127.0.0.1
# (config sim.control_port; 0 = pick one, printed as "CTRL port N"):
#
#   zone N normal|alarm|tamper|short|ohms R|open|mv V   set a zone loop
#   key K CHARS          type on keypad K          card R NBITS VALUE   Wiegand frame
#   button NAME 0|1      exit / call buttons       door open|closed     door contact (button 'door')
#   tamper 0|1  ac 0|1  battery MV  net up|down    box tamper, mains, battery, network
#   get                  outputs + app status (JSON)        stats   heap and queue
#   inject N [CODE]      queue N events (stress)            wdt_hang  stop feeding
#   event Q CODE P Z     queue one event (a scripted compound, the demo)
#   quit                 clean shutdown
# Every reply is one line: "ok", "ok {json}" or "err ...".
import os
from core.log import log, quiet as log_quiet

from panel.zones import NORMAL, ALARM, TAMPER, SHORT, loop_mv

CONDS = {"normal": NORMAL, "alarm": ALARM, "tamper": TAMPER, "short": SHORT}


class SimHal:  # implements hal.base.Hal (not inherited: RAM)
    name = "sim"

    def __init__(self, cfg):
        self.cfg = cfg
        self.app = None
        self.sim = cfg.get("sim") or {}
        self.dir = cfg.get("state_dir", ".")
        self.raw = {}
        self.zones = {}
        self.keys = {}
        self.cards = {}
        self.buttons = {}
        self.outputs = {}
        self.ac = True
        self.batt = 13200
        self.tamper = False
        self.net = self.sim.get("net", True)
        self.net_gen = 0
        self.quit = False
        self._wdt = 0
        self._fed = 0
        self.server = None

    def attach(self, app):
        self.app = app
        for z in getattr(app, "zones", ()):
            self.zones[z.n] = z
            self.raw[z.n] = z.mv_for(NORMAL)

    # inputs ------------------------------------------------------------------
    def zone_raw(self, zone):
        return self.raw[zone.n]

    def key(self, keypad):
        q = self.keys.get(keypad)
        if q:
            return q.pop(0)
        return None

    def card(self, reader):
        q = self.cards.get(reader)
        if q:
            return q.pop(0)
        return None

    def button(self, name):
        return self.buttons.get(name, 0)

    def ac_ok(self):
        return self.ac

    def battery_mv(self):
        return self.batt

    def box_tamper(self):
        return self.tamper

    def output(self, name, value):
        self.outputs[name] = value
        if not log_quiet():
            log("OUT", "%s %d" % (name, value))

    # network -------------------------------------------------------------------
    def net_ok(self):
        return self.net

    async def open_connection(self, host, port):
        import asyncio
        if not self.net:
            raise OSError(113)       # EHOSTUNREACH
        return await asyncio.open_connection(host, port)

    def udp_socket(self):
        import socket
        if not self.net:
            raise OSError(113)
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    async def net_up(self):
        return True

    def sync_time(self):
        return True                  # the host's clock

    # system ----------------------------------------------------------------------
    def state_path(self, name):
        return self.dir + "/" + name

    def _exists(self, name):
        try:
            os.stat(self.state_path(name))
            return True
        except OSError:
            return False

    def _touch(self, name, on=True):
        if on:
            with open(self.state_path(name), "w") as f:
                f.write("1")
        else:
            try:
                os.remove(self.state_path(name))
            except OSError:
                pass

    def reset_cause(self):
        # The sim keeps markers in the state dir: "running" while up (a kill -9 leaves
        # it: power loss), "wdt" when the simulated watchdog fired.
        if self._exists("wdt"):
            self._touch("wdt", False)
            return "wdt"
        if self._exists("running"):
            return "power_on"      # power was lost: the ESP32 reports a power-on reset
        if self._exists("clean"):
            return "soft"
        return "power_on"

    def booted(self):
        self._touch("clean", False)
        self._touch("running")

    def shutdown(self):
        self._touch("running", False)
        self._touch("clean")

    def wdt_start(self, ms):
        # A hardware watchdog for the sim: a thread that kills the process (like a
        # reset) when not fed for `ms`. It cannot be stopped, as on the ESP32.
        from core.compat import ticks_ms
        self._wdt = ms
        self._fed = ticks_ms()
        try:
            import _thread
        except ImportError:
            return
        _thread.start_new_thread(self._wdt_thread, ())

    def _wdt_thread(self):
        import time
        from core.compat import ticks_ms, ticks_diff
        while True:
            time.sleep_ms(100)
            if ticks_diff(ticks_ms(), self._fed) > self._wdt:
                log("WDT", "expired: reset")
                self._touch("wdt")
                os.system("kill -9 $PPID")
                return

    def wdt_feed(self):
        from core.compat import ticks_ms
        self._fed = ticks_ms()

    # control socket ------------------------------------------------------------------
    async def serve(self):
        import asyncio
        port = self.sim.get("control_port", 0)
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port)
        log("CTRL", "port %d" % port)

    async def _client(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    reply = self.command(line.decode().strip())
                except Exception as e:
                    reply = "err %r" % (e,)
                writer.write((reply + "\n").encode())
                await writer.drain()
        except Exception:
            pass
        try:
            writer.close()
            await writer.wait_closed()
        except Exception:
            pass

    def command(self, line):
        """Apply one control command; returns the reply line."""
        parts = line.split()
        if not parts:
            return "err empty"
        c = parts[0]
        a = parts[1:]
        if c == "zone":
            n = int(a[0])
            z = self.zones[n]
            w = a[1]
            if w in CONDS:
                self.raw[n] = z.mv_for(CONDS[w])
            elif w == "ohms":
                self.raw[n] = loop_mv(int(a[2]), z.pullup, z.vref)
            elif w == "open":
                self.raw[n] = z.vref if z.wiring != "dry" else (1 if z.nc else 0)
            elif w == "mv":
                self.raw[n] = int(a[2])
            else:
                return "err zone state"
        elif c == "key":
            q = self.keys.setdefault(int(a[0]), [])
            for ch in a[1]:
                q.append(ch)
        elif c == "card":
            self.cards.setdefault(int(a[0]), []).append((int(a[1]), int(a[2], 0)))
        elif c == "button":
            self.buttons[a[0]] = int(a[1])
        elif c == "door":
            self.buttons["door"] = 1 if a[0] == "open" else 0
        elif c == "tamper":
            self.tamper = a[0] == "1"
        elif c == "ac":
            self.ac = a[0] == "1"
        elif c == "battery":
            self.batt = int(a[0])
        elif c == "net":
            up = a[0] == "up"
            if up != self.net:
                self.net = up
                self.net_gen += 1
                log("NET", "up" if up else "down")
        elif c == "get":
            import json
            st = self.app.status() if self.app else {}
            return "ok " + json.dumps({"outputs": self.outputs, "status": st})
        elif c == "stats":
            import gc
            gc.collect()
            d = {"mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(),
                 "alloc_max": max(getattr(self.app, "alloc_max", 0), gc.mem_alloc())}
            try:
                import micropython
                d["mem_peak"] = micropython.mem_peak()
            except (ImportError, AttributeError):
                pass
            q = getattr(self.app, "queue", None)
            if q is not None:
                d["pending"] = q.pending
                d["next_seq"] = q.next_seq
                d["dropped"] = q.dropped
            import json
            return "ok " + json.dumps(d)
        elif c == "event":             # queue one event as the app would: Q CODE PART ZONE
            self.app.emit(int(a[0]), int(a[1]), int(a[2]), int(a[3]))
        elif c == "inject":
            n = int(a[0])
            code = int(a[1]) if len(a) > 1 else 602
            for i in range(n):
                self.app.emit(1, code, 0, i % 1000)
        elif c == "meminfo":
            import gc
            import micropython
            gc.collect()
            micropython.mem_info(1)
            micropython.qstr_info()
        elif c == "wdt_hang":
            self.app.hang = True         # the poll loop stops making progress
        elif c == "quit":
            self.quit = True
        else:
            return "err unknown command"
        return "ok"
