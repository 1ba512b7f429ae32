"""The reporter's frames, checked on CPython against the shared codec: the ADM-CID data it
formats itself equals contactid.dc09_data, sequence numbers wrap 9999 -> 1, the event
time rides in [H...] and the timestamp is the send time."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "firmware"))

from core.fakeclock import FakeClock  # noqa: E402
from core.reporter import Reporter  # noqa: E402
from protocols import contactid, dc09  # noqa: E402


@pytest.mark.parametrize("fields", [
    [1, 1795430000, 1, 1, 130, 2],
    [9999, 1795430000, 3, 12, 401, 999],
    [10000, 1795430000, 1, 0, 602, 0],
    [123456, 1795420000, 1, 99, 121, 7],
])
def test_frame_matches_codec(fields):
    clock = FakeClock(wall=1795430100)
    rep = Reporter({"account": "ab12", "reporter": {"receivers": [], "key_text": "0123456789ABCDEF"}},
                   None, clock, None)
    msg = rep.build(fields)
    frame = dc09.encode(msg, rep.key)
    back = dc09.decode(frame, rep.key)
    seq, when, q, part, code, zone = fields
    assert back.token == "ADM-CID" and back.encrypted
    assert back.seq == (seq - 1) % 9999 + 1
    assert back.data == contactid.dc09_data(contactid.Report("AB12", q, code, part, zone))
    assert back.contact_id() == contactid.Report("AB12", q, code, part, zone, None)
    assert dc09.to_seconds(back.timestamp) == 1795430100
    h = dict(back.xdata)["H"]
    t = dc09.from_seconds(when)
    assert h == "%02d:%02d:%02d,%02d-%02d-%04d" % (t[3], t[4], t[5], t[1], t[2], t[0])
