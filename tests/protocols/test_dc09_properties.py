"""Property tests for the panel-side codecs: decode(encode(x)) == x, and no input
makes a decoder raise anything but its own error type."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import contactid, dc09
from protocols.contactid import ContactIDError, Report
from protocols.dc09 import DC09Error, Message
from tests.mpy.test_dc09 import CAPTURED, PYSIA_NULL_ENC

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hexdigits = st.text("0123456789ABCDEF", min_size=1, max_size=6)
accounts = st.text("0123456789ABCDEF", min_size=3, max_size=16)
timestamps = st.integers(946684800, 4102444799).map(dc09.from_seconds)
reports = st.builds(Report, st.text("0123456789", min_size=4, max_size=4),
                    st.sampled_from(contactid.QUALIFIERS), st.integers(0, 999),
                    st.integers(0, 99), st.integers(0, 999), st.sampled_from([18, 98]))
xdata_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E,
                                     blacklist_characters="[]"), max_size=20)
xdata = st.lists(st.tuples(st.sampled_from("HIKLMNOPQRSTVZ"), xdata_values), max_size=3)
keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@st.composite
def messages(draw, encrypted=False):
    acct = draw(accounts)
    token = draw(st.sampled_from(["ADM-CID", "SIA-DCS", "NULL"]))
    if token == "ADM-CID":
        r = draw(reports)
        r.account = acct
        data = contactid.dc09_data(r)
    elif token == "SIA-DCS":
        data = "#%s|Nri%d/%s%03d" % (acct, draw(st.integers(0, 99)),
                                     draw(st.sampled_from(["BA", "FA", "PA", "HA", "CL", "OP", "TA"])),
                                     draw(st.integers(0, 999)))
    else:
        data = ""
    ts = draw(timestamps) if encrypted else draw(st.none() | timestamps)
    return Message(token, draw(st.integers(0, 9999)), acct, draw(st.none() | hexdigits),
                   draw(hexdigits), data, draw(xdata), ts, encrypted)


@FAST
@given(messages())
def test_plain_round_trip(msg):
    frame = dc09.encode(msg)
    assert dc09.decode(frame) == msg
    assert dc09.encode(dc09.decode(frame)) == frame


@FAST
@given(messages(encrypted=True), keys)
def test_encrypted_round_trip(msg, key):
    assert dc09.decode(dc09.encode(msg, key), key) == msg


@FAST
@given(reports)
def test_contact_id_round_trip(report):
    assert contactid.decode(contactid.encode(report)) == report
    back = contactid.parse_dc09_data(contactid.dc09_data(report))
    report.msg_type = None
    assert back == report


@FAST
@given(st.lists(st.sampled_from(CAPTURED), min_size=1, max_size=5), st.data())
def test_frame_reader_any_chunking(frames, data):
    stream = b"".join(frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader = dc09.FrameReader()
    out = []
    last = 0
    for cut in cuts + [len(stream)]:
        out += reader.feed(stream[last:cut])
        last = cut
    assert out == list(frames) and reader.discarded == 0


def _decode_only_own_error(frame, key=None):
    try:
        dc09.decode(frame, key)
    except DC09Error as e:
        assert e.reason in ("crc", "length", "format", "token", "key", "timestamp", "account")


@FAST
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data):
    _decode_only_own_error(data)
    _decode_only_own_error(b"\n" + data + b"\r", bytes(16))
    dc09.FrameReader().feed(data)


@st.composite
def mutated(draw):
    frame = bytearray(draw(st.sampled_from(CAPTURED + (PYSIA_NULL_ENC,))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "drop", "insert"]))
        i = draw(st.integers(0, len(frame) - 1))
        if op == "flip":
            frame[i] ^= draw(st.integers(1, 255))
        elif op == "drop":
            del frame[i]
        else:
            frame.insert(i, draw(st.integers(0, 255)))
    return bytes(frame)


def _fix_crc_and_length(frame):
    """Rewrite the header so a mutation reaches the parser behind the CRC check."""
    body = frame[9:-1]
    return ("\n%04X%04X" % (dc09.crc16_arc(body), len(body))).encode() + body + b"\r"


@FAST
@given(mutated())
def test_fuzz_mutated_real_frames(frame):
    _decode_only_own_error(frame)
    if len(frame) > 10:
        fixed = _fix_crc_and_length(frame)
        _decode_only_own_error(fixed)
        _decode_only_own_error(fixed, dc09.key_from_text("AAAAAAAAAAAAAAAA"))
        _decode_only_own_error(fixed, lambda account: None)


@FAST
@given(st.text(max_size=40))
def test_fuzz_contact_id(text):
    for fn in (contactid.decode, contactid.parse_dc09_data):
        try:
            fn(text)
        except ContactIDError:
            pass


@FAST
@given(st.text(max_size=40))
def test_fuzz_sia_data(text):
    try:
        dc09.parse_sia_data(text)
    except DC09Error:
        pass
