"""A private 3-node NATS cluster with JetStream, for tests and benches.

Every node listens on free loopback ports (client, cluster route, monitoring), never
the standard 4222/6222/8222 that belong to the machine; each keeps its JetStream
store in its own folder under the test's tmp dir, so a node killed with SIGKILL and
restarted finds its Raft log and streams where it left them. tools/install-system-deps.sh
installs Debian's `nats-server` on a fresh machine.

    with running_nats_cluster(tmp_path) as cluster:
        cluster.urls                      # ["nats://127.0.0.1:P1", ...]
        cluster.kill(1)                   # kill -9 of node 1
        cluster.restart(1)                # same ports, same store folder
"""
import contextlib
import json
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.ports import free_port

START_TIMEOUT = 20.0     # seconds for the nodes to listen and elect a JetStream meta leader


def nats_server_binary():
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("nats-server is not installed: run `make test` (it installs the Debian package)")


class Node:
    def __init__(self, index, folder):
        self.index = index
        self.name = "n%d" % index
        self.client_port = free_port()
        self.route_port = free_port()
        self.http_port = free_port()
        self.folder = Path(folder) / self.name
        self.store_dir = self.folder / "jetstream"
        self.conf = self.folder / "nats.conf"
        self.log = self.folder / "nats.log"
        self.proc = None

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.client_port

    def write_config(self, cluster_name, peers):
        self.store_dir.mkdir(parents=True, exist_ok=True)
        routes = ", ".join('"nats-route://127.0.0.1:%d"' % p.route_port for p in peers if p is not self)
        self.conf.write_text(
            'server_name: "%s"\n'
            'listen: "127.0.0.1:%d"\n'
            'http: "127.0.0.1:%d"\n'
            'jetstream { store_dir: "%s", max_memory_store: 64MB, max_file_store: 4GB }\n'
            'cluster { name: "%s", listen: "127.0.0.1:%d", routes: [%s] }\n'
            % (self.name, self.client_port, self.http_port, self.store_dir, cluster_name, self.route_port, routes))

    def start(self):
        # The log goes to a file (appended across restarts), not a pipe nobody drains.
        self.proc = subprocess.Popen([nats_server_binary(), "-c", str(self.conf), "-l", str(self.log)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def jsz(self):
        """The node's JetStream report from its monitoring port, or None while it is not up."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/jsz" % self.http_port, timeout=1) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def stop(self, sig=signal.SIGTERM):
        if not self.alive():
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class NatsCluster:
    def __init__(self, folder, size=3, name="jifang-test"):
        self.nodes = [Node(i, folder) for i in range(size)]
        for node in self.nodes:
            node.write_config(name, self.nodes)

    @property
    def urls(self):
        return [n.url for n in self.nodes]

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def start(self):
        for node in self.nodes:
            node.start()
        self.wait_ready()

    def wait_ready(self, timeout=START_TIMEOUT):
        """Until every live node sees the same JetStream meta leader and all its peers:
        before that an R3 stream cannot be placed ("insufficient resources")."""
        deadline = time.monotonic() + timeout
        live = [n for n in self.nodes if n.alive()]
        while True:
            reports = [n.jsz() for n in live]
            leaders = {(r or {}).get("meta_cluster", {}).get("leader") for r in reports}
            if None not in reports and len(leaders) == 1 and leaders != {None} and leaders != {""}:
                meta = reports[0]["meta_cluster"]
                peers = meta.get("replicas") or []
                if meta.get("cluster_size", 0) >= len(self.nodes) and all(p.get("current") for p in peers):
                    return leaders.pop()
            dead = [n.name for n in self.nodes if n.proc is not None and n.proc.poll() is not None and n in live]
            if dead or time.monotonic() > deadline:
                tails = {n.name: n.log.read_text(errors="replace")[-2000:] if n.log.exists() else "" for n in self.nodes}
                raise RuntimeError("NATS cluster not ready (dead: %s): %s" % (dead, tails))
            time.sleep(0.1)

    def kill(self, index):
        """kill -9: no shutdown, no flush, the way a machine or process dies."""
        self.nodes[index].stop(signal.SIGKILL)

    def restart(self, index):
        node = self.nodes[index]
        node.stop()
        node.start()
        self.wait_ready()

    def stop(self):
        for node in self.nodes:
            node.stop()


@contextlib.contextmanager
def running_nats_cluster(folder, size=3):
    cluster = NatsCluster(folder, size)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
