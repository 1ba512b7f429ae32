"""Issue 12's proof for a gateway node's death, under mixed load: two gateway node
processes on the JetStream bus (a private 3-node NATS cluster, R3) and one
PostgreSQL log; panels over DC-09 (each with both nodes as receivers, primary
and backup), JT/T 808 terminals on both nodes reporting positions and pressing
their panic button (node a's log in to node b with their codes when a dies), an operator logged in to node b's console watching the alarm queue. kill -9 of node a, which
holds the 110 forwarder's lease:

  - 0 acknowledged events lost: every event a panel or a terminal had ACKed is in
    the log, and every alarm and trouble in the log is at the 110 receiver;
  - 0 duplicates at 110 (the dead node's panels retried on node b, the forwarder
    was taken over and resent what was not yet recorded as delivered);
  - alarms flow again through node b: the gap at 110 is printed, and bounded
    generously (the issue asks < 5 s; the bound here leaves room for a loaded
    machine, bench/cluster.py measures the figure);
  - the log's chain verifies.
"""
import asyncio
import time

import aiohttp
import pytest

from gateway.app import Gateway
from gateway.demo_cluster import Fleet, PanelView, fleet_vehicles, lease_holders, tally
from gateway.panelsim import Panel
from gateway.store import verify
from tests.console.support import Client, add_users
from tests.gateway.helpers import PANEL_KEY, upper_config, wait_for
from tests.support.clusternodes import cluster_nodes, start_in_order, stop_all
from tests.support.ports import free_tcp_udp_port

pytestmark = pytest.mark.slow

ACCOUNTS = ["%04d" % (6001 + i) for i in range(6)]
LEASES = ("forwarder:110", "supervision")
GAP_BOUND_S = 15.0     # generous: the 5 s on an idle machine; two shared cores here


async def traffic(panel, stop, acked_at):
    zone = 0
    while not stop.is_set():
        zone += 1
        item = panel.report(130, zone=zone)       # burglary, each its own zone
        item.acked.add_done_callback(lambda f, a=panel.account: f.result() and acked_at.setdefault(a, []).append(
            time.monotonic()))
        await asyncio.sleep(0.1)


