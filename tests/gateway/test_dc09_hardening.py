"""Attacks on the DC-09 receiver from issue 11, reproduced on loopback against real
gateways (real store, real forwarder to a real upper gateway):

  - a captured encrypted alarm resent with only its clear sequence changed (CRC
    recomputed), and variants that change the ciphertext without changing what it
    decrypts to: ACKed every time, stored and forwarded once;
  - at a 110 center peering with one key for every account (account = "*"), the clear
    header's account rewritten: NAK, counted, nothing stored;
  - binary-CRC frames whose length lies do not cost the next frame its ACK;
  - a UDP NAK is never larger than the datagram that caused it.
"""
import asyncio

from gateway.app import Gateway
from gateway.sources.dc09 import ReplayCache
from protocols import crc, dc09
from tests.gateway.helpers import (PANEL_KEY, PEER_KEY, RawClient, adm_cid, center_config, upper_config,
                                   wait_for)


def reframe(body):
    return ("\n%04X%04X" % (crc.crc16_arc(body), len(body))).encode() + body + b"\r"


def rewrite_header(frame, seq=None, account=None, cipher=None):
    """`frame` with its clear sequence and/or account replaced (and/or the hex after
    the "[" replaced by `cipher`), CRC and length recomputed: what anyone on the path
    can do without the key."""
    body = frame[9:-1]
    token_end = body.index(b'"', 1) + 1
    bracket = body.index(b"[")
    head, tail = body[:bracket], body[bracket:]
    if seq is not None:
        head = head[:token_end] + b"%04d" % seq + head[token_end + 4:]
    if account is not None:
        head = head[:head.rindex(b"#") + 1] + account.encode()
    if cipher is not None:
        tail = b"[" + cipher
    return reframe(head + tail)


def prepend_block(frame, key):
    """The CBC malleability trick: a 16-byte block put before the ciphertext turns the
    first real block into pad (which the receiver discards), so the frame is another
    ciphertext of the same message. Some blocks make a pad holding "|" or "]": take
    the first block that decodes to the same message."""
    body = frame[9:-1]
    hex_text = body[body.index(b"[") + 1:]
    original = dc09.decode(frame, key)
    for i in range(256):
        candidate = rewrite_header(frame, cipher=(bytes([i]) * 16).hex().upper().encode() + hex_text)
        try:
            if dc09.decode(candidate, key) == original:
                return candidate
        except dc09.DC09Error:
            continue
    raise AssertionError("no block gave the same message")


async def test_a_replayed_encrypted_alarm_is_acked_but_stored_and_forwarded_once(tmp_path):
    async with Gateway(upper_config(tmp_path / "110")) as upper:
        center_cfg = center_config(tmp_path / "asc", upstream=[upper.receiver.address[1]])
        async with Gateway(center_cfg) as center:
            client = await RawClient().connect(center.receiver.address[1])
            alarm = adm_cid("1001", 130, zone=15, seq=42)           # burglary, encrypted
            captured = dc09.encode(alarm, PANEL_KEY)
            await client.send(captured)
            assert dc09.is_ack_for(await client.answer(PANEL_KEY), alarm)
            resends = [rewrite_header(captured, seq=100 + i) for i in range(10)]
            # and two that change the ciphertext but not the message it decrypts to
            body = captured[9:-1]
            lower = rewrite_header(captured, seq=200, cipher=body[body.index(b"[") + 1:].lower())
            resends += [lower, prepend_block(rewrite_header(captured, seq=201), PANEL_KEY)]
            for frame in resends:
                await client.send(frame)
                ack = await client.answer(PANEL_KEY)
                # every resend is ACKed (with its own clear sequence), so a panel that
                # resends the same bytes stops, and a replayer learns nothing
                assert ack.token == "ACK" and ack.seq == dc09.decode(frame, PANEL_KEY).seq
            assert center.metrics.total("jifang_dc09_replays_total") == 12
            stored = await center.store.events()
            assert [(s.event.account, s.event.code, s.event.zone, s.event.sequence) for s in stored] == [
                ("1001", 130, 15, 42)]
            # Forwarded once: the center's outbox is empty and the 110 holds one alarm.
            await wait_for(lambda: center.outboxes[0].depth() == 0, what="the forwarder to drain")
            await wait_for(upper.store.events, what="the alarm at the 110")
            assert [(s.event.account, s.event.code) for s in await upper.store.events()] == [("1001", 130)]
            assert center.metrics.total("jifang_forwarded_total") == 1
            await client.close()


