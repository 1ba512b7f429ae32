"""The building intercom (door station) on the sim target: calls over MQTT, access by
PIN and Wiegand card, the door relay, door forced / held open, duress, tamper; access
events reported over DC-09 like a panel's."""
import time

import pytest

from hil.mqtt_peer import MqttPeer
from hil.sim import pin_hash
from tests.firmware.conftest import ACCOUNT, SALT, reporter_config

pytestmark = pytest.mark.slow

CARD_OK = (12 << 16) | 3456          # facility 12, card 3456 (Wiegand 26)
CARD_EXPIRED = (12 << 16) | 999
CARD_34 = 0x89ABCDEF


def intercom_config(broker, receiver=None, **kw):
    host, port = broker
    now = int(time.time())
    cfg = {
        "role": "intercom", "device_id": "door1", "account": ACCOUNT, "salt": SALT,
        "watchdog_ms": 3000, "lockout_attempts": 3,
        "mqtt": {"host": host, "port": port, "prefix": "jf", "keepalive": 10},
        "intercom": {"door_pulse_ms": 400, "grant_window_ms": 1500, "held_open": 1,
                     "ring_timeout": 1, "talk_timeout": 5},
        "users": [
            {"n": 1, "pin": pin_hash(SALT, "2468"), "card": CARD_OK},
            {"n": 2, "card": CARD_EXPIRED, "valid_to": now - 3600},
            {"n": 3, "card": CARD_34, "valid_from": now - 60},
            {"n": 9, "pin": pin_hash(SALT, "1357"), "role": "duress"},
        ],
    }
    if receiver is not None:
        cfg["reporter"] = reporter_config(receiver)
    cfg.update(kw)
    return cfg


@pytest.fixture
def peer(mosquitto):
    p = MqttPeer(*mosquitto)
    yield p
    p.stop()


def test_status_retained_and_last_will(make_dut, mosquitto, peer):
    dut = make_dut(intercom_config(mosquitto))
    peer.wait_for("jf/dev/%s/status" % ACCOUNT, lambda d: d.get("online") is True and d["role"] == "intercom")
    late = MqttPeer(*mosquitto)                     # a late subscriber gets the retained state
    try:
        late.wait_for("jf/dev/%s/status" % ACCOUNT, lambda d: d.get("online") is True, timeout=5)
    finally:
        late.stop()
    n = len(peer.messages)
    dut.power_loss()                                # the broker publishes the last will
    peer.wait_for("jf/dev/%s/status" % ACCOUNT, lambda d: d.get("online") is False, timeout=30, after=n)


def test_call_answer_open_hangup(make_dut, mosquitto, peer):
    dut = make_dut(intercom_config(mosquitto))
    dut.expect(r"MQTT connected", 5)
    dut.keys("1201#")
    i, ring = peer.wait_for("jf/room/1201/call", lambda d: d["op"] == "ring")
    assert ring["door"] == "door1"
    dut.expect(r"CALL ringing 1201", 5)
    peer.publish("jf/door/door1/call", {"op": "answer", "call": ring["call"]})
    dut.expect(r"CALL answered", 5)
    peer.publish("jf/door/door1/call", {"op": "open", "call": ring["call"]})
    dut.expect(r"EVENT seq=\d+ q=1 code=422", 5)
    dut.expect(r"OUT door 1", 5)
    dut.expect(r"OUT door 0", 5)                    # the relay pulse ends by itself
    peer.publish("jf/door/door1/call", {"op": "hangup", "call": ring["call"]})
    dut.expect(r"CALL hangup by unit", 5)
    assert dut.get()["status"]["call"] == "idle"


def test_call_reject_busy_timeout_and_guard(make_dut, mosquitto, peer):
    dut = make_dut(intercom_config(mosquitto))
    dut.expect(r"MQTT connected", 5)
    dut.keys("301#")
    _, r = peer.wait_for("jf/room/301/call", lambda d: d["op"] == "ring")
    dut.keys("302#")                                # the door station is in a call already
    dut.expect(r"CALL busy: already calling 301", 5)
    peer.publish("jf/door/door1/call", {"op": "reject", "call": r["call"]})
    dut.expect(r"CALL rejected", 5)
    dut.keys("302#")
    _, r = peer.wait_for("jf/room/302/call", lambda d: d["op"] == "ring")
    peer.publish("jf/door/door1/call", {"op": "busy", "call": r["call"]})
    dut.expect(r"CALL busy$", 5)
    dut.keys("0#")                                  # guard station
    _, r = peer.wait_for("jf/guard/call", lambda d: d["op"] == "ring")
    dut.expect(r"CALL timeout", 5)                  # nobody answers within ring_timeout
    peer.wait_for("jf/guard/call", lambda d: d["op"] == "cancel" and d["call"] == r["call"])
    dut.button("call", 1)                           # the call button rings the guard too
    peer.wait_for("jf/guard/call", lambda d: d["op"] == "ring" and d["call"] == r["call"] + 1)
    dut.button("call", 0)
    dut.keys("#")                                   # hang up from the door
    dut.expect(r"CALL hangup by door", 5)


