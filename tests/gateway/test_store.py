"""The event log: append-only, hash-chained, deduplicated, retention-purged in the
chain; `jifang log verify` catches rows changed or deleted behind its back."""
import argparse
import sqlite3

import pytest

from gateway import log_cli
from gateway.event import Event
from gateway.store import DAY_MS, EventLog, verify

NOW = 1_800_000_000_000


def event(seq, code=130, account="1001", age_days=0, zone=1):
    from protocols import contactid
    name, cls, cat = contactid.describe(code)
    received = NOW - int(age_days * DAY_MS)
    return Event(account=account, code=code, qualifier=1, partition=1, zone=zone, event_class=cls, category=cat,
                 name=name, sequence=seq, device_time=received // 1000, received_at_ms=received, source="test")


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "events.db"


def test_append_chains_rows_and_verifies(log_path):
    log = EventLog(log_path)
    assert log.append([event(1), event(2, 401)]) == [1, 2]
    assert log.append([event(3, 110)]) == [3]
    log.close()
    result = verify(log_path)
    assert result.ok and result.rows == 3 and result.head_id == 3
    db = sqlite3.connect(log_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = db.execute("SELECT prev_hash, hash FROM log ORDER BY id").fetchall()
    assert rows[1][0] == rows[0][1] and rows[2][0] == rows[1][1]


def test_a_retried_event_is_recorded_once(log_path):
    log = EventLog(log_path)
    assert log.append([event(1)]) == [1]
    assert log.append([event(1), event(2)]) == [None, 2]
    assert log.append([event(3), event(3)]) == [3, None]       # duplicates inside one batch too
    assert [s.event.sequence for s in log.events()] == [1, 2, 3]
    log.close()
    assert verify(log_path).ok


def run_verify(path, capsys):
    code = log_cli.run(argparse.Namespace(action="verify", db=str(path)))
    return code, capsys.readouterr().out


def fill(log_path, n=5):
    log = EventLog(log_path)
    log.append([event(i) for i in range(1, n + 1)])
    log.close()


def test_verify_names_a_row_changed_behind_the_gateways_back(log_path, capsys):
    fill(log_path)
    assert run_verify(log_path, capsys)[0] == 0
    db = sqlite3.connect(log_path)
    db.execute("UPDATE log SET body = replace(body, '\"zone\":1', '\"zone\":2') WHERE id = 3")
    db.commit()
    code, out = run_verify(log_path, capsys)
    assert code == 1 and "row 3 altered" in out


def test_verify_catches_a_change_with_the_hash_recomputed(log_path, capsys):
    from gateway.store import row_hash
    fill(log_path)
    db = sqlite3.connect(log_path)
    row_id, kind, body, prev = db.execute("SELECT id, kind, body, prev_hash FROM log WHERE id = 2").fetchone()
    body = body.replace('"code":130', '"code":131')
    db.execute("UPDATE log SET body = ?, hash = ? WHERE id = 2", (body, row_hash(row_id, kind, prev, body)))
    db.commit()
    code, out = run_verify(log_path, capsys)
    assert code == 1 and "row 2 altered" in out


def test_verify_names_a_deleted_row_and_a_deleted_tail(log_path, capsys):
    fill(log_path)
    db = sqlite3.connect(log_path)
    db.execute("DELETE FROM log WHERE id = 4")
    db.commit()
    code, out = run_verify(log_path, capsys)
    assert code == 1 and "row 4 was removed" in out
    fill(log_path.with_name("b.db"))
    db = sqlite3.connect(log_path.with_name("b.db"))
    db.execute("DELETE FROM log WHERE id = 5")
    db.commit()
    code, out = run_verify(log_path.with_name("b.db"), capsys)
    assert code == 1 and "row 5 was removed" in out


def test_purge_respects_retention_per_class_and_keeps_the_chain_verifiable(log_path, capsys):
    log = EventLog(log_path)
    log.append([event(1, 401, age_days=40),      # open/close, past 30 days: purged
                event(2, 130, age_days=40),      # alarm, 2-year retention: kept
                event(3, 401, age_days=10),      # too young: kept
                event(4, 130, age_days=800)])    # alarm past 2 years: purged
    retention = {"default": 30, "alarm": 730}
    assert log.purge(retention, now=NOW) == 2
    assert [s.event.sequence for s in log.events()] == [2, 3]
    assert log.purge(retention, now=NOW) == 0                # nothing else is old enough
    log.append([event(5)])                                    # the chain goes on after a purge
    log.close()
    code, out = run_verify(log_path, capsys)
    assert code == 0 and "2 purged" in out
    kinds = [k for (k,) in sqlite3.connect(log_path).execute("SELECT kind FROM log ORDER BY id")]
    assert kinds == ["event", "event", "purge", "event"]


def test_a_purge_record_states_the_retention_it_applied_and_cannot_be_rewritten(log_path, capsys):
    """The purge record carries the retention in force, so a purge under a shortened
    retention is visible in the log; rewriting the record to hide it breaks its hash."""
    log = EventLog(log_path)
    log.append([event(1, 401, age_days=1), event(2, 401, age_days=1)])
    assert log.purge({"default": 0}, now=NOW) == 2   # what a bypassed config check would do
    log.close()
    code, out = run_verify(log_path, capsys)
    assert code == 0                                 # recorded honestly: retention 0 was in force
    body = sqlite3.connect(log_path).execute("SELECT body FROM log WHERE kind = 'purge'").fetchone()[0]
    assert '"retention_days":{"default":0}' in body
    db = sqlite3.connect(log_path)
    db.execute("UPDATE log SET body = replace(body, '\"default\":0', '\"default\":30') WHERE kind = 'purge'")
    db.commit()
    code, out = run_verify(log_path, capsys)
    assert code == 1 and "row 3" in out


def test_purge_never_removes_what_a_forwarder_has_not_delivered(log_path):
    log = EventLog(log_path)
    log.cursor("110")                                         # forwarder known from the start
    log.append([event(1, 401, age_days=40), event(2, 401, age_days=40)])
    assert log.purge({"default": 30}, ["110"], now=NOW) == 0
    log.mark_delivered("110", 1, 1)
    assert log.purge({"default": 30}, ["110"], now=NOW) == 1
    assert [s.id for s in log.events()] == [2]
    log.close()
    assert verify(log_path).ok


def test_forwarder_cursor_survives_reopen(log_path):
    log = EventLog(log_path)
    assert log.cursor("110") == (0, set())
    log.append([event(i) for i in range(1, 5)])
    log.mark_delivered("110", 3, 0)          # an alarm overtook rows 1-2
    log.close()
    log = EventLog(log_path)
    watermark, done = log.cursor("110")
    assert (watermark, done) == (0, {3})
    assert [s.id for s in log.pending(watermark, done)] == [1, 2, 4]
    log.mark_delivered("110", 1, 2)
    assert log.cursor("110") == (2, {3})
    log.close()


def test_a_new_forwarder_starts_at_the_head(log_path):
    log = EventLog(log_path)
    log.append([event(1), event(2)])
    assert log.cursor("webhook") == (2, set())
    log.close()


def test_a_fleet_sized_purge_is_recorded_as_runs_and_still_verifies(log_path):
    """Positions are purged by the million: the purge row holds runs of ids, not rows,
    and an alarm surviving between positions splits a run without breaking the chain."""
    log = EventLog(log_path)
    old = [event(i, 602, age_days=40) for i in range(1, 2001)]       # tests: 30-day class default
    old[1000] = event(1001, 130, age_days=40)                           # an alarm in the middle: kept
    log.append(old)
    log.append([event(3000, 602)])                                       # young: kept
    assert log.purge({"default": 30, "alarm": 730}, now=NOW) == 1999
    body = sqlite3.connect(log_path).execute("SELECT body FROM log WHERE kind = 'purge'").fetchone()[0]
    assert len(body) < 1000                                              # two runs, not 1,999 rows
    log.close()
    result = verify(log_path)
    assert result.ok and result.purged == 1999 and result.rows == 3     # the alarm, the young event, the purge


def test_a_row_put_back_inside_a_purged_run_is_caught(log_path):
    log = EventLog(log_path)
    log.append([event(i, 602, age_days=40) for i in range(1, 6)])
    log.append([event(9, 602)])
    db = sqlite3.connect(log_path, isolation_level=None)
    saved = db.execute("SELECT * FROM log WHERE id = 3").fetchone()
    assert log.purge({"default": 30}, now=NOW) == 5
    log.close()
    assert '"runs":[[1,5,' in db.execute("SELECT body FROM log WHERE kind = 'purge'").fetchone()[0]
    assert verify(log_path).ok
    db.execute("INSERT INTO log VALUES (%s)" % ",".join("?" * len(saved)), saved)   # row 3 comes back
    db.close()
    result = verify(log_path)
    assert not result.ok and result.bad_row == 3 and "inside a run" in result.problem
