"""Logins, sessions, CSRF and per-role access, enforced on the server.

Passwords: argon2id (memory-hard), via argon2-cffi's defaults (RFC 9106 low-memory
profile), hashed and verified off the event loop in a small bounded pool
(gateway/console/passwords.py); a hash made with weaker parameters is upgraded at
the next login.

Sessions: a random token in a cookie that is HttpOnly (scripts cannot read it),
SameSite=Strict (other sites cannot make the browser send it) and Secure when the
console is served over HTTPS. Only the token's SHA-256 is stored, so a copy of
the database opens no session. Sessions end after an idle time and after a
maximum age, and when the account's role or password changes.

CSRF: besides SameSite, every state-changing request must carry the session's
CSRF token in the X-CSRF-Token header (a cross-site form cannot set headers).

Throttling (see `login_gate`): failed logins are counted per (account, client
address) and per client address within `login_window_minutes`. Past
`login_max_failures` for the pair (or `login_address_max_failures` for the
address, whatever the account), each further try must wait
`login_backoff_seconds`, doubling per failure up to `login_lockout_seconds`. The
check and the count are one step on the console database's thread, taken BEFORE
any hash is computed: of 60 concurrent wrong logins only the first
`login_max_failures` reach argon2. Unknown accounts are counted and verified (against
a dummy hash) exactly like real ones. It is not a hard lock of the account: the
real user at another address is not slowed by an attacker's failures, and an
admin can clear the count (`jifang console-user unlock`, POST
/api/users/{username}/unlock), which the access register records.

Nothing here logs a password, a token or a hash.
"""
import hashlib
import hmac
import secrets

from aiohttp import web

from gateway.console.keys import CONSOLE, NET_LISTENER, REGISTERED, USER
from gateway.console.roles import allowed

COOKIE = "jifang_console"
CSRF_HEADER = "X-CSRF-Token"
TOUCH_EVERY_MS = 30_000         # how often a session's last-seen time is written

def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def client_of(request):
    """The client's address: the TCP peer, or, when that peer is one of the
    configured `trusted_proxies` (a TLS-terminating proxy in front), the address
    the proxy reports last in X-Forwarded-For (the one it saw; earlier entries
    are the client's own claims). Throttling and the register use this."""
    remote = request.remote or "unknown"
    if remote in request.app[CONSOLE].settings.trusted_proxies:
        forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        if forwarded:
            return forwarded[-1][:64]
    return remote


def served_over_tls(request):
    """TLS here (request.secure), or at a trusted proxy that says so."""
    if request.secure:
        return True
    return ((request.remote or "") in request.app[CONSOLE].settings.trusted_proxies
            and request.headers.get("X-Forwarded-Proto", "").lower() == "https")


def requires(permission):
    """Mark a handler with the permission the middleware checks before calling it."""
    def mark(handler):
        handler.permission = permission
        return handler
    return mark


def public(handler):
    """Mark a handler that answers without a login (login page, login itself)."""
    handler.permission = None
    return handler


def logged_in(handler):
    """Mark a handler that any logged-in user may call, whatever the role."""
    handler.permission = "login"
    return handler


def handler_permission(request):
    handler = request.match_info.handler
    # Every route must say what it needs: an unmarked handler is refused, never open.
    return getattr(handler, "permission", "unmarked")


async def active_session(ctx, key):
    """The session with this token hash if it is still valid; an expired one is ended."""
    session = await ctx.db.session(key)
    if session is None or session["disabled"]:
        return None
    s = ctx.settings
    now = s.now_ms()
    if (now - session["last_seen_ms"] > s.session_idle_minutes * 60_000
            or now - session["created_at_ms"] > s.session_max_hours * 3_600_000):
        await ctx.db.drop_session(key)
        return None
    return session


async def current_user(request):
    """The logged-in user for this request, or None (expired sessions are ended here)."""
    ctx = request.app[CONSOLE]
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    key = token_hash(token)
    session = await active_session(ctx, key)
    if session is None:
        return None
    now = ctx.settings.now_ms()
    if now - session["last_seen_ms"] > TOUCH_EVERY_MS:
        await ctx.db.touch_session(key, now)
    return {"username": session["username"], "role": session["role"], "display_name": session["display_name"],
            "csrf_token": session["csrf_token"], "session_key": key}


