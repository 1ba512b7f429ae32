"""A private PostgreSQL server for tests and benches: initdb in a temporary folder,
a free loopback port, its unix socket in that folder, stopped at the end.

Never the machine's 5432: a developer's or CI's machine may run its own server
there, with its own data. tools/install-system-deps.sh installs the binaries
(Debian's postgresql); they are looked up in /usr/lib/postgresql/*/bin, then PATH.

PostgreSQL refuses to run as root. When the tests run as root (CI does), initdb
and postgres run as an unprivileged user (`postgres` from the Debian package,
else `nobody`) that owns the temporary folder; the folder is made outside
pytest's tmp_path, which is private to root.

`PostgresServer.url(db)` gives a postgresql:// URL over TCP on 127.0.0.1 (what a
gateway config holds); `superuser_url` connects as the cluster's superuser, which
tests use to create the gateway's role and database, and to play the attacker.
"""
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port

SUPERUSER = "postgres"
OWNER_ROLE = "jifang_owner"        # owns the log's tables, triggers and purge function
GATEWAY_ROLE = "jifang_gateway"    # what the gateways connect as: SELECT and INSERT on the log


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


MISSING = ("PostgreSQL server binaries (initdb, postgres, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH:"
           " run `make test` or `bash tools/install-system-deps.sh` (Debian package postgresql)")


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
            # Tests kill processes, never the machine: the page cache survives every
            # crash they cause, so skipping the fsync loses nothing they can observe.
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
        the process. Only for a server of the test's own: the session's shared
        server would break every other test's connections."""
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
