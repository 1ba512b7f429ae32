"""SIA DC-09 interop with two independent implementations from PyPI:
pysiaalarm (the receiver Home Assistant uses) as the receiving peer over real
sockets, and siadc09 (DC-09-2026 primitives) as an independent encoder and decoder."""
import asyncio

import pytest
from pysiaalarm import CommunicationsProtocol
from pysiaalarm.aio import SIAAccount, SIAClient
from siadc09 import account as sd_account
from siadc09 import message as sd_message

from protocols import dc09
from protocols.dc09 import Message
from tests.support.ports import free_port

# siadc09's own examples (siadc09/__init__.py docstring): a SIA-DCS fire alarm with a
# MAC address block, and an encrypted NULL with a key in the standard's hex convention.
SIADC09_FIRE = b'\n8C860043"SIA-DCS"9876R579BDFL789ABC#123456A[#123456A|NFA129][M1234567890AB]\r'
SIADC09_NULL_ENC = (b'\nDE260072"*NULL"0000L0#000[242ff5e1d26993d8ca4a622f7d779a93096ef7ed9b5499dc1'
                    b'3de23e1405a5764b58737251286f0d81da5134d1eebc238\r')
SIADC09_KEY_HEX = "850cba22f7dd4f033405da83e4c5bae9"


def test_siadc09_examples_decode():
    m = dc09.decode(SIADC09_FIRE)
    assert (m.token, m.seq, m.receiver, m.prefix, m.account) == ("SIA-DCS", 9876, "579BDF", "789ABC", "123456A")
    assert m.xdata == [("M", "1234567890AB")]
    assert m.sia_events()[0]["code"] == "FA" and m.sia_events()[0]["address"] == 129
    assert dc09.encode(m) == SIADC09_FIRE
    null = dc09.decode(SIADC09_NULL_ENC, dc09.key_from_hex(SIADC09_KEY_HEX))
    assert null.token == "NULL" and null.encrypted and null.account == "000"


@pytest.mark.parametrize("key", [None, bytes.fromhex("000102030405060708090a0b0c0d0e0f"),
                                 bytes(range(24)), bytes(range(32))])
def test_siadc09_parses_our_frames(key):
    msg = Message("ADM-CID", 17, "1234", "5", "6", "#1234|1130 02 015",
                  dc09.position_xdata(31.2304, 121.4737), (2026, 11, 23, 10, 0, 0))
    frame = dc09.encode(msg, key)
    theirs = sd_message.parse_frame(frame, key)
    assert theirs.idtoken == "ADM-CID" and theirs.seq == 17
    assert theirs.encrypted == (key is not None)
    assert theirs.account.acct == 0x1234 and theirs.account.rcvr == 5 and theirs.account.pref == 6
    event = theirs.data.event
    # siadc09 keeps Contact ID's group and zone digits as hex numbers: "015" -> 0x15.
    assert (event.qualifier, event.code, event.group, event.addr) == ("1", "130", 0x02, 0x015)
    prefixes = [x.prefix for x in theirs.xdata]
    assert prefixes == ["X", "Y"]


@pytest.mark.parametrize("key", [None, bytes(range(16)), bytes(range(32))])
def test_siadc09_encoder_frames_decode(key):
    # siadc09 re-encodes (with its own pad and CRC code) what it parsed.
    ours = dc09.encode(Message("SIA-DCS", 321, "ABC", None, "0", "#ABC|Nri2/BA017",
                               None, (2026, 11, 23, 10, 0, 0)), key)
    theirs = sd_message.parse_frame(ours, key).encode(encrypt=key is not None)
    back = dc09.decode(theirs, key)
    assert back.token == "SIA-DCS" and back.seq == 321 and back.encrypted == (key is not None)
    assert back.sia_events()[0]["code"] == "BA" and back.sia_events()[0]["address"] == 17
    null = sd_message.NullMessage(sd_account.Account(acct=0x777, key=key), encrypted=key is not None)
    decoded = dc09.decode(null.encode(), key)
    assert decoded.token == "NULL" and decoded.account == "777"


