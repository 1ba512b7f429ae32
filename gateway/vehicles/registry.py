"""The vehicle registry: which terminals may register, and their authentication codes.

A terminal registers (0x0100) with its phone number, terminal id and plate; the
platform answers 0x8100 with a result code from the standard and, on success, an
authentication code that the terminal presents (0x0102) on every later
connection.

The code is HMAC-SHA256(secret, phone|terminal id), truncated: it is the same
after a restart of the center (no state file to lose or corrupt), different for
every terminal, and useless without the secret. A terminal swapped into the
vehicle has another terminal id, so it gets another code and the old one stops
working. Codes are compared in constant time and never logged.
"""
import hashlib
import hmac
from dataclasses import dataclass, field

from protocols.jt808 import REGISTER_RESULTS

RESULT_OK = 0
RESULT_NO_SUCH_VEHICLE = 2
RESULT_NO_SUCH_TERMINAL = 4
VEHICLE_KINDS = ("escort", "hazmat", "other")


def normalise_phone(phone):
    """The registry's key: the header's digits without leading zeros, so a 2013
    terminal (12 digits) and a 2019 one (20 digits) with the same SIM number are
    the same vehicle."""
    return str(phone).lstrip("0") or "0"


@dataclass
class Vehicle:
    phone: str                     # SIM number as the terminal puts it in the header
    plate: str
    kind: str = "other"            # escort | hazmat | other: which rules apply
    account: str = ""              # the Event account; default: the phone digits
    terminal_id: str = ""          # "" = accept any terminal id for this phone
    plate_color: int | None = None
    max_speed_kmh: float | None = None   # overrides the fleet default
    route: str = ""                # corridor geofence the vehicle must keep to
    site: dict = field(default_factory=dict)

    def __post_init__(self):
        self.phone = normalise_phone(self.phone)
        self.account = (self.account or self.phone).upper()
        if not self.site:
            self.site = {"site": self.plate, "address": "", "contact": "", "type": "vehicle/" + self.kind}


class Registry:
    def __init__(self, vehicles, secret):
        if not secret:
            raise ValueError("an authentication secret is required")
        self._secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        self.by_phone = {}
        self.by_account = {}
        # Terminal ids seen at registration, for vehicles whose terminal id is not
        # configured. In memory only: after a restart of the center such a
        # terminal is refused authentication and registers again, as the
        # standard expects of a terminal whose code is refused.
        self._registered_ids = {}
        for v in vehicles:
            self.by_phone[v.phone] = v
            self.by_account[v.account] = v

    def vehicle(self, phone):
        return self.by_phone.get(normalise_phone(phone))

    def auth_code(self, vehicle, terminal_id):
        mac = hmac.new(self._secret, ("%s|%s" % (vehicle.phone, terminal_id)).encode(), hashlib.sha256)
        return mac.hexdigest()[:16].upper()

    def register(self, phone, registration):
        """(result, auth code or None) for a 0x0100 body from this phone."""
        vehicle = self.vehicle(phone)
        if vehicle is None or normalise_plate(registration.plate) != normalise_plate(vehicle.plate):
            # An unknown SIM, or a known SIM claiming another vehicle's plate.
            return RESULT_NO_SUCH_VEHICLE, None
        if vehicle.terminal_id and registration.terminal_id.strip() != vehicle.terminal_id:
            return RESULT_NO_SUCH_TERMINAL, None
        terminal_id = registration.terminal_id.strip()
        if not vehicle.terminal_id:
            self._registered_ids.setdefault(vehicle.phone, set()).add(terminal_id)
        return RESULT_OK, self.auth_code(vehicle, terminal_id)

    def authenticate(self, phone, code):
        """The Vehicle when `code` is one this registry issued to the phone, else None.
        0x0102 does not repeat the terminal id, so the code is checked against the
        configured terminal id, else against those seen at registration."""
        vehicle = self.vehicle(phone)
        if vehicle is None or not code:
            return None
        candidates = [vehicle.terminal_id] if vehicle.terminal_id else self._registered_ids.get(vehicle.phone, ())
        for terminal_id in candidates:
            if hmac.compare_digest(self.auth_code(vehicle, terminal_id), code.strip().upper()):
                return vehicle
        return None


def normalise_plate(plate):
    return "".join(plate.split()).upper()


def describe_register_result(result):
    return REGISTER_RESULTS.get(result, str(result))
