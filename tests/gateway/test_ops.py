"""Operations: /healthz and Prometheus /metrics, JSON logs that never carry a secret,
and the gateway command refusing a bad config with the key, value and fix."""
import argparse
import asyncio
import io
import json
import logging

import aiohttp

from gateway import logs, service
from gateway.app import Gateway
from gateway.panelsim import Panel
from protocols import dc09
from tests.gateway.helpers import PANEL_KEY, PANEL_KEY_HEX, PEER_KEY_HEX, RawClient, adm_cid, center_config, wait_for
from tests.support.ports import free_port, free_tcp_udp_port


async def test_healthz_and_metrics(tmp_path):
    cfg = center_config(tmp_path, upstream=[free_tcp_udp_port()])      # upstream down
    cfg.http_listen = ("127.0.0.1", free_port())
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as http:
        base = "http://127.0.0.1:%d" % gw.ops.address[1]
        async with http.get(base + "/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        panel = Panel("1001", PANEL_KEY, ("127.0.0.1", gw.receiver.address[1]))
        panel.start()
        await asyncio.wait_for(panel.report(130, zone=1).acked, 10)
        client = await RawClient().connect(gw.receiver.address[1])
        await client.send(dc09.encode(adm_cid("1001", 130, seq=77), bytes(16)))      # wrong key
        assert (await client.answer()).token == "NAK"
        await wait_for(lambda: gw.metrics.total("jifang_forward_failures_total") >= 1, what="a failed delivery")
        async with http.get(base + "/healthz") as r:
            body = await r.json()
            assert r.status == 503 and body["status"] == "degraded" and body["forwarders"]["up"]["queued"] == 1
        async with http.get(base + "/metrics") as r:
            text = await r.text()
        assert 'jifang_events_in_total{event_class="alarm",source="dc09/tcp"} 1' in text
        assert 'jifang_queue_depth{forwarder="up"} 1' in text
        assert 'jifang_oldest_unforwarded_seconds{forwarder="up"}' in text
        assert 'jifang_naks_total{reason="key"} 1' in text
        assert "jifang_connections 2" in text
        assert 'jifang_forward_failures_total{forwarder="up",reason="ConnectionRefusedError"}' in text
        await client.close()
        await panel.stop()


def test_json_logs_scrub_secrets():
    stream = io.StringIO()
    handler = logs.setup("INFO", [PANEL_KEY_HEX, PEER_KEY_HEX], "asc", stream=stream)
    try:
        logging.getLogger("jifang.test").warning("key is %s", PANEL_KEY_HEX, extra={"key": PEER_KEY_HEX, "account": "1001"})
    finally:
        logs.teardown(handler)
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "key is ***" and entry["key"] == "***" and entry["account"] == "1001"
    assert entry["gateway"] == "asc" and entry["level"] == "warning"


def test_gateway_command_refuses_a_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[receiver]\nlisten = "127.0.0.1"\n')
    assert service.run(argparse.Namespace(config=str(bad), log_level="INFO")) == 2
    err = capsys.readouterr().err
    assert "receiver.listen = '127.0.0.1'" in err and "fix:" in err
