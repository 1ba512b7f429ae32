"""PostgreSQL restarted abruptly (`pg_ctl restart -m immediate`) under DC-09 traffic
to two gateway processes (issue 12, "Proof"): nothing a node ACKed is lost or
recorded twice, the nodes recover by themselves (the store's pool, the leases, the
log followers reconnect: 110 receives every ACKed alarm, once, after the restart
too; each node's console, in its own process, logs an operator in from the
shared console tables and queues the alarms committed after the restart), and
`jifang log verify --db ...` passes afterwards.

The server is this test's own (fsync and synchronous_commit on, as in production:
with synchronous_commit off an immediate shutdown may lose commits already
reported, which no gateway could prevent), so the session's shared server, used
by the other tests, is never restarted."""
import asyncio
import subprocess
import sys

import psycopg
import pytest

from gateway.panelsim import Panel
from gateway.app import Gateway
from tests.cluster.test_console_shared import shared_users
from tests.cluster.test_failover import ACCOUNTS, REPO, lease_holders, node_toml, start_node, traffic
from tests.console.support import Client
from tests.gateway.helpers import PANEL_KEY, upper_config, wait_for
from tests.gateway.test_crash import listening
from tests.support.ports import free_port, free_tcp_udp_port
from tests.support.postgres import running_postgres


@pytest.fixture
def own_postgres():
    try:
        with running_postgres(fsync=True) as server:
            yield server
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def log_rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT account, body::jsonb ->> 'zone' FROM log WHERE kind = 'event'"
                            " AND (body::jsonb ->> 'code') = '130'").fetchall()


