"""The care calls' REST API: schedules written and refused (field named, nothing stored), audited; "enable for all
living alone" (supervisors, idempotent); a day's list with what is due; exceptions dealt with once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.care_calls.http import CARE_CALLS
from callcenter.care_calls.models import CareOutcome, CareRecord, CareSchedule
from callcenter.elders.models import LivingSituation
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.care_calls.helpers import elder


async def test_schedules_are_written_checked_and_audited(api: Api) -> None:
    elder_id = await elder(api.db)
    base = f"/api/v1/elders/{elder_id}/care-schedules"
    today = api.client.app[CARE_CALLS].today()
    refused = [({"window_start": "25:00"}, "window_start"), ({"window_end": "08:00"}, "window_end"),
               ({"window_start": "22:00", "window_end": "23:00"}, "window_start"),
               ({"starts_on": (today - dt.timedelta(days=2)).isoformat()}, "starts_on"),
               ({"recurrence": "weekly", "weekdays": []}, "weekdays"),
               ({"recurrence": "weekly", "weekdays": [9]}, "weekdays.0"),
               ({"recurrence": "custom", "dates": [(today - dt.timedelta(days=3)).isoformat()]}, "dates"),
               ({"recurrence": "birthday"}, "birth_date"), ({"recurrence": "hourly"}, "recurrence")]
    for change, field in refused:
        body = {"recurrence": "daily", "window_start": "09:00", "window_end": "11:00", **change}
        status, answer = await api.request("POST", base, role=Role.AGENT, json=body)
        assert status == 422 and answer["error"]["field"] == field, (change, answer)
    assert await api.count(CareSchedule) == 0
    status, missing = await api.request("POST", "/api/v1/elders/999999/care-schedules", role=Role.AGENT,
                                        json={"recurrence": "daily", "window_start": "09:00", "window_end": "11:00"})
    assert status == 404, missing

    status, created = await api.request("POST", base, role=Role.AGENT, json={
        "recurrence": "weekly", "weekdays": [5, 1, 1], "window_start": "09:30", "window_end": "10:30"})
    assert status == 201, created
    assert (created["weekdays"], created["starts_on"], created["active"]) == ([1, 5], today.isoformat(), True)
    status, festivals = await api.request("POST", base, role=Role.SUPERVISOR, json={
        "recurrence": "festivals", "window_start": "10:00", "window_end": "11:00"})
    assert status == 201 and festivals["festivals"] == [
        "spring_festival", "lantern", "dragon_boat", "mid_autumn", "double_ninth"], festivals
    status, _ = await api.request("POST", base, role=Role.AUDITOR, json={
        "recurrence": "daily", "window_start": "09:00", "window_end": "11:00"})
    assert status == 403
    status, paused = await api.request("PATCH", f"{base}/{created['id']}", role=Role.AGENT, json={"active": False})
    assert status == 200 and paused["active"] is False and paused["weekdays"] == [1, 5], paused
    status, bad = await api.request("PATCH", f"{base}/{created['id']}", role=Role.AGENT,
                                    json={"window_end": "09:00"})
    assert status == 422 and bad["error"]["field"] == "window_end", bad
    status, listed = await api.request("GET", base, role=Role.AUDITOR)
    assert status == 200 and [s["id"] for s in listed["items"]] == [created["id"], festivals["id"]]
    status, removed = await api.request("DELETE", f"{base}/{festivals['id']}", role=Role.AGENT)
    assert status == 200 and removed["recurrence"] == "festivals", removed
    status, gone = await api.request("PATCH", f"{base}/{festivals['id']}", role=Role.AGENT, json={"active": True})
    assert status == 404 and gone["error"]["field"] == "schedule_id", gone
    async with api.db.transaction(read_only=True) as session:
        actions = [a.action for a in (await session.scalars(select(AuditEntry).where(
            AuditEntry.action.like("care_schedule.%")).order_by(AuditEntry.id))).all()]
    assert actions == ["care_schedule.created", "care_schedule.created", "care_schedule.updated",
                       "care_schedule.deleted"]


async def test_enable_for_all_living_alone_is_a_supervisors_and_makes_each_schedule_once(api: Api) -> None:
    alone = await elder(api.db, phone="13800138001")
    empty_nest = await elder(api.db, phone="13800138002", living=LivingSituation.EMPTY_NEST)
    await elder(api.db, phone="13800138003", living=LivingSituation.WITH_FAMILY)
    no_phone = await elder(api.db, phone=None)
    status, _ = await api.request("POST", "/api/v1/care-schedules/enable-living-alone", role=Role.AGENT, json={})
    assert status == 403
    status, bad = await api.request("POST", "/api/v1/care-schedules/enable-living-alone", role=Role.SUPERVISOR,
                                    json={"window_start": "22:00", "window_end": "23:00"})
    assert status == 422 and bad["error"]["field"] == "window_start", bad
    status, done = await api.request("POST", "/api/v1/care-schedules/enable-living-alone", role=Role.SUPERVISOR,
                                     json={"window_start": "08:30", "window_end": "10:00"})
    assert status == 200 and (done["created"], done["without_phone"]) == (2, [no_phone]), done
    status, again = await api.request("POST", "/api/v1/care-schedules/enable-living-alone", role=Role.SUPERVISOR,
                                      json={})
    assert status == 200 and again["created"] == 0, again
    async with api.db.transaction(read_only=True) as session:
        rows = (await session.scalars(select(CareSchedule).order_by(CareSchedule.elder_id))).all()
    assert [(s.elder_id, s.recurrence.value, s.window_start, s.automatic) for s in rows] == [
        (alone, "daily", "08:30", True), (empty_nest, "daily", "08:30", True)]


async def test_the_days_list_and_an_exception_dealt_with_once(api: Api) -> None:
    elder_id = await elder(api.db)
    status, schedule = await api.request("POST", f"/api/v1/elders/{elder_id}/care-schedules", role=Role.AGENT,
                                         json={"recurrence": "daily", "window_start": "09:00", "window_end": "11:00"})
    assert status == 201, schedule
    tomorrow = api.client.app[CARE_CALLS].today() + dt.timedelta(days=1)
    status, day = await api.request("GET", f"/api/v1/care-calls?date={tomorrow}", role=Role.AGENT)
    assert status == 200, day
    assert [(i["record_id"], i["elder_name"], i["outcome"], i["exception"]) for i in day["items"]] == [
        (None, "王阿姨", "due", False)]
    async with api.db.transaction() as session:
        care = CareRecord(elder_id=elder_id, schedule_id=schedule["id"], local_date=tomorrow, kind="check_in",
                          window_start="09:00", window_end="11:00", outcome=CareOutcome.CALL_BACK, attempts=1,
                          call_ids=[], callback_call_ids=[], details={})
        well = CareRecord(elder_id=elder_id, schedule_id=None, local_date=tomorrow, kind="check_in",
                          window_start="09:00", window_end="11:00", outcome=CareOutcome.WELL, attempts=1,
                          call_ids=[], callback_call_ids=[], details={})
        session.add_all([care, well])
        await session.flush()
        care_id, well_id = care.id, well.id
    status, day = await api.request("GET", f"/api/v1/care-calls?date={tomorrow}", role=Role.SUPERVISOR)
    assert [(i["record_id"], i["outcome"], i["exception"]) for i in day["items"]] == [
        (care_id, "call_back", True), (well_id, "well", False)]
    assert day["counts"] == {"call_back": 1, "well": 1}
    status, bad = await api.request("GET", "/api/v1/care-calls?date=2026-02-30", role=Role.AGENT)
    assert status == 422 and bad["error"]["field"] == "date", bad

    status, open_ = await api.request("GET", "/api/v1/care-records?open=true", role=Role.AUDITOR)
    assert status == 200 and [r["id"] for r in open_["items"]] == [care_id], open_
    status, _ = await api.request("POST", f"/api/v1/care-records/{care_id}/handle", role=Role.AUDITOR,
                                  json={"note": "x"})
    assert status == 403
    status, handled = await api.request("POST", f"/api/v1/care-records/{care_id}/handle", role=Role.AGENT,
                                        json={"note": "已回电，老人想预约助浴"})
    assert status == 200 and handled["handled_by"] and handled["handling_note"] == "已回电，老人想预约助浴", handled
    status, twice = await api.request("POST", f"/api/v1/care-records/{care_id}/handle", role=Role.AGENT,
                                      json={"note": "again"})
    assert status == 409 and twice["error"]["field"] == "handled_at", twice
    status, nothing = await api.request("POST", f"/api/v1/care-records/{well_id}/handle", role=Role.AGENT,
                                        json={"note": "x"})
    assert status == 409 and nothing["error"]["field"] == "outcome", nothing
    status, day = await api.request("GET", f"/api/v1/care-calls?date={tomorrow}", role=Role.AGENT)
    assert [i["exception"] for i in day["items"]] == [False, False]
    # The one-click call: an account without a phone extension is told so, and nothing is recorded.
    status, refused = await api.request("POST", f"/api/v1/care-records/{care_id}/call", role=Role.AGENT)
    assert status == 409 and refused["error"]["field"] == "extension", refused
    status, record = await api.request("GET", f"/api/v1/care-records/{care_id}", role=Role.AGENT)
    assert status == 200 and record["callback_call_ids"] == [], record
