# The HAL interface. Inputs are polled (the app calls them every poll_ms), outputs
# are set only on change. Sockets go through the HAL so the sim can pull the network.
# This class is the reference for a new target (qemu, another board): hal.sim and
# hal.esp32 implement every method without inheriting it, because on the device
# each inherited method object costs heap.


class Hal:
    name = "base"

    def attach(self, app):
        """Called once with the app (zones known) before polling starts."""
        self.app = app

    # inputs
    def zone_raw(self, zone):
        """Raw reading of a zone: 0/1 for a dry contact, millivolts for an EOL loop."""
        raise NotImplementedError

    def key(self, keypad):
        """Next key pressed on keypad n ('0'-'9', '*', '#', 'A', 'S', 'N', 'P'), or None."""
        return None

    def card(self, reader):
        """(nbits, raw value) of a Wiegand frame read, or None."""
        return None

    def button(self, name):
        """Level of a named push button (exit, call): 1 pressed."""
        return 0

    def ac_ok(self):
        return True

    def battery_mv(self):
        return 13200

    def box_tamper(self):
        return False

    # outputs: siren, buzzer, strobe, door (relay), led_armed_N, led_trouble ...
    def output(self, name, value):
        pass

    # network
    def net_ok(self):
        return True

    async def open_connection(self, host, port):
        import asyncio
        return await asyncio.open_connection(host, port)

    def udp_socket(self):
        import socket
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    async def net_up(self):
        """Bring the network up (WiFi/LAN on the ESP32); returns when up."""
        return True

    # system
    def sync_time(self):
        """Set the RTC (NTP on the ESP32; the sim uses the host clock)."""
        return True

    def wdt_start(self, ms):
        pass

    def wdt_feed(self):
        pass

    def reset_cause(self):
        """'power_on' | 'wdt' | 'soft' | 'hard' | 'deepsleep' | 'brownout' | 'unknown'"""
        return "power_on"

    def state_path(self, name):
        return name

    def booted(self):
        """Called once the app runs (markers for the next boot's reset cause)."""
        pass

    def shutdown(self):
        pass

    async def serve(self):
        """Target-specific background work (the sim's control socket)."""
        return None
