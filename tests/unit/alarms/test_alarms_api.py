"""/api/v1/alarms by role: the list (unresolved, most severe, newest first; filters), one alarm with where and what,
staff-entered alarms, and the steps of an alarm's life over HTTP; errors name the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from callcenter.alarms.intake import ALARM_INTAKE
from callcenter.alarms.models import Alarm, AlarmSource
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.alarms.factory import SKEW, Household, household, message, raw


async def _device_alarm(api: Api, home: Household, alarm_type: str, **fields: Any) -> int:
    receipt = await api.client.app[ALARM_INTAKE].receive_message(home.device_id, raw(message(
        alarm_type=alarm_type, **fields)), AlarmSource.MQTT)
    return receipt.alarm_id


async def _ok(api: Api, method: str, path: str, role: Role = Role.AGENT, **kwargs: Any) -> Any:
    status, body = await api.request(method, path, role=role, **kwargs)
    assert 200 <= status < 300, (method, path, status, body)
    return body


async def test_the_list_puts_open_severe_and_new_first_and_filters(api: Api) -> None:
    home = await household(api.db)
    neighbour = await household(api.db, name="孙桂芬")
    vital = await _device_alarm(api, home, "vital_sign", extra={"reading": "blood_pressure"})
    leak = await _device_alarm(api, home, "water_leak")
    old_fall = await _device_alarm(api, neighbour, "fall")
    new_fall = await _device_alarm(api, home, "fall")
    await _ok(api, "POST", f"/api/v1/alarms/{old_fall}/take", json={"version": 1})
    await _ok(api, "POST", f"/api/v1/alarms/{old_fall}/resolve", json={"version": 2, "outcome": "false"})
    page = await _ok(api, "GET", "/api/v1/alarms", role=Role.AUDITOR)
    assert [item["id"] for item in page["items"]] == [new_fall, vital, leak, old_fall] and page["total"] == 4
    first = page["items"][0]
    assert (first["type"], first["severity"], first["state"], first["source"], first["elder_id"]) == (
        "fall", "critical", "new", "mqtt", home.elder_id)
    assert first["number"].startswith("AL-") and first["work_order_id"] and first["queue_priority"] == 11
    assert "location" not in first and "payload" not in first  # read one alarm at a time

    async def ids(**params: str) -> list[int]:
        return [item["id"] for item in (await _ok(api, "GET", "/api/v1/alarms", params=params))["items"]]

    assert await ids(state="resolved") == [old_fall]
    assert await ids(type="fall") == [new_fall, old_fall]
    assert await ids(elder_id=str(neighbour.elder_id)) == [old_fall]
    assert await ids(state="new", type="water_leak") == [leak]
    status, body = await api.request("GET", "/api/v1/alarms", role=Role.AGENT, params={"state": "asleep"})
    assert status == 422 and body["error"]["field"] == "state"
    assert (await api.request("GET", "/api/v1/alarms", role=Role.PROVIDER))[0] == 403


async def test_one_alarm_names_the_elder_the_device_where_and_what(api: Api) -> None:
    home = await household(api.db)
    alarm_id = await _device_alarm(api, home, "vital_sign", severity="medium", extra={"systolic": 192},
                                   position={"lat": 39.9, "lon": 116.4, "accuracy_m": 30, "source": "lbs"})
    alarm = await _ok(api, "GET", f"/api/v1/alarms/{alarm_id}", role=Role.AUDITOR)
    assert (alarm["elder_id"], alarm["elder_name"], alarm["elder_address"], alarm["device_id"], alarm["device_kind"],
            alarm["severity"], alarm["payload"], alarm["queue_priority"]) == (
        home.elder_id, "赵淑珍", "西城区月坛北街 8 号", home.device_id, "watch", "medium", {"systolic": 192}, 33)
    assert alarm["location"] == {"latitude": 39.9, "longitude": 116.4, "accuracy_m": 30.0, "source": "lbs"}
    assert alarm["device_serial_number"].startswith("SN-") and alarm["work_order_number"].startswith("WO-")
    order = await _ok(api, "GET", f"/api/v1/work-orders/{alarm['work_order_id']}")
    assert (order["kind"], order["priority"], order["title"]) == ("emergency", 3, "体征异常报警")
    status, body = await api.request("GET", "/api/v1/alarms/999999", role=Role.AGENT)
    assert status == 404 and body["error"]["field"] == "id"


async def test_an_alarm_with_its_elder_is_an_audited_read_of_the_elders_file(api: Api) -> None:
    """Its name, address, position and the device's words are part of the elder's file: the detail, and the
    answer to each step, leave an entry naming the fields and the alarm's order as the grounds, never a value."""
    home = await household(api.db)
    alarm_id = await _device_alarm(api, home, "fall", extra={"note": "卧室"},
                                   position={"lat": 39.9, "lon": 116.4, "accuracy_m": 30, "source": "gps"})
    listed = await _ok(api, "GET", "/api/v1/alarms", role=Role.AUDITOR)  # the list shows no part of the file
    assert listed["total"] == 1 and "elder_name" not in listed["items"][0]

    async def reads() -> list[dict[str, Any]]:
        page = await _ok(api, "GET", "/api/v1/audit", role=Role.AUDITOR, params={"action": "elder.alarm"})
        return list(page["items"])

    assert await reads() == []
    alarm = await _ok(api, "GET", f"/api/v1/alarms/{alarm_id}", role=Role.AUDITOR)
    [entry] = await reads()
    assert (entry["target_type"], entry["target_id"]) == ("elder", str(home.elder_id))
    assert entry["actor_label"].startswith("auditor")
    assert entry["details"] == {"justified_by": "order", "order_id": alarm["work_order_id"], "alarm_id": alarm_id,
                                "fields": ["elder_address", "elder_name", "location", "payload"]}
    assert "赵淑珍" not in str(entry) and "月坛" not in str(entry) and "39.9" not in str(entry)
    await _ok(api, "POST", f"/api/v1/alarms/{alarm_id}/take", json={"version": 1})  # its answer is a read too
    assert len(await reads()) == 2


