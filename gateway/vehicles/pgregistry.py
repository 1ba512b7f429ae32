"""JT/T 808 registrations and sessions shared by the cluster's nodes (cluster mode:
the registrations live in the log's PostgreSQL database, schema `jt808`).

A terminal registered on node A authenticates on node B: `terminals` holds the
same rows as the SQLite file (gateway/vehicles/registry.py: the SHA-256 of a
random code, the operator's release), read afresh on every registration and
authentication as there.

Whether a vehicle's session is alive is decided cluster-wide through `sessions`:
one row per vehicle with an authenticated session, naming the node that holds its
connection.

  phone          the vehicle (normalised SIM number)
  node           the node holding the connection
  since_ms       when that node authenticated it (wall clock)
  renewed_at_ms  the holder's last renewal: every `renew_s` each node renews the
                 rows of the sessions it holds (one statement for all of them)

- A row is alive while renewed within `ttl_s` (default 3 renewals): a node that
  dies (kill -9, power cut) stops renewing, and its vehicles are free to log in
  elsewhere `ttl_s` later at most; their terminals reconnect to another node
  (their backup center) meanwhile and are authenticated there.
- Registration (0x0100) is refused ("terminal already registered") while the
  vehicle's session is alive on any node, as on one node.
- Authentication (0x0102) with the right code on node B while node A holds a live
  session: B takes the session (its row now names B) and A, at its next renewal,
  sees it lost the row and closes its connection. On one node the old link is
  probed (0x8201) and a login while it answers is refused; across nodes B cannot
  probe A's link until the bus routes downlinks to the holding node (issue 12,
  step 2), so the newest authenticated login wins: a terminal that reconnected to
  another node is never locked out behind a half-open link (its alarms must get
  through), at the price that a clone holding a stolen code can take the session
  over (each take-over is logged on both nodes: "session moved to node ...").
- A node's clock only has to agree with the others' to well under `ttl_s` (NTP).

Every call is a blocking round trip: the JT/T 808 server runs them off its event
loop (`blocking = True`), so a slow or restarting database never delays the
receivers' ACKs. A psycopg pool replaces connections the server dropped.
"""
import asyncio
import hmac
import logging
import secrets
import time

