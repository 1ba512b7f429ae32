"""The watchdog is fed only while the main loop is healthy; when it stops, the (sim)
hardware watchdog resets the device, and the next boot reports the reset cause:
Contact ID 305 (system reset) with the cause in the zone field (2 = watchdog), and
"reset": "wdt" in the retained MQTT status."""
import pytest

from hil.mqtt_peer import MqttPeer
from tests.firmware.conftest import ACCOUNT, panel_config, reporter_config

pytestmark = pytest.mark.slow


def test_stuck_main_loop_resets_and_reports_wdt(make_dut, receiver, mosquitto):
    host, port = mosquitto
    peer = MqttPeer(host, port)
    try:
        cfg = panel_config(reporter=reporter_config(receiver), watchdog_ms=1500,
                           mqtt={"host": host, "port": port, "prefix": "jf"})
        dut = make_dut(cfg)
        receiver.wait_for(lambda e: e["code"] == 305 and e["zone"] == 1, 5)   # power-on
        peer.wait_for("jf/dev/%s/status" % ACCOUNT, lambda d: d.get("reset") == "power_on"
                      and d["partitions"]["1"] == "disarmed")
        dut.ctrl("wdt_hang")                        # the poll loop stops making progress
        dut.expect(r"WDT not fed", 5)
        dut.expect(r"WDT expired: reset", 5)
        dut.expect(r"=== exit", 5)
        assert not dut.alive()
        dut.start()
        receiver.wait_for(lambda e: e["code"] == 305 and e["zone"] == 2, 10)  # watchdog reset
        peer.wait_for("jf/dev/%s/status" % ACCOUNT, lambda d: d.get("reset") == "wdt")
    finally:
        peer.stop()


def test_healthy_loop_keeps_running_past_the_watchdog_timeout(make_dut):
    dut = make_dut(panel_config(watchdog_ms=1000))
    import time
    time.sleep(2.5)
    assert dut.alive()
    assert not any("WDT" in l for l in dut.lines())
