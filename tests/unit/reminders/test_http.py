"""The reminders' REST API: medication reminders written and refused (field named, nothing stored) by those who
may write the health record, the medicine masked for auditors, every read of them audited with its grounds, every
write audited; the reminder log of a local day."""

from __future__ import annotations

from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.reminders.http import REMINDERS
from callcenter.reminders.models import MedicationReminder, ReminderKind, ReminderOutcome
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.reminders.helpers import elder, local_now


async def _actions(api: Api, prefix: str) -> list[AuditEntry]:
    async with api.db.transaction(read_only=True) as session:
        return list((await session.scalars(select(AuditEntry).where(AuditEntry.action.startswith(prefix))
                                           .order_by(AuditEntry.id))).all())


async def test_medication_reminders_are_written_checked_masked_and_audited(api: Api) -> None:
    elder_id = await elder(api.db)
    no_phone = await elder(api.db, phone=None, name="李伯")
    base = f"/api/v1/elders/{elder_id}/medication-reminders"
    good = {"medication": "氨氯地平片 5mg", "times": ["08:00"]}
    refused = [({"times": ["8点"]}, "times"), ({"times": ["07:60"]}, "times"),
               ({"days": "weekdays"}, "weekdays"), ({"channel": "fax"}, "channel"),
               ({"channel": "both", "sms_label": "早饭后半小时吃的那两种降压药" * 4}, "sms_label"),
               ({"medication": ""}, "medication")]
    for change, field in refused:
        status, answer = await api.request("POST", base, role=Role.AGENT, json={**good, **change})
        assert status == 422 and answer["error"]["field"] == field, (change, answer)
    status, answer = await api.request("POST", f"/api/v1/elders/{no_phone}/medication-reminders", role=Role.AGENT,
                                       json=good)
    assert status == 422 and answer["error"]["field"] == "phone", answer
    assert await api.count(MedicationReminder) == 0
    status, _ = await api.request("POST", base, role=Role.AUDITOR, json=good)
    assert status == 403
    status, _ = await api.request("POST", "/api/v1/elders/999999/medication-reminders", role=Role.AGENT, json=good)
    assert status == 404

    status, created = await api.request("POST", base, role=Role.AGENT, json={
        **good, "times": ["20:00", "08:00"], "days": "weekdays", "weekdays": [5, 1], "channel": "both"})
    assert status == 201, created
    assert (created["times"], created["weekdays"], created["channel"]) == (["08:00", "20:00"], [1, 5], "both")
    status, changed = await api.request("PATCH", f"{base}/{created['id']}", role=Role.SUPERVISOR,
                                        json={"days": "daily", "active": False})
    assert status == 200 and changed["weekdays"] == [] and changed["active"] is False, changed
    status, bad = await api.request("PATCH", f"{base}/{created['id']}", role=Role.AGENT, json={"times": ["25:00"]})
    assert status == 422 and bad["error"]["field"] == "times", bad

    status, seen = await api.request("GET", base, role=Role.AGENT)
    assert status == 200 and seen["items"][0]["medication"] == "氨氯地平片 5mg", seen
    status, masked = await api.request("GET", base, role=Role.AUDITOR)
    assert status == 200 and masked["items"][0]["medication"] is None, masked
    assert masked["items"][0]["masked_fields"] == ["medication", "sms_label"]
    reads = await _actions(api, "health.medication_reminders.read")
    assert [(r.target_id, r.details["content_shown"], r.details["rows"]) for r in reads] == [
        (str(elder_id), True, 1), (str(elder_id), False, 1)]
    status, removed = await api.request("DELETE", f"{base}/{created['id']}", role=Role.AGENT)
    assert status == 200 and removed["id"] == created["id"]
    status, gone = await api.request("DELETE", f"{base}/{created['id']}", role=Role.AGENT)
    assert status == 404 and gone["error"]["field"] == "reminder_id", gone
    writes = await _actions(api, "medication_reminder.")
    assert [w.action for w in writes] == ["medication_reminder.created", "medication_reminder.updated",
                                          "medication_reminder.deleted"]
    assert all("氨氯地平" not in str(w.details) for w in [*writes, *reads]), "no medicine in the audit log"


async def test_the_log_of_a_local_day(api: Api) -> None:
    elder_id = await elder(api.db)
    service = api.client.app[REMINDERS]
    now = local_now(api.settings.timezone)
    status, _ = await api.request("POST", f"/api/v1/elders/{elder_id}/medication-reminders", role=Role.AGENT,
                                  json={"medication": "二甲双胍", "times": [now.strftime("%H:%M")], "channel": "sms"})
    assert status == 201
    await service.plan()
    status, day = await api.request("GET", f"/api/v1/reminders?elder_id={elder_id}", role=Role.AUDITOR)
    assert status == 200, day
    [item] = day["items"]
    assert (item["kind"], item["outcome"], item["due_time"]) == (
        ReminderKind.MEDICATION, ReminderOutcome.SMS_SENT, now.strftime("%H:%M"))
    assert day["counts"] == {"sms_sent": 1} and day["date"] == now.date().isoformat()
    status, other = await api.request("GET", "/api/v1/reminders?date=2020-01-01", role=Role.AGENT)
    assert status == 200 and other["items"] == []
    status, _ = await api.request("GET", "/api/v1/reminders", role=Role.PROVIDER)
    assert status == 403
    assert len(await _actions(api, "reminders.read")) == 2
