"""Devices with their state, one device with its event history, and vehicles
(every device that reported a position) with their tracks and the geofences."""
import inspect
from dataclasses import asdict

from aiohttp import web

from gateway.console import auth
from gateway.console.api_session import error, json_body
from gateway.console.keys import CONSOLE, USER

STATES = ("online", "offline", "trouble", "unknown")
ARMED = ("armed", "disarmed")
HISTORY_LIMIT = 200
TRACK_POINTS = 500


def add_routes(app):
    app.router.add_get("/api/devices", devices)
    app.router.add_get("/api/devices/{account}", device)
    app.router.add_post("/api/devices/{account}/walk-test", walk_test)
    app.router.add_get("/api/vehicles", vehicles)
    app.router.add_post("/api/vehicles/{account}/release", release_vehicle)


def matches(device, state, armed, kind, text):
    if state and device["state"] != state:
        return False
    if armed and device["armed"] != armed:
        return False
    if kind and device["type"] != kind:
        return False
    if text:
        haystack = " ".join((device["account"], device["site"], device["address"])).lower()
        if text.lower() not in haystack:
            return False
    return True


@auth.requires("devices.read")
async def devices(request):
    ctx = request.app[CONSOLE]
    q = request.query
    state, armed = q.get("state", ""), q.get("armed", "")
    if state and state not in STATES:
        return error(400, "state must be one of: " + ", ".join(STATES))
    if armed and armed not in ARMED:
        return error(400, "armed must be one of: " + ", ".join(ARMED))
    rows = [d.to_dict() for _, d in sorted(ctx.state.devices.items())]
    rows = [d for d in rows if matches(d, state, armed, q.get("type", ""), q.get("q", "").strip())]
    what = "device list" + "".join(" %s=%s" % (k, v) for k, v in sorted(q.items()) if v)
    await ctx.register(request, "view", what, "device supervision", len(rows))
    return web.json_response({"devices": rows, "now_ms": ctx.settings.now_ms(),
                              "types": sorted({d.type for d in ctx.state.devices.values()})})


@auth.requires("devices.read")
async def device(request):
    ctx = request.app[CONSOLE]
    account = request.match_info["account"].upper()
    state = ctx.state.devices.get(account)
    if state is None:
        return error(404, "no device %s" % account)
    history = await ctx.reader.search(account=account, limit=HISTORY_LIMIT)
    details = ctx.settings.site_details(account)
    await ctx.register(request, "view", "device %s with event history" % account, "device supervision", len(history))
    return web.json_response({"device": state.to_dict(), "history": history, "contacts": details["contacts"],
                              "zones": {str(z): n for z, n in sorted(details["zones"].items())},
                              "now_ms": ctx.settings.now_ms()})


@auth.requires("devices.walktest")
async def walk_test(request):
    """Start or end a walk test: the installer trips each zone and watches it arrive
    on the device page; alarms meanwhile reach the queue marked "on test"."""
    ctx = request.app[CONSOLE]
    account = request.match_info["account"].upper()
    device_state = ctx.state.devices.get(account)
    if device_state is None:
        return error(404, "no device %s" % account)
    action = (await json_body(request)).get("action")
    if action not in ("start", "end"):
        return error(400, "action must be start or end")
    if (action == "start") == (device_state.walk_test is not None):
        return error(409, "a walk test is %s running on %s" % ("already" if action == "start" else "not", account))
    user, now = request[USER], ctx.settings.now_ms()
    ctx.walk_tests_seen.add(await ctx.db.add_walk_test(account, action, user["username"], now))
    ctx.state.walk_test(account, action, user["username"], now)
    await ctx.register(request, "walk-test", "%s walk test of device %s" % (action, account), "device setup")
    return web.json_response(device_state.to_dict())


@auth.requires("vehicles.read")
async def vehicles(request):
    ctx = request.app[CONSOLE]
    now = ctx.settings.now_ms()
    since = now - int(ctx.settings.vehicle_track_hours * 3_600_000)
    tracks = {}
    for event in await ctx.reader.positions(since):
        lat, lon = event["position"]
        tracks.setdefault(event["account"], []).append(
            {"lat": lat, "lon": lon, "at_ms": event["received_at_ms"], "event_class": event["event_class"],
             "name": event["name"], "id": event["id"]})
    out = []
    for account, points in sorted(tracks.items()):
        device_state = ctx.state.device(account).to_dict()
        alarms = [p for p in points if p["event_class"] == "alarm"]
        last = points[-1]
        # "Inside" is decided by the same Geofence.contains the fleet rules use.
        inside = [g.name for g in ctx.source.geofences if g.contains(last["lat"], last["lon"])]
        out.append({"account": account, "site": device_state["site"], "type": device_state["type"],
                    "state": device_state["state"], "last": last, "track": points[-TRACK_POINTS:],
                    "alarms": alarms, "inside": inside})
    await ctx.register(request, "view", "vehicle positions and tracks, last %g h" % ctx.settings.vehicle_track_hours,
                       "vehicle monitoring", sum(len(v["track"]) for v in out))
    return web.json_response({"vehicles": out, "geofences": [asdict(g) for g in ctx.source.geofences],
                              "since_ms": since, "now_ms": now})


@auth.requires("vehicles.release")
async def release_vehicle(request):
    """Let a vehicle's terminal register again (its code was lost, or the terminal
    swapped): the JT/T 808 center forgets the code and answers one registration
    within its release window. Refused while the vehicle is online. Recorded in the
    access register with the reason, granted or not."""
    ctx = request.app[CONSOLE]
    account = request.match_info["account"].upper()
    reason = (await json_body(request)).get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        return error(400, "give the reason (1-500 characters): it goes in the access register")
    if ctx.release_vehicle is None:
        return error(503, "no JT/T 808 center on this gateway")
    what = "release of vehicle %s's terminal registration" % account
    purpose = "terminal re-registration: " + reason.strip()
    try:
        released = ctx.release_vehicle(account, request[USER]["username"], reason.strip())
        if inspect.isawaitable(released):      # the console in its own process: a call to the gateway
            released = await released
    except LookupError as exc:
        await ctx.register(request, "vehicle-release-refused", what + " (no such vehicle)", purpose)
        return error(404, str(exc))
    except ValueError as exc:
        await ctx.register(request, "vehicle-release-refused", what + " (online)", purpose)
        return error(409, str(exc))
    await ctx.register(request, "vehicle-release", "%s (plate %s, terminal %s)" % (
        what, released["plate"], released["terminal_id"] or "none registered"), purpose)
    return web.json_response(released)
