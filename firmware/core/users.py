# PINs are stored as sha256(salt + PIN) in hex; the salt is per device (config
# "salt", from the provisioning CSV; NVS on the ESP32). The entered PIN is hashed
# and compared in constant time; PINs never reach the log.
from protocols.crc import pin_hash   # the one definition, shared with the tools


def _same(a, b):
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= ord(a[i]) ^ ord(b[i])
    return d == 0


class User:
    def __init__(self, uc):
        self.n = uc["n"]
        self.pin = uc.get("pin", "")             # sha256 hex, never the PIN
        self.card = uc.get("card")               # card number (Wiegand), intercom
        self.role = uc.get("role", "user")       # user | installer | duress
        self.partitions = uc.get("partitions", [1])
        self.valid_from = uc.get("valid_from", 0)      # epoch seconds (device epoch)
        self.valid_to = uc.get("valid_to", 0)          # 0 = no end
        self.hours = uc.get("hours")             # [start_minute, end_minute] of the day, UTC

    def valid_at(self, t, tm=None):
        if self.valid_from and t < self.valid_from:
            return False
        if self.valid_to and t > self.valid_to:
            return False
        if self.hours and tm is not None:
            m = tm[3] * 60 + tm[4]
            a, b = self.hours
            if a <= b:
                return a <= m < b
            return m >= a or m < b
        return True


class Users:
    def __init__(self, cfg):
        self.salt = cfg.get("salt", "")
        self.users = [User(u) for u in cfg.get("users", [])]

    def by_pin(self, pin):
        if not pin:
            return None
        h = pin_hash(self.salt, pin)
        found = None
        for u in self.users:          # look at all of them: same time for any PIN
            if u.pin and _same(u.pin, h):
                found = u
        return found

    def by_card(self, number):
        for u in self.users:
            if u.card is not None and u.card == number:
                return u
        return None
