"""The event log on PostgreSQL, for several gateway nodes sharing one store (cluster
mode, `[store] url = "postgresql://..."`). Same rows, same hash, same verifier as
the SQLite log (gateway/store.py); docs/cluster.md is the design.

One chain, several writers. Every append takes the row lock on the one row of
`chain_head` (lock_chain_head(): SELECT ... FOR UPDATE) before it reads the head, and keeps it to its
commit. Appends from every node are so serialized: ids are issued consecutively
in commit order with no gap (a sequence would leave gaps on rollback, which the
verifier could not tell from a removed row), each row links to the row committed
before it, and a reader that has seen id N has seen every id below N. A writer
killed mid-transaction leaves nothing: its transaction rolls back and its lock
goes with its connection.

The database enforces the log's rules itself, whatever the gateway does:
- the gateway's role (`gateway_role`) may SELECT and INSERT on `log`, nothing else;
- `log_append` (after each INSERT statement, on all its rows) refuses rows that do
  not continue the chain (ids head + 1 .. without a gap, each prev_hash the hash
  before it, each hash the SHA-256 of its row) and moves the head in the same
  transaction; only the purge function may add a purge row;
- `log_refuse` refuses every UPDATE and TRUNCATE, and every DELETE not made by
  `jifang_purge`, the one SECURITY DEFINER function that deletes: it applies
  retention (never under 30 days, never past a forwarder's watermark) and writes
  the purge row, which the verifier checks, before it deletes.

Dedup across nodes: `dedup_key` is UNIQUE. Under the head lock a batch first looks
its keys up (authoritative: no other append runs meanwhile); should an insert still
meet the constraint, the transaction is retried and the key is then a duplicate,
which the source ACKs as it does any duplicate.

The side tables (forwarder cursors, dispatches, supervision's last-heard) are
delivery state, not records: the gateway's role may change them.
"""
import threading

from gateway.store import GENESIS, LogQueries, VerifyResult, _verify, chain

# Notification sent by every append at commit: followers on other nodes (the
# forwarders' outboxes, the console) wake up at once instead of at their next poll.
CHANNEL = "jifang_log"

