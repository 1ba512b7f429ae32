"""The console served beside a gateway from one TOML file, as `jifang gateway` (and its
old name `python -m gateway.console`) does: the gateway mounts it from [console]."""
import asyncio

import aiohttp

from gateway import config as config_module
from gateway.app import Gateway
from tests.console.support import add_users
from tests.support.ports import free_port, free_tcp_udp_port


async def test_one_toml_file_runs_a_gateway_with_its_console(tmp_path):
    console_port = free_port()
    (tmp_path / "asc.toml").write_text(f"""
[gateway]
name = "asc"
[store]
path = "events.db"
[receiver]
listen = "127.0.0.1:{free_tcp_udp_port()}"
[[devices]]
account = "1001"
site = "Bank"
[console]
listen = "127.0.0.1:{console_port}"
escalate_after_seconds = 60
[[vehicles.geofences]]
name = "river-tunnel"
shape = "circle"
center = [45.75, 126.62]
radius_m = 500
kinds = ["hazmat"]
""")
    config = config_module.load(tmp_path / "asc.toml")
    settings = config.console
    assert settings.db_path is None and settings.escalate_after_seconds == 60
    assert config.vehicles.jt808 is None                  # geofences only: no vehicle server starts
    await add_users(tmp_path / "console.sqlite")         # next to the event log, where the console looks
    base = "http://127.0.0.1:%d/" % console_port
    async with Gateway(config):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            for _ in range(200):                          # until it listens (bounded; no timing assert)
                try:
                    async with http.get(base + "login") as r:
                        assert r.status == 200
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the console never started listening")
            async with http.post(base + "api/login", json={"username": "olga", "password": "correct horse battery"}) as r:
                assert r.status == 200
            async with http.get(base + "api/devices") as r:
                assert [d["account"] for d in (await r.json())["devices"]] == ["1001"]
            async with http.get(base + "api/vehicles") as r:
                assert [g["name"] for g in (await r.json())["geofences"]] == ["river-tunnel"]