async def test_postgres_restarted_immediately_loses_nothing_acked_and_the_nodes_recover(tmp_path, own_postgres):
    url = own_postgres.event_log("jifang")
    await shared_users(tmp_path, url)
    ports = {"a": free_tcp_udp_port(), "b": free_tcp_udp_port()}
    consoles = {"a": free_port(), "b": free_port()}
    port110 = free_tcp_udp_port()
    procs, panels, stop, clients = {}, [], asyncio.Event(), []
    try:
        async with Gateway(upper_config(tmp_path, port=port110)) as center:
            for node in ("a", "b"):
                config = node_toml(tmp_path, node, url, ports[node], port110)
                config.write_text(config.read_text() + '[console]\nlisten = "127.0.0.1:%d"\nlive_poll_ms = 100\n'
                                  % consoles[node])
                procs[node] = start_node(config, tmp_path / (node + ".log"))
                await wait_for(lambda: listening(ports[node]), what="node %s listening" % node)
                await wait_for(lambda: listening(consoles[node]), what="node %s console listening" % node)
            await wait_for(lambda: all(lease_holders(url).values()), what="every lease held")

            panels = [Panel(acct, PANEL_KEY, ("127.0.0.1", ports["a" if i % 2 else "b"]), ack_timeout=1,
                            retry_max=0.5) for i, acct in enumerate(ACCOUNTS)]
            for p in panels:
                p.start()
            senders = [asyncio.create_task(traffic(p, stop)) for p in panels]
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 40, what="40 alarms at 110")

            acked_before = sum(len(p.acked) for p in panels)
            await asyncio.to_thread(own_postgres.restart_immediate)       # mid-stream
            print("restarted PostgreSQL (immediate) after %d ACKs" % acked_before)

            # The nodes recover by themselves: ACKs again, every lease held again, and
            # 110 receives what was committed after the restart.
            await wait_for(lambda: sum(len(p.acked) for p in panels) >= acked_before + 80, timeout=60,
                           what="ACKs after the restart")
            await wait_for(lambda: all(lease_holders(url).values()), timeout=30, what="every lease held again")
            stop.set()
            await asyncio.gather(*senders)
            await wait_for(lambda: all(not p.buffer for p in panels), timeout=60, what="every panel buffer emptied")
            assert all(proc.poll() is None for proc in procs.values())    # no node died of it

            acked = {(p.account, item.report.zone) for p in panels for item in p.acked}
            assert not any(p.dropped for p in panels)
            stored = [(a, int(z)) for a, z in log_rows(url)]
            assert len(stored) == len(set(stored))                        # recorded once
            assert acked <= set(stored)                                   # nothing ACKed lost
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= len(set(stored)), timeout=60,
                           what="every stored alarm at 110")
            at_110 = [(s.event.account, s.event.zone) for s in await center.store.events()]
            assert len(at_110) == len(set(at_110)) and set(at_110) == set(stored)

            # Each node's console recovered by itself: its own database connection
            # (a login, the shared throttle and sessions) and its log tail (the
            # newest alarm, committed after the restart, is in its queue).
            with psycopg.connect(url) as conn:
                newest_id = conn.execute("SELECT max(id) FROM log WHERE kind = 'event' AND (body::jsonb ->> 'code') = '130'").fetchone()[0]
            for node in ("a", "b"):
                operator = Client("http://127.0.0.1:%d/" % consoles[node])
                clients.append(operator)
                assert (await operator.login("olga"))[0] == 200

                async def queued():
                    status, body = await operator.get("api/queue")
                    return status == 200 and newest_id in [item["id"] for item in body["items"]]
                await wait_for(queued, timeout=30, what="node %s console queues alarm %s" % (node, newest_id))

            verified = subprocess.run([sys.executable, "-m", "gateway.cli", "log", "verify", "--db", url], cwd=REPO,
                                      capture_output=True, text=True, timeout=60)
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert verified.stdout.startswith("OK:")
    finally:
        stop.set()
        for c in clients:
            await c.close()
        for p in panels:
            await p.stop()
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def test_postgres_restarted_under_the_bus_loses_nothing_acked(tmp_path, own_postgres, nats_cluster):
    """The same restart with `[bus]`: devices are ACKed after the replicated publish,
    so they stay ACKed while the store is down; the nodes' ingest retries its
    commits and stores everything once when PostgreSQL is back; 110 gets it all."""
    from tests.support.clusternodes import cluster_nodes, stop_all
    url = own_postgres.event_log("jifang")
    port110 = free_tcp_udp_port()
    nodes = cluster_nodes(tmp_path / "nodes", url, nats_cluster.urls, ["a", "b"], ACCOUNTS, upstream=port110)
    panels, stop = [], asyncio.Event()
    try:
        async with Gateway(upper_config(tmp_path, port=port110)) as center:
            for node in nodes.values():
                node.start()
                await node.ready()
            panels = [Panel(acct, PANEL_KEY, ("127.0.0.1", nodes["a" if i % 2 else "b"].dc09_port), ack_timeout=1,
                            retry_max=0.5) for i, acct in enumerate(ACCOUNTS)]
            for p in panels:
                p.start()
            senders = [asyncio.create_task(traffic(p, stop)) for p in panels]
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= 40, what="40 alarms at 110")
            acked_before = sum(len(p.acked) for p in panels)
            await asyncio.to_thread(own_postgres.restart_immediate)
            await wait_for(lambda: sum(len(p.acked) for p in panels) >= acked_before + 80, timeout=60,
                           what="ACKs after the restart")
            stop.set()
            await asyncio.gather(*senders)
            await wait_for(lambda: all(not p.buffer for p in panels), timeout=60, what="every panel buffer emptied")
            acked = {(p.account, item.report.zone) for p in panels for item in p.acked}
            assert not any(p.dropped for p in panels)

            def stored():
                return [(a, int(z)) for a, z in log_rows(url)]
            await wait_for(lambda: acked <= set(stored()), timeout=60, what="every ACKed alarm stored")
            assert len(stored()) == len(set(stored()))
            await wait_for(lambda: center.metrics.total("jifang_events_in_total") >= len(set(stored())), timeout=60,
                           what="every stored alarm at 110")
            at_110 = [(s.event.account, s.event.zone) for s in await center.store.events()]
            assert len(at_110) == len(set(at_110)) and set(at_110) == set(stored())
            verified = subprocess.run([sys.executable, "-m", "gateway.cli", "log", "verify", "--db", url], cwd=REPO,
                                      capture_output=True, text=True, timeout=60)
            assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        stop.set()
        for p in panels:
            await p.stop()
        stop_all(nodes)
