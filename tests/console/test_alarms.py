"""The alarm queue and its handling, with alarms sent by a panel over DC-09 to a
real gateway: order, take, assign, dispose, dispatch, escalation, live push."""
import asyncio
import json
import sqlite3

import aiohttp
import pytest

from tests.console.support import Console, FakeClock, settings


async def queue_ids(client):
    status, body = await client.get("api/queue")
    assert status == 200
    return [i["id"] for i in body["items"]]


async def test_queue_is_life_safety_first_then_oldest_and_holds_no_routine_events(center, clients):
    olga = await clients("olga")
    trouble = await center.panel_alarm(301, zone=0)          # AC power loss: trouble tier
    burglary = await center.panel_alarm(130, zone=15)
    await center.panel_alarm(401, qualifier=3)               # closing (armed): routine, not queued
    panic = await center.panel_alarm(120, zone=1)
    await center.panel_alarm(130, zone=15, qualifier=3)      # restore of the burglary zone: not queued
    assert await queue_ids(olga) == [burglary, panic, trouble]
    _, body = await olga.get("api/queue")
    by_id = {i["id"]: i for i in body["items"]}
    assert by_id[burglary]["restored"] and not by_id[panic]["restored"]
    assert by_id[burglary]["site"]["address"] == "88 Zhongyang St, Daoli District"


async def test_take_then_dispose_with_outcome_and_note(center, clients):
    olga = await clients("olga")
    alarm = await center.panel_alarm(130, zone=15)
    status, body = await olga.post("api/alarms/%d/dispose" % alarm, {"outcome": "false", "note": "cat"})
    assert status == 409 and "take" in body["error"]          # nobody disposes of an alarm they have not taken
    assert (await olga.post("api/alarms/%d/take" % alarm))[0] == 200
    assert (await olga.post("api/alarms/%d/dispose" % alarm, {"outcome": "maybe", "note": "x"}))[0] == 400
    assert (await olga.post("api/alarms/%d/dispose" % alarm, {"outcome": "false", "note": "  "}))[0] == 400
    assert alarm in await queue_ids(olga)                      # refused disposals leave it queued
    status, body = await olga.post("api/alarms/%d/dispose" % alarm,
                                   {"outcome": "false", "note": "staff opened the vault late"})
    assert status == 200 and body["outcome"] == "false"
    assert alarm not in await queue_ids(olga)
    assert (await olga.post("api/alarms/%d/dispose" % alarm, {"outcome": "real", "note": "again"}))[0] == 409
    status, detail = await olga.get("api/alarms/%d" % alarm)
    assert detail["queued"] is None and detail["handling"]["disposition"]["note"] == "staff opened the vault late"
    assert detail["zone_name"] == "Vault" and detail["contacts"][0]["name"] == "Wang Li"
    assert [e["id"] for e in detail["history"]][0] == alarm


async def test_an_operator_cannot_take_a_colleagues_alarm_but_a_supervisor_reassigns_it(center, clients):
    olga, oscar, sam = await clients("olga"), await clients("oscar"), await clients("sam")
    alarm = await center.panel_alarm(120)
    await olga.post("api/alarms/%d/take" % alarm)
    status, body = await oscar.post("api/alarms/%d/take" % alarm)
    assert status == 409 and "olga" in body["error"]
    assert (await oscar.post("api/alarms/%d/assign" % alarm, {"assignee": "oscar"}))[0] == 403
    assert (await sam.post("api/alarms/%d/assign" % alarm, {"assignee": "audrey"}))[0] == 400   # not an operator
    assert (await sam.post("api/alarms/%d/assign" % alarm, {"assignee": "oscar"}))[0] == 200
    assert (await olga.post("api/alarms/%d/dispose" % alarm, {"outcome": "real", "note": "x"}))[0] == 409
    status, _ = await oscar.post("api/alarms/%d/dispose" % alarm, {"outcome": "real", "note": "police sent"})
    assert status == 200
    _, detail = await sam.get("api/alarms/%d" % alarm)
    assert [(a["assignee"], a["assigned_by"]) for a in detail["handling"]["assignments"]] == \
        [("olga", "olga"), ("oscar", "sam")]


async def test_the_queue_survives_a_console_restart(center, clients):
    olga = await clients("olga")
    first, second = await center.panel_alarm(120), await center.panel_alarm(110)
    await olga.post("api/alarms/%d/take" % first)
    await olga.post("api/alarms/%d/dispose" % first, {"outcome": "test", "note": "monthly test"})
    await olga.post("api/alarms/%d/take" % second)
    await center.stop_console()
    await center.start_console()
    again = await center.client("olga")
    try:
        _, body = await again.get("api/queue")
        assert [(i["id"], i["assignee"]) for i in body["items"]] == [(second, "olga")]
    finally:
        await again.close()


