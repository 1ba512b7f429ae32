"""The event log's append rate, SQLite (embedded default) beside PostgreSQL (cluster
mode), in one run, on this machine:

  batch 1     one event per transaction: a lone panel, every ACK waits for its commit
  batch 64    the pipeline's group commit under load (up to 256 per batch)
  writers 2   (PostgreSQL) two nodes appending at once, each its own connection:
              the chain head's lock serializes them, so this shows its cost

Both commit durably: SQLite WAL with synchronous=FULL, PostgreSQL with fsync and
synchronous_commit on (its own server, started here by tests/support/postgres.py
in a temporary folder, on a free port). Each figure is appends/s over --seconds.

Run:  .venv/bin/python bench/store.py [--seconds 3]
"""
import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.event import Event                                   # noqa: E402
from gateway.pgstore import PgEventLog                            # noqa: E402
from gateway.store import EventLog                                # noqa: E402
from protocols import contactid                                   # noqa: E402
from tests.support.postgres import running_postgres               # noqa: E402

NAME, CLS, CAT = contactid.describe(401)
_seq = iter(range(1, 1 << 40))


def events(n, writer=0):
    out = []
    for _ in range(n):
        seq = next(_seq)
        out.append(Event(account="%04d" % (1000 + writer), code=401, qualifier=1, partition=1, zone=seq % 999,
                         event_class=CLS, category=CAT, name=NAME, sequence=seq, device_time=1_790_000_000 + seq,
                         received_at_ms=1_790_000_000_000 + seq, source="bench"))
    return out


def rate(make_log, batch, seconds, writers=1):
    logs = [make_log() for _ in range(writers)]
    counts = [0] * writers
    deadline = time.monotonic() + seconds

    def work(i):
        while time.monotonic() < deadline:
            logs[i].append(events(batch, i))
            counts[i] += batch
    threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    for log in logs:
        log.close()
    return sum(counts) / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    rows = []
    with running_postgres(fsync=True) as server:
        n = iter(range(1, 100))

        def pg_url():
            return server.event_log("bench%d" % next(n))
        for batch in (1, 64):
            path = folder / ("sqlite-%d.db" % batch)
            sqlite = rate(lambda: EventLog(path), batch, args.seconds)
            url = pg_url()
            pg = rate(lambda: PgEventLog(url, pool_size=2), batch, args.seconds)
            rows.append(("batch %d, 1 writer" % batch, "%.0f" % sqlite, "%.0f" % pg))
        url = pg_url()
        pg2 = rate(lambda: PgEventLog(url, pool_size=2), 64, args.seconds, writers=2)
        rows.append(("batch 64, 2 writers (nodes)", "-", "%.0f" % pg2))
    import os
    print("appends/s, durable commits, %.0f s each (load average %.1f on %d cores: other work on the machine"
          " lowers both columns)" % (args.seconds, os.getloadavg()[0], os.cpu_count()))
    print("%-30s %12s %12s" % ("", "SQLite", "PostgreSQL"))
    for label, a, b in rows:
        print("%-30s %12s %12s" % (label, a, b))


if __name__ == "__main__":
    main()
