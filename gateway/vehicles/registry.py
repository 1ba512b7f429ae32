"""The vehicle registry: which terminals may register, and their authentication codes.

A terminal registers (0x0100) with its phone number, terminal id and plate; the
platform answers 0x8100 with a result code from the standard and, on success, an
authentication code that the terminal presents (0x0102) on every later
connection.

Registration answers only for vehicles listed in the fleet, and only once: the
code is 128 random bits (secrets.token_hex), drawn at registration, kept by the
center only as its SHA-256 (a copy of the file cannot log in), and nothing about
it can be computed from the SIM number, plate or terminal id, which are printed
on the vehicle and sent in clear. Codes used to be an HMAC of those identifiers:
whoever had the configured secret (an example one, in practice) could log in
as any vehicle and have the real terminal's session closed.

Once a terminal holds a code, a second registration for that vehicle is refused
(0x8100 result 3 "terminal already registered" for the same terminal id, 1
"vehicle already registered" for another) until an operator releases it
(`release`: the console's POST /api/vehicles/{account}/release, or `jifang
vehicles release`), which forgets the code and opens registration for
`release_window` seconds; a terminal that unregisters itself (0x0003, on its
authenticated link) releases itself the same way. A terminal that lost its code
(reflashed, swapped) is therefore an operator's decision, recorded in the access
register, not something anyone on the network can claim.

Registrations live in a small SQLite file (`path`; None keeps them in memory,
for tests), read afresh on every registration and authentication so a release
written by another process (the CLI) is seen at once; both are rare (once per
connection), and a WAL read costs microseconds. A registration lost in a crash
(synchronous=NORMAL) costs nothing: the terminal's code is refused, it
registers again, and the vehicle has no registration to protect yet.
"""
import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass, field

from protocols.jt808 import REGISTER_RESULTS

