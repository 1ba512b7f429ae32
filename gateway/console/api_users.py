"""Accounts, for the admin: list, create, change role, reset password, disable.

Accounts are never deleted (dispositions and register entries name them); a
disabled account cannot log in and its sessions end. Every change is written to
the access register, so the auditor sees who gave whom which role.
"""
import asyncio
import re
import sqlite3

from aiohttp import web

from gateway.console import auth
from gateway.console.api_session import error, json_body
from gateway.console.keys import CONSOLE, USER
from gateway.console.passwords import Busy, PasswordPolicyError, hash_now
from gateway.console.roles import ROLES

USERNAME = re.compile(r"^[A-Za-z0-9._-]{2,32}$")


def add_routes(app):
    app.router.add_get("/api/users", list_users)
    app.router.add_post("/api/users", create_user)
    app.router.add_patch("/api/users/{username}", change_user)
    app.router.add_post("/api/users/{username}/unlock", unlock_user)
    app.router.add_get("/api/logins", login_stats)


@auth.requires("users.admin")
async def list_users(request):
    ctx = request.app[CONSOLE]
    return web.json_response({"users": await ctx.db.users(), "roles": list(ROLES)})


async def create_account(db, username, role, password, display_name, now_ms, passwords=None):
    """Create an account (shared by the API and the `jifang console-user` command).
    `passwords`: the console's HashPool; None hashes on a worker thread of its own
    (command line, tests). Raises ValueError with a message for the person who asked."""
    if not USERNAME.match(username):
        raise ValueError("username: 2-32 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise ValueError("role must be one of: " + ", ".join(ROLES))
    try:
        if passwords is None:
            password_hash = await asyncio.to_thread(hash_now, password)
        else:
            password_hash = await passwords.hash(password)
    except PasswordPolicyError as exc:
        raise ValueError(str(exc))
    try:
        return await db.add_user(username, role, password_hash, display_name, now_ms)
    except sqlite3.IntegrityError:
        raise ValueError("username %s is taken" % username)


def public_view(user):
    return {k: user[k] for k in ("id", "username", "display_name", "role", "disabled", "created_at_ms")}


@auth.requires("users.admin")
async def create_user(request):
    ctx = request.app[CONSOLE]
    body = await json_body(request)
    username = str(body.get("username", "")).strip()
    role = str(body.get("role", ""))
    try:
        user = await create_account(ctx.db, username, role, str(body.get("password", "")),
                                    str(body.get("display_name", "")).strip(), ctx.settings.now_ms(), ctx.passwords)
    except ValueError as exc:
        return error(400, str(exc))
    except Busy:
        return error(503, "the console is busy hashing passwords: try again", **{"Retry-After": "1"})
    await ctx.register(request, "user-change", "created account %s with role %s" % (username, role), "administration")
    return web.json_response(public_view(user), status=201)


@auth.requires("users.admin")
async def change_user(request):
    ctx = request.app[CONSOLE]
    username = request.match_info["username"]
    if await ctx.db.user(username) is None:
        return error(404, "no account %s" % username)
    body = await json_body(request)
    fields, changes = {}, []
    if "role" in body:
        if body["role"] not in ROLES:
            return error(400, "role must be one of: " + ", ".join(ROLES))
        fields["role"] = body["role"]
        changes.append("role=%s" % body["role"])
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            return error(400, "disabled must be true or false")
        if body["disabled"] and username == request[USER]["username"]:
            return error(400, "you cannot disable your own account")
        fields["disabled"] = int(body["disabled"])
        changes.append("disabled" if body["disabled"] else "enabled")
    if "display_name" in body:
        fields["display_name"] = str(body["display_name"]).strip()
        changes.append("display name")
    if "password" in body:
        try:
            fields["password_hash"] = await ctx.passwords.hash(str(body["password"]))
        except PasswordPolicyError as exc:
            return error(400, str(exc))
        except Busy:
            return error(503, "the console is busy hashing passwords: try again", **{"Retry-After": "1"})
        changes.append("password reset")
    if not fields:
        return error(400, "nothing to change: give role, disabled, display_name or password")
    user = await ctx.db.update_user(username, **fields)
    await ctx.register(request, "user-change", "account %s: %s" % (username, ", ".join(changes)), "administration")
    return web.json_response(public_view(user))


@auth.requires("users.admin")
async def unlock_user(request):
    """Clear an account's failed logins at every address: the real user locked out
    by someone else's guesses gets in again at once."""
    ctx = request.app[CONSOLE]
    username = request.match_info["username"]
    cleared = await ctx.db.unlock(username=username)
    await ctx.register(request, "login-unlock", "account %s: %d failed logins cleared" % (username, cleared),
                       "administration")
    return web.json_response({"username": username, "cleared": cleared})


@auth.requires("users.admin")
async def login_stats(request):
    """Failed logins on record (by account and address) and the password pool's counters."""
    ctx = request.app[CONSOLE]
    failures = await ctx.db.login_failures()
    await ctx.register(request, "view", "failed logins", "administration", len(failures))
    return web.json_response({"failures": failures, "pool": ctx.passwords.stats()})