async def test_staff_enter_an_alarm_by_hand(api: Api) -> None:
    home = await household(api.db)
    other = await household(api.db, name="周兰英")
    created = await _ok(api, "POST", "/api/v1/alarms", json={
        "type": "fall", "elder_id": home.elder_id, "device_id": home.device_id, "note": "女儿来电：母亲在浴室摔倒",
        "location": {"latitude": 39.91, "longitude": 116.36, "source": "manual"}})
    assert (created["source"], created["state"], created["severity"], created["payload"], created["device_id"]) == (
        "manual", "new", "critical", {"note": "女儿来电：母亲在浴室摔倒"}, home.device_id)
    assert created["work_order_id"] and created["device_message_id"] is None
    now = dt.datetime.now(dt.UTC)
    for body, field in (
            ({"type": "fall", "elder_id": 999999}, "elder_id"),
            ({"type": "fall", "elder_id": home.elder_id, "device_id": other.device_id}, "device_id"),
            ({"type": "fall", "elder_id": home.elder_id, "device_id": 999999}, "device_id"),
            ({"type": "fall", "elder_id": home.elder_id,
              "occurred_at": (now + SKEW + dt.timedelta(minutes=5)).isoformat()}, "occurred_at"),
            ({"elder_id": home.elder_id}, "type"),
            ({"type": "fall", "elder_id": "1"}, "elder_id"),
            ({"type": "fall", "elder_id": home.elder_id, "location": {"latitude": 39.9}}, "location.longitude"),
            ({"type": "fall", "elder_id": home.elder_id, "note": " "}, "note"),
    ):
        status, answer = await api.request("POST", "/api/v1/alarms", role=Role.AGENT, json=body)
        assert (status, answer["error"]["field"]) == (422, field), (body, answer)
    assert (await api.request("POST", "/api/v1/alarms", role=Role.AUDITOR,
                              json={"type": "fall", "elder_id": home.elder_id}))[0] == 403
    page = await _ok(api, "GET", "/api/v1/alarms")
    assert page["total"] == 1  # the refused ones left nothing