async def test_kill_9_of_a_node_under_mixed_load_loses_nothing_and_duplicates_nothing(tmp_path, pg_log, nats_cluster):
    url = pg_log[2]
    port110 = free_tcp_udp_port()
    nodes = cluster_nodes(tmp_path, url, nats_cluster.urls, ["a", "b"], ACCOUNTS, upstream=port110,
                          fleet=fleet_vehicles(4), consoles=["b"])
    await add_users(nodes["b"].console_db)
    panels, senders, stop, fleet = [], [], asyncio.Event(), None
    arrivals, acked_at = [], {}
    try:
        async with Gateway(upper_config(tmp_path, port=port110)) as center:
            center.pipeline.add_listener(lambda stored: arrivals.append(time.monotonic()))
            await start_in_order(nodes, url, LEASES)
            addr = {n: ("127.0.0.1", nodes[n].dc09_port) for n in nodes}
            orders = [("a", "b") if i % 2 == 0 else ("b", "a") for i in range(len(ACCOUNTS))]
            panels = [Panel(acct, PANEL_KEY, [addr[n] for n in orders[i]], transport="udp" if i == 5 else "tcp",
                            ack_timeout=1, retry_max=0.5, failover=2) for i, acct in enumerate(ACCOUNTS)]
            views = [PanelView(p, orders[i]) for i, p in enumerate(panels)]
            for p in panels:
                p.start()
            senders = [asyncio.create_task(traffic(p, stop, acked_at)) for p in panels]
            # Terminals on both nodes (registrations and sessions shared in PostgreSQL:
            # node a's log in to node b when a dies); each presses its panic button once.
            fleet = Fleet(4, [nodes["a"], nodes["b"]], seconds=8, seed=3, first_panic=1)
            fleet.start()
            operator = asyncio.create_task(operator_on_b(nodes["b"], stop))
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 60, timeout=60,
                           what="60 alarms at 110")

            assert lease_holders(url, LEASES) == {lease: "a" for lease in LEASES}
            killed_at = time.monotonic()
            nodes["a"].kill9()
            await wait_for(lambda: set(lease_holders(url, LEASES).values()) == {"b"}, timeout=30, interval=0.05,
                           what="node b holds the leases")
            takeover = time.monotonic() - killed_at
            await wait_for(lambda: all(any(t > killed_at for t in acked_at.get(v.account, ())) for v in views),
                           timeout=30, what="every panel ACKed again after the kill")
            await wait_for(lambda: sum(1 for t in arrivals if t > time.monotonic() - 1) >= 10, timeout=30,
                           what="alarms flowing at 110 again")
            # The gap: the longest silence at 110 from just before the kill until now
            # (a frame node a had sent before dying may still land just after it).
            around = [t for t in arrivals if t >= killed_at - 0.5]
            gap = max(b - a for a, b in zip(around, around[1:]))
            panel_gaps = {v.account: min(t for t in acked_at[v.account] if t > killed_at) - killed_at
                          for v in views if v.order[0] == "a"}
            print("node kill under load: leases taken over in %.2f s, longest silence at 110 %.2f s, "
                  "node a's panels ACKed again by b after %s s" % (
                      takeover, gap, ", ".join("%.2f" % g for g in sorted(panel_gaps.values()))))
            assert gap < GAP_BOUND_S
            assert all(v.node() == "b" for v in views)
            await wait_for(lambda: set(fleet.on.values()) == {"b"}, timeout=30, what="node a's terminals on node b")
            print("terminals moved to node b after %s s" % ", ".join("%.2f" % (at - killed_at) for *_, at in fleet.moves))

            await asyncio.sleep(3)                            # load on the survivor alone
            await wait_for(lambda: len(fleet.alarms_acked) == 4, timeout=30, what="every terminal's SOS ACKed")
            stop.set()
            await asyncio.gather(*senders)
            await fleet.close()
            login_status, console_accounts = await operator
            await wait_for(lambda: all(not p.buffer for p in panels), timeout=60, what="panel buffers emptied")
            assert not any(p.dropped for p in panels)

            from gateway.store import Store
            store = Store(url)
            await store.open()
            try:
                async def caught_up():
                    rows = await store.events()
                    # A position node a had taken off the bus but not committed when it died
                    # comes back after the positions' ack_wait (30 s): wait for it too.
                    return sum(1 for s in rows if s.event.event_class == "telemetry") >= fleet.positions_acked and \
                        sum(1 for s in rows if s.event.event_class in ("alarm", "trouble")) <= \
                        sum(1 for s in await center.store.events() if s.event.source != "supervision")
                await wait_for(caught_up, timeout=90, interval=0.5, what="110 caught up with the log")
                cluster_rows = await store.events()
            finally:
                await store.close()
            center_rows = await center.store.events()
            spec = nodes_forwarder_spec()
            device_acked = [k for v in views for k in v.acked()]
            t = tally(device_acked, fleet.alarms_acked, fleet.positions_acked, cluster_rows, center_rows,
                      lambda e: spec.accepts(e.event_class, e.category))
            print("acked %d (%d for 110), log %d rows, 110 %d rows, positions %d/%d, SOS %d: %d lost, %d duplicates"
                  % (t.acked, t.acked_alarms, t.logged, t.at_110, t.positions_stored, t.positions_acked,
                     len(fleet.alarms_acked), t.lost, t.duplicates))
            for line in t.details:
                print("  " + line)
            assert t.acked_alarms >= 60 and fleet.positions_acked > 0 and fleet.alarms_acked
            assert t.lost == 0 and t.duplicates == 0 and t.unexplained_at_110 == 0
            assert login_status == 200
            # Node b's console showed alarms node a had received (its panels, before the kill).
            assert {v.account for v in views if v.order[0] == "a"} <= console_accounts
            assert verify(url).ok
    finally:
        stop.set()
        for task in senders:
            task.cancel()
        if fleet is not None:
            await fleet.close()
        for p in panels:
            await p.stop()
        stop_all(nodes)


def nodes_forwarder_spec():
    """The nodes' 110 forwarder as the config parses it (what it sends upward)."""
    from gateway import config as config_module
    return config_module.from_dict({"gateway": {"name": "x"}, "store": {"path": "unused.db"},
                                    "forwarders": [{"name": "110", "type": "dc09", "receivers": ["127.0.0.1:1"],
                                                    "key_hex": "00" * 16}]}).forwarders[0]


async def operator_on_b(node, stop):
    """An operator logged in to node b's console, watching the alarm queue while node a
    dies. Returns (login status, the accounts whose alarms the queue showed)."""
    client = Client("http://127.0.0.1:%d/" % node.console_port)
    seen, status = set(), None
    try:
        for _ in range(100):                  # the console's child process may still be starting
            try:
                status, _ = await client.login("olga")
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
        while not stop.is_set() and status == 200:
            try:
                code, body = await client.get("api/queue")
                if code == 200:
                    seen.update(item["account"] for item in body["items"])
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        return status, seen
    finally:
        await client.close()