from gateway.vehicles.registry import (
    CODE_BYTES,
    DEFAULT_RELEASE_WINDOW,
    RESULT_NO_SUCH_TERMINAL,
    RESULT_NO_SUCH_VEHICLE,
    RESULT_OK,
    RESULT_TERMINAL_REGISTERED,
    RESULT_VEHICLE_REGISTERED,
    code_digest,
    normalise_phone,
    normalise_plate,
)

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS jt808;
CREATE TABLE IF NOT EXISTS jt808.terminals (
    phone text PRIMARY KEY,
    terminal_id text NOT NULL,
    code_sha256 text,
    registered_at_ms bigint NOT NULL,
    released_at_ms bigint,
    released_by text,
    release_reason text
);
CREATE TABLE IF NOT EXISTS jt808.sessions (
    phone text PRIMARY KEY,
    node text NOT NULL,
    since_ms bigint NOT NULL,
    renewed_at_ms bigint NOT NULL
);
"""

GRANTS = """
GRANT USAGE ON SCHEMA jt808 TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON jt808.terminals, jt808.sessions TO {role};
"""

log = logging.getLogger("jifang.vehicles")

RENEW_S = 2.0
TTL_S = 6.0


def install(conn, role):
    conn.execute(SCHEMA)
    conn.execute(GRANTS.format(role=role))


def _vehicle_lock_key(phone):
    import hashlib
    return int.from_bytes(hashlib.sha256(("jifang jt808 " + phone).encode()).digest()[:8], "big", signed=True)


def wall_ms():
    return int(time.time() * 1000)


class PgRegistry:
    """The Registry's methods (register, authenticate, release, registrations) on
    PostgreSQL, plus the shared sessions (claim, renew, alive_elsewhere)."""

    blocking = True

    def __init__(self, url, node, release_window=DEFAULT_RELEASE_WINDOW, clock=time.time,
                 renew_s=RENEW_S, ttl_s=TTL_S):
        from psycopg_pool import ConnectionPool
        self.url, self.node = url, node
        self.release_window, self.clock = release_window, clock
        self.renew_s, self.ttl_s = renew_s, ttl_s
        self.pool = ConnectionPool(url, min_size=1, max_size=2, open=False, timeout=5,
                                   check=ConnectionPool.check_connection,
                                   kwargs={"connect_timeout": 5, "autocommit": True,
                                           "application_name": "jifang-jt808:" + node})
        self.pool.open(wait=True, timeout=10)
        if self._one("SELECT to_regclass('jt808.sessions') IS NULL")[0]:
            raise RuntimeError("no jt808 tables in the cluster's database: create them once with"
                               " `jifang log init-db --db ADMIN_URL --role GATEWAY_ROLE`")

    def close(self):
        self.pool.close()

    def _one(self, sql, args=None):
        with self.pool.connection() as conn:
            return conn.execute(sql, args).fetchone()

    def _all(self, sql, args=None):
        with self.pool.connection() as conn:
            return conn.execute(sql, args).fetchall()

    def _row(self, vehicle):
        return self._one("SELECT terminal_id, code_sha256, registered_at_ms, released_at_ms FROM jt808.terminals"
                         " WHERE phone = %s", (vehicle.phone,))

    # -- the Registry's interface, with self.fleet the Registry holding the vehicles ----

    def bind(self, fleet):
        self.fleet = fleet
        return self

    def register(self, phone, registration, alive=False):
        vehicle = self.fleet.vehicle(phone)
        if vehicle is None or normalise_plate(registration.plate) != normalise_plate(vehicle.plate):
            return RESULT_NO_SUCH_VEHICLE, None
        terminal_id = registration.terminal_id.strip()
        if vehicle.terminal_id and terminal_id != vehicle.terminal_id:
            return RESULT_NO_SUCH_TERMINAL, None
        now_ms = int(self.clock() * 1000)
        code = secrets.token_hex(CODE_BYTES).upper()
        with self.pool.connection() as conn:
            with conn.transaction():
                # Two nodes registering one vehicle take turns (a lock per vehicle, to
                # the commit): the second sees the first's code and is refused.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_vehicle_lock_key(vehicle.phone),))
                row = conn.execute("SELECT terminal_id, code_sha256, registered_at_ms, released_at_ms"
                                   " FROM jt808.terminals WHERE phone = %s", (vehicle.phone,)).fetchone()
                open_for_registration = row is None or (
                    row[1] is None and row[3] is not None and now_ms - row[3] <= self.release_window * 1000)
                if alive or self._alive_elsewhere(conn, vehicle.phone) or not open_for_registration:
                    same = row is None or row[0] == terminal_id
                    return (RESULT_TERMINAL_REGISTERED if same else RESULT_VEHICLE_REGISTERED), None
                conn.execute("INSERT INTO jt808.terminals (phone, terminal_id, code_sha256, registered_at_ms)"
                             " VALUES (%s, %s, %s, %s) ON CONFLICT (phone) DO UPDATE SET"
                             " terminal_id = EXCLUDED.terminal_id, code_sha256 = EXCLUDED.code_sha256,"
                             " registered_at_ms = EXCLUDED.registered_at_ms, released_at_ms = NULL,"
                             " released_by = NULL, release_reason = NULL",
                             (vehicle.phone, terminal_id, code_digest(code), now_ms))
        return RESULT_OK, code

    def authenticate(self, phone, code):
        """The Vehicle when `code` is its registration's; the session is then this
        node's (`claim`)."""
        vehicle = self.fleet.vehicle(phone)
        if vehicle is None or not code:
            return None
        row = self._row(vehicle)
        if row is None or row[1] is None or not hmac.compare_digest(row[1], code_digest(code)):
            return None
        self.claim(vehicle.phone)
        return vehicle

    def release(self, vehicle, by, reason):
        """Refused (ValueError) while the vehicle's session is alive on another node:
        its terminal holds a good code (this node's own sessions are the caller's to
        check: a terminal unregistering itself releases its own)."""
        at_ms = int(self.clock() * 1000)
        with self.pool.connection() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_vehicle_lock_key(vehicle.phone),))
                node = self._alive_elsewhere(conn, vehicle.phone)
                if node is not None:
                    raise ValueError("vehicle %s is online on node %s: its terminal holds a valid code"
                                     % (vehicle.account, node))
                row = conn.execute("SELECT terminal_id, code_sha256 FROM jt808.terminals WHERE phone = %s FOR UPDATE",
                                   (vehicle.phone,)).fetchone()
                if row is None:
                    conn.execute("INSERT INTO jt808.terminals (phone, terminal_id, code_sha256, registered_at_ms,"
                                 " released_at_ms, released_by, release_reason) VALUES (%s, '', NULL, %s, %s, %s, %s)",
                                 (vehicle.phone, at_ms, at_ms, by, reason))
                else:
                    conn.execute("UPDATE jt808.terminals SET code_sha256 = NULL, released_at_ms = %s, released_by = %s,"
                                 " release_reason = %s WHERE phone = %s", (at_ms, by, reason, vehicle.phone))
                # A released vehicle holds no session anywhere: whatever node had it drops it.
                conn.execute("DELETE FROM jt808.sessions WHERE phone = %s", (vehicle.phone,))
        return {"account": vehicle.account, "phone": vehicle.phone, "plate": vehicle.plate,
                "terminal_id": row[0] if row else "", "had_code": bool(row and row[1]), "released_at_ms": at_ms,
                "released_by": by}

    def rows(self):
        return self._all("SELECT phone, terminal_id, code_sha256, registered_at_ms, released_at_ms, released_by"
                         " FROM jt808.terminals")

    # -- sessions ---------------------------------------------------------------------

    def _alive_elsewhere(self, conn, phone):
        row = conn.execute("SELECT node FROM jt808.sessions WHERE phone = %s AND node <> %s AND renewed_at_ms > %s",
                           (phone, self.node, wall_ms() - int(self.ttl_s * 1000))).fetchone()
        return row[0] if row else None

    def alive_elsewhere(self, phone):
        """The node holding a live session of this vehicle, if another than this one."""
        with self.pool.connection() as conn:
            return self._alive_elsewhere(conn, normalise_phone(phone))

    def claim(self, phone):
        now = wall_ms()
        self._one("INSERT INTO jt808.sessions VALUES (%s, %s, %s, %s) ON CONFLICT (phone) DO UPDATE SET"
                  " node = EXCLUDED.node, since_ms = EXCLUDED.since_ms, renewed_at_ms = EXCLUDED.renewed_at_ms"
                  " RETURNING phone", (phone, self.node, now, now))

    def renew(self, held, ended):
        """Renew this node's rows for the phones in `held`, drop its rows for `ended`;
        returns the phones of `held` whose row now names another node (or is gone:
        released): the caller closes those connections."""
        now = wall_ms()
        with self.pool.connection() as conn:
            with conn.transaction():
                if ended:
                    conn.execute("DELETE FROM jt808.sessions WHERE node = %s AND phone = ANY(%s)",
                                 (self.node, list(ended)))
                kept = set()
                if held:
                    kept = {r[0] for r in conn.execute(
                        "UPDATE jt808.sessions SET renewed_at_ms = %s WHERE node = %s AND phone = ANY(%s)"
                        " RETURNING phone", (now, self.node, list(held))).fetchall()}
        return set(held) - kept

    def sessions(self):
        """{phone: (node, since_ms, renewed_at_ms)}, for the CLI and tests."""
        return {r[0]: tuple(r[1:]) for r in self._all("SELECT phone, node, since_ms, renewed_at_ms FROM jt808.sessions")}


async def keep_sessions(server, shared, held):
    """Every `renew_s`: renew the shared rows of the sessions `server` (a
    JT808Server) holds, drop the rows of those that ended, and close the
    connections whose vehicle has since logged in on another node (or was
    released): the newest login holds the session. `held`: the set of phones this
    node holds rows for, kept current here (the caller drops them at its stop)."""
    while True:
        await asyncio.sleep(shared.renew_s)
        live = {s.vehicle.phone: s for s in server.vehicles.values() if s.session is not None}
        try:
            moved = await asyncio.to_thread(shared.renew, set(live), held - set(live))
        except Exception as exc:        # the database restarting: renewed at the next round
            log.warning("JT/T 808 sessions not renewed", extra={"error": repr(exc)})
            continue
        held.clear()
        held.update(set(live) - moved)
        for phone in moved:
            state = live[phone]
            if state.session is None:
                continue
            log.warning("session moved to another node: closing this node's connection",
                        extra={"account": state.vehicle.account, "node": shared.node})
            # Online on the other node now: this node raises no "vehicle offline".
            state.online = False
            state.session.close()
            state.session = None