SCHEMA = r"""
CREATE TABLE log (
    id          bigint PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('event', 'purge')),
    dedup_key   text UNIQUE,
    account     text,
    event_class text,
    priority    integer,
    received_at_ms bigint NOT NULL,
    body        text NOT NULL,
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE INDEX log_class_age ON log (event_class, received_at_ms);
CREATE INDEX log_account_age ON log (account, received_at_ms);

-- The head of the chain: the last id issued and its hash. Its row lock serializes
-- appends; it also remembers the last id after the newest rows are deleted by
-- someone who bypassed the triggers, so the verifier sees the tail is missing.
CREATE TABLE chain_head (
    chain     text PRIMARY KEY,
    last_id   bigint NOT NULL,
    last_hash text NOT NULL
);
INSERT INTO chain_head VALUES ('log', 0, '{genesis}');

CREATE TABLE forwarder_cursor (forwarder text PRIMARY KEY, watermark bigint NOT NULL);
CREATE TABLE forwarder_done (forwarder text NOT NULL, event_id bigint NOT NULL, PRIMARY KEY (forwarder, event_id));
CREATE TABLE forwarder_dispatch (forwarder text NOT NULL, event_id bigint NOT NULL, requested_at_ms bigint NOT NULL,
                                 PRIMARY KEY (forwarder, event_id));
-- Supervision's last-heard, shared by the nodes (gateway/supervision.py): wall-clock ms.
CREATE TABLE supervision_heard (account text PRIMARY KEY, heard_at_ms bigint NOT NULL, interval_s double precision);

-- Set by jifang_purge() for its own transaction only: what lets its purge row and its
-- deletes through the triggers. A table, not a setting: any role may change a
-- setting, only the owner may write here (the gateway's role has no right on it).
CREATE TABLE purge_marker (xact xid8 PRIMARY KEY);

CREATE FUNCTION purging() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM purge_marker WHERE xact = pg_current_xact_id_if_assigned())
$$;

CREATE FUNCTION row_hash(row_id bigint, kind text, prev_hash text, body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(sha256(convert_to(row_id::text || E'\n' || kind || E'\n' || prev_hash || E'\n' || body, 'UTF8')), 'hex')
$$;

-- What an append starts with: the head, locked until the transaction ends. SECURITY
-- DEFINER because a row lock needs UPDATE rights the gateway's role does not have.
CREATE FUNCTION lock_chain_head(OUT last_id bigint, OUT last_hash text)
LANGUAGE sql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
    SELECT last_id, last_hash FROM chain_head WHERE chain = 'log' FOR UPDATE
$$;

-- Checks each INSERT statement's rows as a whole (one statement = one batch of the
-- pipeline): they continue the head without a gap, each links to the one before,
-- each hash is the SHA-256 of its row. Then moves the head, once per statement.
CREATE FUNCTION log_append() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    head chain_head%ROWTYPE;
    n bigint;
    lo bigint;
    hi bigint;
    bad bigint;
    has_purge boolean;
BEGIN
    SELECT * INTO head FROM chain_head WHERE chain = 'log' FOR UPDATE;
    SELECT count(*), min(id), max(id), bool_or(kind = 'purge') INTO n, lo, hi, has_purge FROM added;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF lo <> head.last_id + 1 OR hi - lo + 1 <> n THEN
        RAISE EXCEPTION 'log rows %..% do not continue the chain (head is row %)', lo, hi, head.last_id;
    END IF;
    SELECT a.id INTO bad FROM added a LEFT JOIN added p ON p.id = a.id - 1
     WHERE a.prev_hash IS DISTINCT FROM (CASE WHEN a.id = lo THEN head.last_hash ELSE p.hash END)
     ORDER BY a.id LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'log row % does not link to the hash of row %', bad, bad - 1;
    END IF;
    SELECT id INTO bad FROM added WHERE hash IS DISTINCT FROM row_hash(id, kind, prev_hash, body) ORDER BY id LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'log row %: hash does not match its content', bad;
    END IF;
    IF has_purge AND NOT purging() THEN
        RAISE EXCEPTION 'purge rows are written only by jifang_purge()';
    END IF;
    UPDATE chain_head SET last_id = hi, last_hash = (SELECT hash FROM added WHERE id = hi) WHERE chain = 'log';
    RETURN NULL;
END $$;
CREATE TRIGGER log_append AFTER INSERT ON log REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION log_append();

CREATE FUNCTION log_refuse() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'log' AND purging() THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the event log is append-only: % refused (retention purges through jifang_purge())', TG_OP;
END $$;
CREATE TRIGGER log_no_update BEFORE UPDATE ON log FOR EACH ROW EXECUTE FUNCTION log_refuse();
CREATE TRIGGER log_no_delete BEFORE DELETE ON log FOR EACH ROW EXECUTE FUNCTION log_refuse();
CREATE TRIGGER log_no_truncate BEFORE TRUNCATE ON log FOR EACH STATEMENT EXECUTE FUNCTION log_refuse();
CREATE TRIGGER head_no_delete BEFORE DELETE OR TRUNCATE ON chain_head FOR EACH STATEMENT EXECUTE FUNCTION log_refuse();

-- Retention: the one way rows leave the log. Records the purge in the chain first
-- (the same purge row as the SQLite log's, which the verifier checks), then deletes.
CREATE FUNCTION jifang_purge(retention jsonb, forwarders text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    head chain_head%ROWTYPE;
    lim bigint;
    cls text;
    r record;
    runs jsonb := '[]';
    run_first bigint;
    run_last bigint;
    run_hash text;
    young jsonb;
    n bigint := 0;
    body text;
BEGIN
    IF retention ->> 'default' IS NULL THEN
        RAISE EXCEPTION 'retention needs a "default"';
    END IF;
    FOR cls IN SELECT jsonb_object_keys(retention) LOOP
        IF (retention ->> cls)::integer < {min_days} THEN
            RAISE EXCEPTION 'retention of % is % days: the regulations require at least {min_days}', cls, retention ->> cls;
        END IF;
    END LOOP;
    SELECT * INTO head FROM chain_head WHERE chain = 'log' FOR UPDATE;
    lim := head.last_id;
    FOR cls IN SELECT unnest(forwarders) LOOP      -- never what a forwarder has not delivered
        lim := LEAST(lim, COALESCE((SELECT watermark FROM forwarder_cursor WHERE forwarder = cls), 0));
    END LOOP;
    FOR r IN SELECT id, event_class, received_at_ms, hash FROM log
             WHERE kind = 'event' AND id <= lim
               AND received_at_ms <= now_ms - COALESCE((retention ->> event_class)::bigint,
                                                       (retention ->> 'default')::bigint) * 86400000
             ORDER BY id LOOP
        IF run_first IS NOT NULL AND r.id = run_last + 1 THEN
            run_last := r.id;
            run_hash := r.hash;
        ELSE
            IF run_first IS NOT NULL THEN
                runs := runs || jsonb_build_array(jsonb_build_array(run_first, run_last, run_hash, young));
            END IF;
            run_first := r.id; run_last := r.id; run_hash := r.hash; young := '{{}}';
        END IF;
        young := young || jsonb_build_object(r.event_class,
                                              GREATEST(COALESCE((young ->> r.event_class)::bigint, 0), r.received_at_ms));
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    runs := runs || jsonb_build_array(jsonb_build_array(run_first, run_last, run_hash, young));
    body := jsonb_build_object('purged_at_ms', now_ms, 'retention_days', retention, 'runs', runs)::text;
    INSERT INTO purge_marker VALUES (pg_current_xact_id());
    INSERT INTO log (id, kind, received_at_ms, body, prev_hash, hash)
        VALUES (head.last_id + 1, 'purge', now_ms, body, head.last_hash,
                row_hash(head.last_id + 1, 'purge', head.last_hash, body));
    FOR r IN SELECT value FROM jsonb_array_elements(runs) LOOP
        DELETE FROM log WHERE kind = 'event' AND id BETWEEN (r.value ->> 0)::bigint AND (r.value ->> 1)::bigint;
    END LOOP;
    DELETE FROM purge_marker WHERE xact = pg_current_xact_id();
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION jifang_purge(jsonb, text[]), lock_chain_head(), log_append(), purging() FROM PUBLIC;
"""

