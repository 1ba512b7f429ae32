"""Devices and their state, vehicles, search and export, the access register and
the reports, over real HTTP against a real gateway."""
import csv
import io
import time

from tests.console.support import Console, FakeClock, settings


async def test_device_states_follow_the_events(center, clients):
    olga = await clients("olga")
    await center.panel_alarm(401, qualifier=3)                  # closing: armed
    await center.panel_alarm(301, zone=0, account="1002")       # AC power lost: trouble
    await center.supervision("2001", 1)                         # the vehicle went silent
    _, body = await olga.get("api/devices")
    devices = {d["account"]: d for d in body["devices"]}
    assert devices["1001"]["state"] == "online" and devices["1001"]["armed"] == "armed"
    assert devices["1002"]["state"] == "trouble" and devices["1002"]["troubles"][0]["code"] == 301
    assert devices["2001"]["state"] == "offline" and devices["2001"]["last_report_ms"] is None
    assert [d["account"] for d in (await olga.get("api/devices?state=offline"))[1]["devices"]] == ["2001"]
    assert [d["account"] for d in (await olga.get("api/devices?armed=armed"))[1]["devices"]] == ["1001"]
    assert [d["account"] for d in (await olga.get("api/devices?type=vehicle"))[1]["devices"]] == ["2001"]
    assert [d["account"] for d in (await olga.get("api/devices?q=hongqi"))[1]["devices"]] == ["1002"]
    assert (await olga.get("api/devices?state=bogus"))[0] == 400
    await center.panel_alarm(301, zone=0, qualifier=3, account="1002")   # power back
    await center.panel_alarm(401, qualifier=1)                           # opening: disarmed
    await center.supervision("2001", 3)
    devices = {d["account"]: d for d in (await olga.get("api/devices"))[1]["devices"]}
    assert (devices["1002"]["state"], devices["1001"]["armed"], devices["2001"]["state"]) == \
        ("online", "disarmed", "unknown")


async def test_device_page_shows_its_history_and_the_view_is_registered(center, clients):
    ian, audrey = await clients("ian"), await clients("audrey")
    await center.panel_alarm(602)
    await center.panel_alarm(130, zone=15)
    status, body = await ian.get("api/devices/1001")
    assert status == 200 and [e["code"] for e in body["history"]] == [130, 602]
    assert body["zones"]["15"] == "Vault"
    assert (await ian.get("api/devices/9999"))[0] == 404
    _, register = await audrey.get("api/register?user=ian")
    # Newest first: the refused look-up is registered too (issue 11 §6).
    assert (register["entries"][0]["action"], register["entries"][0]["what"]) == \
        ("refused", "GET /api/devices/9999 -> 404")
    assert register["entries"][1]["what"] == "device 1001 with event history"
    assert register["entries"][1]["records"] == 2


async def test_vehicles_with_tracks_alarms_and_geofences(center, clients):
    olga = await clients("olga")
    path = [(45.750, 126.600), (45.756, 126.615), (45.760, 126.630)]
    for lat, lon in path:
        await center.panel_alarm(602, account="2001", position=(lat, lon))
    await center.panel_alarm(120, account="2001", position=(45.761, 126.632))
    _, body = await olga.get("api/vehicles")
    [van] = body["vehicles"]
    assert van["account"] == "2001" and van["type"] == "vehicle"
    assert [(round(p["lat"], 3), round(p["lon"], 3)) for p in van["track"]] == path + [(45.761, 126.632)]
    assert [a["name"] for a in van["alarms"]] == ["Panic"]
    assert van["inside"] == ["Depot"]
    assert [(g["name"], g["shape"]) for g in body["geofences"]] == \
        [("Depot", "polygon"), ("Cash run 7", "corridor"), ("Fuel depot (hazmat no-go)", "circle")]
    _, queue = await olga.get("api/queue")
    assert queue["items"][0]["position"] is not None          # the alarm reaches the operator with its position


async def test_search_and_export_need_a_purpose_and_are_registered(center, clients):
    olga, audrey = await clients("olga"), await clients("audrey")
    start = int(time.time() * 1000) - 1
    await center.panel_alarm(130, zone=15)
    await center.panel_alarm(401, qualifier=3)
    await center.panel_alarm(120, account="1002")
    status, body = await olga.get("api/events?class=alarm")
    assert status == 400 and "purpose" in body["error"]
    status, body = await olga.get("api/events?class=alarm&account=1001&from=%d&purpose=police+request+118" % start)
    assert status == 200 and [(e["account"], e["code"]) for e in body["events"]] == [("1001", 130)]
    assert (await olga.get("api/events?class=nonsense&purpose=check"))[0] == 400
    assert (await olga.get("api/events?from=yesterday&purpose=check"))[0] == 400
    status, text = await olga.get("api/events.csv?account=1001&purpose=insurance+claim+7")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and [r["code"] for r in rows] == ["130", "401"]
    assert rows[0]["site"] == "Bank of Harbin, Zhongyang branch" and rows[0]["received_at"].endswith("+00:00")
    _, register = await audrey.get("api/register?user=olga")
    entries = [(e["action"], e["what"], e["purpose"], e["records"]) for e in register["entries"]]
    assert ("export", "events CSV: account=1001", "insurance claim 7", 2) in entries
    assert ("search", "events: from=%d, account=1001, class=alarm" % start, "police request 118", 1) in entries


