"""Fixtures for the firmware on the `sim` target (hil.sim)."""
import json
import os
import time

import pytest

from hil.receivers import SiaReceiver
from hil.sim import SimDut, pin_hash

HEAP_REPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "build", "heap-report.jsonl")
SALT = "5a17"
KEY_TEXT = "0123456789ABCDEF"     # pysiaalarm takes the key as text characters
ACCOUNT = "1234"


def panel_config(**kw):
    """A two-partition panel with one zone of each kind and three users."""
    cfg = {
        "role": "panel", "device_id": "panel1", "account": ACCOUNT, "salt": SALT,
        "entry_delay": 2, "exit_delay": 1, "siren_time": 30, "ac_loss_delay": 1,
        "test_interval": 0, "watchdog_ms": 3000,
        "partitions": [1, 2], "keypads": [{"partition": 1}, {"partition": 2}],
        "zones": [
            {"n": 1, "type": "entry_exit", "partition": 1, "wiring": "seol"},
            {"n": 2, "type": "instant", "partition": 1, "wiring": "deol"},
            {"n": 3, "type": "interior", "partition": 1},
            {"n": 4, "type": "panic", "partition": 1},
            {"n": 5, "type": "fire", "partition": 2},
        ],
        "users": [
            {"n": 1, "pin": pin_hash(SALT, "1234"), "partitions": [1, 2]},
            {"n": 7, "pin": pin_hash(SALT, "7777"), "partitions": [1, 2], "role": "duress"},
            {"n": 99, "pin": pin_hash(SALT, "0000"), "partitions": [1, 2], "role": "installer"},
        ],
    }
    cfg.update(kw)
    return cfg


def reporter_config(*receivers, **kw):
    rc = {"receivers": [{"host": "127.0.0.1", "port": r.port} for r in receivers],
          "key_text": KEY_TEXT, "ack_timeout": 1, "failover": 2, "supervision": 30, "retry_max": 1}
    rc.update(kw)
    return rc


@pytest.fixture
def make_dut(tmp_path, request):
    """make_dut(config, heap="128K", name="dut") -> started SimDut; stopped at teardown
    (its console log is printed when the test fails)."""
    duts = []

    def make(config, heap=None, name="dut", start=True):
        heap = heap or os.environ.get("JIFANG_SIM_HEAP", "128K")
        d = SimDut(config, tmp_path / name, heap=heap, name=name)
        duts.append(d)
        return d.start() if start else d

    yield make
    for d in duts:
        if d.alive():
            try:                 # the live-heap high-water of this DUT, for the report
                st = d.stats()
                with open(HEAP_REPORT, "a") as f:
                    f.write(json.dumps({"test": request.node.nodeid, "dut": d.name, "heap": d.heap,
                                        "alloc_max": st.get("alloc_max"), "mem_free": st.get("mem_free"),
                                        "at": time.time()}) + "\n")
            except Exception:
                pass
        d.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for d in duts:
            print("---- %s log ----\n%s" % (d.name, "\n".join(d.lines()[-120:])))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def receiver():
    """A pysiaalarm DC-09 receiver (TCP, AES with KEY_TEXT) on a free port."""
    r = SiaReceiver(ACCOUNT, KEY_TEXT).start()
    yield r
    r.stop()


@pytest.fixture
def backup_receiver():
    r = SiaReceiver(ACCOUNT, KEY_TEXT).start()
    yield r
    r.stop()
