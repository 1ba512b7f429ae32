"""Property: whatever the log holds, and whichever single row is changed or deleted
behind the gateway's back (retention purges included), verify notices and names
that row."""
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.store import EventLog, verify
from tests.gateway.test_store import NOW, event

codes = st.sampled_from([130, 120, 110, 301, 401, 602])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.tuples(codes, st.integers(0, 900)), min_size=1, max_size=4), min_size=1, max_size=5),
       purge=st.booleans(), victim=st.integers(0, 10**6), delete=st.booleans())
def test_verify_names_the_tampered_row(batches, purge, victim, delete):
    path = Path(tempfile.mkdtemp()) / "events.db"
    log = EventLog(path)
    seq = 0
    for batch in batches:
        events = []
        for code, age in batch:
            seq += 1
            events.append(event(seq, code, age_days=age, zone=seq % 999))
        log.append(events)
    if purge:
        log.purge({"default": 30, "alarm": 730}, now=NOW)
    log.close()
    assert verify(path).ok

    db = sqlite3.connect(path)
    ids = [i for (i,) in db.execute("SELECT id FROM log ORDER BY id")]
    target = ids[victim % len(ids)]
    purge_row = db.execute("SELECT kind FROM log WHERE id = ?", (target,)).fetchone()[0] == "purge"
    if delete:
        db.execute("DELETE FROM log WHERE id = ?", (target,))
    else:
        db.execute("UPDATE log SET body = body || ' ' WHERE id = ?", (target,))
    db.commit()
    db.close()
    result = verify(path)
    assert not result.ok, "tampering with row %d went unnoticed" % target
    if delete and purge_row:
        # With its purge record gone, the rows it purged are gaps nobody accounts for:
        # the first of those (or the record itself) is what verify names.
        assert result.bad_row <= target, result.problem
    else:
        assert result.bad_row == target, result.problem