async def stream_leader(urls, stream):
    import nats
    nc = await nats.connect(servers=list(urls), connect_timeout=2)
    try:
        info = await nc.jsm().stream_info(stream)
        return info.cluster.leader
    finally:
        await nc.close()


async def test_kill_9_of_a_nats_node_under_two_gateway_nodes_loses_nothing(tmp_path, pg_log, nats_cluster):
    """The same two gateway processes; this time the NATS node leading the first alarm
    stream dies (kill -9) mid-stream and comes back. Every alarm a panel had ACKed
    reaches 110 once; the longest an alarm waited for its ACK is printed (the issue
    asks ≤ 2 s; bounded generously here, bench/bus.py measures it)."""
    url = pg_log[2]
    port110 = free_tcp_udp_port()
    nodes = cluster_nodes(tmp_path, url, nats_cluster.urls, ["a", "b"], ACCOUNTS, upstream=port110)
    panels, senders, stop, acked_at = [], [], asyncio.Event(), {}
    try:
        async with Gateway(upper_config(tmp_path, port=port110)) as center:
            await start_in_order(nodes, url, LEASES)
            addr = {n: ("127.0.0.1", nodes[n].dc09_port) for n in nodes}
            orders = [("a", "b") if i % 2 == 0 else ("b", "a") for i in range(len(ACCOUNTS))]
            panels = [Panel(acct, PANEL_KEY, [addr[n] for n in orders[i]], ack_timeout=2, retry_max=0.5, failover=3)
                      for i, acct in enumerate(ACCOUNTS)]
            views = [PanelView(p, orders[i]) for i, p in enumerate(panels)]
            for p in panels:
                p.start()
            senders = [asyncio.create_task(traffic(p, stop, acked_at)) for p in panels]
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 40, timeout=60,
                           what="40 alarms at 110")
            leader = await stream_leader(nats_cluster.urls, "JIFANG_ALARMS")
            victim = [n.name for n in nats_cluster.nodes].index(leader)
            killed_at = time.monotonic()
            nats_cluster.kill(victim)
            at_kill = sum(len(p.acked) for p in panels)
            await wait_for(lambda: sum(len(p.acked) for p in panels) >= at_kill + 60, timeout=60,
                           what="ACKs after the NATS node's death")
            await asyncio.to_thread(nats_cluster.restart, victim)
            stop.set()
            await asyncio.gather(*senders)
            await wait_for(lambda: all(not p.buffer for p in panels), timeout=60, what="panel buffers emptied")
            waits = [item_wait for p in panels for item_wait in ack_waits(p, killed_at)]
            print("kill -9 of NATS node %s (leader of JIFANG_ALARMS): longest ACK wait of an alarm sent around it"
                  " %.2f s over %d alarms" % (leader, max(waits), len(waits)))
            assert max(waits) < 10.0

            from gateway.store import Store
            store = Store(url)
            await store.open()
            try:
                async def caught_up():
                    rows = await store.events()
                    return sum(1 for s in rows if s.event.event_class in ("alarm", "trouble")) <= \
                        sum(1 for s in await center.store.events() if s.event.source != "supervision")
                await wait_for(caught_up, timeout=90, interval=0.5, what="110 caught up with the log")
                cluster_rows = await store.events()
            finally:
                await store.close()
            spec = nodes_forwarder_spec()
            t = tally([k for v in views for k in v.acked()], [], 0, cluster_rows, await center.store.events(),
                      lambda e: spec.accepts(e.event_class, e.category))
            print("acked %d, log %d rows, 110 %d rows: %d lost, %d duplicates" % (
                t.acked, t.logged, t.at_110, t.lost, t.duplicates))
            for line in t.details:
                print("  " + line)
            assert t.acked >= 100 and t.lost == 0 and t.duplicates == 0 and t.unexplained_at_110 == 0
            assert verify(url).ok
    finally:
        stop.set()
        for task in senders:
            task.cancel()
        for p in panels:
            await p.stop()
        stop_all(nodes)


def ack_waits(panel, since):
    """Seconds from first send to ACK of the panel's alarms sent within 10 s of `since`."""
    return [item.acked_at - item.sent_at for item in panel.acked
            if item.sent_at is not None and since - 1 <= item.sent_at <= since + 10]
