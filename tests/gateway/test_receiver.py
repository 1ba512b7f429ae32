"""The DC-09 receiver over real loopback sockets: ACK only after commit, the
standard's answer to every fault, and the connection lives on after each."""
import asyncio
import logging
import time

import pytest

from gateway.app import Gateway
from protocols import crc, dc09
from tests.gateway.helpers import PANEL_KEY, TEXT_KEY, RawClient, adm_cid, center_config


@pytest.fixture
async def gateway(tmp_path):
    async with Gateway(center_config(tmp_path)) as gw:
        yield gw


def port(gw):
    return gw.receiver.address[1]


def reframe(body):
    """A frame around `body` with a correct CRC and length (to test what is inside)."""
    return ("\n%04X%04X" % (crc.crc16_arc(body), len(body))).encode() + body + b"\r"


async def test_ack_only_after_the_event_is_in_the_store(gateway):
    client = await RawClient().connect(port(gateway))
    msg = adm_cid("1001", 130, zone=15, seq=42, occurred=int(time.time()))
    await client.send(dc09.encode(msg, PANEL_KEY))
    ack = await client.answer(PANEL_KEY)
    assert dc09.is_ack_for(ack, msg) and ack.encrypted and ack.timestamp
    # The ACK came back: the event is committed, readable by a fresh reader right now.
    from gateway.store import EventLog
    log = EventLog(gateway.config.store_path)
    stored = log.events()
    log.close()
    assert [(s.event.account, s.event.code, s.event.zone, s.event.sequence) for s in stored] == [("1001", 130, 15, 42)]
    assert stored[0].event.site["site"] == "Bldg 1" and "ADM-CID" in stored[0].event.raw
    await client.close()


async def test_several_frames_in_one_segment_each_get_their_ack(gateway):
    client = await RawClient().connect(port(gateway))
    msgs = [dc09.Message("NULL", seq=1, account="1001", timestamp=dc09.timestamp_now()),
            adm_cid("1001", 401, qualifier=3, seq=2), adm_cid("1001", 120, seq=3)]
    await client.send(b"".join(dc09.encode(m, PANEL_KEY) for m in msgs))
    for m in msgs:
        assert dc09.is_ack_for(await client.answer(PANEL_KEY), m)
    # Committed together; within the transaction the panic alarm goes before the closing.
    assert [s.event.code for s in await gateway.store.events()] == [120, 401]
    await client.close()


async def test_text_key_over_udp_and_plain_text_account(gateway):
    loop = asyncio.get_running_loop()
    answers = asyncio.Queue()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            answers.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=("127.0.0.1", port(gateway)))
    key = dc09.key_from_text(TEXT_KEY)
    msg = adm_cid("1002", 110, zone=3, seq=7)
    transport.sendto(dc09.encode(msg, key))
    assert dc09.is_ack_for(dc09.decode(await asyncio.wait_for(answers.get(), 10), key), msg)
    plain = adm_cid("1003", 302, seq=8)
    transport.sendto(dc09.encode(plain))
    assert dc09.is_ack_for(dc09.decode(await asyncio.wait_for(answers.get(), 10)), plain)
    transport.close()
    events = await gateway.store.events()
    assert {(s.event.account, s.event.source) for s in events} == {("1002", "dc09/udp"), ("1003", "dc09/udp")}


async def test_a_retried_frame_is_acked_again_and_recorded_once(gateway):
    client = await RawClient().connect(port(gateway))
    occurred = int(time.time()) - 5
    for _ in range(2):        # same sequence and time of occurrence, fresh timestamp: a retry
        msg = adm_cid("1001", 130, seq=9, occurred=occurred)
        await client.send(dc09.encode(msg, PANEL_KEY))
        assert dc09.is_ack_for(await client.answer(PANEL_KEY), msg)
    assert len(await gateway.store.events()) == 1
    assert gateway.metrics.total("jifang_events_duplicate_total") == 1
    await client.close()


async def test_a_retry_of_a_frame_without_any_time_is_recorded_once(gateway):
    # Panels in the field send plain frames with no timestamp and no [H] (see the
    # captures in tests/mpy/test_dc09.py): the receiver dates them on arrival, so the
    # retry, a second or more later, must still be recognised as the same event.
    client = await RawClient().connect(port(gateway))
    msg = dc09.Message("ADM-CID", seq=31, account="1003", data="#1003|1130 01 004")
    for attempt in range(2):
        await client.send(dc09.encode(msg))
        assert dc09.is_ack_for(await client.answer(), msg)
        if attempt == 0:
            await asyncio.sleep(1.1)            # the retry lands in a later second
    again = dc09.Message("ADM-CID", seq=32, account="1003", data="#1003|1130 01 004")
    await client.send(dc09.encode(again))       # a new event: the next sequence number
    assert dc09.is_ack_for(await client.answer(), again)
    assert [s.event.sequence for s in await gateway.store.events()] == [31, 32]
    assert gateway.metrics.total("jifang_events_duplicate_total") == 1
    await client.close()


