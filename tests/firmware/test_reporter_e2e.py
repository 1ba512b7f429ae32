"""End to end on the sim target: the firmware reports over DC-09 (AES) to pysiaalarm."""
import re

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


class _ScriptedReceiver:
    """A DC-09 receiver (CPython, the shared codec) that answers each ADM-CID frame
    the way the next entry of `script` says, to exercise the panel's reading of the
    byte stream: answers split into single bytes, several frames in one segment,
    noise, an over-long line, NAK, DUH and silence. NULLs get a plain ACK."""

    def __init__(self, key, script):
        import socket
        import threading
        self.key = key
        self.script = list(script)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.frames = []            # (answer given, message) in arrival order
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import socket
        while not self.stopped:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(0.2)
            with conn:
                self._session(conn)

    def _session(self, conn):
        import socket
        import time
        from protocols import dc09
        reader = dc09.FrameReader()
        while not self.stopped:
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            for f in reader.feed(data):
                m = dc09.decode(f, self.key)
                ack = dc09.encode(dc09.make_ack(m), self.key)
                how = "ack" if m.token != "ADM-CID" or not self.script else self.script.pop(0)
                self.frames.append((how, m))
                if how == "ack":
                    conn.sendall(ack)
                elif how == "bytewise":
                    for b in ack:
                        conn.sendall(bytes([b]))
                        time.sleep(0.002)
                elif how == "noise, stale ACK, ACK":
                    stale = dc09.make_ack(m)
                    stale.seq = m.seq % 9999 + 1
                    conn.sendall(b"\r\r junk \x00\xff" + dc09.encode(stale, self.key) + ack)
                elif how == "long line, ACK":
                    conn.sendall(b"\n" + b"A" * 2000 + ack)
                elif how == "ACK split in two":
                    conn.sendall(ack[:7])
                    time.sleep(0.05)
                    conn.sendall(ack[7:])
                elif how == "NAK":
                    conn.sendall(dc09.encode(dc09.make_nak()))
                elif how == "DUH":
                    conn.sendall(dc09.encode(dc09.make_duh(m)))
                elif how == "silence":
                    pass

    def stop(self):
        self.stopped = True
        self.srv.close()
        self.thread.join(5)


def test_reporter_reads_answers_however_they_arrive(make_dut):
    """The panel reads the link a byte stream at a time into one frame buffer: an
    ACK split into single bytes or in two, after noise and a stale ACK in the same
    segment, or after a 2 KB line, completes the event once; a NAK, a DUH or
    silence (ACK timeout) is a failure and the same event is sent again."""
    from protocols import dc09
    from tests.firmware.conftest import KEY_TEXT
    script = ["bytewise", "noise, stale ACK, ACK", "long line, ACK", "ACK split in two",
              "NAK", "ack", "DUH", "ack", "silence", "ack"]
    r = _ScriptedReceiver(dc09.key_from_text(KEY_TEXT), script)
    try:
        dut = make_dut(panel_config(reporter=reporter_config(r)))
        dut.expect(r"DELIVERED seq=1 code=305", 10)
        for _ in range(3):                        # zone 2 (double EOL): tamper, restore
            dut.trip(2, "tamper")
            dut.expect(r"EVENT seq=\d+ q=1 code=144", 5)
            dut.restore(2)
            dut.expect(r"EVENT seq=\d+ q=3 code=144", 5)
        dut.expect(r"DELIVERED seq=7 code=144", 15)
        assert not r.script
        log = "\n".join(dut.lines())
        assert "failed (1) OSError('NAK'" in log
        assert "failed (1) OSError('DUH'" in log
        assert "failed (1) OSError('ack timeout'" in log
        events = [(how, m.seq) for how, m in r.frames if m.token == "ADM-CID"]
        # four events, each ACKed once however its ACK arrived
        assert [s for _, s in events[:4]] == [1, 2, 3, 4]
        # then each refusal and the silence: the same sequence again, then its ACK
        assert [(h, s) for h, s in events[4:10]] == [("NAK", 5), ("ack", 5), ("DUH", 6), ("ack", 6),
                                                    ("silence", 7), ("ack", 7)]
        for n in range(1, 8):
            assert len(re.findall(r"DELIVERED seq=%d code=" % n, log)) == 1
    finally:
        r.stop()
