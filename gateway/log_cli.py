"""`jifang log verify --db FILE`: prove the event log intact, or name the first row
altered or removed. `jifang log purge --config FILE`: apply retention now (the
gateway also does it every purge_interval_hours)."""
import sys


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="check the hash chain of an event log")
    v.add_argument("--db", required=True, help="the gateway's SQLite store")
    p = sub.add_parser("purge", help="delete events past their retention (recorded in the chain)")
    p.add_argument("--config", required=True, help="gateway TOML file: store path, retention, forwarders")


def run(args):
    if args.action == "verify":
        return verify(args.db)
    return purge(args.config)


def verify(db):
    import os
    import sqlite3
    from gateway.store import verify as verify_chain
    if not os.path.exists(db):
        print("no such database: %s" % db, file=sys.stderr)
        return 2
    try:
        result = verify_chain(db)
    except sqlite3.DatabaseError as exc:
        print("TAMPERED: %s is not a readable event log (%s)" % (db, exc))
        return 1
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
    log = EventLog(config.store_path)
    try:
        count = log.purge(config.retention_days, [f.name for f in config.forwarders])
    finally:
        log.close()
    print("purged %d events past their retention" % count)
    return 0
