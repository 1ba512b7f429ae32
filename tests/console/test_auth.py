"""Logins, sessions, throttling, CSRF and per-role access, over real HTTP."""
import io
import logging
import sqlite3

import pytest

from gateway import cli
from gateway.console.roles import PERMISSIONS
from tests.console.support import PASSWORD, USERS, Console, FakeClock, settings

# (method, path) -> the permission it needs; the access matrix below is built from it.
ENDPOINTS = {
    ("GET", "api/queue"): "queue.read",
    ("GET", "api/devices"): "devices.read",
    ("GET", "api/devices/1001"): "devices.read",
    ("GET", "api/vehicles"): "vehicles.read",
    ("GET", "api/events?purpose=audit%20check"): "events.search",
    ("GET", "api/events.csv?purpose=audit%20check"): "events.search",
    ("GET", "api/register"): "register.read",
    ("GET", "api/reports"): "reports.read",
    ("GET", "api/users"): "users.admin",
}


async def test_login_sets_a_strict_httponly_cookie_and_passwords_are_argon2id(center, clients):
    olga = await clients()
    status, body = await olga.login("olga")
    assert status == 200 and body["role"] == "operator" and body["pages"][0] == "queue"
    cookie = olga.login_response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    db = sqlite3.connect(center.db_path)
    hashes = [h for (h,) in db.execute("SELECT password_hash FROM users")]
    tokens = [t for (t,) in db.execute("SELECT token_hash FROM sessions")]
    db.close()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    token = olga.login_response.cookies["jifang_console"].value
    assert token not in tokens and len(tokens) == 1           # only a hash of the token is stored


async def test_wrong_passwords_are_throttled_even_for_the_right_one_then_registered(center, clients):
    mallory = await clients()
    for _ in range(center.settings.login_max_failures):
        status, _ = await mallory.login("olga", "wrong password!")
        assert status == 401
    status, body = await mallory.login("olga", PASSWORD)
    assert status == 429 and "try again" in body["error"]
    assert int(mallory.login_response.headers["Retry-After"]) > 0
    audrey = await clients("audrey")
    _, register = await audrey.get("api/register?user=olga")
    assert [e["action"] for e in register["entries"]].count("login-failed") == center.settings.login_max_failures


async def test_lockout_ends_after_its_time(tmp_path):
    clock = FakeClock()
    center = await Console(tmp_path, settings(clock=clock)).start()
    client = await center.client()
    try:
        for _ in range(center.settings.login_max_failures):
            await client.login("olga", "wrong password!")
        assert (await client.login("olga"))[0] == 429
        clock.advance(center.settings.login_lockout_seconds + 1)
        assert (await client.login("olga"))[0] == 200
    finally:
        await client.close()
        await center.stop()


async def test_sessions_expire_when_idle_and_at_their_maximum_age(tmp_path):
    clock = FakeClock()
    center = await Console(tmp_path, settings(clock=clock, session_idle_minutes=30, session_max_hours=1)).start()
    client = await center.client("olga")
    try:
        assert (await client.get("api/session"))[0] == 200
        clock.advance(31 * 60)
        assert (await client.get("api/session"))[0] == 401
        await client.login("olga")
        for _ in range(3):                       # active, but past the maximum age in the end
            clock.advance(25 * 60)
            await client.get("api/session")
        assert (await client.get("api/session"))[0] == 401
    finally:
        await client.close()
        await center.stop()


async def test_state_changes_need_the_csrf_token(center, clients):
    olga = await clients("olga")
    event_id = await center.panel_alarm(130)
    status, body = await olga.post("api/alarms/%d/take" % event_id, csrf=False)
    assert status == 403 and "CSRF" in body["error"]
    status, _ = await olga.post("api/alarms/%d/take" % event_id, headers={"X-CSRF-Token": "forged"}, csrf=False)
    assert status == 403
    assert (await olga.post("api/alarms/%d/take" % event_id))[0] == 200


