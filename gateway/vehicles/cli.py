"""`jifang vehicles`: the JT/T 808 center's terminal registrations, from the command line.

    jifang vehicles list --config center.toml
    jifang vehicles release ACCOUNT --config center.toml --operator NAME --reason "terminal reflashed"

`release` is the console's POST /api/vehicles/{account}/release for when no one
can log in to the console: the center forgets the vehicle's authentication code
and answers one registration within [jt808] release_window_seconds. It writes
the registrations file the running center reads on every registration, so it
takes effect at once, and records the release in the console's access register
when the config has a [console] table. Run it when the vehicle is off line: a
session already authenticated keeps working until it ends.
"""
import asyncio
import sys
import time


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="every vehicle with its registration state")
    listing.add_argument("--config", required=True, help="the center's gateway TOML file")
    release = sub.add_parser("release", help="let the vehicle's terminal register again")
    release.add_argument("account", help="the vehicle's account (its phone digits unless configured)")
    release.add_argument("--config", required=True, help="the center's gateway TOML file")
    release.add_argument("--operator", required=True, help="who decides it (recorded)")
    release.add_argument("--reason", required=True, help="why (recorded), e.g. \"terminal reflashed\"")


def _registry(config):
    from gateway.vehicles.registry import Registry
    if config.vehicles is None or config.vehicles.jt808 is None:
        raise ValueError("this config has no [jt808] section: no JT/T 808 center")
    settings = config.vehicles.jt808
    return Registry(config.vehicles.fleet, settings.registrations_path, release_window=settings.release_window)


async def _register(config, operator, what, purpose):
    from gateway.console.db import AsyncConsoleDB
    from gateway.console.serve import console_db_path
    db = AsyncConsoleDB(console_db_path(config, config.console))
    await db.open()
    try:
        await db.register(int(time.time() * 1000), operator, "(command line)", "vehicle-release", what, purpose,
                          "local")
    finally:
        await db.close()


def run(args):
    from gateway import config as config_module
    try:
        config = config_module.load(args.config)
        registry = _registry(config)
    except (config_module.ConfigError, ValueError) as exc:
        print("vehicles: %s" % exc, file=sys.stderr)
        return 2
    try:
        if args.action == "list":
            for r in registry.registrations():
                print("%-16s %-12s %-16s %-16s %s" % (r["account"], r["plate"], r["state"], r["terminal_id"] or "-",
                                                     r["released_by"] or ""))
            return 0
        if not args.reason.strip():
            print("vehicles: give a reason (it is recorded)", file=sys.stderr)
            return 2
        try:
            released = registry.release(args.account, args.operator, args.reason.strip())
        except (LookupError, ValueError) as exc:       # ValueError: online on a node (cluster mode)
            print("vehicles: %s" % exc, file=sys.stderr)
            return 2
    finally:
        registry.close()
    what = "release of vehicle %s's terminal registration (plate %s, terminal %s)" % (
        released["account"], released["plate"], released["terminal_id"] or "none registered")
    if config.console is not None:
        asyncio.run(_register(config, args.operator, what, "terminal re-registration: " + args.reason.strip()))
        recorded = "recorded in the access register"
    else:
        recorded = "no [console] in this config: not in an access register (note it in your own log)"
    print("released %s: its terminal may register within %g s; %s"
          % (released["account"], registry.release_window, recorded))
    return 0
