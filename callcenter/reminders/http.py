"""/api/v1/elders/{id}/medication-reminders and /api/v1/reminders: reminders.

Who, as for the health record (``health_records.http``): agents and supervisors write and read the medicine;
auditors (and admins) read the reminders with the medicine and the SMS label left out (``masked_fields``);
providers' accounts get nothing. Every read of an elder's medication reminders is audited with its grounds
(``elders.access``), every write in its transaction.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from callcenter.api.context import DATABASE, centre_today
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.audit.services import record
from callcenter.db.base import utcnow
from callcenter.elders.access import grounds_for, record_read
from callcenter.elders.schemas import ReadQuery
from callcenter.health_records.http import READERS, WRITERS
from callcenter.health_records.services import sees_content
from callcenter.reminders.models import MedicationReminder, ReminderLog
from callcenter.reminders.schemas import (
    LogList,
    LogOut,
    LogQuery,
    ReminderCreate,
    ReminderList,
    ReminderOut,
    ReminderUpdate,
)
from callcenter.reminders.services import Reminders, get_elder, get_reminder
from callcenter.users.models import Role

routes = ApiRoutes("reminders")
REMINDERS = web.AppKey("reminders", Reminders)
READ_ACTION = "health.medication_reminders.read"
_CONTENT = ("medication", "sms_label")


def reminder_out(row: MedicationReminder, role: Role) -> ReminderOut:
    values = {"id": row.id, "elder_id": row.elder_id, "medication": row.medication, "sms_label": row.sms_label,
              "times": row.times, "days": row.days, "weekdays": row.weekdays, "channel": row.channel,
              "active": row.active, "created_by": row.created_by, "created_at": row.created_at,
              "updated_at": row.updated_at}
    if not sees_content(role):
        values = {**values, **dict.fromkeys(_CONTENT), "masked_fields": list(_CONTENT)}
    return ReminderOut.model_validate(values)


@routes.route("GET", "/elders/{id}/medication-reminders", summary="An elder's medication reminders",
              query=ReadQuery, response=ReminderList, roles=READERS,
              description="The medicine to agents and supervisors only; auditors and admins get the times and "
                          "channels with `masked_fields`. Every read is audited (`health.medication_reminders."
                          "read`) with its grounds, as the health record's reads are.")
async def list_reminders(request: ApiRequest) -> ReminderList:
    query: ReadQuery = request.query
    elder_id = request.params["id"]
    async with request.require(DATABASE).transaction() as session:
        await get_elder(session, elder_id)
        rows = (await session.scalars(select(MedicationReminder).where(MedicationReminder.elder_id == elder_id)
                                      .order_by(MedicationReminder.id))).all()
        grounds = await grounds_for(session, request.user.user_id, elder_id, call_id=query.call_id,
                                    order_id=query.order_id, now=utcnow())
        record_read(session, request.actor, READ_ACTION, elder_id, grounds, rows=len(rows),
                    content_shown=sees_content(request.user.role))
        return ReminderList(items=[reminder_out(row, request.user.role) for row in rows])


@routes.route("POST", "/elders/{id}/medication-reminders", summary="Remind an elder to take a medicine",
              body=ReminderCreate, response=ReminderOut, status=201, roles=WRITERS,
              description="At `times` (HH:MM, the centre's local day) every day or on `weekdays`, by call (a prompt "
                          "that names no medicine; 1 acknowledges), SMS or both. 422 naming the field: a time not "
                          "HH:MM (`times`), weekdays missing (`weekdays`), no dialable number on the elder's file "
                          "(`phone`), an SMS over one message (`sms_label`). Quiet hours (CC_OUTBOUND_QUIET_HOURS) "
                          "hold the call; one not reached within two hours of its time is dropped.")
async def create_reminder(request: ApiRequest) -> ReminderOut:
    body: ReminderCreate = request.body
    service = request.require(REMINDERS)
    async with request.require(DATABASE).transaction() as session:
        row = await service.create(session, request.params["id"], medication=body.medication, times=body.times,
                                   days=body.days, weekdays=body.weekdays, channel=body.channel, active=body.active,
                                   sms_label=body.sms_label, actor=request.actor)
        created = reminder_out(row, request.user.role)
    service.wake()
    return created


@routes.route("PATCH", "/elders/{id}/medication-reminders/{reminder_id}", summary="Change or pause a medication "
              "reminder", body=ReminderUpdate, response=ReminderOut, roles=WRITERS,
              description="The fields given; the whole reminder is checked again (422 naming the field). Paused, "
                          "or with new times, days or channel, its calls not reached yet are cancelled; the times "
                          "still ahead today are made at their time.")
async def update_reminder(request: ApiRequest) -> ReminderOut:
    body: ReminderUpdate = request.body
    changes = {name: getattr(body, name) for name in body.model_dump(exclude_unset=True)}
    service = request.require(REMINDERS)
    async with request.require(DATABASE).transaction() as session:
        row = await service.update(session, request.params["id"], request.params["reminder_id"], changes,
                                   actor=request.actor)
        updated = reminder_out(row, request.user.role)
    service.wake()
    return updated


@routes.route("DELETE", "/elders/{id}/medication-reminders/{reminder_id}", summary="Remove a medication reminder",
              response=ReminderOut, roles=WRITERS,
              description="Its calls not reached yet are cancelled; its log stays.")
async def delete_reminder(request: ApiRequest) -> ReminderOut:
    service = request.require(REMINDERS)
    async with request.require(DATABASE).transaction() as session:
        row = await get_reminder(session, request.params["id"], request.params["reminder_id"])
        removed = reminder_out(row, request.user.role)
        await service.delete(session, request.params["id"], request.params["reminder_id"], actor=request.actor)
    return removed


@routes.route("GET", "/reminders", summary="The reminder log of a local day", query=LogQuery, response=LogList,
              roles=READERS,
              description="What was reminded (kind, elder, source, the local time it was due), the call and the SMS, "
                          "and the outcome: `planned`, `acknowledged`, `answered_no_key`, `unanswered`, `sms_sent`, "
                          "`failed`, `cancelled`. Names no medicine or measure. Audited (`reminders.read`).")
async def reminder_log(request: ApiRequest) -> LogList:
    query: LogQuery = request.query
    day = query.date or centre_today(request.http.app)
    async with request.require(DATABASE).transaction() as session:
        where = [ReminderLog.local_date == day]
        if query.elder_id is not None:
            where.append(ReminderLog.elder_id == query.elder_id)
        rows = (await session.scalars(select(ReminderLog).where(*where).order_by(
            ReminderLog.due_time, ReminderLog.id))).all()
        counts = dict((await session.execute(select(ReminderLog.outcome, func.count()).where(*where)
                                             .group_by(ReminderLog.outcome))).all())
        record(session, request.actor, action="reminders.read", target_type="elder" if query.elder_id else None,
               target_id=query.elder_id, details={"date": day.isoformat(), "rows": len(rows)})
        return LogList(date=day, items=[LogOut.model_validate(row) for row in rows],
                       counts={outcome.value: n for outcome, n in counts.items()})