async def test_login_accepts_json_only(center, clients):
    client = await clients()
    async with client.http.post(client.base + "api/login", data={"username": "olga", "password": PASSWORD}) as r:
        assert r.status == 415          # a cross-site HTML form cannot log a browser in


async def test_a_logged_out_client_gets_nothing(center, clients):
    await center.panel_alarm(120)
    anonymous = await clients()
    for (method, path) in list(ENDPOINTS) + [("GET", "api/alarms/1"), ("GET", "api/session"), ("GET", "api/live")]:
        status, body = await anonymous.request(method, path)
        assert status == 401, path
    status, _ = await anonymous.get("")
    assert status == 302                 # the app page sends a logged-out browser to the login page
    assert (await anonymous.get("login"))[0] == 200


@pytest.mark.parametrize("username", sorted(USERS))
async def test_every_role_reaches_exactly_what_it_may(center, clients, username):
    client = await clients(username)
    role = USERS[username]
    for (method, path), permission in ENDPOINTS.items():
        status, _ = await client.request(method, path)
        expected = 200 if role in PERMISSIONS[permission] else 403
        assert status == expected, (role, path, status)


async def test_an_operator_cannot_read_the_register_or_manage_users(center, clients):
    olga = await clients("olga")
    assert (await olga.get("api/register"))[0] == 403
    status, _ = await olga.post("api/users", {"username": "eve", "role": "admin", "password": "x" * 12})
    assert status == 403


async def test_disabling_an_account_ends_its_sessions(center, clients):
    olga, ada = await clients("olga"), await clients("ada")
    status, _ = await ada.request("PATCH", "api/users/olga", json={"disabled": True})
    assert status == 200
    assert (await olga.get("api/session"))[0] == 401
    assert (await olga.login("olga"))[0] == 401


async def test_no_password_or_session_token_reaches_the_logs(center, clients, caplog):
    caplog.set_level(logging.DEBUG)
    client = await clients()
    await client.login("olga", "a wrong password")
    await client.login("olga")
    await center.panel_alarm(130)
    await client.get("api/queue")
    token = client.login_response.cookies["jifang_console"].value
    text = "\n".join(r.getMessage() + repr(vars(r)) for r in caplog.records)
    for secret in (PASSWORD, "a wrong password", token, client.csrf):
        assert secret not in text


def test_console_user_command_creates_the_first_admin(tmp_path, monkeypatch, capsys):
    db = tmp_path / "console.sqlite"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long admin password\n"))
    assert cli.main(["console-user", "add", "--db", str(db), "--username", "root", "--role", "admin",
                     "--password-stdin"]) == 0
    assert "created root (admin)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["console-user", "add", "--db", str(db), "--username", "u2", "--role", "operator",
                     "--password-stdin"]) == 2
    assert cli.main(["console-user", "list", "--db", str(db)]) == 0
    assert "root" in capsys.readouterr().out
    row = sqlite3.connect(db).execute("SELECT role, password_hash FROM users WHERE username = 'root'").fetchone()
    assert row[0] == "admin" and row[1].startswith("$argon2id$")


async def test_every_answer_carries_the_security_headers(center, clients):
    client = await clients()
    for path in ("login", "api/queue", "static/core.js", "api/nothing-here"):
        async with client.http.get(client.base + path, allow_redirects=False) as r:
            assert "default-src 'self'" in r.headers["Content-Security-Policy"], path
            assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    async with client.http.get(client.base + "static/../db.py") as r:
        assert r.status == 404


async def test_expired_sessions_are_removed_by_housekeeping(tmp_path):
    clock = FakeClock()
    center = await Console(tmp_path, settings(clock=clock)).start()
    client = await center.client("olga")
    try:
        clock.advance(center.settings.session_idle_minutes * 60 + 1)
        await center.console.drop_expired_sessions()
        db = sqlite3.connect(center.db_path)
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
        db.close()
    finally:
        await client.close()
        await center.stop()
