"""Issue 11 §5: a vehicle's session cannot be taken over. The attacker knows what
is printed on the vehicle and sent in clear (SIM number, plate, terminal id) and
has the example config; the real terminal is logged in."""
import sqlite3
from datetime import datetime

import pytest

from gateway.vehicles.codes import PANIC_CODE
from gateway.vehicles.registry import (RESULT_NO_SUCH_VEHICLE, RESULT_TERMINAL_REGISTERED,
                                       RESULT_VEHICLE_REGISTERED, Registry, code_digest)
from gateway.vehicles.server import SessionLimits
from protocols import jt808
from tests.vehicles.support import ESCORT, HAZMAT, Recorder, center, terminal, wait_for

T0 = datetime(2026, 11, 23, 18, 0, 0, tzinfo=jt808.GMT8)


async def test_the_issue_takeover_fails_and_the_real_session_stays():
    """The attack of the issue: 0x0100 with the real identifiers, then 0x0102 and a
    forged SOS. Registration is refused (result 3), no code is derivable, the real
    terminal keeps its session and no panic is recorded."""
    rec = Recorder()
    async with center(rec.submit) as server, terminal(server, HAZMAT) as real:
        async with terminal(server, HAZMAT, login=False, auth_code=None) as attacker:
            result, code = await attacker.register()
            assert (result, code) == (RESULT_TERMINAL_REGISTERED, None)
            assert await attacker.authenticate("0" * 32) == 1
            await wait_for(lambda: not attacker.connected, what="attacker's link closed")
        assert real.connected and server.online(HAZMAT.account)
        assert await real.heartbeat() == 0
        assert rec.of(PANIC_CODE) == []


async def test_second_registration_while_alive_and_another_terminal_id():
    async with center(Recorder().submit) as server, terminal(server, ESCORT) as real:
        async with terminal(server, ESCORT, login=False, auth_code=None) as same:
            assert (await same.register())[0] == RESULT_TERMINAL_REGISTERED
        async with terminal(server, ESCORT, login=False, auth_code=None, terminal_id="CLONE01") as other:
            assert (await other.register())[0] == RESULT_VEHICLE_REGISTERED
        async with terminal(server, ESCORT, login=False, auth_code=None) as unknown:
            unknown.phone = "13999999999"                  # not in the registry: no answer but "no such vehicle"
            assert (await unknown.register())[0] == RESULT_NO_SUCH_VEHICLE
        assert real.connected


async def test_login_with_the_code_while_the_session_answers_is_refused():
    """A clone holding the real code (stolen) logs in while the terminal is on line:
    the old link answers the liveness probe, the clone is refused and closed."""
    rec = Recorder()
    async with center(rec.submit, limits=SessionLimits(liveness_probe=2)) as server, \
            terminal(server, ESCORT) as real:
        async with terminal(server, ESCORT, login=False) as clone:   # same code (support shares it)
            assert await clone.authenticate(clone.auth_code) == 1
            await wait_for(lambda: not clone.connected, what="clone closed")
        assert real.connected and await real.heartbeat() == 0
        assert server.refused["login while the session is alive"] == 1
        assert any(m.msg_id == 0x8201 for m in real.received)       # the probe the real terminal answered


async def test_known_terminal_reregisters_only_after_a_release(tmp_path):
    """A terminal that lost its code (reflashed) is refused until an operator
    releases it; the release opens registration once, and the new code replaces
    the old one. Kept across a restart of the center (the registrations file)."""
    path = tmp_path / "jt808-terminals.sqlite"
    async with center(Recorder().submit, registry=Registry((ESCORT,), path)) as server:
        async with terminal(server, ESCORT) as t:
            old_code = t.auth_code
        async with terminal(server, ESCORT, login=False, auth_code=None) as reflashed:
            assert (await reflashed.register())[0] == RESULT_TERMINAL_REGISTERED
    # a restart: the registration is still there
    registry = Registry((ESCORT,), path)
    assert registry.authenticate(ESCORT.phone, old_code) is ESCORT
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT code_sha256 FROM terminals").fetchone()[0]
    assert stored == code_digest(old_code) and old_code not in stored      # only the hash is kept
    released = registry.release(ESCORT.account, "supervisor1", "terminal reflashed")
    assert released["had_code"] and released["released_by"] == "supervisor1"
    assert registry.authenticate(ESCORT.phone, old_code) is None
    assert [r["state"] for r in registry.registrations()] == ["released"]
    registry.close()
    async with center(Recorder().submit, registry=Registry((ESCORT,), path)) as server:
        async with terminal(server, ESCORT, login=False, auth_code=None) as reflashed:
            result, new_code = await reflashed.register()
            assert result == 0 and new_code != old_code
            assert await reflashed.authenticate(new_code) == 0
        async with terminal(server, ESCORT, login=False, auth_code=None) as again:
            assert (await again.register())[0] == RESULT_TERMINAL_REGISTERED   # the release was used up


