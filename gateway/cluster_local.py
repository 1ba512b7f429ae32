"""A cluster's engines on this machine: a private PostgreSQL and a private 3-node NATS
JetStream cluster, each in a temporary folder, on free loopback ports.

`jifang demo --cluster`, bench/cluster.py and the tests (through tests/support/,
which re-exports this module: the product never imports tests/) start them here.
Never the standard ports 5432 / 4222 / 6222 / 8222: they belong to the machine,
which may run its own servers there with its own data.

    with running_postgres() as pg, running_nats_cluster(folder) as nats:
        url = pg.event_log("jifang")      # a database holding an event log, as the gateways use it
        nats.urls                         # ["nats://127.0.0.1:P1", ...]
        nats.kill(1); nats.restart(1)     # kill -9 of NATS node 1, and back (same ports, same store)

Binaries: Debian's `postgresql` (initdb, postgres, pg_ctl under /usr/lib/postgresql/*/bin)
and `nats-server`; tools/install-system-deps.sh installs both (`make test` runs it).
Without them, `postgres_bindir()` is None and `nats_server_binary()` raises
FileNotFoundError naming what to install.
"""
import collections
import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

INSTALL_HINT = "run `bash tools/install-system-deps.sh` (or `make test`, which runs it)"


# -- free ports -------------------------------------------------------------------

_handed_out = collections.deque(maxlen=512)   # ports given lately, not yet bound by their user


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    """A port free now. The kernel may hand the same ephemeral port out again as
    soon as it is released, and a caller choosing several (a NATS cluster's nine)
    binds them only later: seen, two nodes given one port. So a port handed out
    lately by this process is never given again."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.append(port)
            return port
    raise RuntimeError("no fresh free port found")


def free_tcp_udp_port(host="127.0.0.1", attempts=50):
    """A port free for both TCP and UDP (the DC-09 receiver listens on both)."""
    for _ in range(attempts):
        port = free_port(socket.SOCK_STREAM, host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free for both TCP and UDP")


# -- PostgreSQL ---------------------------------------------------------------------
# PostgreSQL refuses to run as root. When we run as root (CI does), initdb and postgres
# run as an unprivileged user (`postgres` from the Debian package, else `nobody`) that
# owns the temporary folder; the folder is made with its own mkdtemp, outside any
# root-private folder (pytest's tmp_path, the demo's data dir).

SUPERUSER = "postgres"
OWNER_ROLE = "jifang_owner"        # owns the log's tables, triggers and purge function
GATEWAY_ROLE = "jifang_gateway"    # what the gateways connect as: SELECT and INSERT on the log

MISSING = ("PostgreSQL server binaries (initdb, postgres, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH: "
           + INSTALL_HINT + " (Debian package postgresql)")


def postgres_bindir():
    """The folder holding initdb and postgres, or None when PostgreSQL is not installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0, reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(which)
    for initdb in candidates:
        folder = Path(initdb).resolve().parent
        if (folder / "postgres").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _run_as():
    """(user name or None, uid, gid) to run the server as: never root."""
    if os.geteuid() != 0:
        return None, os.getuid(), os.getgid()
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


