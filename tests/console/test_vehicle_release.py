"""Issue 11 §5: re-registration of a known JT/T 808 terminal needs an operator's
release, a console action (supervisor or admin) recorded in the access register;
the gateway wires the console to its JT/T 808 center."""
from gateway.app import Gateway
from gateway.vehicles import config as vehicles_config
from gateway.vehicles.registry import RESULT_TERMINAL_REGISTERED
from gateway.vehiclesim import Terminal
from tests.console.support import Client, add_users, settings
from tests.gateway.helpers import center_config, wait_for
from tests.support.ports import free_port

PHONE, PLATE, ACCOUNT = "13800000001", "粤B12345", "13800000001"


async def test_release_from_the_console_lets_the_terminal_register_again(tmp_path):
    cfg = center_config(tmp_path)
    cfg.vehicles = vehicles_config.from_dict({"jt808": {"listen": "127.0.0.1:%d" % free_port()},
                                              "vehicles": {"fleet": [{"phone": PHONE, "plate": PLATE}]}})
    cfg.vehicles.jt808.registrations_path = tmp_path / "jt808-terminals.sqlite"
    port = free_port()
    cfg.console = settings(listen=("127.0.0.1", port), db_path=tmp_path / "console.sqlite")
    await add_users(cfg.console.db_path)
    clients = []
    async with Gateway(cfg) as gateway:
        jt_port = gateway.vehicle_center.server.port

        async def client(username):
            c = Client("http://127.0.0.1:%d/" % port)
            clients.append(c)
            await c.login(username)
            return c
        try:
            t = Terminal(PHONE, PLATE, terminal_id="T0001")
            await t.login("127.0.0.1", jt_port)
            sam, olga, ada, audrey = [await client(u) for u in ("sam", "olga", "ada", "audrey")]
            # online: nothing to release (its terminal holds a valid code)
            status, body = await sam.post("api/vehicles/%s/release" % ACCOUNT, {"reason": "reflashed"})
            assert status == 409 and "online" in body["error"]
            await t.close()
            await wait_for(lambda: not gateway.vehicle_center.server.online(ACCOUNT), what="session gone")
            lost = Terminal(PHONE, PLATE, terminal_id="T0001")       # reflashed: no code
            await lost.connect("127.0.0.1", jt_port)
            assert (await lost.register())[0] == RESULT_TERMINAL_REGISTERED
            await lost.close()
            # an operator may not release; a reason is required; an unknown vehicle is 404
            assert (await olga.post("api/vehicles/%s/release" % ACCOUNT, {"reason": "x"}))[0] == 403
            assert (await sam.post("api/vehicles/%s/release" % ACCOUNT, {"reason": " "}))[0] == 400
            assert (await ada.post("api/vehicles/FFFF/release", {"reason": "typo"}))[0] == 404
            status, body = await sam.post("api/vehicles/%s/release" % ACCOUNT, {"reason": "terminal reflashed"})
            assert status == 200 and body["terminal_id"] == "T0001" and body["released_by"] == "sam"
            again = Terminal(PHONE, PLATE, terminal_id="T0001")
            await again.login("127.0.0.1", jt_port)                  # registers, authenticates
            assert gateway.vehicle_center.server.online(ACCOUNT)
            await again.close()
            _, register = await audrey.get("api/register")
            releases = [e for e in register["entries"] if e["action"].startswith("vehicle-release")]
            assert [(e["username"], e["action"]) for e in releases] == [
                ("sam", "vehicle-release"), ("ada", "vehicle-release-refused"), ("sam", "vehicle-release-refused")]
            assert releases[0]["purpose"] == "terminal re-registration: terminal reflashed"
            assert "T0001" in releases[0]["what"]
        finally:
            for c in clients:
                await c.close()
