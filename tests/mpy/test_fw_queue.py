# The persistent event queue: commit, ack, restart, torn writes, bounded with
# priorities. Runs on CPython and on the MicroPython unix port.
try:
    import core.compat  # noqa: F401
except ImportError:
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware"))

import os
import struct
from core.equeue import EventQueue, SLOT, FMT
from protocols.contactid_table import PRIORITY_LIFE_SAFETY
from protocols.crc import crc16_arc

PATH = "/tmp/jf_fw_queue_test.bin"


def fresh(cap=16):
    try:
        os.remove(PATH)
    except OSError:
        pass
    return EventQueue(PATH, cap)


def test_push_read_ack_and_restart():
    q = fresh()
    s1 = q.push(1, 130, 1, 5, when=1000)
    s2 = q.push(1, 602, 0, 0, when=1001)
    assert (s1, s2) == (1, 2) and q.pending == 2
    slot = q.next()
    assert q.read(slot) and q.fields[:6] == [1, 1000, 1, 1, 130, 5]
    q.close()
    q = EventQueue(PATH, 16)
    assert q.pending == 2 and q.next_seq == 3 and q.discarded == 0
    slot = q.next()
    assert q.read(slot) and q.fields[0] == 1
    assert q.ack(slot, 1)
    assert not q.ack(slot, 1)
    q.close()
    q = EventQueue(PATH, 16)
    assert q.pending_seqs() == [2]
    assert q.push(3, 130, 1, 5) == 3
    q.close()


def test_alarms_go_first():
    q = fresh()
    q.push(1, 602, 0, 0)
    q.push(3, 401, 1, 1)
    q.push(1, 301, 0, 0)
    q.push(1, 130, 1, 2)
    order = []
    while q.pending:
        s = q.next()
        q.read(s)
        order.append(q.fields[4])
        q.ack(s)
    # The gateway's tiers (contactid_table): alarm, trouble, then routine in the
    # order queued (a test report and a closing are both routine).
    assert order == [130, 301, 602, 401]
    q.close()


def test_records_of_older_firmware_are_ranked_by_the_table():
    """Firmware before the shared table stored a priority counting up (3 = alarm) and
    called 424 (egress denied) an alarm. At boot a record is ranked from its code,
    so 424 is routine and a trouble (301) goes before it."""
    try:
        os.remove(PATH)
    except OSError:
        pass
    f = open(PATH, "wb")
    for seq, code, old_prio in ((1, 424, 3), (2, 301, 2)):
        rec = bytearray(SLOT)
        rec[0] = 0xA5
        rec[1] = 16
        struct.pack_into(FMT, rec, 2, seq, 1000 + seq, 1, 0, code, 0, old_prio, 0)
        c = crc16_arc(memoryview(rec)[0:18])
        rec[18] = c & 0xFF
        rec[19] = c >> 8
        for i in range(20, 24):
            rec[i] = 0xFF
        f.write(rec)
    f.close()
    q = EventQueue(PATH, 16)
    assert q.pending == 2 and q.discarded == 0
    q.read(q.next())
    assert q.fields[4] == 301
    q.close()


def test_torn_write_never_misread():
    # For every prefix length of a new record written over a used (done) slot, the
    # queue recovers the committed record untouched and never returns the torn one.
    for k in range(SLOT + 1):
        q = fresh(4)
        a = q.push(1, 602, 0, 7)              # slot 0
        q.ack(0)
        b = q.push(1, 130, 1, 3)              # slot 1: committed, pending
        q.close()
        # the record that the next push would write into slot 2, then slot 0:
        q2 = EventQueue("/tmp/jf_fw_queue_scratch.bin", 4)
        for _ in range(3):
            q2.push(1, 134, 2, 9)
        new = bytes(q2._buf)
        q2.close()
        os.remove("/tmp/jf_fw_queue_scratch.bin")
        with open(PATH, "r+b") as f:
            f.seek(0)
            f.write(new[:k])
        q = EventQueue(PATH, 4)
        assert b in q.pending_seqs(), k
        s1 = [i for i in range(4) if q.meta[i] and q.seqs[i] == b][0]
        assert q.read(s1) and q.fields[4] == 130 and q.fields[5] == 3
        if q.meta[0]:                          # only a whole record may appear
            assert q.read(0) and q.fields[4] == 134 and q.fields[5] == 9, k
        assert a not in q.pending_seqs()
        q.close()


def test_corrupt_byte_detected():
    q = fresh(4)
    q.push(1, 130, 1, 3)
    q.push(1, 131, 1, 4)
    q.close()
    with open(PATH, "r+b") as f:
        f.seek(SLOT + 8)
        f.write(b"\x55")
    q = EventQueue(PATH, 4)
    assert q.pending == 1 and q.discarded == 1
    q.read(q.next())
    assert q.fields[4] == 130
    q.close()


def test_full_drops_telemetry_first_and_reports_it():
    q = fresh(8)
    for i in range(4):
        q.push(1, 602, 0, i)
    for i in range(4):
        q.push(1, 130, 1, i)
    assert q.pending == 8
    q.push(1, 131, 1, 9)                      # evicts a 602, then 624 evicts another
    codes = []
    for s in range(8):
        if q.meta[s]:
            q.read(s)
            codes.append(q.fields[4])
    assert codes.count(130) == 4 and 131 in codes and 624 in codes
    assert codes.count(602) == 2 and q.dropped == 2
    q.close()


def test_full_of_alarms_drops_new_telemetry_not_alarms():
    q = fresh(4)
    for i in range(4):
        q.push(1, 130, 1, i)
    assert q.push(1, 602, 0, 0) == 0
    assert q.dropped >= 1
    n = 0
    for s in range(4):
        if q.meta[s]:
            q.read(s)
            n += q.fields[6] == PRIORITY_LIFE_SAFETY
    assert n == 4                              # no alarm lost
    q.close()


def test_thousand_events_survive_restart():
    q = fresh(1024)
    for i in range(1000):
        q.push(1, 130 if i % 10 == 0 else 602, 1, i % 999)
    q.close()
    q = EventQueue(PATH, 1024)
    assert q.pending == 1000 and q.pending_seqs() == list(range(1, 1001))
    q.close()
    os.remove(PATH)
