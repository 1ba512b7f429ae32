# The device bus (protocols/bus.py, bus_status.py) on both interpreters: topics,
# the last will, what the gateway refuses. (The status the firmware writes is checked
# against bus_status in tests/firmware/test_status_contract.py and end to end in
# tests/firmware/test_bus_e2e.py.)
import json
from protocols import bus, bus_status


def test_topics():
    assert bus.device_topic("jf/lakeside", "2001", bus.STATUS) == "jf/lakeside/dev/2001/status"
    assert bus.device_topic("jifang", "+", "event") == "jifang/dev/+/event"
    assert bus.call_topic("jf", "guard") == "jf/guard/call"
    assert bus.call_topic("jf", "1201") == "jf/room/1201/call"
    assert bus.door_topic("jf", "d1") == "jf/door/d1/call"
    assert bus.DEVICE_KINDS == ("status", "event", "telemetry")
    assert json.loads(bus.WILL) == {"online": False} and bus_status.problem(json.loads(bus.WILL)) is None


def test_what_the_gateway_refuses():
    ok = {"online": True, "role": "panel", "partitions": {"1": "armed_away"}, "pending": 3, "ac": False}
    assert bus_status.problem(ok) is None
    for bad in ({"role": "panel"}, {"online": 1}, {"online": True, "siren": True},
                {"online": True, "partitions": {"1": "open"}}, {"online": True, "partitions": {"100": "armed_away"}},
                {"online": True, "pending": -1}, {"online": True, "pending": True}, {"online": True, "ac": "yes"},
                {"online": True, "role": "camera"}, [1, 2]):
        assert bus_status.problem(bad), bad
    assert len(bus.PARTITION_STATES) == 7 and bus.ARMED == ("armed_away", "armed_home", "armed_night")