GRANTS = """
GRANT USAGE ON SCHEMA {schema} TO {role};
GRANT SELECT, INSERT ON log TO {role};
GRANT SELECT ON chain_head TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON forwarder_cursor, forwarder_done, forwarder_dispatch, supervision_heard TO {role};
GRANT EXECUTE ON FUNCTION jifang_purge(jsonb, text[]), lock_chain_head() TO {role};
"""


def install_schema(admin_url, gateway_role, schema="public", min_retention_days=30):
    """Create the log's tables, triggers and purge function as their owner (the role
    of `admin_url`), the console's tables (schema console) and the JT/T 808
    registrations' (schema jt808), and grant `gateway_role` what a gateway needs
    and no more.
    Run once per database (`jifang log init-db`); the gateway never owns its log."""
    import psycopg
    from psycopg import sql
    role = sql.Identifier(gateway_role).as_string(None)
    schema_id = sql.Identifier(schema).as_string(None)
    from gateway.console import pgdb as console_tables
    from gateway.vehicles import pgregistry
    with psycopg.connect(admin_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL search_path = %s" % schema_id)
            # Run again on a database that has its log (an upgrade), it only adds
            # what is missing: the console's and the registrations' tables.
            if conn.execute("SELECT to_regclass('log') IS NULL").fetchone()[0]:
                conn.execute(SCHEMA.replace("{genesis}", GENESIS).replace("{schema}", schema_id)
                             .replace("{min_days}", str(int(min_retention_days))).replace("{{}}", "{}"))
                conn.execute(GRANTS.format(schema=schema_id, role=role))
            # The console's records and the JT/T 808 registrations, shared by the
            # nodes: each in its own schema of the same database.
            console_tables.install(conn, role)
            pgregistry.install(conn, role)
            conn.execute("SET LOCAL search_path = %s" % schema_id)


class PgEventLog(LogQueries):
    """The synchronous log API of gateway.store.EventLog, on a psycopg pool; the
    reads it shares with SQLite come from LogQueries, the writes are its own.

    Each call borrows a connection: writes come from the Store's one writer thread
    (in order, like SQLite's), reads from its reader threads. The pool replaces a
    connection that broke (PostgreSQL restarted) on the next borrow."""

    # The steps of an append, in order; `on_step(step, conn)`, when set, is called at
    # each: tests/cluster/test_chain_property.py kills the writer (its process or its
    # connection) between any two of them.
    APPEND_STEPS = ("begun", "locked", "looked_up", "inserted", "notified", "committed")

    def __init__(self, url, pool_size=4, connect_timeout=5, on_step=None):
        from psycopg_pool import ConnectionPool
        self.url = url
        self.on_step = on_step
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False, timeout=connect_timeout,
                                   check=ConnectionPool.check_connection,
                                   kwargs={"connect_timeout": connect_timeout, "application_name": "jifang"})
        self.pool.open(wait=True, timeout=connect_timeout)
        self._local = threading.local()
        with self.pool.connection() as conn:
            if conn.execute("SELECT to_regclass('log') IS NULL OR to_regclass('chain_head') IS NULL").fetchone()[0]:
                raise RuntimeError("no jifang event log in %s: create it once with `jifang log init-db --db ADMIN_URL"
                                   " --role GATEWAY_ROLE`" % _redact(url))

    def close(self):
        self.pool.close()

    def _read(self, sql, args=None):
        with self.pool.connection() as conn:
            return conn.execute(sql, args).fetchall()

    def _select(self, sql, args=()):
        """LogQueries' reads (gateway/store.py): its ? placeholders as psycopg's."""
        return self._read(sql.replace("?", "%s"), list(args) or None)

    # -- the chain ------------------------------------------------------------------

    def append(self, events):
        import psycopg
        for attempt in (1, 2):
            try:
                return self._append(events)
            except psycopg.errors.UniqueViolation:
                # Only possible if a row got in without the head lock; the retry's
                # lookup sees it and reports a duplicate.
                if attempt == 2:
                    raise

    def _append(self, events):
        """Three round trips whatever the batch size: the lock and the key lookup go
        together (pipeline mode: the server runs them in order, the lookup after the
        lock is granted), then the insert, notify and COMMIT together; the pool's
        check of the connection is the third."""
        keys = [ev.dedup_key for ev in events]
        with self.pool.connection() as conn:
            with conn.pipeline() as pipeline:

                def step(name):
                    if self.on_step is not None:
                        if name != "committed":
                            pipeline.sync()      # the step is a point the server has reached
                        self.on_step(name, conn)
                with conn.transaction():
                    step("begun")
                    head = conn.execute("SELECT * FROM lock_chain_head()")
                    step("locked")
                    found = conn.execute("SELECT dedup_key FROM log WHERE dedup_key = ANY(%s)", (keys,))
                    head_id, prev = head.fetchone()
                    seen = {r[0] for r in found.fetchall()}
                    step("looked_up")
                    ids, rows = chain(events, keys, seen, head_id + 1, prev)
                    if rows:
                        # One statement for the batch (arrays unnested by the server), so
                        # the chain trigger checks the batch once.
                        conn.execute(
                            "INSERT INTO log (id, kind, dedup_key, account, event_class, priority, received_at_ms,"
                            " body, prev_hash, hash) SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[],"
                            " %s::text[], %s::text[], %s::integer[], %s::bigint[], %s::text[], %s::text[],"
                            " %s::text[])", [list(column) for column in zip(*rows)])
                        step("inserted")
                        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(rows[-1][0])))
                    step("notified")
            # Leaving the pipeline waited for the COMMIT's result: durable from here.
            step("committed")
        return ids

    def head_id(self):
        return self._read("SELECT last_id FROM chain_head WHERE chain = 'log'")[0][0]

    # -- forwarder cursors (shared by the nodes: a forwarder resumes where the last holder stopped)

    def cursor(self, forwarder):
        with self.pool.connection() as conn:
            with conn.transaction():
                conn.execute("INSERT INTO forwarder_cursor SELECT %s, last_id FROM chain_head WHERE chain = 'log'"
                             " ON CONFLICT (forwarder) DO NOTHING", (forwarder,))
                watermark = conn.execute("SELECT watermark FROM forwarder_cursor WHERE forwarder = %s",
                                         (forwarder,)).fetchone()[0]
                done = {r[0] for r in conn.execute(
                    "SELECT event_id FROM forwarder_done WHERE forwarder = %s AND event_id > %s", (forwarder, watermark))}
        return watermark, done

    def mark_delivered(self, forwarder, row_id, watermark):
        with self.pool.connection() as conn:
            with conn.transaction():
                # As on SQLite, a cursor need not wait for the disk: losing the last
                # few only sends those events again, which every receiver dedupes.
                conn.execute("SET LOCAL synchronous_commit = off")
                if row_id > watermark:
                    conn.execute("INSERT INTO forwarder_done VALUES (%s, %s) ON CONFLICT DO NOTHING", (forwarder, row_id))
                # GREATEST: a node that lost the lease may still write a late, older
                # watermark; it must not move the cursor back for the new holder.
                conn.execute("UPDATE forwarder_cursor SET watermark = GREATEST(watermark, %s) WHERE forwarder = %s",
                             (watermark, forwarder))
                conn.execute("DELETE FROM forwarder_done WHERE forwarder = %s AND event_id <= %s", (forwarder, watermark))

    def request_dispatch(self, forwarder, row_id):
        from gateway.event import now_ms
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO forwarder_dispatch VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         (forwarder, row_id, now_ms()))
            conn.commit()

    def dispatch_delivered(self, forwarder, row_id):
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM forwarder_dispatch WHERE forwarder = %s AND event_id = %s", (forwarder, row_id))
            conn.commit()

    # -- supervision --------------------------------------------------------------

    def record_heard(self, heard):
        """heard: {account: (wall-clock ms, learned interval seconds or None)}. Keeps
        the newest time of all nodes (GREATEST), so a late flush never moves it back."""
        if not heard:
            return
        rows = [(a, ms, interval) for a, (ms, interval) in sorted(heard.items())]
        with self.pool.connection() as conn:
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = off")   # lost on a crash = one interval of grace
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO supervision_heard VALUES (%s, %s, %s) ON CONFLICT (account) DO UPDATE SET"
                        " heard_at_ms = GREATEST(supervision_heard.heard_at_ms, EXCLUDED.heard_at_ms),"
                        " interval_s = COALESCE(EXCLUDED.interval_s, supervision_heard.interval_s)", rows)

    def shared_heard(self):
        return {a: (ms, interval) for a, ms, interval in
                self._read("SELECT account, heard_at_ms, interval_s FROM supervision_heard")}

    # -- retention ----------------------------------------------------------------

    def purge(self, retention_days, forwarders=(), now=None):
        if now is not None:
            raise ValueError("the PostgreSQL store purges at the database's clock; `now` is for SQLite tests")
        from psycopg.types.json import Jsonb
        with self.pool.connection() as conn:
            count = conn.execute("SELECT jifang_purge(%s, %s)", (Jsonb(retention_days), list(forwarders))).fetchone()[0]
            conn.commit()
        return count


def _redact(url):
    """The URL without its password, for messages."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "the configured database"
    parts.pop("password", None)
    return make_conninfo(**parts)


def verify(url):
    """Walk the whole chain in one read-only snapshot (REPEATABLE READ): nodes may keep
    appending while it runs; it checks the log as of its start. Streams the rows
    through a server-side cursor, so a multi-year log need not fit in memory."""
    import psycopg
    with psycopg.connect(url) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            head = conn.execute("SELECT last_id FROM chain_head WHERE chain = 'log'").fetchone()
            last_issued = head[0] if head else 0
            counter = iter(range(1 << 62))

            def rows(sql):
                cur = conn.cursor(name="verify%d" % next(counter))
                cur.itersize = 2000
                cur.execute(sql)
                return cur
            return _verify(rows, last_issued)


__all__ = ["PgEventLog", "install_schema", "verify", "VerifyResult", "CHANNEL"]