async def test_a_replayed_link_test_does_not_feed_supervision(tmp_path):
    async with Gateway(center_config(tmp_path)) as gw:
        client = await RawClient().connect(gw.receiver.address[1])
        null = dc09.Message("NULL", seq=5, account="1001", timestamp=dc09.timestamp_now())
        captured = dc09.encode(null, PANEL_KEY)
        await client.send(captured)
        assert dc09.is_ack_for(await client.answer(PANEL_KEY), null)
        heard = gw.supervision.last_heard["1001"]
        await asyncio.sleep(0.05)
        await client.send(rewrite_header(captured, seq=6))
        assert (await client.answer(PANEL_KEY)).token == "ACK"
        # a captured link test replayed cannot keep a cut panel looking alive
        assert gw.supervision.last_heard["1001"] == heard
        assert gw.metrics.value("jifang_dc09_replays_total", token="NULL") == 1
        await client.close()


async def test_peering_center_refuses_a_rewritten_header_account(tmp_path):
    async with Gateway(upper_config(tmp_path)) as upper:        # account = "*", one peering key
        client = await RawClient().connect(upper.receiver.address[1])
        alarm = adm_cid("1001", 130, zone=3, seq=7)
        captured = dc09.encode(alarm, PEER_KEY)
        await client.send(rewrite_header(captured, account="2002"))
        nak = await client.answer()
        assert nak.token == "NAK"
        assert upper.metrics.value("jifang_naks_total", reason="account_mismatch") == 1
        assert await upper.store.events() == []
        # an event under the shared key whose encrypted data names no account: nothing
        # binds it to the header's account
        anonymous = dc09.Message("ADM-CID", seq=8, account="2003", data="1130 01 003",
                                 timestamp=dc09.timestamp_now())
        await client.send(dc09.encode(anonymous, PEER_KEY))
        assert (await client.answer()).token == "NAK"
        assert upper.metrics.value("jifang_naks_total", reason="account_unauthenticated") == 1
        assert await upper.store.events() == []
        # the genuine frame still goes through, under the account its encrypted data names
        await client.send(captured)
        assert dc09.is_ack_for(await client.answer(PEER_KEY), alarm)
        assert [s.event.account for s in await upper.store.events()] == ["1001"]
        await client.close()


async def test_metrics_count_the_refused_header(tmp_path):
    import aiohttp
    from tests.support.ports import free_port
    cfg = upper_config(tmp_path)
    cfg.http_listen = ("127.0.0.1", free_port())
    async with Gateway(cfg) as upper, aiohttp.ClientSession() as http:
        client = await RawClient().connect(upper.receiver.address[1])
        await client.send(rewrite_header(dc09.encode(adm_cid("1001", 130), PEER_KEY), account="2002"))
        assert (await client.answer()).token == "NAK"
        async with http.get("http://127.0.0.1:%d/metrics" % upper.ops.address[1]) as r:
            assert 'jifang_naks_total{reason="account_mismatch"} 1' in await r.text()
        await client.close()


# ---------------------------------------------------------------- the replay cache itself

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _digests(i):
    return (b"c%d" % i, b"m%d" % i)


async def test_replay_cache_entries_expire_with_the_window():
    clock = Clock()
    cache = ReplayCache(size=100, lifetime=61, clock=clock)
    (await cache.claim(_digests(1))).settle(True)
    assert await cache.claim(_digests(1)) is None            # within the window: a replay
    assert await cache.claim((b"other", b"m1")) is None      # either digest is enough
    clock.now += 62                                          # past it the timestamp check refuses
    assert await cache.claim(_digests(1)) is not None and len(cache) == 2


async def test_replay_cache_is_bounded_and_counts_evictions():
    cache = ReplayCache(size=16, lifetime=61, clock=Clock())
    for i in range(20):                                      # past the bound
        (await cache.claim(_digests(i))).settle(True)
    assert len(cache) == 16 and cache.evicted == 24          # two digests per message
    assert await cache.claim(_digests(19)) is None
    assert await cache.claim(_digests(0)) is not None        # evicted: handled as new


async def test_a_copy_of_a_message_not_committed_is_handled_as_new():
    cache = ReplayCache(size=100, lifetime=61, clock=Clock())
    first = await cache.claim(_digests(1))
    second = asyncio.ensure_future(cache.claim(_digests(1)))   # arrives while the first is in flight
    await asyncio.sleep(0)
    assert not second.done()                                   # it waits for the first's outcome
    first.settle(False)                                        # e.g. the store failed: no ACK was sent
    claim = await second
    assert claim is not None                                   # so this copy is stored, then ACKed
    claim.settle(True)
    assert await cache.claim(_digests(1)) is None


