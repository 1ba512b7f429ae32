"""`jifang log verify --db FILE|URL`: prove the event log intact, or name the first row
altered or removed; URL = postgresql://... for a cluster's shared log.
`jifang log init-db --db ADMIN_URL --role ROLE`: create a cluster's log in PostgreSQL
(tables, triggers, purge function), owned by the admin role, usable by ROLE. `jifang log purge --config FILE`: apply retention now (the
gateway also does it every purge_interval_hours)."""
import sys


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="check the hash chain of an event log")
    v.add_argument("--db", required=True, help="the gateway's SQLite store, or postgresql://... (cluster)")
    i = sub.add_parser("init-db", help="create the event log in a PostgreSQL database (cluster mode)")
    i.add_argument("--db", required=True, help="postgresql://OWNER@HOST/DB: the role that will own the log")
    i.add_argument("--role", required=True, help="the gateways' role: granted SELECT and INSERT on the log only")
    p = sub.add_parser("purge", help="delete events past their retention (recorded in the chain)")
    p.add_argument("--config", required=True, help="gateway TOML file: store path, retention, forwarders")


def run(args):
    if args.action == "verify":
        return verify(args.db)
    if args.action == "init-db":
        return init_db(args.db, args.role)
    return purge(args.config)


def init_db(url, role):
    import psycopg
    from gateway.pgstore import install_schema
    try:
        install_schema(url, role)
    except psycopg.Error as exc:
        print("cannot create the event log: %s" % str(exc).strip(), file=sys.stderr)
        return 2
    print("event log created; gateways connect as %s" % role)
    return 0


def verify(db):
    import os
    import sqlite3
    from gateway.dburl import is_postgres_url
    from gateway.store import verify as verify_chain
    if is_postgres_url(db):
        import psycopg
        try:
            result = verify_chain(db)
        except psycopg.OperationalError as exc:
            print("cannot reach the database: %s" % str(exc).strip(), file=sys.stderr)
            return 2
        except psycopg.Error as exc:
            print("TAMPERED: not a readable event log (%s)" % str(exc).strip())
            return 1
        return _report(result)
    if not os.path.exists(db):
        print("no such database: %s" % db, file=sys.stderr)
        return 2
    try:
        result = verify_chain(db)
    except sqlite3.DatabaseError as exc:
        print("TAMPERED: %s is not a readable event log (%s)" % (db, exc))
        return 1
    return _report(result)


def _report(result):
    if result.ok:
        print("OK: %d rows intact (%d purged under retention, recorded in the chain); head row %d hash %s"
              % (result.rows, result.purged, result.head_id, result.head_hash))
        return 0
    print("TAMPERED: %s" % result.problem)
    return 1


def purge(config_path):
    from gateway import config as config_module
    from gateway.store import EventLog
    try:
        config = config_module.load(config_path)
    except config_module.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if config.store_url:
        from gateway.pgstore import PgEventLog
        log = PgEventLog(config.store_url)
    else:
        log = EventLog(config.store_path)
    try:
        count = log.purge(config.retention_days, [f.name for f in config.forwarders])
    finally:
        log.close()
    print("purged %d events past their retention" % count)
    return 0