@web.middleware
async def access_middleware(request, handler):
    if request.match_info.http_exception is not None:      # no such route (404) or method (405)
        raise request.match_info.http_exception
    permission = handler_permission(request)
    request[USER] = user = await current_user(request)
    if user is not None:
        mark_known(request)
    if permission is None:
        return await handler(request)
    if user is None:
        # Not registered: no one is identified, and an anonymous flood must not be
        # able to fill the register (failed logins are, within the throttle).
        if "/api/" in request.path:
            raise web.HTTPUnauthorized(text='{"error": "log in first"}', content_type="application/json")
        raise web.HTTPFound(request.app.router["login_page"].url_for())
    status = 500
    try:
        response = await _checked(request, handler, permission, user)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if not request.get(REGISTERED) and "/api/" in request.path:
            # Every access by a logged-in user, granted or refused, is in the register
            # (issue 11): handlers that carry records write a richer entry themselves;
            # the rest (account list, alarm actions, refusals ...) get this one.
            await request.app[CONSOLE].register(
                request, "access" if status < 400 else "refused",
                "%s %s -> %d" % (request.method, request.path_qs, status), "-")


async def _checked(request, handler, permission, user):
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), user["csrf_token"].encode()):
            raise web.HTTPForbidden(text='{"error": "missing or wrong CSRF token"}', content_type="application/json")
    if permission != "login" and (permission == "unmarked" or not allowed(user["role"], permission)):
        raise web.HTTPForbidden(text='{"error": "your role (%s) may not do this"}' % user["role"],
                                content_type="application/json")
    return await handler(request)


@web.middleware
async def security_headers_middleware(request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _secure(response, request)
        raise
    _secure(response, request)
    return response


def _secure(response, request):
    h = response.headers
    # No inline script, no other origin: the console ships every asset itself (offline).
    h.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                                            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    if "/api/" in request.path or request.path.endswith(".html") or request.path.endswith("/"):
        h.setdefault("Cache-Control", "no-store")


def new_session_tokens():
    return secrets.token_urlsafe(32), secrets.token_urlsafe(24)


def cookie_is_secure(request, settings):
    """Secure whenever the browser reached the console over TLS (the console's own
    tls_cert_file, or a trusted proxy's X-Forwarded-Proto: https), or when forced
    (secure_cookies = true, for a proxy that sends no such header): a plain-HTTP
    hop must never carry the token."""
    return settings.secure_cookies or served_over_tls(request)


def mark_known(request):
    """A logged-in operator's address may use the connection reserve from now on
    (gateway/netlimits.py), whatever a flood from new addresses takes."""
    slot = request.app.get(NET_LISTENER)
    if slot is not None:
        slot.known(request.transport)


def set_session_cookie(response, token, request, settings):
    mark_known(request)                  # a session is issued only to a successful login
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=cookie_is_secure(request, settings),
                        path="/", max_age=int(settings.session_max_hours * 3600))


def clear_session_cookie(response):
    response.del_cookie(COOKIE, path="/")


def backoff_ms(failures, free, first_s, longest_s):
    """How long after the latest failure the next try may come: 0 while `failures`
    < `free`, then first_s, doubling per further failure, at most longest_s."""
    if failures < free:
        return 0
    return int(min(longest_s, first_s * 2 ** min(failures - free, 32)) * 1000)


def login_policy(settings):
    """What ConsoleDB.login_gate needs, as plain values (it runs on the db thread)."""
    return {"window_ms": int(settings.login_window_minutes * 60_000),
            "pair_free": settings.login_max_failures, "address_free": settings.login_address_max_failures,
            "first_s": settings.login_backoff_seconds, "longest_s": settings.login_lockout_seconds}


async def login_gate(ctx, username, client):
    """Check the throttle and, if the try may go ahead, count it as a failure now
    (before any hash); the login clears it if the password is right.
    Returns (0, attempt id) or (until_ms, None) when the client must wait."""
    return await ctx.db.login_gate(username, client, ctx.settings.now_ms(), login_policy(ctx.settings))
