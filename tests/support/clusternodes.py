"""Gateway nodes in cluster mode (PostgreSQL store + NATS JetStream bus) as separate
processes, for the cluster tests: each one `python -m gateway.service --config
node-X.toml`, so kill -9 is a real process death (gateway/demo_cluster.NodeProcess,
what `jifang demo --cluster` runs).

    nodes = cluster_nodes(tmp_path, url, nats.urls, ["a", "b"], accounts, upstream=port110)
    nodes["a"].start(); await nodes["a"].ready()
"""
import asyncio

from gateway.demo_cluster import NodeProcess, lease_holders, to_toml
from tests.gateway.helpers import PANEL_KEY_HEX, PEER_KEY_HEX
from tests.support.ports import free_tcp_udp_port


def node_document(name, url, nats_urls, accounts, dc09_port, upstream=None, forwarder="110", jt808_port=None,
                  fleet=(), registrations=None, gateway_name="asc", console=None):
    doc = {
        "gateway": {"name": gateway_name},
        "store": {"url": url},
        "cluster": {"node": name},
        "bus": {"url": list(nats_urls), "replicas": 3},
        "receiver": {"listen": "127.0.0.1:%d" % dc09_port},
        "devices": [{"account": a, "key_hex": PANEL_KEY_HEX} for a in accounts],
    }
    if upstream:
        doc["forwarders"] = [{"name": forwarder, "type": "dc09", "receivers": ["127.0.0.1:%d" % upstream],
                              "key_hex": PEER_KEY_HEX, "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5}]
    if jt808_port:
        # No registrations_path (registrations=None): in cluster mode they are shared
        # in the cluster's database, so a terminal may log in to any node.
        doc["jt808"] = {"listen": "127.0.0.1:%d" % jt808_port}
        if registrations is not None:
            doc["jt808"]["registrations_path"] = str(registrations)
        doc["vehicles"] = {"fleet": list(fleet)}
    if console:
        port, db_path = console
        doc["console"] = {"listen": "127.0.0.1:%d" % port, "db_path": str(db_path), "secure_cookies": False,
                          "live_poll_ms": 100}
    return doc


def cluster_nodes(folder, url, nats_urls, names, accounts, upstream=None, forwarder="110", fleet=(),
                  gateway_name="asc", consoles=()):
    """{name: NodeProcess} (not started), each with its config and log under folder/name;
    the nodes named in `consoles` serve the console (node.console_port, node.console_db)."""
    nodes = {}
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        dc09, jt808 = free_tcp_udp_port(), free_tcp_udp_port() if fleet else None
        console = (free_tcp_udp_port(), folder / name / "console.sqlite") if name in consoles else None
        http = free_tcp_udp_port()
        doc = node_document(name, url, nats_urls, accounts, dc09, upstream, forwarder, jt808, fleet,
                            None, gateway_name, console)
        doc["http"] = {"listen": "127.0.0.1:%d" % http}
        path = folder / name / "node.toml"
        path.write_text(to_toml(doc), encoding="utf-8")
        node = nodes[name] = NodeProcess(name, path, folder / name / "gateway.log", dc09, jt808)
        node.http_port = http
        node.console_port, node.console_db = console if console else (None, None)
    return nodes


async def start_in_order(nodes, url, leases):
    """Start the nodes one after the other; the first holds every lease in `leases`
    before the next starts (so the test knows whom to kill)."""
    first = True
    for node in nodes.values():
        node.start()
        await node.ready()
        if first:
            for _ in range(300):
                held = lease_holders(url, leases)
                if all(held.get(lease) == node.name for lease in leases):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("node %s did not take the leases %s: %s" % (node.name, leases, held))
            first = False


def stop_all(nodes):
    for node in nodes.values():
        node.stop()
