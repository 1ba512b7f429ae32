"""Logins, sessions, CSRF and per-role access, enforced on the server.

Passwords: argon2id (memory-hard), via argon2-cffi's defaults (RFC 9106 low-memory
profile); a hash made with weaker parameters is upgraded at the next login.

Sessions: a random token in a cookie that is HttpOnly (scripts cannot read it),
SameSite=Strict (other sites cannot make the browser send it) and Secure when the
console is served over HTTPS. Only the token's SHA-256 is stored, so a copy of
the database opens no session. Sessions end after an idle time and after a
maximum age, and when the account's role or password changes.

CSRF: besides SameSite, every state-changing request must carry the session's
CSRF token in the X-CSRF-Token header (a cross-site form cannot set headers).

Throttling: after `login_max_failures` failed logins for an account within the
window, or four times as many from one client address, logins for it are refused
until `login_lockout_seconds` after the last failure, even with the right password.

Nothing here logs a password, a token or a hash.
"""
import hashlib
import hmac
import secrets

import argon2
from aiohttp import web

from gateway.console.keys import CONSOLE, USER
from gateway.console.roles import allowed

COOKIE = "jifang_console"
CSRF_HEADER = "X-CSRF-Token"
MIN_PASSWORD_LENGTH = 10
TOUCH_EVERY_MS = 30_000         # how often a session's last-seen time is written

_hasher = argon2.PasswordHasher(type=argon2.Type.ID)
# Verifying against this when the account does not exist keeps the answer's timing
# from telling which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class PasswordPolicyError(ValueError):
    pass


def hash_password(password):
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError("passwords have at least %d characters" % MIN_PASSWORD_LENGTH)
    return _hasher.hash(password)


def check_password(password_hash, password):
    """(ok, upgraded_hash or None)."""
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False, None
    if password_hash is None:
        return False, None
    return True, (_hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None)


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def client_of(request):
    return request.remote or "unknown"


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
    if permission is None:
        return await handler(request)
    if user is None:
        if "/api/" in request.path:
            raise web.HTTPUnauthorized(text='{"error": "log in first"}', content_type="application/json")
        raise web.HTTPFound(request.app.router["login_page"].url_for())
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


def set_session_cookie(response, token, settings):
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=settings.secure_cookies,
                        path="/", max_age=int(settings.session_max_hours * 3600))


def clear_session_cookie(response):
    response.del_cookie(COOKIE, path="/")


async def throttled_until_ms(ctx, username, client):
    """When logins for this account or client may be tried again (0: now)."""
    s = ctx.settings
    now = s.now_ms()
    by_user, by_client, last = await ctx.db.recent_failures(username, client, now - int(s.login_window_minutes * 60_000))
    if by_user >= s.login_max_failures or by_client >= 4 * s.login_max_failures:
        until = last + int(s.login_lockout_seconds * 1000)
        return until if until > now else 0
    return 0
