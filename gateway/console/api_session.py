"""POST /api/login, POST /api/logout, GET /api/session."""
from aiohttp import web

from gateway.console import auth
from gateway.console.keys import CONSOLE, REGISTERED, USER
from gateway.console.passwords import Busy
from gateway.console.roles import PAGES, PERMISSIONS, allowed


def add_routes(app):
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/session", session)


def error(status, message, **headers):
    return web.json_response({"error": message}, status=status, headers=headers)


async def json_body(request):
    # Only JSON: a cross-site HTML form cannot send it without a CORS preflight we never grant.
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text='{"error": "send application/json"}', content_type="application/json")
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "expected a JSON body"}', content_type="application/json")
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}', content_type="application/json")
    return body


def session_view(user):
    return {"username": user["username"], "role": user["role"], "display_name": user["display_name"],
            "csrf_token": user["csrf_token"], "pages": PAGES[user["role"]],
            "permissions": sorted(p for p in PERMISSIONS if allowed(user["role"], p))}


@auth.public
async def login(request):
    ctx = request.app[CONSOLE]
    body = await json_body(request)
    username, password = str(body.get("username", "")).strip(), str(body.get("password", ""))
    client = auth.client_of(request)
    try:
        # A hashing slot first: a login refused as busy has touched nothing.
        ticket = ctx.passwords.ticket()
    except Busy:
        return error(429, "the console is busy checking logins: try again in 1 s", **{"Retry-After": "1"})
    try:
        # Throttle checked and this try counted before any hash: see auth.login_gate.
        until, _attempt = await auth.login_gate(ctx, username, client)
        now = ctx.settings.now_ms()
        if until:
            retry = max(1, (until - now + 999) // 1000)
            return error(429, "too many failed logins: try again in %d s" % retry, **{"Retry-After": str(retry)})
        user = await ctx.db.user(username) if username else None
        # An unknown account is verified against a dummy hash: same cost, same answer.
        ok, upgraded = await ticket.verify(user["password_hash"] if user else None, password)
    finally:
        ticket.cancel()                 # given back unless verify used it
    if not ok or user["disabled"]:
        await ctx.db.register(now, username or "(none)", user["role"] if user else "-", "login-failed",
                              "console login", "authentication", client)
        return error(401, "wrong username or password")
    if upgraded:
        await ctx.db.update_user(username, password_hash=upgraded)
    await ctx.db.login_succeeded(username, client)
    token, csrf = auth.new_session_tokens()
    await ctx.db.add_session(auth.token_hash(token), user["id"], csrf, now)
    await ctx.db.register(now, username, user["role"], "login", "console login", "authentication", client)
    request[REGISTERED] = True
    view = session_view({"username": username, "role": user["role"], "display_name": user["display_name"],
                         "csrf_token": csrf})
    response = web.json_response(view)
    auth.set_session_cookie(response, token, request, ctx.settings)
    return response


@auth.logged_in
async def logout(request):
    await request.app[CONSOLE].db.drop_session(request[USER]["session_key"])
    response = web.json_response({"ok": True})
    auth.clear_session_cookie(response)
    return response


@auth.logged_in
async def session(request):
    return web.json_response(session_view(request[USER]))
