"""The event log on PostgreSQL: the same chain as on SQLite, append-only enforced by
the database itself (the gateway's role cannot change or delete a row; triggers
refuse it even to the owner), retention only through jifang_purge(), dedup across
nodes by the unique key, and `jifang log verify --db postgresql://...` naming the
first altered or removed row."""
import argparse

import psycopg
import pytest

from gateway import log_cli
from gateway.event import Event, now_ms
from gateway.pgstore import PgEventLog
from gateway.store import DAY_MS, verify
from tests.support.postgres import OWNER_ROLE


def event(seq, code=130, account="1001", age_days=0.0, zone=1):
    from protocols import contactid
    name, cls, cat = contactid.describe(code)
    received = now_ms() - int(age_days * DAY_MS)
    return Event(account=account, code=code, qualifier=1, partition=1, zone=zone, event_class=cls, category=cat,
                 name=name, sequence=seq, device_time=received // 1000, received_at_ms=received, source="test")


def run_verify(url, capsys):
    code = log_cli.run(argparse.Namespace(action="verify", db=url))
    return code, capsys.readouterr().out


@pytest.fixture
def log(pg_log):
    server, name, url = pg_log
    store = PgEventLog(url)
    yield store
    store.close()


def test_append_chains_rows_and_verifies(pg_log, log, capsys):
    server, name, url = pg_log
    assert log.append([event(1), event(2, 401)]) == [1, 2]
    assert log.append([event(3, 110)]) == [3]
    result = verify(url)
    assert result.ok and result.rows == 3 and result.head_id == 3
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT prev_hash, hash FROM log ORDER BY id").fetchall()
    assert rows[1][0] == rows[0][1] and rows[2][0] == rows[1][1]
    code, out = run_verify(url, capsys)
    assert code == 0 and out.startswith("OK: 3 rows intact")


def test_two_nodes_record_a_retried_event_once(pg_log, log):
    """A panel retrying on its backup receiver: the other node's store sees the key."""
    other = PgEventLog(pg_log[2])
    try:
        # One Event per report: event() dates it now, and two calls a second apart
        # would make two different reports (another dedup key), not a retry.
        retried, third = event(1), event(3)
        assert log.append([retried]) == [1]
        assert other.append([retried, event(2)]) == [None, 2]
        assert other.append([third, third]) == [3, None]     # inside one batch too
        assert [s.event.sequence for s in log.events()] == [1, 2, 3]
    finally:
        other.close()


@pytest.mark.parametrize("statement", [
    "UPDATE log SET body = body || ' ' WHERE id = 1",
    "DELETE FROM log WHERE id = 1",
    "TRUNCATE log",
    "UPDATE chain_head SET last_id = 0",
    "INSERT INTO purge_marker VALUES (pg_current_xact_id())",
    "SELECT set_config('jifang.purging', 'on', false); DELETE FROM log",
])
def test_the_gateways_role_cannot_change_the_log(pg_log, log, statement):
    log.append([event(1)])
    with psycopg.connect(pg_log[2], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    assert verify(pg_log[2]).ok


def test_the_gateways_role_cannot_write_a_purge_row(pg_log, log):
    """A purge row written by hand could claim rows removed that are not: only
    jifang_purge() writes them, whatever settings the session has."""
    log.append([event(1)])
    with psycopg.connect(pg_log[2], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="written only by jifang_purge"):
            conn.execute("SELECT set_config('jifang.purging', 'on', false);"
                         "INSERT INTO log (id, kind, received_at_ms, body, prev_hash, hash) SELECT 2, 'purge', 0, '{}',"
                         " last_hash, row_hash(2, 'purge', last_hash, '{}') FROM chain_head")
    assert verify(pg_log[2]).ok


@pytest.mark.parametrize("statement, refusal", [
    ("UPDATE log SET body = body || ' ' WHERE id = 1", "append-only: UPDATE refused"),
    ("DELETE FROM log WHERE id = 1", "append-only: DELETE refused"),
    ("TRUNCATE log", "append-only: TRUNCATE refused"),
    ("INSERT INTO log (id, kind, received_at_ms, body, prev_hash, hash) VALUES (5, 'event', 0, '{}', 'x', 'y')",
     "do not continue the chain"),
    ("INSERT INTO log (id, kind, received_at_ms, body, prev_hash, hash) SELECT 2, 'event', 0, '{}', 'x', 'y'",
     "does not link to the hash"),
    ("INSERT INTO log (id, kind, received_at_ms, body, prev_hash, hash) SELECT 2, 'event', 0, '{}', last_hash, 'y'"
     " FROM chain_head", "hash does not match"),
    ("INSERT INTO log (id, kind, received_at_ms, body, prev_hash, hash) SELECT 2, 'purge', 0, '{}', last_hash,"
     " row_hash(2, 'purge', last_hash, '{}') FROM chain_head", "written only by jifang_purge"),
])
def test_triggers_refuse_even_the_owner(pg_log, log, statement, refusal):
    server, name, _ = pg_log
    log.append([event(1)])
    with psycopg.connect(server.url(name, OWNER_ROLE), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match=refusal):
            conn.execute(statement)
    assert verify(pg_log[2]).ok


def test_retention_purges_only_through_the_function_and_is_recorded(pg_log, log, capsys):
    old = [event(i, 401, age_days=40) for i in range(1, 4)]           # openings: 30-day default
    alarm = event(9, 130, age_days=40)                                # alarms: 730 days
    fresh = event(10, 401)
    log.append(old + [alarm, fresh])
    log.cursor("110")                                                 # starts at the head: all delivered
    retention = {"default": 30, "alarm": 730}
    assert log.purge(retention, ["110"]) == 3
    assert [s.event.sequence for s in log.events()] == [9, 10]
    result = verify(pg_log[2])
    assert result.ok and result.purged == 3 and result.head_id == 6      # the purge row is the head
    assert log.purge(retention, ["110"]) == 0
    with pytest.raises(psycopg.errors.RaiseException, match="at least 30"):
        log.purge({"default": 29}, [])
    # A forwarder that has not delivered them yet holds them back.
    [late] = log.append([event(20, 401, age_days=40)])
    log.mark_delivered("110", late, late)
    with psycopg.connect(pg_log[2], autocommit=True) as conn:
        conn.execute("INSERT INTO forwarder_cursor VALUES ('late', 0)")
    assert log.purge(retention, ["110", "late"]) == 0
    assert log.purge(retention, ["110"]) == 1
    code, out = run_verify(pg_log[2], capsys)
    assert code == 0 and "4 purged under retention" in out


def tamper(server, name, sql):
    """A superuser editing the log behind the triggers' back (they are bypassed)."""
    with psycopg.connect(server.superuser_url(name), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")   # triggers off
            conn.execute(sql)


@pytest.mark.parametrize("sql, message", [
    ("UPDATE log SET body = replace(body, '\"zone\":1', '\"zone\":2') WHERE id = 3",
     "row 3 altered: its content no longer matches its hash"),
    ("DELETE FROM log WHERE id = 3", "row 3 was removed (no purge record covers it)"),
    ("DELETE FROM log WHERE id >= 4", "row 4 was removed (the newest rows are missing)"),
    ("UPDATE log SET account = '9999' WHERE id = 2", "row 2 altered: its indexed columns disagree"),
])
def test_verify_names_the_first_row_altered_or_removed(pg_log, log, capsys, sql, message):
    server, name, url = pg_log
    log.append([event(i) for i in range(1, 6)])
    tamper(server, name, sql)
    code, out = run_verify(url, capsys)
    assert code == 1 and out.startswith("TAMPERED: " + message)


def test_verify_catches_a_row_rehashed_to_hide_an_edit(pg_log, log, capsys):
    from gateway.store import row_hash
    server, name, url = pg_log
    log.append([event(i) for i in range(1, 6)])
    with psycopg.connect(url) as conn:
        row_id, kind, prev, body = conn.execute("SELECT id, kind, prev_hash, body FROM log WHERE id = 2").fetchone()
    forged = body.replace('"source":"test"', '"source":"tset"')
    assert forged != body
    tamper(server, name, "UPDATE log SET body = '%s', hash = '%s' WHERE id = 2"
           % (forged, row_hash(row_id, kind, prev, forged)))
    code, out = run_verify(url, capsys)
    assert code == 1 and "row 2 altered: its hash no longer matches the link stored in row 3" in out


def test_verify_of_an_unreachable_database_says_so(postgres_server, capsys):
    from tests.support.ports import free_port
    code = log_cli.run(argparse.Namespace(action="verify", db="postgresql://x@127.0.0.1:%d/none" % free_port()))
    assert code == 2 and "cannot reach the database" in capsys.readouterr().err


def test_a_database_without_the_log_is_refused_with_the_fix(pg_db):
    server, name = pg_db
    with pytest.raises(RuntimeError, match="jifang log init-db"):
        PgEventLog(server.superuser_url(name))