RESULT_OK = 0
RESULT_VEHICLE_REGISTERED = 1
RESULT_NO_SUCH_VEHICLE = 2
RESULT_TERMINAL_REGISTERED = 3
RESULT_NO_SUCH_TERMINAL = 4
VEHICLE_KINDS = ("escort", "hazmat", "other")
CODE_BYTES = 16                    # 128 bits, 32 hex characters (the 0x8100 code is a STRING)
DEFAULT_RELEASE_WINDOW = 3600.0    # s a release keeps registration open

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminals (
    phone TEXT PRIMARY KEY,        -- normalised SIM number (normalise_phone)
    terminal_id TEXT NOT NULL,     -- as registered
    code_sha256 TEXT,              -- hex SHA-256 of the code; NULL once released
    registered_at_ms INTEGER NOT NULL,
    released_at_ms INTEGER,
    released_by TEXT,
    release_reason TEXT
)
"""


def normalise_phone(phone):
    """The registry's key: the header's digits without leading zeros, so a 2013
    terminal (12 digits) and a 2019 one (20 digits) with the same SIM number are
    the same vehicle."""
    return str(phone).lstrip("0") or "0"


def code_digest(code):
    return hashlib.sha256(code.strip().encode("utf-8", "replace")).hexdigest()


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
    """`path`: the registrations' SQLite file, None (in memory), or the cluster's
    postgresql:// URL (gateway/vehicles/pgregistry.py: shared by the nodes, with
    the sessions; `node` names this one). `blocking`: calls are database round trips,
    to be run off the event loop."""

    def __init__(self, vehicles, path=None, release_window=DEFAULT_RELEASE_WINDOW, clock=time.time, node=None):
        from gateway.dburl import is_postgres_url
        self.path = path
        self.release_window = release_window
        self.clock = clock
        self.by_phone = {}
        self.by_account = {}
        for v in vehicles:
            self.by_phone[v.phone] = v
            self.by_account[v.account] = v
        self.shared = None
        if is_postgres_url(path):
            from gateway.vehicles.pgregistry import PgRegistry
            self.shared = PgRegistry(path, node or "node", release_window, clock).bind(self)
            self._db = None
        else:
            self._db = open_registrations(path)
        self.blocking = self.shared is not None

    def close(self):
        (self.shared or self._db).close()

    def vehicle(self, phone):
        return self.by_phone.get(normalise_phone(phone))

    def _row(self, vehicle):
        return self._db.execute("SELECT terminal_id, code_sha256, registered_at_ms, released_at_ms FROM terminals"
                                " WHERE phone = ?", (vehicle.phone,)).fetchone()

    def register(self, phone, registration, alive=False):
        """(result, auth code or None) for a 0x0100 body from this phone. `alive`:
        the vehicle has an authenticated session right now."""
        if self.shared is not None:
            return self.shared.register(phone, registration, alive)
        vehicle = self.vehicle(phone)
        if vehicle is None or normalise_plate(registration.plate) != normalise_plate(vehicle.plate):
            # An unknown SIM, or a known SIM claiming another vehicle's plate.
            return RESULT_NO_SUCH_VEHICLE, None
        terminal_id = registration.terminal_id.strip()
        if vehicle.terminal_id and terminal_id != vehicle.terminal_id:
            return RESULT_NO_SUCH_TERMINAL, None
        row = self._row(vehicle)
        open_for_registration = row is None or (
            row[1] is None and row[3] is not None and self.clock() * 1000 - row[3] <= self.release_window * 1000)
        if alive or not open_for_registration:
            same = row is None or row[0] == terminal_id
            return (RESULT_TERMINAL_REGISTERED if same else RESULT_VEHICLE_REGISTERED), None
        code = secrets.token_hex(CODE_BYTES).upper()
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO terminals (phone, terminal_id, code_sha256, registered_at_ms)"
                             " VALUES (?, ?, ?, ?)", (vehicle.phone, terminal_id, code_digest(code),
                                                      int(self.clock() * 1000)))
        return RESULT_OK, code

    def authenticate(self, phone, code):
        """The Vehicle when `code` is the one issued at its registration, else None."""
        if self.shared is not None:
            return self.shared.authenticate(phone, code)
        vehicle = self.vehicle(phone)
        if vehicle is None or not code:
            return None
        row = self._row(vehicle)
        if row is None or row[1] is None:
            return None
        return vehicle if hmac.compare_digest(row[1], code_digest(code)) else None

    def release(self, account, by, reason):
        """Forget the vehicle's code and open its registration for release_window
        seconds. Returns what was released (a dict); LookupError for an account
        not in the fleet."""
        vehicle = self.by_account.get(str(account).upper())
        if vehicle is None:
            raise LookupError("no vehicle %s in the fleet" % account)
        if self.shared is not None:
            return self.shared.release(vehicle, by, reason)
        return release_registration(self._db, vehicle, by, reason, self.clock())

    def registrations(self):
        """Every vehicle with its registration state, for the CLI and the console."""
        return list_registrations(self.shared or self._db, self.by_account.values(), self.clock(), self.release_window)


def open_registrations(path):
    db = sqlite3.connect(str(path) if path is not None else ":memory:", check_same_thread=False)
    if path is not None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=2000")
    db.execute(SCHEMA)
    return db


def release_registration(db, vehicle, by, reason, now):
    row = db.execute("SELECT terminal_id, code_sha256 FROM terminals WHERE phone = ?", (vehicle.phone,)).fetchone()
    at_ms = int(now * 1000)
    with db:
        if row is None:
            db.execute("INSERT INTO terminals (phone, terminal_id, code_sha256, registered_at_ms, released_at_ms,"
                       " released_by, release_reason) VALUES (?, '', NULL, ?, ?, ?, ?)",
                       (vehicle.phone, at_ms, at_ms, by, reason))
        else:
            db.execute("UPDATE terminals SET code_sha256 = NULL, released_at_ms = ?, released_by = ?,"
                       " release_reason = ? WHERE phone = ?", (at_ms, by, reason, vehicle.phone))
    return {"account": vehicle.account, "phone": vehicle.phone, "plate": vehicle.plate,
            "terminal_id": row[0] if row else "", "had_code": bool(row and row[1]), "released_at_ms": at_ms,
            "released_by": by}


def list_registrations(db, vehicles, now, release_window):
    if hasattr(db, "rows"):                   # the cluster's (PgRegistry)
        rows = {r[0]: r for r in db.rows()}
    else:
        rows = {r[0]: r for r in db.execute("SELECT phone, terminal_id, code_sha256, registered_at_ms, released_at_ms,"
                                            " released_by FROM terminals")}
    out = []
    for v in sorted(vehicles, key=lambda v: v.account):
        r = rows.get(v.phone)
        if r is None:
            state = "unregistered"
        elif r[2] is not None:
            state = "registered"
        elif now * 1000 - r[4] <= release_window * 1000:
            state = "released"
        else:
            state = "release expired"
        out.append({"account": v.account, "phone": v.phone, "plate": v.plate, "state": state,
                    "terminal_id": r[1] if r else "", "registered_at_ms": r[3] if r else None,
                    "released_at_ms": r[4] if r else None, "released_by": r[5] if r else None})
    return out


def normalise_plate(plate):
    return "".join(plate.split()).upper()


def describe_register_result(result):
    return REGISTER_RESULTS.get(result, str(result))