def test_a_release_expires_and_codes_are_random():
    now = [1_800_000_000.0]
    registry = Registry((ESCORT, HAZMAT), release_window=600, clock=lambda: now[0])
    body = jt808.Register(44, 100, "JIFNG", "M", "T-0001", 2, ESCORT.plate)
    result, first = registry.register(ESCORT.phone, body)
    assert result == 0 and len(first) == 32 and int(first, 16) >= 0
    registry.release(ESCORT.account, "admin", "swap")
    now[0] += 601
    assert registry.register(ESCORT.phone, body)[0] == RESULT_TERMINAL_REGISTERED
    assert [r["state"] for r in registry.registrations()][0] == "release expired"
    registry.release(ESCORT.account, "admin", "swap, again")
    result, second = registry.register(ESCORT.phone, body)
    assert result == 0 and second != first          # random per registration, not a function of the identifiers
    with pytest.raises(LookupError):
        registry.release("FFFF", "admin", "no such vehicle")


async def test_a_terminal_that_unregisters_may_register_again():
    async with center(Recorder().submit) as server, terminal(server, ESCORT) as t:
        assert (await t.call(t.message(0x0003))).result == 0
        assert not server.online(ESCORT.account)
        assert await t.report(t.position(T0)) == 1            # no longer authenticated
        result, code = await t.register()
        assert result == 0 and await t.authenticate(code) == 0


def test_cli_release_and_list(tmp_path, capsys):
    """`jifang vehicles release` writes what the running center reads, and records
    it in the console's access register."""
    import asyncio

    from gateway.cli import main
    from gateway.console.db import AsyncConsoleDB
    config = tmp_path / "center.toml"
    config.write_text('[store]\npath = "events.db"\n[console]\nlisten = "127.0.0.1:1"\n'
                      '[jt808]\nlisten = "127.0.0.1:1"\n'
                      '[[vehicles.fleet]]\nphone = "%s"\nplate = "%s"\n' % (ESCORT.phone, ESCORT.plate), encoding="utf-8")
    registry = Registry((ESCORT,), tmp_path / "jt808-terminals.sqlite")   # the default path, next to the store
    body = jt808.Register(44, 100, "JIFNG", "M", "T-0001", 2, ESCORT.plate)
    assert registry.register(ESCORT.phone, body)[0] == 0
    assert registry.register(ESCORT.phone, body)[0] == RESULT_TERMINAL_REGISTERED
    assert main(["vehicles", "release", ESCORT.account, "--config", str(config), "--operator", "li.wei",
                 "--reason", "terminal swapped"]) == 0
    assert "recorded in the access register" in capsys.readouterr().out
    assert registry.register(ESCORT.phone, body)[0] == 0       # the running registry sees it at once
    registry.close()
    assert main(["vehicles", "list", "--config", str(config)]) == 0
    assert "registered" in capsys.readouterr().out
    assert main(["vehicles", "release", "FFFF", "--config", str(config), "--operator", "x", "--reason", "y"]) == 2

    async def entries():
        db = AsyncConsoleDB(tmp_path / "console.sqlite")
        await db.open()
        try:
            return await db.register_entries(0, 2 ** 62)
        finally:
            await db.close()
    [entry] = asyncio.run(entries())
    assert (entry["username"], entry["action"]) == ("li.wei", "vehicle-release")
    assert entry["purpose"] == "terminal re-registration: terminal swapped" and "T-0001" in entry["what"]


def test_registration_keys_and_the_default_file_next_to_the_store(tmp_path):
    from gateway import config as gateway_config
    from gateway.config import ConfigError
    data = {"store": {"path": str(tmp_path / "events.db")}, "jt808": {"listen": "127.0.0.1:1"}}
    cfg = gateway_config.from_dict(data, tmp_path)
    assert cfg.vehicles.jt808.registrations_path == tmp_path / "jt808-terminals.sqlite"
    assert cfg.vehicles.jt808.release_window == 3600
    data["jt808"].update(registrations_path="terminals.sqlite", release_window_seconds=600)
    cfg = gateway_config.from_dict(data, tmp_path)
    assert cfg.vehicles.jt808.registrations_path == tmp_path / "terminals.sqlite"
    assert cfg.vehicles.jt808.release_window == 600
    data["jt808"]["release_window_seconds"] = 10
    with pytest.raises(ConfigError) as e:
        gateway_config.from_dict(data, tmp_path)
    assert "jt808.release_window_seconds" in str(e.value)
