"""Search and CSV export of events, the access register, and the reports.

Every search and export states its purpose (the regulations require who, when,
what and why for each access to records); the request is refused without one.
"""
import csv
import io
import statistics
from datetime import datetime, timezone

from aiohttp import web

from gateway.console import auth
from gateway.console.keys import CONSOLE
from gateway.event import EVENT_CLASSES

SEARCH_LIMIT = 1000
EXPORT_LIMIT = 100_000
MIN_PURPOSE = 4
DAY_MS = 86_400_000
CSV_COLUMNS = ("id", "received_at", "device_time", "account", "event_class", "category", "code", "qualifier",
               "name", "partition", "zone", "site", "address", "position", "source")


def add_routes(app):
    app.router.add_get("/api/events", search)
    app.router.add_get("/api/events.csv", export)
    app.router.add_get("/api/register", register)
    app.router.add_get("/api/reports", reports)


def _time(query, key):
    """A time parameter: milliseconds since 1970, or an ISO 8601 date/time (UTC if no zone)."""
    value = query.get(key, "").strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "%s: expected milliseconds or an ISO 8601 time"}' % key,
                                 content_type="application/json")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def _filters(request):
    q = request.query
    purpose = q.get("purpose", "").strip()
    if len(purpose) < MIN_PURPOSE:
        raise web.HTTPBadRequest(text='{"error": "state the purpose of this search (at least %d characters)"}'
                                 % MIN_PURPOSE, content_type="application/json")
    event_class = q.get("class", "").strip()
    if event_class and event_class not in EVENT_CLASSES:
        raise web.HTTPBadRequest(text='{"error": "class must be one of: %s"}' % ", ".join(EVENT_CLASSES),
                                 content_type="application/json")
    filters = {"since_ms": _time(q, "from"), "until_ms": _time(q, "to"),
               "account": q.get("account", "").strip().upper() or None, "event_class": event_class or None}
    described = ", ".join("%s=%s" % (k, v) for k, v in (("from", q.get("from")), ("to", q.get("to")),
                                                         ("account", filters["account"]), ("class", event_class)) if v)
    return filters, purpose, described or "all events"


@auth.requires("events.search")
async def search(request):
    ctx = request.app[CONSOLE]
    filters, purpose, described = _filters(request)
    rows = await ctx.reader.search(limit=SEARCH_LIMIT + 1, **filters)
    truncated = len(rows) > SEARCH_LIMIT
    rows = rows[:SEARCH_LIMIT]
    await ctx.register(request, "search", "events: " + described, purpose, len(rows))
    return web.json_response({"events": rows, "truncated": truncated, "limit": SEARCH_LIMIT})


def _iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="seconds")


def csv_row(event):
    site = event.get("site") or {}
    position = event.get("position")
    return [event["id"], _iso(event["received_at_ms"]), _iso(event["device_time"] * 1000), event["account"],
            event["event_class"], event["category"], "%03d" % event["code"], event["qualifier"], event["name"],
            event["partition"], event["zone"], site.get("site", ""), site.get("address", ""),
            "%.6f,%.6f" % tuple(position) if position else "", event["source"]]


@auth.requires("events.search")
async def export(request):
    ctx = request.app[CONSOLE]
    filters, purpose, described = _filters(request)
    rows = await ctx.reader.search(limit=EXPORT_LIMIT, newest_first=False, **filters)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for event in rows:
        writer.writerow(csv_row(event))
    await ctx.register(request, "export", "events CSV: " + described, purpose, len(rows))
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="events.csv"'})


def _period(request, default_days):
    now = request.app[CONSOLE].settings.now_ms()
    until = _time(request.query, "to") or now + 1       # + 1: include what happened this millisecond
    since = _time(request.query, "from") or until - default_days * DAY_MS
    if since >= until:
        raise web.HTTPBadRequest(text='{"error": "from must be before to"}', content_type="application/json")
    return since, until


@auth.requires("register.read")
async def register(request):
    ctx = request.app[CONSOLE]
    since, until = _period(request, 30)
    username = request.query.get("user", "").strip() or None
    entries = await ctx.db.register_entries(since, until, username)
    # Reading the register is itself an access to records, so it is registered too
    # (after the read, so the answer shows the register as it was when asked).
    await ctx.register(request, "view", "access register" + (" of %s" % username if username else ""),
                       "audit", len(entries))
    return web.json_response({"entries": entries, "from_ms": since, "to_ms": until})


def summary(seconds):
    if not seconds:
        return {"count": 0, "median_s": None, "p90_s": None, "max_s": None}
    ordered = sorted(seconds)
    return {"count": len(ordered), "median_s": round(statistics.median(ordered), 1),
            "p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
            "max_s": round(ordered[-1], 1)}


def availability(supervision_events, offline_at_start, since, until):
    """Share of [since, until) a device was not in communication trouble, from its
    supervision events (350 new = went silent, 350 restore = back) in that period."""
    offline_ms, down_since = 0, since if offline_at_start else None
    for event in supervision_events:
        at = min(max(event["received_at_ms"], since), until)
        if event["qualifier"] == 1 and down_since is None:
            down_since = at
        elif event["qualifier"] == 3 and down_since is not None:
            offline_ms += at - down_since
            down_since = None
    if down_since is not None:
        offline_ms += until - down_since
    return 1 - offline_ms / (until - since), offline_ms


@auth.requires("reports.read")
async def reports(request):
    ctx = request.app[CONSOLE]
    since, until = _period(request, 7)
    outcomes = await ctx.db.outcomes(since, until)
    take, dispose = await ctx.db.response_times(since, until)
    before = await ctx.reader.search(until_ms=since, event_class="trouble", limit=EXPORT_LIMIT, newest_first=False)
    during = await ctx.reader.search(since_ms=since, until_ms=until, event_class="trouble", limit=EXPORT_LIMIT,
                                     newest_first=False)

    def supervision(rows):
        return [e for e in rows if e["code"] == 350 and e["source"] == "supervision"]
    offline_at_start = {}
    for event in supervision(before):
        offline_at_start[event["account"]] = event["qualifier"] == 1
    by_account = {}
    for event in supervision(during):
        by_account.setdefault(event["account"], []).append(event)
    devices = []
    for account, state in sorted(ctx.state.devices.items()):
        share, offline_ms = availability(by_account.get(account, []), offline_at_start.get(account, False), since, until)
        devices.append({"account": account, "site": state.site, "type": state.type,
                        "availability": round(share, 4), "offline_s": offline_ms // 1000})
    await ctx.register(request, "view", "reports %s to %s" % (_iso(since), _iso(until)), "management report",
                       sum(outcomes.values()))
    return web.json_response({"from_ms": since, "to_ms": until,
                              "outcomes": {k: outcomes.get(k, 0) for k in ("real", "false", "test", "cancelled")},
                              "response": {"take": summary(take), "dispose": summary(dispose)},
                              "availability": devices})
