"""Helpers for the console tests: a real gateway (store, pipeline, DC-09 receiver)
with the console app on a free loopback port, accounts per role, logged-in HTTP
clients, and panels that send real DC-09 frames."""
import atexit
import shutil
import tempfile
import time
from pathlib import Path

import aiohttp

from gateway.app import Gateway
from gateway.console.api_users import create_account
from gateway.console.app import create_app
from gateway.console.db import AsyncConsoleDB
from gateway.console.keys import CONSOLE
from gateway.console.serve import serve_app
from gateway.console.settings import ConsoleSettings
from gateway.console.source import EventSource
from gateway.event import from_contact_id
from gateway.vehicles.geofence import Geofence
from protocols import contactid, dc09
from tests.gateway.helpers import PANEL_KEY, PANEL_KEY_HEX, RawClient, center_config
from tests.support.ports import free_port

PASSWORD = "correct horse battery"
USERS = {"olga": "operator", "oscar": "operator", "sam": "supervisor", "audrey": "auditor",
         "ian": "installer", "ada": "admin"}

DEVICES = [
    {"account": "1001", "key_hex": PANEL_KEY_HEX, "site": "Bank of Harbin, Zhongyang branch",
     "address": "88 Zhongyang St, Daoli District", "contact": "Branch security desk 0451-8800-1234"},
    {"account": "1002", "site": "Sunshine Garden compound, gate 2", "address": "12 Hongqi Rd",
     "contact": "Property office 0451-8800-2000"},
    {"account": "2001", "site": "Escort van HEI-A1234", "type": "vehicle"},
]
SITES = {"1001": {"zones": {"1": "Front door", "15": "Vault"},
                  "contacts": [{"name": "Wang Li", "phone": "138 0451 0001", "role": "branch manager"}]}}
# The fleet's geofences, as gateway/vehicles/config.py makes them from [[vehicles.geofences]].
GEOFENCES = (
    Geofence("Depot", "polygon", rule="keep_in",
             points=((45.755, 126.62), (45.765, 126.62), (45.765, 126.64), (45.755, 126.64))),
    Geofence("Cash run 7", "corridor", rule="keep_in", width_m=300,
             points=((45.748, 126.601), (45.752, 126.611), (45.7575, 126.625))),
    Geofence("Fuel depot (hazmat no-go)", "circle", rule="keep_out", center=(45.745, 126.632), radius_m=400),
)


class FakeClock:
    """Seconds since 1970 that only move when a test says so."""

    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def settings(**overrides):
    values = dict(sites=SITES)
    values.update(overrides)
    return ConsoleSettings(**values)


_template = {}


async def add_users(db_path):
    """A console database holding USERS. Argon2 is slow on purpose, so the accounts
    are hashed once per test run into a template that each test copies."""
    if "path" not in _template:
        folder = tempfile.mkdtemp(prefix="console-users-")
        atexit.register(shutil.rmtree, folder, True)
        path = Path(folder) / "console.sqlite"
        db = AsyncConsoleDB(path)
        await db.open()
        try:
            for username, role in USERS.items():
                await create_account(db, username, role, PASSWORD, username.title(), int(time.time() * 1000))
        finally:
            await db.close()
        _template["path"] = path
    shutil.copy(_template["path"], db_path)