async def test_reading_the_register_is_itself_registered(center, clients):
    audrey = await clients("audrey")
    await audrey.get("api/register?user=audrey")
    _, body = await audrey.get("api/register?user=audrey")
    assert [e["action"] for e in body["entries"]] == ["view", "login"]
    assert body["entries"][0]["what"] == "access register of audrey" and body["entries"][0]["purpose"] == "audit"


async def test_reports_outcomes_response_times_and_availability(tmp_path):
    clock = FakeClock()
    center = await Console(tmp_path, settings(clock=clock)).start()
    olga, sam = await center.client("olga"), await center.client("sam")
    try:
        for code, outcome, wait_s in ((120, "real", 30), (130, "false", 90), (130, "false", 60)):
            alarm = await center.submit_alarm(code, received_at_ms=int(clock() * 1000))
            clock.advance(wait_s)
            await olga.post("api/alarms/%d/take" % alarm)
            clock.advance(wait_s)
            await olga.post("api/alarms/%d/dispose" % alarm, {"outcome": outcome, "note": "checked"})
        status, report = await sam.get("api/reports")
        assert status == 200
        assert report["outcomes"] == {"real": 1, "false": 2, "test": 0, "cancelled": 0}
        assert report["response"]["take"] == {"count": 3, "median_s": 60.0, "p90_s": 90.0, "max_s": 90.0}
        assert report["response"]["dispose"]["median_s"] == 120.0
        availability = {a["account"]: a["availability"] for a in report["availability"]}
        assert availability["1001"] == 1.0
        assert (await olga.get("api/reports"))[0] == 403
    finally:
        await olga.close()
        await sam.close()
        await center.stop()


def test_availability_counts_time_in_communication_trouble():
    from gateway.console.api_records import availability
    day = 86_400_000
    went, back = {"received_at_ms": 6 * 3_600_000, "qualifier": 1}, {"received_at_ms": 12 * 3_600_000, "qualifier": 3}
    assert availability([went, back], False, 0, day) == (0.75, 6 * 3_600_000)
    assert availability([back], True, 0, day) == (0.5, 12 * 3_600_000)
    assert availability([], True, 0, day) == (0.0, day)


async def test_device_state_is_rebuilt_from_the_log_after_a_restart(center, clients):
    await center.panel_alarm(602, account="2001", position=(45.75, 126.60))
    await center.panel_alarm(602, account="2001", position=(45.76, 126.61))
    await center.panel_alarm(401, qualifier=3)
    await center.panel_alarm(301, zone=0, account="1002")
    await center.supervision("2001", 1)
    olga = await clients("olga")
    before = (await olga.get("api/devices"))[1]["devices"]
    assert [round(d["position"]["lat"], 2) for d in before if d["position"]] == [45.76]
    await center.stop_console()
    await center.start_console()
    again = await center.client("olga")
    try:
        assert (await again.get("api/devices"))[1]["devices"] == before
    finally:
        await again.close()


async def test_a_walk_test_marks_the_alarms_it_causes_without_hiding_them(center, clients):
    ian, olga = await clients("ian"), await clients("olga")
    assert (await olga.post("api/devices/1001/walk-test", {"action": "start"}))[0] == 403   # operators do not
    status, device = await ian.post("api/devices/1001/walk-test", {"action": "start"})
    assert status == 200 and device["walk_test"]["by"] == "ian"
    assert (await ian.post("api/devices/1001/walk-test", {"action": "start"}))[0] == 409
    during = await center.panel_alarm(130, zone=15)
    assert (await ian.post("api/devices/1001/walk-test", {"action": "end"}))[0] == 200
    after = await center.panel_alarm(130, zone=1)
    _, queue = await olga.get("api/queue")
    assert {i["id"]: i["on_test"] for i in queue["items"]} == {during: True, after: False}
    await center.stop_console()                 # the marks survive a restart
    await center.start_console()
    again = await center.client("olga")
    try:
        _, queue = await again.get("api/queue")
        assert {i["id"]: i["on_test"] for i in queue["items"]} == {during: True, after: False}
    finally:
        await again.close()
    audrey = await center.client("audrey")
    try:
        _, register = await audrey.get("api/register?user=ian")
        assert [e["what"] for e in register["entries"] if e["action"] == "walk-test"] == \
            ["end walk test of device 1001", "start walk test of device 1001"]
    finally:
        await audrey.close()
