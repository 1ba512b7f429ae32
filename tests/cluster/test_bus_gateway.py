"""Two gateway nodes in cluster mode ([bus]) on a real 3-node NATS cluster: a panel's
frame is ACKed by node A once the replicated stream has it, lands in the store, and
its retry on the backup receiver (node B) is recorded once."""
import time

import pytest

from gateway.app import Gateway
from protocols import dc09
from tests.gateway.helpers import PANEL_KEY, RawClient, adm_cid, center_config, wait_for
from tests.support.busnode import drained

pytestmark = pytest.mark.slow


def cluster_config(tmp_path, name, urls, db):
    cfg = center_config(tmp_path, name=name)
    from gateway import config as config_module
    data = {"gateway": {"name": name}, "store": {"path": str(db)},
            "receiver": {"listen": "127.0.0.1:%d" % cfg.receiver_listen[1]},
            "devices": [{"account": "1001", "key_hex": PANEL_KEY.hex().upper(), "site": "Bldg 1"}],
            "bus": {"url": urls, "replicas": 3}}
    return config_module.from_dict(data, tmp_path, name)


async def test_panel_acked_after_the_pubAck_and_its_retry_on_the_backup_node_stored_once(tmp_path, nats_cluster):
    db = tmp_path / "shared.db"
    async with Gateway(cluster_config(tmp_path, "node-a", nats_cluster.urls, db)) as a, \
            Gateway(cluster_config(tmp_path, "node-b", nats_cluster.urls, db)) as b:
        assert a.pipeline.bus is not None and b.pipeline.bus is not None
        msg = adm_cid("1001", 130, zone=15, seq=42, occurred=int(time.time()))
        for node in (a, b):               # primary, then the backup receiver (the panel missed A's ACK)
            client = await RawClient().connect(node.receiver.address[1])
            await client.send(dc09.encode(msg, PANEL_KEY))
            assert dc09.is_ack_for(await client.answer(PANEL_KEY), msg)
            await client.close()
        assert b.metrics.value("jifang_bus_duplicate_total", lane="alarms") >= 1   # the stream dropped B's copy
        await wait_for(lambda: drained(a), what="bus drained")
        stored = await a.store.events()
        assert [(s.event.account, s.event.code, s.event.zone) for s in stored] == [("1001", 130, 15)]
        assert stored[0].event.site["site"] == "Bldg 1"          # enriched on the receiving node


async def test_without_the_bus_the_gateway_acks_after_its_own_commit(tmp_path):
    async with Gateway(center_config(tmp_path)) as gw:
        assert gw.bus is None and gw.pipeline.bus is None
