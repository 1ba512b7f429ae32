"""The alarm queue and what operators do with an alarm: take, assign, dispose, dispatch.

Rules enforced here, not in the browser:
- an alarm leaves the queue only by a disposal, with an outcome and a note;
- an operator handles (disposes, dispatches) only an alarm assigned to them, and
  takes only one nobody else holds; a supervisor may do all of it to any alarm
  and reassign it;
- a dispatch to 110 is recorded whether it succeeded or not, and does not dispose
  of the alarm (the operator still says what it was).
"""
import asyncio
import logging

from aiohttp import web

from gateway.console import auth
from gateway.console.api_session import error, json_body
from gateway.console.keys import CONSOLE, USER
from gateway.console.roles import allowed

log = logging.getLogger("jifang.console")

OUTCOMES = {"real": "real alarm", "false": "false alarm", "test": "test", "cancelled": "cancelled by user"}
MAX_NOTE = 2000


def add_routes(app):
    app.router.add_get("/api/queue", queue)
    app.router.add_get("/api/alarms/{id:\\d+}", alarm)
    app.router.add_post("/api/alarms/{id:\\d+}/take", take)
    app.router.add_post("/api/alarms/{id:\\d+}/assign", assign)
    app.router.add_post("/api/alarms/{id:\\d+}/dispose", dispose)
    app.router.add_post("/api/alarms/{id:\\d+}/dispatch", dispatch)


def queued_item(request):
    """The queued alarm the URL names; 409 when it is not queued (unknown, or already disposed of)."""
    event_id = int(request.match_info["id"])
    item = request.app[CONSOLE].state.queue.get(event_id)
    if item is None:
        raise web.HTTPConflict(text='{"error": "alarm %d is not in the queue (unknown or already disposed of)"}'
                               % event_id, content_type="application/json")
    return item


def may_handle(user, item):
    return item["assignee"] == user["username"] or allowed(user["role"], "alarm.reassign")


def note_of(body, required):
    note = str(body.get("note", "")).strip()
    if required and not note:
        raise web.HTTPBadRequest(text='{"error": "a note is required"}', content_type="application/json")
    if len(note) > MAX_NOTE:
        raise web.HTTPBadRequest(text='{"error": "note longer than %d characters"}' % MAX_NOTE,
                                 content_type="application/json")
    return note


@auth.requires("queue.read")
async def queue(request):
    ctx = request.app[CONSOLE]
    items = ctx.state.sorted_queue()
    await ctx.register(request, "view", "alarm queue", "alarm handling", len(items))
    return web.json_response({"items": items, "now_ms": ctx.settings.now_ms(),
                              "escalate_after_seconds": ctx.settings.escalate_after_seconds,
                              "dispatch_available": ctx.dispatch is not None, "outcomes": OUTCOMES})


@auth.requires("queue.read")
async def alarm(request):
    ctx = request.app[CONSOLE]
    event_id = int(request.match_info["id"])
    event = await ctx.reader.get(event_id)
    if event is None:
        return error(404, "no event %d" % event_id)
    handling = (await ctx.db.handling([event_id]))[event_id]
    account = event["account"]
    device = ctx.state.devices.get(account)
    details = ctx.settings.site_details(account)
    history = await ctx.reader.search(account=account, limit=20)
    await ctx.register(request, "view", "alarm %d (account %s) with device history" % (event_id, account),
                       "alarm handling", 1 + len(history))
    return web.json_response({
        "event": event, "queued": ctx.state.queue.get(event_id), "handling": handling,
        "device": device.to_dict() if device else None, "zone_name": details["zones"].get(event["zone"], ""),
        "zones": {str(z): n for z, n in sorted(details["zones"].items())}, "contacts": details["contacts"],
        "history": history, "outcomes": OUTCOMES, "dispatch_available": ctx.dispatch is not None,
        "now_ms": ctx.settings.now_ms()})


@auth.requires("alarm.handle")
async def take(request):
    ctx = request.app[CONSOLE]
    user = request[USER]
    item = queued_item(request)
    if item["assignee"] == user["username"]:
        return web.json_response(item)
    if item["assignee"] and not allowed(user["role"], "alarm.reassign"):
        return error(409, "alarm already taken by %s; a supervisor can reassign it" % item["assignee"])
    now = ctx.settings.now_ms()
    await ctx.db.assign(item["id"], user["username"], user["username"], now, item["received_at_ms"])
    ctx.state.assigned(item["id"], user["username"], now)
    return web.json_response(item)


@auth.requires("alarm.reassign")
async def assign(request):
    ctx = request.app[CONSOLE]
    item = queued_item(request)
    body = await json_body(request)
    assignee = await ctx.db.user(str(body.get("assignee", "")))
    if assignee is None or assignee["disabled"] or not allowed(assignee["role"], "alarm.handle"):
        return error(400, "assignee must be an active operator or supervisor")
    now = ctx.settings.now_ms()
    await ctx.db.assign(item["id"], assignee["username"], request[USER]["username"], now, item["received_at_ms"])
    ctx.state.assigned(item["id"], assignee["username"], now)
    return web.json_response(item)


@auth.requires("alarm.handle")
async def dispose(request):
    ctx = request.app[CONSOLE]
    user = request[USER]
    item = queued_item(request)
    body = await json_body(request)
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        return error(400, "outcome must be one of: " + ", ".join(OUTCOMES))
    note = note_of(body, required=True)
    if not may_handle(user, item):
        return error(409, "take the alarm before disposing of it")
    now = ctx.settings.now_ms()
    recorded = await ctx.db.dispose(item["id"], outcome, note, user["username"], now, item["account"],
                                    item["event_class"], item["received_at_ms"])
    if not recorded:
        return error(409, "alarm %d was already disposed of" % item["id"])
    disposition = {"id": item["id"], "outcome": outcome, "note": note, "operator": user["username"], "at_ms": now}
    ctx.state.disposed(item["id"], disposition)
    if ctx.on_disposed is not None:
        # In the background: telling a vehicle's terminal (0x8203) may take seconds,
        # and the disposal is recorded whatever the terminal answers.
        task = asyncio.create_task(_after_disposal(ctx, item))
        ctx.background.add(task)
        task.add_done_callback(ctx.background.discard)
    return web.json_response(disposition)


async def _after_disposal(ctx, item):
    try:
        await ctx.on_disposed(item)
    except Exception as exc:  # noqa: BLE001 - reported, never lost silently
        log.error("after-disposal hook failed", extra={"event_id": item["id"], "error": repr(exc)})


@auth.requires("alarm.handle")
async def dispatch(request):
    ctx = request.app[CONSOLE]
    user = request[USER]
    item = queued_item(request)
    body = await json_body(request)
    note = note_of(body, required=False)
    if ctx.dispatch is None:
        return error(503, "dispatch to 110 is not configured on this gateway")
    if not may_handle(user, item):
        return error(409, "take the alarm before dispatching it")
    try:
        reference = str(await ctx.dispatch(item["id"], user["username"], note))
        ok = True
    except Exception as exc:          # whatever the forwarding side raised: recorded and shown, not swallowed
        reference, ok = "failed: %s" % exc, False
        log.error("dispatch to 110 failed", extra={"event_id": item["id"], "error": repr(exc)})
    now = ctx.settings.now_ms()
    await ctx.db.add_dispatch(item["id"], user["username"], note, now, ok, reference)
    record = {"at_ms": now, "operator": user["username"], "ok": ok, "result": reference}
    if item["id"] in ctx.state.queue:
        ctx.state.dispatched(item["id"], record)
    return web.json_response(record, status=200 if ok else 502)