def test_pin_and_card_access_with_validity(make_dut, mosquitto, receiver):
    dut = make_dut(intercom_config(mosquitto, receiver))
    dut.keys("*2468#")
    dut.expect(r"ACCESS granted pin user 1", 5)
    dut.expect(r"OUT door 1", 5)
    receiver.wait_for(lambda e: e["code"] == 422 and e["zone"] == 1, 5)
    dut.swipe(CARD_OK, bits=26)
    dut.expect(r"ACCESS granted card user 1", 5)
    dut.swipe(CARD_EXPIRED, bits=26)
    dut.expect(r"ACCESS denied card user 2 outside validity", 5)
    receiver.wait_for(lambda e: e["code"] == 421 and e["zone"] == 2, 5)
    dut.swipe(CARD_34, bits=34)
    dut.expect(r"ACCESS granted card user 3", 5)
    dut.swipe(0, bits=26, frame=0x3FFFFFF)          # bad parity
    dut.expect(r"CARD bad frame 26 bits", 5)
    dut.swipe(54321, bits=26)                       # unknown card
    dut.expect(r"ACCESS denied card", 5)
    dut.keys("*1111#")
    dut.expect(r"ACCESS denied pin", 5)


def test_duress_pin_opens_and_sends_silent_alarm(make_dut, mosquitto, receiver):
    dut = make_dut(intercom_config(mosquitto, receiver))
    dut.keys("*1357#")
    dut.expect(r"OUT door 1", 5)
    e = receiver.wait_for(lambda e: e["code"] == 121, 5)
    assert e["zone"] == 9
    assert not any("OUT buzzer 1" in l for l in dut.lines())


def test_door_forced_and_held_open_and_tamper(make_dut, mosquitto, receiver):
    dut = make_dut(intercom_config(mosquitto, receiver))
    dut.door(True)                                  # nobody was let in: forced
    dut.expect(r"DOOR forced", 5)
    receiver.wait_for(lambda e: e["code"] == 423 and e["q"] == 1, 5)
    dut.door(False)
    receiver.wait_for(lambda e: e["code"] == 423 and e["q"] == 3, 5)
    dut.keys("*2468#")
    dut.expect(r"DOOR release", 5)
    dut.door(True)
    dut.expect(r"DOOR opened", 5)
    dut.expect(r"DOOR held open", 5)                # held_open = 1 s
    receiver.wait_for(lambda e: e["code"] == 426 and e["q"] == 1, 5)
    dut.door(False)
    receiver.wait_for(lambda e: e["code"] == 426 and e["q"] == 3, 5)
    dut.button("exit", 1)                           # request to exit: not forced
    dut.door(True)
    dut.expect(r"DOOR opened", 5)
    dut.door(False)
    dut.button("exit", 0)
    dut.tamper(True)
    receiver.wait_for(lambda e: e["code"] == 137 and e["q"] == 1, 5)


def test_mqtt_keepalive_and_reconnect_after_network_cut(make_dut, mosquitto, peer):
    cfg = intercom_config(mosquitto)
    cfg["mqtt"]["keepalive"] = 2
    dut = make_dut(cfg)
    dut.expect(r"MQTT connected", 5)
    time.sleep(4)                                   # pings keep the link: no reconnect
    assert not any("MQTT down" in l for l in dut.lines())
    dut.net(False)
    dut.expect(r"MQTT down", 5)
    n = len(peer.messages)
    dut.net(True)
    dut.expect(r"MQTT connected", 10)
    # the retained status is republished after the reconnect
    peer.wait_for("jf/dev/%s/status" % ACCOUNT, lambda d: d.get("online") is True, after=n)