class PostgresServer:
    def __init__(self, bindir, folder, port, user, uid, gid, fsync):
        self.bindir, self.folder, self.port = Path(bindir), Path(folder), port
        self.user, self.uid, self.gid = user, uid, gid
        self.fsync = fsync
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.log = self.folder / "postgres.log"
        self.proc = None

    def _popen_kwargs(self):
        return {"user": self.uid, "group": self.gid, "extra_groups": []} if self.user else {}

    def initdb(self):
        subprocess.run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
                        "-E", "UTF8", "--locale=C", "--no-instructions"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **self._popen_kwargs())

    def start(self):
        self.socket_dir.mkdir(exist_ok=True)
        if self.user:
            os.chown(self.socket_dir, self.uid, self.gid)
        args = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=%s" % self.socket_dir,
                "-c", "max_connections=100", "-c", "shared_buffers=32MB",
                "-c", "fsync=%s" % ("on" if self.fsync else "off")]
        if not self.fsync:
            # Tests and the demo kill processes, never the machine: the page cache
            # survives every crash they cause, so skipping the fsync loses nothing
            # they can observe.
            args += ["-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),
                                     **self._popen_kwargs())
        self.wait_ready()

    def wait_ready(self, timeout=30):
        import psycopg
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.superuser_url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("postgres did not start: %s" % self.log.read_text(errors="replace")[-2000:])
                time.sleep(0.1)

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()        # SIGTERM: "smart" shutdown, waits for clients; escalate below
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart_immediate(self):
        """`pg_ctl restart -m immediate`: the server quits at once without a
        checkpoint (SIGQUIT to every backend: every client connection breaks, what
        was committed is replayed from the WAL at start), then starts again on the
        same port. pg_ctl stops it; this object starts it again so it keeps owning
        the process. Only for a server of the caller's own: a shared server would
        break every other user's connections."""
        subprocess.run([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **self._popen_kwargs())
        self.proc.wait(30)
        self.start()

    def url(self, dbname="postgres", user=SUPERUSER, password=None):
        auth = user if password is None else "%s:%s" % (user, password)
        return "postgresql://%s@127.0.0.1:%d/%s" % (auth, self.port, dbname)

    def superuser_url(self, dbname="postgres"):
        return self.url(dbname)

    def create_database(self, name, owner=SUPERUSER):
        import psycopg
        with psycopg.connect(self.superuser_url(), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "%s" OWNER "%s"' % (name, owner))

    def ensure_role(self, role):
        import psycopg
        with psycopg.connect(self.superuser_url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                conn.execute('CREATE ROLE "%s" LOGIN' % role)

    def event_log(self, name):
        """A database holding a jifang event log as a real deployment has it: owned by
        `jifang_owner` (not a superuser), used by the gateways as `jifang_gateway`.
        Returns the gateways' URL."""
        from gateway.pgstore import install_schema
        self.ensure_role(OWNER_ROLE)
        self.ensure_role(GATEWAY_ROLE)
        self.create_database(name, OWNER_ROLE)
        install_schema(self.url(name, OWNER_ROLE), GATEWAY_ROLE)
        return self.url(name, GATEWAY_ROLE)


@contextlib.contextmanager
def running_postgres(fsync=False):
    """A started PostgreSQL server; raises FileNotFoundError (with MISSING) without binaries."""
    bindir = postgres_bindir()
    if bindir is None:
        raise FileNotFoundError(MISSING)
    user, uid, gid = _run_as()
    folder = tempfile.mkdtemp(prefix="jifang-pg-")
    if user:
        os.chown(folder, uid, gid)
    server = PostgresServer(bindir, folder, free_port(), user, uid, gid, fsync)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


# -- NATS JetStream -------------------------------------------------------------------
# Every node listens on free loopback ports (client, cluster route, monitoring); each
# keeps its JetStream store in its own folder, so a node killed with SIGKILL and
# restarted finds its Raft log and streams where it left them.

NATS_START_TIMEOUT = 20.0     # seconds for the nodes to listen and elect a JetStream meta leader


def nats_server_binary():
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("nats-server is not installed: " + INSTALL_HINT + " (Debian package nats-server)")


class NatsNode:
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

    @property
    def pid(self):
        return self.proc.pid if self.alive() else None

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
    def __init__(self, folder, size=3, name="jifang-local"):
        self.nodes = [NatsNode(i, folder) for i in range(size)]
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

    def wait_ready(self, timeout=NATS_START_TIMEOUT):
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
def running_nats_cluster(folder, size=3, name="jifang-local"):
    cluster = NatsCluster(folder, size, name)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


# -- CPU accounting ---------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (Linux /proc/PID/stat), its
    children not counted; None once it is gone. For the demo's and the bench's
    per-component figures."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (OSError, TypeError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK      # utime, stime (fields 14 and 15)


def process_tree(pid):
    """pid and every descendant (PostgreSQL's backends are the postmaster's children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def missing_engines():
    """What is missing to run PostgreSQL and NATS here: [] or lines that say what to install."""
    problems = []
    if postgres_bindir() is None:
        problems.append(MISSING)
    try:
        nats_server_binary()
    except FileNotFoundError as exc:
        problems.append(str(exc))
    return problems