async def test_a_restore_in_the_same_second_as_its_alarm_is_kept(gateway):
    client = await RawClient().connect(port(gateway))
    now = int(time.time())
    alarm = adm_cid("1001", 130, qualifier=1, seq=5, occurred=now)
    restore = adm_cid("1001", 130, qualifier=3, seq=5, occurred=now)   # same sequence and second
    for m in (alarm, restore):
        await client.send(dc09.encode(m, PANEL_KEY))
        assert dc09.is_ack_for(await client.answer(PANEL_KEY), m)
    assert [s.event.qualifier for s in await gateway.store.events()] == [1, 3]
    await client.close()


async def test_every_fault_gets_the_standards_answer_and_the_connection_lives_on(gateway, caplog):
    caplog.set_level(logging.WARNING, logger="jifang")
    client = await RawClient().connect(port(gateway))
    good = dc09.encode(adm_cid("1001", 130, seq=1), PANEL_KEY)
    wrong_key = bytes(range(16, 32))
    stale = dc09.from_seconds(int(time.time()) - 3600)
    faults = {
        "crc": good[:1] + (b"0000" if good[1:5] != b"0000" else b"1111") + good[5:],
        "length": good[:5] + b"0001" + good[9:],
        "format": reframe(b'"ADM-CID"0001L0#1001 no brackets'),
        "key": dc09.encode(adm_cid("1001", 130, seq=2), wrong_key),
        "timestamp": dc09.encode(adm_cid("1001", 130, seq=3, timestamp=stale), PANEL_KEY),
        "account": dc09.encode(adm_cid("9999", 130, seq=4)),
    }
    for reason, frame in faults.items():
        await client.send(frame)
        nak = await client.answer()
        assert nak.token == "NAK" and nak.seq == 0 and nak.timestamp is not None, reason
        assert gateway.metrics.value("jifang_naks_total", reason=reason) == 1, reason
        assert any(getattr(r, "reason", None) == reason for r in caplog.records), reason
    # unknown account, encrypted (no key to read it with): also a NAK, counted as "account"
    await client.send(dc09.encode(adm_cid("9998", 130, seq=5), PANEL_KEY))
    assert (await client.answer()).token == "NAK"
    assert gateway.metrics.value("jifang_naks_total", reason="account") == 2
    # an account with a key that sends in clear: refused (else the key protects nothing)
    await client.send(dc09.encode(adm_cid("1001", 130, seq=6)))
    assert (await client.answer()).token == "NAK"
    # understood but not handled here: DUH, echoing the sequence
    sia = dc09.Message("SIA-DCS", seq=11, account="1001", data="#1001|Nri1/ZZ015", timestamp=dc09.timestamp_now())
    await client.send(dc09.encode(sia, PANEL_KEY))
    duh = await client.answer()
    assert duh.token == "DUH" and duh.seq == 11
    # garbage between frames is dropped; the same connection still works
    await client.send(b"noise\r\n\x00\x01" + good)
    assert dc09.is_ack_for(await client.answer(PANEL_KEY), adm_cid("1001", 130, seq=1))
    assert [s.event.sequence for s in await gateway.store.events()] == [1]
    await client.close()


async def test_link_tests_are_acked_and_feed_supervision(gateway):
    client = await RawClient().connect(port(gateway))
    null = dc09.Message("NULL", seq=5, account="1002", timestamp=dc09.timestamp_now())
    key = dc09.key_from_text(TEXT_KEY)
    await client.send(dc09.encode(null, key))
    assert dc09.is_ack_for(await client.answer(key), null)
    assert "1002" in gateway.supervision.last_heard
    assert await gateway.store.events() == []          # link tests are not events
    await client.close()


async def test_sia_dcs_events_become_the_same_events_as_contact_id(gateway):
    client = await RawClient().connect(port(gateway))
    sia = dc09.Message("SIA-DCS", seq=21, account="1001", data="#1001|Nri2/BA015/PA091",
                       timestamp=dc09.timestamp_now())
    await client.send(dc09.encode(sia, PANEL_KEY))
    assert dc09.is_ack_for(await client.answer(PANEL_KEY), sia)
    closing = dc09.Message("SIA-DCS", seq=22, account="1001", data="#1001|Nri1/id3/CL003",
                           timestamp=dc09.timestamp_now())
    await client.send(dc09.encode(closing, PANEL_KEY))
    assert dc09.is_ack_for(await client.answer(PANEL_KEY), closing)
    events = [s.event for s in await gateway.store.events()]
    assert [(e.code, e.qualifier, e.partition, e.zone, e.event_class) for e in events] == [
        (130, 1, 2, 15, "alarm"), (120, 1, 2, 91, "alarm"), (401, 3, 1, 3, "open_close")]
    await client.close()
