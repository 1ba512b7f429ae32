"""The status the firmware writes (core/app.py App.status_json, with a panel and with
a door station, on CPython) is one the gateway takes (protocols/bus_status.py). Its
topic, bus.device_topic under the account, is proven end to end in test_bus_e2e.py."""
import json
import os
import sys

import pytest

from protocols import bus_status

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "firmware"))
from core import log as _log  # noqa: E402
from core.app import App  # noqa: E402
from core.fakeclock import FakeClock  # noqa: E402

_log.quiet(True)


@pytest.mark.parametrize("role", ["panel", "intercom"])
def test_the_firmware_status_is_one_the_gateway_takes(role, tmp_path):
    cfg = {"role": role, "device_id": "bus-" + role, "account": "2001", "salt": "x", "target": "sim",
           "state_dir": str(tmp_path), "zones": [{"n": 1, "type": "instant", "partition": 1}],
           "partitions": [1, 2], "users": []}
    app = App(cfg, FakeClock())
    try:
        n = app.status_json()
        status = json.loads(bytes(app.json.buf[:n]))
    finally:
        app.queue.close()
    assert bus_status.problem(status) is None, status
    assert set(status) <= set(bus_status.SPEC)
    assert status["online"] is True and status["role"] == role and status["reset"] in bus_status.SPEC["reset"]
    if role == "panel":
        assert status["partitions"] == {"1": "disarmed", "2": "disarmed"}
        assert {"ac", "battery_low", "tamper"} <= set(status)
    else:
        assert (status["call"], status["door"], status["forced"], status["held"]) == ("idle", "closed", False, False)