async def test_take_respond_resolve_over_http(api: Api) -> None:
    home = await household(api.db)
    alarm_id = await _device_alarm(api, home, "smoke")
    first, second = await api.user(Role.AGENT, username="agent-first"), await api.user(Role.AGENT,
                                                                                       username="agent-second")
    first_token, second_token = await api.token_for(first), await api.token_for(second)
    assert (await api.request("POST", f"/api/v1/alarms/{alarm_id}/take", role=Role.AUDITOR,
                              json={"version": 1}))[0] == 403
    taken = await _ok(api, "POST", f"/api/v1/alarms/{alarm_id}/take", token=first_token, json={"version": 1})
    assert (taken["state"], taken["taken_by"], taken["version"]) == ("taken", "agent-first", 2)
    status, body = await api.request("POST", f"/api/v1/alarms/{alarm_id}/take", token=second_token,
                                     json={"version": 1})
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "illegal_transition", "state")
    assert "agent-first" in body["error"]["message"]
    status, body = await api.request("POST", f"/api/v1/alarms/{alarm_id}/respond", token=second_token,
                                     json={"version": 2})
    assert (status, body["error"]["code"]) == (409, "taken_by_another")
    status, body = await api.request("POST", f"/api/v1/alarms/{alarm_id}/respond", token=first_token,
                                     json={"version": 1})
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "stale_version", "version")
    await _ok(api, "POST", f"/api/v1/alarms/{alarm_id}/respond", token=first_token, json={"version": 2})
    status, body = await api.request("POST", f"/api/v1/alarms/{alarm_id}/resolve", token=first_token,
                                     json={"version": 3, "outcome": "maybe"})
    assert (status, body["error"]["field"]) == (422, "outcome")
    status, body = await api.request("POST", f"/api/v1/alarms/{alarm_id}/resolve", token=first_token,
                                     json={"outcome": "genuine"})
    assert (status, body["error"]["field"]) == (422, "version")
    resolved = await _ok(api, "POST", f"/api/v1/alarms/{alarm_id}/resolve", token=first_token,
                         json={"version": 3, "outcome": "genuine", "note": "厨房起火，已报 119，老人已转移"})
    assert (resolved["state"], resolved["outcome"], resolved["outcome_note"], resolved["resolved_by"],
            resolved["version"]) == ("resolved", "genuine", "厨房起火，已报 119，老人已转移", "agent-first", 4)
    order = await _ok(api, "GET", f"/api/v1/work-orders/{resolved['work_order_id']}")
    assert [event["action"] for event in order["events"]] == ["created", "alarm_taken", "alarm_responding",
                                                              "alarm_resolved"]
    audit = await _ok(api, "GET", "/api/v1/audit", role=Role.AUDITOR, params={"target_type": "alarm"})
    assert sorted(entry["action"] for entry in audit["items"]) == ["alarm.raise", "alarm.resolve", "alarm.respond",
                                                                   "alarm.take"]


async def test_answer_times_per_type_against_the_tec_targets(api: Api) -> None:
    home = await household(api.db)
    fall = await _device_alarm(api, home, "fall")
    smoke = await _device_alarm(api, home, "smoke")
    await _device_alarm(api, home, "water_leak")  # still ringing: not judged against any target yet
    await _ok(api, "POST", f"/api/v1/alarms/{fall}/take", json={"version": 1})
    async with api.db.transaction() as session:  # the smoke alarm was taken four minutes after it came
        row = await session.get(Alarm, smoke)
        assert row is not None
        row.received_at -= dt.timedelta(minutes=4)
        row.taken_at = row.received_at + dt.timedelta(minutes=4)
    report = await _ok(api, "GET", "/api/v1/alarms/answer-times", role=Role.SUPERVISOR,
                       params={"from": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()})
    by_type = {line["type"]: line for line in report["types"]}
    assert list(by_type) == ["fall", "smoke", "water_leak"]  # life at risk first
    assert by_type["fall"]["answered"] == 1 and by_type["fall"]["longest_seconds"] < 60
    assert [(share["within_seconds"], share["target_percent"], share["within"], share["judged"], share["percent"],
             share["met"]) for share in by_type["fall"]["targets"]] == [(60, 97.5, 1, 1, 100.0, True),
                                                                        (180, 99.0, 1, 1, 100.0, True)]
    assert [(share["within"], share["judged"], share["met"]) for share in by_type["smoke"]["targets"]] == [
        (0, 1, False), (0, 1, False)]
    assert [(share["judged"], share["percent"], share["met"]) for share in by_type["water_leak"]["targets"]] == [
        (0, None, None), (0, None, None)]
    total = report["total"]
    assert (total["type"], total["alarms"], total["answered"]) == (None, 3, 2)
    assert [(share["within"], share["judged"], share["percent"]) for share in total["targets"]] == [
        (1, 2, 50.0), (1, 2, 50.0)]
    assert (await api.request("GET", "/api/v1/alarms/answer-times", role=Role.AUDITOR))[0] == 200
    assert (await api.request("GET", "/api/v1/alarms/answer-times", role=Role.AGENT))[0] == 403
    status, body = await api.request("GET", "/api/v1/alarms/answer-times", role=Role.SUPERVISOR,
                                     params={"from": "2026-12-01T00:00:00+08:00", "to": "2026-11-01T00:00:00+08:00"})
    assert (status, body["error"]["field"]) == (422, "from")
    status, body = await api.request("GET", "/api/v1/alarms/answer-times", role=Role.SUPERVISOR,
                                     params={"to": "yesterday"})
    assert (status, body["error"]["field"]) == (422, "to")
