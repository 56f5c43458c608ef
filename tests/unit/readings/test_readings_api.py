"""/api/v1/elders/{id}/readings and /thresholds by role: hand entry (source manual) raising a vital-sign alarm, the
trend over a time range, reads audited like the file's, an elder's own limits set on the doctor's instruction,
and 422s naming the field with nothing stored."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from callcenter.alarms.models import Alarm, AlarmSource
from callcenter.audit.models import AuditEntry
from callcenter.readings.intake import READING_INTAKE
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.alarms.factory import household
from tests.unit.readings.factory import add_doctor, counts


async def _ok(api: Api, method: str, path: str, role: Role = Role.AGENT, **kwargs: Any) -> Any:
    status, body = await api.request(method, path, role=role, **kwargs)
    assert 200 <= status < 300, (method, path, status, body)
    return body


def _at(hours_ago: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)).isoformat()


async def test_a_reading_entered_by_hand_is_stored_and_raises_its_alarm(api: Api) -> None:
    home = await household(api.db)
    path = f"/api/v1/elders/{home.elder_id}/readings"
    woken: list[int] = []
    api.client.app[READING_INTAKE].on_alarm(lambda: woken.append(1))  # as the alarm distributor listens
    normal = await _ok(api, "POST", path, json={"type": "heart_rate", "measured_at": _at(2), "values": {"bpm": 74}})
    assert (normal["source"], normal["values"], normal["alarm_id"]) == ("manual", {"bpm": 74}, None)
    assert woken == []
    assert normal["entered_by"].startswith("agent-")
    high = await _ok(api, "POST", path, role=Role.SUPERVISOR, json={
        "type": "blood_pressure", "measured_at": _at(1), "values": {"systolic_mmhg": 192, "diastolic_mmhg": 104},
        "device_id": home.device_id, "note": "家属电话报告"})
    assert high["alarm_number"].startswith("AL-") and high["alarm_severity"] == "high" and high["alarm_id"]
    assert woken == [1]  # offered to an agent at once, not at the distributor's next sweep
    async with api.db.transaction(read_only=True) as session:
        alarm = await session.get(Alarm, high["alarm_id"])
        assert alarm is not None and alarm.source is AlarmSource.MANUAL and alarm.work_order_id is not None
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "elder.reading.enter")))
        assert len(entries) == 2 and "192" not in str([entry.details for entry in entries])

    status, body = await api.request("DELETE", f"/api/v1/elders/{home.elder_id}", role=Role.SUPERVISOR)
    assert status == 409 and "health reading" in body["error"]["message"]  # a file with readings is kept
    for role in (Role.PROVIDER, Role.AUDITOR):  # auditors read, they do not enter
        status, _ = await api.request("POST", path, role=role, json={
            "type": "heart_rate", "measured_at": _at(1), "values": {"bpm": 70}})
        assert status == 403


async def test_bad_entries_are_422_naming_the_field_and_nothing_is_stored(api: Api) -> None:
    home = await household(api.db)
    other = await household(api.db, name="孙桂芬")
    path = f"/api/v1/elders/{home.elder_id}/readings"
    before = await counts(api.db)
    cases = [
        ({"type": "blood_pressure", "measured_at": _at(1), "values": {"systolic_mmhg": 250}}, "values.diastolic_mmhg"),
        ({"type": "blood_pressure", "measured_at": _at(1), "values": {"systolic_mmhg": 250, "diastolic_mmhg": 260}},
         "values.diastolic_mmhg"),
        ({"type": "spo2", "measured_at": _at(1), "values": {"percent": "85"}}, "values.percent"),
        ({"type": "glucose", "measured_at": _at(1), "values": {"mmol_l": 2.0, "context": "tea"}}, "values.context"),
        ({"type": "mood", "measured_at": _at(1), "values": {}}, "type"),
        ({"type": "spo2", "measured_at": _at(-2), "values": {"percent": 80}}, "measured_at"),
        ({"type": "spo2", "measured_at": "2026-03-01T08:00:00", "values": {"percent": 80}}, "measured_at"),
        ({"type": "spo2", "measured_at": _at(1), "values": {"percent": 80}, "device_id": other.device_id},
         "device_id"),
        ({"type": "spo2", "measured_at": _at(1), "values": {"percent": 80}, "mood": 1}, "mood"),
    ]
    for body, field in cases:
        status, answer = await api.request("POST", path, role=Role.AGENT, json=body)
        assert (status, answer["error"]["field"]) == (422, field), (body, answer)
    assert await counts(api.db) == before
    status, _ = await api.request("POST", "/api/v1/elders/999999/readings", role=Role.AGENT,
                                  json={"type": "spo2", "measured_at": _at(1), "values": {"percent": 97}})
    assert status == 404


async def test_the_trend_over_a_time_range_is_read_by_role_and_audited(api: Api) -> None:
    home = await household(api.db)
    path = f"/api/v1/elders/{home.elder_id}/readings"
    for hours, bpm in ((100 * 24, 60), (30, 70), (20, 75), (10, 80)):
        await _ok(api, "POST", path, json={"type": "heart_rate", "measured_at": _at(hours), "values": {"bpm": bpm}})
    await _ok(api, "POST", path, json={"type": "weight", "measured_at": _at(5), "values": {"kg": 60.5}})
    recent = await _ok(api, "GET", path, role=Role.AUDITOR, params={"type": "heart_rate"})
    assert [item["values"]["bpm"] for item in recent["items"]] == [80, 75, 70]  # 90 days, newest first
    window = await _ok(api, "GET", path, params={"from": _at(25), "to": _at(15)})
    assert [item["values"] for item in window["items"]] == [{"bpm": 75}]
    everything = await _ok(api, "GET", path, role=Role.SUPERVISOR, params={"from": _at(200 * 24)})
    assert len(everything["items"]) == 5
    status, body = await api.request("GET", path, role=Role.AGENT, params={"from": _at(1), "to": _at(2)})
    assert (status, body["error"]["field"]) == (422, "from")
    status, body = await api.request("GET", path, role=Role.AGENT, params={"type": "mood"})
    assert (status, body["error"]["field"]) == (422, "type")
    status, body = await api.request("GET", path, role=Role.AGENT, params={"order_id": "999999"})
    assert (status, body["error"]["field"]) == (422, "order_id")
    assert (await api.request("GET", path, role=Role.PROVIDER))[0] == 403
    async with api.db.transaction(read_only=True) as session:
        reads = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "elder.readings.read")))
    assert len(reads) == 3 and {entry.target_id for entry in reads} == {str(home.elder_id)}
    assert reads[0].details["justified_by"] == "none" and reads[0].details["count"] == 3


async def test_an_elders_own_limits_are_set_on_a_doctors_instruction_and_beat_the_default(api: Api) -> None:
    home = await household(api.db)
    doctor = await add_doctor(api.db, home.elder_id, name="王建国")
    path = f"/api/v1/elders/{home.elder_id}/thresholds"
    defaults = await _ok(api, "GET", path, role=Role.AUDITOR)
    systolic = next(item for item in defaults["items"] if item["measure"] == "systolic_mmhg")
    assert (systolic["high_high"], systolic["critical_high"], systolic["source"]) == (180, 220, "default")
    body = {"measures": {"systolic_mmhg": {"high_high": 160, "critical_high": 200, "target_high": 130}},
            "doctor_contact_id": doctor, "note": "脑卒中后，控制更严"}
    for role in (Role.AGENT, Role.AUDITOR, Role.PROVIDER):  # a supervisor (or an admin) sets them
        assert (await api.request("PUT", f"{path}/blood_pressure", role=role, json=body))[0] == 403
    answer = await _ok(api, "PUT", f"{path}/blood_pressure", role=Role.SUPERVISOR, json=body)
    mine = {item["measure"]: item for item in answer["items"]}
    assert (mine["systolic_mmhg"]["high_high"], mine["systolic_mmhg"]["source"],
            mine["systolic_mmhg"]["doctor_name"]) == (160, "elder", "王建国")
    assert mine["systolic_mmhg"]["set_by"] and mine["systolic_mmhg"]["set_at"]
    assert mine["diastolic_mmhg"]["source"] == "default"
    created = await _ok(api, "POST", f"/api/v1/elders/{home.elder_id}/readings", json={
        "type": "blood_pressure", "measured_at": _at(1), "values": {"systolic_mmhg": 165, "diastolic_mmhg": 88}})
    assert created["alarm_severity"] == "high"  # the default would raise nothing

    bad = [
        ({**body, "doctor_contact_id": 999999}, "doctor_contact_id"),
        ({**body, "measures": {"bpm": {"high_high": 120}}}, "measures.bpm"),
        ({**body, "measures": {"systolic_mmhg": {}}}, "measures.systolic_mmhg"),
        ({**body, "measures": {"systolic_mmhg": {"high_high": 200, "critical_high": 190}}},
         "measures.systolic_mmhg.critical_high"),
        ({**body, "measures": {"systolic_mmhg": {"high_high": "160"}}}, "measures.systolic_mmhg.high_high"),
        ({key: value for key, value in body.items() if key != "doctor_contact_id"}, "doctor_contact_id"),
    ]
    for request_body, field in bad:
        status, error = await api.request("PUT", f"{path}/blood_pressure", role=Role.SUPERVISOR, json=request_body)
        assert (status, error["error"]["field"]) == (422, field), (request_body, error)
    assert (await api.request("PUT", f"{path}/mood", role=Role.SUPERVISOR, json=body))[0] == 404

    cleared = await _ok(api, "DELETE", f"{path}/blood_pressure", role=Role.SUPERVISOR)
    assert {item["source"] for item in cleared["items"]} == {"default"}
    async with api.db.transaction(read_only=True) as session:
        actions = [entry.action for entry in await session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("elder.thresholds.%")).order_by(AuditEntry.id))]
    assert actions == ["elder.thresholds.read", "elder.thresholds.set", "elder.thresholds.clear"]