async def _pysiaalarm_round(protocol, frames, accounts, expect_events=None):
    """Send frames to a pysiaalarm receiver; return (events it saw, replies it sent).

    Over UDP pysiaalarm 3.2 never replies on CPython 3.11: its connection_made asserts
    the transport is an asyncio.DatagramTransport, which 3.11's selector datagram
    transport does not subclass. Its parser still runs, so UDP checks the events only."""
    if expect_events is None:
        expect_events = len(frames)
    port = free_port()
    events = []
    got = asyncio.Event()

    async def on_event(event):
        events.append(event)
        if len(events) >= expect_events:
            got.set()

    client = SIAClient("127.0.0.1", port, accounts, function=on_event, protocol=protocol)
    await client.async_start()
    replies = []
    try:
        if protocol is CommunicationsProtocol.TCP:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for frame in frames:
                writer.write(frame)
                await writer.drain()
                replies.append(await asyncio.wait_for(reader.readuntil(b"\r"), 5))
            writer.close()
            await writer.wait_closed()
        else:
            loop = asyncio.get_running_loop()
            queue = asyncio.Queue()

            class Proto(asyncio.DatagramProtocol):
                def datagram_received(self, data, addr):
                    queue.put_nowait(data)

            transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=("127.0.0.1", port))
            for frame in frames:
                transport.sendto(frame)
            await asyncio.wait_for(got.wait(), 5)
            transport.close()
        if expect_events:
            await asyncio.wait_for(got.wait(), 5)
    finally:
        await client.async_stop()
    return events, replies


@pytest.mark.parametrize("protocol", [CommunicationsProtocol.TCP, CommunicationsProtocol.UDP])
async def test_pysiaalarm_receives_our_encrypted_frames(protocol):
    key_text = "ABCDEF0123456789"       # pysiaalarm takes the key as its characters
    key = dc09.key_from_text(key_text)
    now = dc09.timestamp_now()
    frames = [
        dc09.encode(Message("ADM-CID", 1, "1234", None, "0", "#1234|1130 01 015", None, now), key),
        dc09.encode(Message("ADM-CID", 2, "1234", None, "0", "#1234|1121 01 003", None, now), key),
        dc09.encode(Message("SIA-DCS", 3, "1234", None, "0", "#1234|Nri1/FA007", None, now), key),
    ]
    events, replies = await _pysiaalarm_round(protocol, frames, [SIAAccount("1234", key_text)])
    codes = [(e.code, e.ri) for e in events]
    # pysiaalarm maps Contact ID to SIA codes: 130 new -> BA, 121 -> HA (duress/hold-up).
    # For SIA-DCS its `ri` is the partition modifier and the zone stays in `message`.
    assert codes[0] == ("BA", "015") and codes[1][0] == "HA" and codes[2] == ("FA", "1")
    assert events[2].message == "007"
    assert all(e.valid_message and e.encrypted for e in events)
    if protocol is CommunicationsProtocol.UDP:
        return                                  # no replies over UDP (see _pysiaalarm_round)
    assert len(replies) == len(frames)
    for frame, reply in zip(frames, replies):
        ack = dc09.decode(reply, key)           # its encrypted ACK: zero pad, no "|"
        assert ack.token == "ACK" and ack.encrypted
        assert dc09.is_ack_for(ack, dc09.decode(frame, key))


async def test_pysiaalarm_naks_stale_timestamp_and_we_read_its_nak():
    key_text = "ABCDEF0123456789"
    key = dc09.key_from_text(key_text)
    stale = dc09.from_seconds(dc09.to_seconds(dc09.timestamp_now()) - 600)
    frame = dc09.encode(Message("ADM-CID", 9, "1234", None, "0", "#1234|1130 01 015", None, stale), key)
    events, replies = await _pysiaalarm_round(CommunicationsProtocol.TCP, [frame],
                                              [SIAAccount("1234", key_text)], expect_events=0)
    assert events == []
    nak = dc09.decode(replies[0])
    assert nak.token == "NAK" and nak.timestamp is not None
    assert abs(dc09.to_seconds(nak.timestamp) - dc09.to_seconds(dc09.timestamp_now())) < 60


async def test_pysiaalarm_receives_plain_null_and_cid():
    frames = [dc09.encode(Message("NULL", 4, "9876", None, "0", "", None, None)),
              dc09.encode(Message("ADM-CID", 5, "9876", "12", "3", "#9876|3401 02 007"))]
    events, replies = await _pysiaalarm_round(CommunicationsProtocol.TCP, frames, [SIAAccount("9876", None)])
    assert events[1].code == "CL" and events[1].account == "9876"   # 401 restore = closing
    acks = [dc09.decode(r) for r in replies]
    assert [a.token for a in acks] == ["ACK", "ACK"] and [a.seq for a in acks] == [4, 5]
