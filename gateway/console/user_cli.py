"""`jifang console-user`: create or change console accounts from the command line,
e.g. the first admin before anyone can log in:

    jifang console-user add --db console.sqlite --username admin --role admin
    jifang console-user unlock --db console.sqlite --username olga     # or --address 10.0.0.7

The password is read from the terminal (or one line on stdin with
--password-stdin), never from the command line, where `ps` and shell history
would keep it.
"""
import asyncio
import getpass
import sys

from gateway.console.roles import ROLES


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="create an account")
    add.add_argument("--db", required=True, help="the console database (created if missing)")
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    listing = sub.add_parser("list", help="list accounts")
    listing.add_argument("--db", required=True)
    unlock = sub.add_parser("unlock", help="clear failed logins of an account (every address) or of an address")
    unlock.add_argument("--db", required=True)
    who = unlock.add_mutually_exclusive_group(required=True)
    who.add_argument("--username")
    who.add_argument("--address", help="a client address, as the register shows it")


def read_password(from_stdin):
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


async def _add(args, password):
    from gateway.console.api_users import create_account
    from gateway.console.db import AsyncConsoleDB
    from gateway.event import now_ms
    db = AsyncConsoleDB(args.db)
    await db.open()
    try:
        user = await create_account(db, args.username, args.role, password, args.name, now_ms())
        # The register holds every change to accounts, including those made here.
        await db.register(now_ms(), "(command line)", "-", "user-change",
                          "created account %s with role %s" % (user["username"], user["role"]), "administration", "local")
    finally:
        await db.close()
    return user


async def _list(args):
    from gateway.console.db import AsyncConsoleDB
    db = AsyncConsoleDB(args.db)
    await db.open()
    try:
        return await db.users()
    finally:
        await db.close()


async def _unlock(args):
    from gateway.console.db import AsyncConsoleDB
    from gateway.event import now_ms
    db = AsyncConsoleDB(args.db)
    await db.open()
    try:
        cleared = await db.unlock(username=args.username, client=args.address)
        what = "account %s" % args.username if args.username else "address %s" % args.address
        await db.register(now_ms(), "(command line)", "-", "login-unlock",
                          "%s: %d failed logins cleared" % (what, cleared), "administration", "local")
    finally:
        await db.close()
    return what, cleared


def run(args):
    if args.action == "unlock":
        what, cleared = asyncio.run(_unlock(args))
        print("%s: %d failed logins cleared" % (what, cleared))
        return 0
    if args.action == "list":
        for user in asyncio.run(_list(args)):
            print("%-20s %-10s %s" % (user["username"], user["role"], "disabled" if user["disabled"] else "active"))
        return 0
    try:
        user = asyncio.run(_add(args, read_password(args.password_stdin)))
    except ValueError as exc:
        print("console-user: %s" % exc, file=sys.stderr)
        return 2
    print("created %s (%s)" % (user["username"], user["role"]))
    return 0