async def test_dispositions_and_the_register_cannot_be_altered(center, clients):
    olga = await clients("olga")
    alarm = await center.panel_alarm(120)
    await olga.post("api/alarms/%d/take" % alarm)
    await olga.post("api/alarms/%d/dispose" % alarm, {"outcome": "real", "note": "duress confirmed"})
    db = sqlite3.connect(center.db_path)
    try:
        for sql in ("UPDATE dispositions SET outcome = 'false'", "DELETE FROM dispositions",
                    "UPDATE access_register SET purpose = 'x'", "DELETE FROM access_register",
                    "DELETE FROM assignments", "UPDATE assignments SET assignee = 'oscar'"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)
    finally:
        db.close()


async def test_dispatch_to_110_calls_the_forwarding_side_and_is_recorded(tmp_path):
    sent = []

    async def dispatch(event_id, operator, note):
        if note == "fail":
            raise ConnectionError("110 center unreachable")
        sent.append((event_id, operator, note))
        return "110-REF-%d" % event_id

    center = await Console(tmp_path, dispatch=dispatch).start()
    olga = await center.client("olga")
    try:
        alarm = await center.panel_alarm(120)
        assert (await olga.post("api/alarms/%d/dispatch" % alarm, {"note": "x"}))[0] == 409   # take it first
        await olga.post("api/alarms/%d/take" % alarm)
        status, body = await olga.post("api/alarms/%d/dispatch" % alarm, {"note": "fail"})
        assert status == 502 and not body["ok"] and "unreachable" in body["result"]
        status, body = await olga.post("api/alarms/%d/dispatch" % alarm, {"note": "armed robbery in progress"})
        assert status == 200 and body["result"] == "110-REF-%d" % alarm
        assert sent == [(alarm, "olga", "armed robbery in progress")]
        _, queue = await olga.get("api/queue")
        item = queue["items"][0]                                  # dispatching does not dispose of it
        assert item["id"] == alarm and [d["ok"] for d in item["dispatches"]] == [False, True]
    finally:
        await olga.close()
        await center.stop()


async def test_dispatch_without_a_hook_is_refused_not_faked(center, clients):
    olga = await clients("olga")
    alarm = await center.panel_alarm(120)
    await olga.post("api/alarms/%d/take" % alarm)
    status, body = await olga.post("api/alarms/%d/dispatch" % alarm, {"note": ""})
    assert status == 503 and "not configured" in body["error"]


async def test_unhandled_alarms_escalate_after_the_configured_time(tmp_path):
    clock = FakeClock()
    center = await Console(tmp_path, settings(clock=clock, escalate_after_seconds=120)).start()
    sam = await center.client("sam")
    try:
        old = await center.submit_alarm(120, received_at_ms=int(clock() * 1000))
        clock.advance(100)
        young = await center.submit_alarm(110, received_at_ms=int(clock() * 1000))
        assert await center.console.escalate_due() == []
        clock.advance(30)
        assert await center.console.escalate_due() == [old]
        assert await center.console.escalate_due() == []          # once per alarm
        _, body = await sam.get("api/queue")
        escalated = {i["id"]: i["escalated_at_ms"] for i in body["items"]}
        assert escalated[old] == int(clock() * 1000) and escalated[young] is None
    finally:
        await sam.close()
        await center.stop()


async def test_live_feed_pushes_new_alarms_and_disposals(center, clients):
    olga = await clients("olga")
    async with olga.http.ws_connect(olga.base + "api/live") as ws:
        alarm = await center.panel_alarm(120)
        messages = []
        while not any(m["type"] == "alarm" and m["item"]["id"] == alarm for m in messages):
            messages.append(json.loads((await asyncio.wait_for(ws.receive(), 10)).data))
        await olga.post("api/alarms/%d/take" % alarm)
        await olga.post("api/alarms/%d/dispose" % alarm, {"outcome": "cancelled", "note": "owner's code"})
        while not any(m["type"] == "alarm-disposed" for m in messages):
            messages.append(json.loads((await asyncio.wait_for(ws.receive(), 10)).data))
    kinds = [(m["type"], m["item"].get("assignee")) for m in messages if m["item"].get("id") == alarm]
    assert kinds == [("alarm", None), ("alarm", "olga"), ("alarm-disposed", None)]


async def test_live_feed_refuses_another_origin(center, clients):
    olga = await clients("olga")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await olga.http.ws_connect(olga.base + "api/live", origin="http://evil.example")
    assert refused.value.status == 403


async def test_each_role_gets_only_the_pushes_it_may_read(center, clients):
    ian, audrey = await clients("ian"), await clients("audrey")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await audrey.http.ws_connect(audrey.base + "api/live")         # the auditor reads the register only
    assert refused.value.status == 403
    async with ian.http.ws_connect(ian.base + "api/live") as ws:     # the installer: devices, not alarms
        await center.panel_alarm(120)
        message = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        assert message["type"] == "device"
        [client] = center.console.hub.clients
        assert client.outbox.empty()