def test_replay_cache_size_is_a_config_key(tmp_path):
    cfg = center_config(tmp_path, replay_cache_size=16)
    from gateway.sources.dc09 import DC09Receiver
    receiver = DC09Receiver(cfg, None, None)
    assert receiver.replays.size == 16 and receiver.replays.lifetime == 20 + 40 + 1


# ---------------------------------------------------------------- smaller points (issue 11, 6)

def binary_crc_frame(body, claimed=None):
    value = crc.crc16_arc(body)
    return (b"\n" + bytes([value >> 8, value & 0xFF]) + ("%04X" % (len(body) if claimed is None else claimed)).encode()
            + body + b"\r")


async def test_a_lying_binary_length_does_not_cost_the_next_frame_its_ack(tmp_path):
    async with Gateway(center_config(tmp_path)) as gw:
        client = await RawClient().connect(gw.receiver.address[1])
        plain = adm_cid("1003", 130, seq=3)
        body = dc09.encode(plain)[9:-1]
        for n, claimed in enumerate((len(body) + 60, len(body) - 10)):
            good = adm_cid("1003", 131, seq=10 + n)
            # the lying frame and a real one in the same segment, as a stream delivers them
            await client.send(binary_crc_frame(body, claimed) + binary_crc_frame(dc09.encode(good)[9:-1]))
            assert (await client.answer()).token == "NAK"
            assert dc09.is_ack_for(await client.answer(), good)
        assert gw.metrics.value("jifang_naks_total", reason="length") == 2
        assert [s.event.sequence for s in await gw.store.events()] == [10, 11]
        await client.close()


async def test_a_udp_nak_is_never_larger_than_the_datagram(tmp_path):
    async with Gateway(center_config(tmp_path)) as gw:
        loop = asyncio.get_running_loop()
        answers = asyncio.Queue()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                answers.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=("127.0.0.1", gw.receiver.address[1]))
        tiny = b'\n00000000"x"\r'                           # 13 bytes, a frame to the reader
        small = reframe(b'"NULL"0000L0#99[]')               # 27 bytes, unknown account
        full = dc09.encode(adm_cid("1001", 130, seq=1), PANEL_KEY)
        bad_crc = full[:1] + b"0000" + full[5:]             # a full-size frame, bad CRC
        for datagram in (tiny, small, bad_crc):
            transport.sendto(datagram)
        answer_small = await asyncio.wait_for(answers.get(), 10)   # nothing came for the tiny one
        answer_full = await asyncio.wait_for(answers.get(), 10)
        print("datagram -> NAK bytes: %d -> 0, %d -> %d, %d -> %d"
              % (len(tiny), len(small), len(answer_small), len(bad_crc), len(answer_full)))
        nak = dc09.decode(answer_small)
        assert nak.token == "NAK" and nak.timestamp is None and len(answer_small) <= len(small)
        nak = dc09.decode(answer_full)
        assert nak.token == "NAK" and nak.timestamp is not None and len(answer_full) <= len(bad_crc)
        assert gw.metrics.total("jifang_naks_total") == 3
        assert gw.metrics.total("jifang_dc09_udp_naks_shrunk_total") == 2
        assert answers.empty()
        transport.close()


async def test_ops_on_a_public_address_without_a_token_warns_and_a_token_is_required(tmp_path, caplog):
    import logging
    import aiohttp
    from tests.support.ports import free_port
    caplog.set_level(logging.WARNING, logger="jifang")
    cfg = center_config(tmp_path)
    cfg.http_listen = ("127.0.0.1", free_port())
    async with Gateway(cfg):
        pass
    assert not [r for r in caplog.records if r.name == "jifang.ops"]       # loopback: no warning
    cfg.http_listen = ("0.0.0.0", free_port())
    async with Gateway(cfg):
        pass
    warned = [r for r in caplog.records if r.name == "jifang.ops"]
    assert len(warned) == 1 and "without a token" in warned[0].getMessage() and "token" in warned[0].fix
    caplog.clear()
    cfg.http_token = "s3cret-ops-token"
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as http:
        assert not [r for r in caplog.records if r.name == "jifang.ops"]
        base = "http://127.0.0.1:%d" % gw.ops.address[1]
        for path in ("/healthz", "/metrics"):
            async with http.get(base + path) as r:
                assert r.status == 401
            async with http.get(base + path, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
            async with http.get(base + path, headers={"Authorization": "Bearer s3cret-ops-token"}) as r:
                assert r.status == 200


def test_http_token_is_a_config_key_and_a_secret(tmp_path):
    from gateway import config as config_module
    cfg = config_module.from_dict({"http": {"listen": "0.0.0.0:9101", "token": "tok-123"}}, tmp_path)
    assert cfg.http_token == "tok-123" and "tok-123" in cfg.secrets