class Console:
    """A gateway with the console served from it, on free loopback ports."""

    def __init__(self, tmp_path, console_settings=None, dispatch=None):
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "console.sqlite"
        self.settings = console_settings or settings()
        self.dispatch = dispatch
        self.gateway = Gateway(center_config(tmp_path, devices=DEVICES))
        self.runner = None
        self.url = None

    async def start(self, users=True):
        await self.gateway.start()
        if users and not self.db_path.exists():
            await add_users(self.db_path)
        await self.start_console()
        return self

    async def start_console(self):
        source = EventSource.from_gateway(self.gateway, geofences=GEOFENCES)
        self.app = create_app(source, self.db_path, self.dispatch, self.settings)
        port = free_port()
        self.settings.listen = ("127.0.0.1", port)
        self.runner = await serve_app(self.app, self.settings)      # the product's listener, limits and all
        tls = self.settings.tls_cert_file is not None
        self.url = "%s://127.0.0.1:%d/" % ("https" if tls else "http", port)

    async def stop_console(self):
        await self.runner.cleanup()

    async def stop(self):
        await self.stop_console()
        await self.gateway.stop()

    @property
    def console(self):
        return self.app[CONSOLE]

    async def client(self, username=None, local_address=None):
        client = Client(self.url, local_address)
        if username:
            await client.login(username)
        return client

    # -- events in -----------------------------------------------------------------

    async def panel_alarm(self, code, zone=1, qualifier=1, account="1001", seq=None, position=None):
        """Send one ADM-CID frame over TCP like a panel; returns once the gateway ACKed it
        (the event is committed and the console has seen it)."""
        self._seq = getattr(self, "_seq", 0) + 1
        xdata = dc09.position_xdata(*position) if position else []
        msg = dc09.Message("ADM-CID", seq=seq or self._seq, account=account,
                           data="#%s|%d%03d 01 %03d" % (account, qualifier, code, zone), xdata=xdata,
                           timestamp=dc09.timestamp_now())
        key = PANEL_KEY if account == "1001" else None
        raw = await RawClient().connect(self.gateway.receiver.address[1])
        try:
            await raw.send(dc09.encode(msg, key))
            answer = await raw.answer(key)
        finally:
            await raw.close()
        assert dc09.is_ack_for(answer, msg), answer
        return max(self.console.state.queue, default=None)

    async def submit_alarm(self, code, received_at_ms, account="1002", zone=1):
        """An alarm through the pipeline's public API, dated by the test's clock."""
        self._seq = getattr(self, "_seq", 0) + 1
        report = contactid.Report(account, 1, code, 1, zone)
        event = from_contact_id(report, sequence=self._seq, device_time=received_at_ms // 1000, source="test",
                                received_at_ms=received_at_ms)
        return (await self.gateway.pipeline.submit(event)).id

    async def supervision(self, account, qualifier):
        """A communication trouble or restore, as the gateway's supervision raises it."""
        report = contactid.Report(account, qualifier, 350, 0, 0)
        # A distinct device time per call, as supervision's own events have: two
        # troubles in one second with sequence 0 would be one event to the dedup key.
        self._supervision_time = max(getattr(self, "_supervision_time", 0) + 1, int(time.time()))
        event = from_contact_id(report, sequence=0, device_time=self._supervision_time, source="supervision")
        return await self.gateway.pipeline.submit(event)


class Client:
    """One browser-like HTTP client: its own cookie jar, and the CSRF token after login."""

    def __init__(self, base_url, local_address=None):
        """`local_address`: the loopback address to connect from (127.0.0.2 ...), so a
        test can be two clients at two addresses."""
        self.base = base_url
        # ssl=False: the tests' self-signed certificate (see self_signed_cert).
        connector = aiohttp.TCPConnector(local_addr=(local_address, 0) if local_address else None, ssl=False)
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector)
        self.csrf = None
        self.login_response = None

    async def login(self, username, password=PASSWORD):
        async with self.http.post(self.base + "api/login", json={"username": username, "password": password}) as r:
            self.login_response = r
            body = await r.json()
            if r.status == 200:
                self.csrf = body["csrf_token"]
            return r.status, body

    async def request(self, method, path, json=None, csrf=True, **kwargs):
        headers = kwargs.pop("headers", {})
        if csrf and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        async with self.http.request(method, self.base + path, json=json, headers=headers,
                                     allow_redirects=False, **kwargs) as r:
            text = await r.text()
            body = None
            if r.content_type == "application/json":
                body = await r.json()
            return r.status, body if body is not None else text

    async def get(self, path, **kwargs):
        return await self.request("GET", path, **kwargs)

    async def post(self, path, json=None, **kwargs):
        return await self.request("POST", path, json={} if json is None else json, **kwargs)

    async def close(self):
        await self.http.close()


def self_signed_cert(folder):
    """(cert, key) PEM files for 127.0.0.1, made with `cryptography` (a dependency)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = Path(folder) / "console.crt", Path(folder) / "console.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
