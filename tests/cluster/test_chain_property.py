"""Property: several gateway processes append to one PostgreSQL log at once, with
batches that overlap in dedup keys (a panel retrying on the other node), and one
of them dies between any two steps of an append, by losing its connection or by
kill -9 of its process. Afterwards:

- the chain verifies (ids 1..N without a gap, every link and hash intact);
- every event a writer was told is committed (its ACK) is there, under the id it
  was given; every "duplicate" answer names a key that is there;
- no dedup key is recorded twice;
- the interrupted batch is all or nothing;
- the survivors went on: a writer whose connection was killed reconnects and its
  later batches commit.
"""
import json
import multiprocessing
import os
import signal
import tempfile
from pathlib import Path

import psycopg
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.pgstore import PgEventLog
from gateway.store import verify
from gateway.event import Event
from protocols import contactid

_names = iter(range(1, 1 << 30))
RECEIVED = 1_790_000_000_000


def event(seq, account, zone=1):
    """The same (account, sequence) gives the same event on every node: one dedup key."""
    name, cls, cat = contactid.describe(130)
    return Event(account=account, code=130, qualifier=1, partition=1, zone=zone, event_class=cls, category=cat,
                 name=name, sequence=seq, device_time=RECEIVED // 1000, received_at_ms=RECEIVED, source="test")


def writer(url, index, batches, crash, out_path, start):
    """One gateway node's appends. `crash` = (batch number, step, "process"|"connection") or None."""
    out = open(out_path, "a")
    state = {"batch": -1}

    def on_step(step, conn):
        if crash is None or state["batch"] != crash[0] or step != crash[1]:
            return
        state["reached"] = True
        if crash[2] == "process":
            out.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        with psycopg.connect(url, autocommit=True) as killer:    # another session ends ours
            killer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))

    log = PgEventLog(url, pool_size=2, on_step=on_step)
    start.wait()
    for n, batch in enumerate(batches):
        state["batch"] = n
        events = [event(seq, account=account, zone=1) for account, seq in batch]
        try:
            ids = log.append(events)
        except psycopg.Error as exc:
            out.write(json.dumps({"batch": n, "failed": repr(exc), "keys": [e.dedup_key for e in events]}) + "\n")
            continue
        out.write(json.dumps({"batch": n, "acked": [[e.dedup_key, i] for e, i in zip(events, ids)]}) + "\n")
        out.flush()
    if crash is not None and not state.get("reached"):
        # The crash step never came: every event of that batch was already in the log
        # (another writer committed the shared key first), so there was no insert.
        out.write(json.dumps({"crash": "not reached"}) + "\n")
    log.close()
    out.close()


# An event: (account, sequence). "1000" is shared by every writer (retries across
# nodes); "20<i>" is writer i's own, so its interrupted batch can be checked whole.
def batches_for(index):
    shared = st.tuples(st.just("1000"), st.integers(1, 12))
    own = st.tuples(st.just("20%02d" % index), st.integers(1, 40))
    return st.lists(st.lists(st.one_of(shared, own), min_size=1, max_size=6), min_size=1, max_size=4)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data(), writers=st.integers(2, 3), crash_step=st.sampled_from(PgEventLog.APPEND_STEPS),
       crash_kind=st.sampled_from(["process", "connection"]))
def test_concurrent_writers_and_a_crash_between_any_two_steps(postgres_server, data, writers, crash_step, crash_kind):
    url = postgres_server.event_log("chain%d" % next(_names))
    plans = [data.draw(batches_for(i), label="writer %d" % i) for i in range(writers)]
    victim = data.draw(st.integers(0, writers - 1), label="victim")
    crash = (data.draw(st.integers(0, len(plans[victim]) - 1), label="crashed batch"), crash_step, crash_kind)

    folder = Path(tempfile.mkdtemp())
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=writer, args=(url, i, plans[i], crash if i == victim else None,
                                              folder / ("w%d.jsonl" % i), start)) for i in range(writers)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode is not None, "a writer hung"
    reports = [[json.loads(line) for line in (folder / ("w%d.jsonl" % i)).read_text().splitlines()]
               for i in range(writers)]
    if {"crash": "not reached"} in reports[victim]:
        # Nothing to crash in: the victim's batch was all duplicates. Still the chain
        # and the dedup rules must hold, so the checks below run as for no crash.
        reports[victim].remove({"crash": "not reached"})
        crash_kind, crash_step = "none", None
    killed = crash_kind == "process"
    assert [p.exitcode for p in procs] == [(-signal.SIGKILL if killed and i == victim else 0)
                                          for i in range(writers)]

    result = verify(url)
    assert result.ok, result.problem
    with psycopg.connect(url) as conn:
        rows = dict(conn.execute("SELECT dedup_key, id FROM log WHERE kind = 'event'").fetchall())
        count = conn.execute("SELECT count(*) FROM log").fetchone()[0]
    assert count == len(rows) == result.rows                         # no key twice

    for i, report in enumerate(reports):
        for entry in report:
            for key, row_id in entry.get("acked", []):
                assert key in rows, "ACKed event lost"
                if row_id is not None:
                    assert rows[key] == row_id
        failed = [e for e in report if "failed" in e]
        if i != victim or crash_kind == "none":
            assert not failed and len(report) == len(plans[i])       # the others were not disturbed
            continue
        crashed_batch = plans[i][crash[0]]
        if killed:
            assert len(report) == crash[0]                            # died at that batch
        else:
            # The connection was killed: that batch failed unless the kill came after
            # the commit; every later batch commits on a new connection.
            assert len(report) == len(plans[i])
            assert bool(failed) == (crash_step != "committed")
            assert all("acked" in e for e in report if e["batch"] != crash[0])
        own = {event(seq, account=a, zone=1).dedup_key for a, seq in crashed_batch if a != "1000"}
        others = {k for j, r in enumerate(reports) for e in r for k, _ in e.get("acked", [])
                  if j != i or e["batch"] != crash[0]}
        alone = own - others
        present = alone & set(rows)
        assert present in (set(), alone), "an interrupted batch is all or nothing"
        if crash_step == "committed":
            assert present == alone
        elif crash_step != "committed" and alone:
            assert present == set()
