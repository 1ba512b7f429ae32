"""End to end with the real gateway: firmware (sim) --DC-09/AES--> `jifang gateway`
(alarm-service center: stores, then forwards) --DC-09--> a 110 receiver (pysiaalarm)."""
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.receivers import SiaReceiver
from tests.firmware.conftest import ACCOUNT, KEY_TEXT, panel_config, reporter_config
from tests.support.ports import free_tcp_udp_port, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _gateway_toml(tmp, listen_port, http_port, upstream_port):
    key_hex = KEY_TEXT.encode().hex().upper()       # pysiaalarm takes these characters as the key
    return """
[gateway]
name = "asc-test"

[store]
path = "%s"

[receiver]
listen = "127.0.0.1:%d"

[http]
listen = "127.0.0.1:%d"

[[forwarders]]
name = "110"
type = "dc09"
receivers = ["127.0.0.1:%d"]
key_hex = "%s"
send_position = false
ack_timeout_seconds = 2
retry_initial_seconds = 0.2
retry_max_seconds = 1

[[devices]]
account = "%s"
key_text = "%s"
site = "test compound"
""" % (tmp / "asc.db", listen_port, http_port, upstream_port, key_hex, ACCOUNT, KEY_TEXT)


@pytest.fixture
def center_110():
    r = SiaReceiver(ACCOUNT, KEY_TEXT).start()
    yield r
    r.stop()


@pytest.fixture
def gateway(tmp_path, center_110):
    port, http = free_tcp_udp_port(), free_port()
    conf = tmp_path / "asc.toml"
    conf.write_text(_gateway_toml(tmp_path, port, http, center_110.port))
    log = open(tmp_path / "gateway.log", "w")
    jifang = Path(sys.executable).parent / "jifang"
    proc = subprocess.Popen([str(jifang), "gateway", "--config", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT, cwd=str(ROOT))
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("gateway did not start: %s" % (tmp_path / "gateway.log").read_text()[-3000:])
            time.sleep(0.1)

    class G:
        pass
    g = G()
    g.port = port
    g.proc = proc
    yield g
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_armed_trip_and_duress_reach_110_through_gateway(make_dut, gateway, center_110):
    dut = make_dut(panel_config(reporter=reporter_config(gateway)))
    dut.keys("1234A")
    dut.expect(r"STATE p1 arming -> armed_away", 5)
    dut.trip(2)
    e = center_110.wait_for(lambda e: e["code"] == 130, 15)
    assert (e["q"], e["zone"]) == (1, 2)
    dut.restore(2)
    dut.keys("7777#")                               # duress disarm: silent 121 to 110
    e = center_110.wait_for(lambda e: e["code"] == 121, 15)
    assert e["zone"] == 7
    assert dut.get()["outputs"]["siren"] == 0
    assert not any("OUT siren 1" in l for l in dut.lines()[dut.lines().index(
        [l for l in dut.lines() if "DURESS" in l][0]):])


def test_network_cut_across_restart_reaches_110_through_gateway(make_dut, gateway, center_110):
    dut = make_dut(panel_config(reporter=reporter_config(gateway)))
    dut.expect(r"DELIVERED seq=\d+ code=305", 10)
    dut.net(False)
    dut.trip(4)                                     # panic, 24 h
    dut.expect(r"EVENT seq=\d+ q=1 code=120", 5)
    time.sleep(0.3)
    dut.reconfigure(net=False)
    dut.power_loss()
    dut.start()
    time.sleep(0.5)
    assert not [e for e in center_110.events if e["code"] == 120]
    dut.net(True)
    e = center_110.wait_for(lambda e: e["code"] == 120, 15)
    assert e["zone"] == 4
