"""End to end on the sim target: the firmware reports over DC-09 (AES) to pysiaalarm."""
import pytest

from tests.firmware.conftest import panel_config, reporter_config

pytestmark = pytest.mark.slow


def test_armed_zone_trip_reaches_receiver(make_dut, receiver):
    dut = make_dut(panel_config(reporter=reporter_config(receiver)))
    receiver.wait_for(lambda e: e["code"] == 305)          # boot: system reset, cause
    dut.keys("1234A")
    dut.expect(r"STATE p1 arming -> armed_away", 5)
    dut.trip(2)
    e = receiver.wait_for(lambda e: e["code"] == 130, 5)
    assert (e["q"], e["partition"], e["zone"]) == (1, 1, 2)
    assert e["token"] == "ADM-CID" and e["timestamp"] is not None
    dut.expect(r"DELIVERED seq=\d+ code=130", 5)
    assert dut.get()["outputs"]["siren"] == 1


def test_duress_reaches_receiver_as_121_without_siren(make_dut, receiver):
    dut = make_dut(panel_config(reporter=reporter_config(receiver)))
    dut.keys("1234A")
    dut.expect(r"STATE p1 arming -> armed_away", 5)
    dut.trip(1)                                            # entry zone: entry delay
    dut.expect(r"STATE p1 armed_away -> pending", 5)
    dut.keys("7777#")                                      # duress PIN
    dut.expect(r"STATE p1 pending -> disarmed", 5)
    e = receiver.wait_for(lambda e: e["code"] == 121, 5)
    assert (e["q"], e["partition"], e["zone"]) == (1, 1, 7)
    receiver.wait_for(lambda e: e["code"] == 401 and e["q"] == 1, 5)   # looks like a normal disarm
    out = dut.get()["outputs"]
    assert out["siren"] == 0
    assert not any("OUT siren 1" in line for line in dut.lines())
    assert (1, 134, 1, 1) not in receiver.codes()          # no entry alarm either


def test_network_cut_during_alarm_delivered_after_restart(make_dut, receiver):
    dut = make_dut(panel_config(reporter=reporter_config(receiver)))
    receiver.wait_for(lambda e: e["code"] == 305)
    dut.keys("1234A")
    dut.expect(r"STATE p1 arming -> armed_away", 5)
    dut.expect(r"DELIVERED seq=\d+ code=401", 5)
    dut.net(False)
    dut.trip(2)
    m = dut.expect(r"EVENT seq=(\d+) q=1 code=130", 5)
    seq = int(m.group(1))
    import time
    time.sleep(0.5)
    assert 130 not in [c for _, c, _, _ in receiver.codes()]
    dut.reconfigure(net=False)
    dut.power_loss()                                       # kill -9 with the alarm queued
    dut.start()
    assert any(("QUEUE recovered pending=" in l and "pending=0" not in l) for l in dut.lines()[-20:])
    assert dut.stats()["pending"] >= 1
    st = dut.get()
    assert st["status"]["partitions"]["1"] == "triggered"     # the alarm holds across power loss
    assert st["outputs"]["siren"] == 1
    dut.net(True)
    e = receiver.wait_for(lambda e: e["code"] == 130, 10)
    assert (e["q"], e["partition"], e["zone"]) == (1, 1, 2)
    dut.expect(r"DELIVERED seq=%d code=130" % seq, 10)
    # the boot report carries the reset cause: power lost -> power-on reset
    receiver.wait_for(lambda e: e["code"] == 305 and e["zone"] == 1, 10)


def test_backup_receiver_after_repeated_failures(make_dut, backup_receiver):
    from tests.support.ports import free_port

    class Dead:
        port = free_port()                                 # nothing listens there
    dut = make_dut(panel_config(reporter=reporter_config(Dead, backup_receiver, failover=2)))
    dut.expect(r"switch to receiver 1", 10)
    backup_receiver.wait_for(lambda e: e["code"] == 305, 10)
    dut.trip(4)                                            # panic: 24 h
    backup_receiver.wait_for(lambda e: e["code"] == 120, 10)


def test_failback_to_primary_when_it_returns(make_dut, backup_receiver):
    from hil.receivers import SiaReceiver
    from tests.firmware.conftest import ACCOUNT, KEY_TEXT
    from tests.support.ports import free_port

    class Primary:
        port = free_port()                                 # down at first
    dut = make_dut(panel_config(reporter=reporter_config(Primary, backup_receiver, failover=2,
                                                         failback=2)))
    backup_receiver.wait_for(lambda e: e["code"] == 305, 10)
    primary = SiaReceiver(ACCOUNT, KEY_TEXT, port=Primary.port).start()
    try:
        import time
        time.sleep(2.2)
        dut.trip(4)
        dut.expect(r"back to receiver 0", 5)
        primary.wait_for(lambda e: e["code"] == 120, 10)
    finally:
        primary.stop()


def test_null_link_test_at_supervision_interval(make_dut, receiver):
    dut = make_dut(panel_config(reporter=reporter_config(receiver, supervision=1)))
    dut.expect(r"DC09 NULL ack", 5)
    dut.expect(r"DC09 NULL ack", 5)
    receiver.wait_for(lambda e: len([x for x in receiver.events if x["token"] == "NULL"]) >= 2, 5)


def test_udp_transport(make_dut):
    from hil.receivers import Dc09UdpReceiver
    from protocols import dc09
    from tests.firmware.conftest import ACCOUNT, KEY_TEXT
    r = Dc09UdpReceiver(ACCOUNT, dc09.key_from_text(KEY_TEXT)).start()
    try:
        dut = make_dut(panel_config(reporter=reporter_config(r, transport="udp")))
        r.wait_for(lambda e: e["code"] == 305, 5)
        dut.trip(4)
        r.wait_for(lambda e: e["code"] == 120, 5)
        dut.expect(r"DELIVERED seq=\d+ code=120", 5)
    finally:
        r.stop()


def test_wrong_clock_corrected_from_receivers_nak(make_dut, receiver):
    cfg = panel_config(reporter=reporter_config(receiver))
    cfg["sim"] = {"clock_offset": -3600}          # the RTC is an hour behind
    dut = make_dut(cfg)
    dut.expect(r"CLOCK corrected by 3[56]\d\d s", 5)       # pysiaalarm's NAK carries its time
    dut.expect(r"DC09 seq 1 failed \(1\) OSError\('NAK'", 5)
    e = receiver.wait_for(lambda e: e["code"] == 305, 5)
    dut.trip(4)
    receiver.wait_for(lambda e: e["code"] == 120, 5)


def test_full_queue_drops_telemetry_first_and_reports_the_drop(make_dut, receiver):
    dut = make_dut(panel_config(reporter=reporter_config(receiver), queue_capacity=16))
    receiver.wait_for(lambda e: e["code"] == 305, 5)
    dut.net(False)
    dut.ctrl("inject 12 602")                      # telemetry (periodic test reports)
    dut.ctrl("inject 6 130")                       # then alarms: the queue overflows
    assert dut.stats()["dropped"] >= 3
    dut.net(True)
    receiver.wait_for(lambda e: e["code"] == 624, 10)          # the drop is itself reported
    receiver.wait_for(lambda e: len([x for x in receiver.events if x["code"] == 130]) == 6, 10)
    order = [e["code"] for e in receiver.events if e["code"] in (130, 602, 624)]
    assert order[:6] == [130] * 6                   # alarms first, all of them
    assert order.count(602) < 12                    # some telemetry was dropped
