"""/api/v1/elders/{id}/readings and /thresholds: an elder's health readings and their limits. Roles as for the
elder's file (``elders.http``): read by supervisors, agents and auditors; readings entered by supervisors and agents
(the community doctor's readings phoned in); an elder's own thresholds set, on the community doctor's instruction,
by supervisors (and admins). Every read is audited as a read of the file is (``elders.access``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.models import Alarm
from callcenter.api.context import DATABASE, centre_zone
from callcenter.api.errors import Invalid, NotFound
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.audit.services import record
from callcenter.db.base import utcnow
from callcenter.devices.models import Device
from callcenter.elders.access import grounds_for, record_read
from callcenter.elders.http import READERS, WRITERS
from callcenter.elders.models import Elder
from callcenter.readings import services
from callcenter.readings.intake import READING_INTAKE, check_time
from callcenter.readings.models import ReadingSource, ReadingType
from callcenter.readings.schemas import (
    MeasureThreshold,
    ReadingCreate,
    ReadingCreated,
    ReadingList,
    ReadingOut,
    ReadingQuery,
    ThresholdList,
    ThresholdQuery,
    ThresholdSet,
    parse_values,
)
from callcenter.users.models import Role

routes = ApiRoutes("readings")
THRESHOLD_SETTERS = (Role.SUPERVISOR,)  # and admins
DEFAULT_RANGE = dt.timedelta(days=90)
_READ_AUDIT = ("Audited as a read of the elder's file (`elder.readings.read`/`elder.thresholds.read`: who, when, "
               "and why — `call_id` or `order_id` when given, each must exist and be about this elder, else 422 "
               "naming it).")


async def _elder(session: AsyncSession, elder_id: int) -> Elder:
    elder = await session.get(Elder, elder_id)
    if elder is None:
        raise NotFound(f"no elder {elder_id}", field="id")
    return elder


def _type_of(raw: str) -> ReadingType:
    try:
        return ReadingType(raw)
    except ValueError:
        raise NotFound(f"no reading type {raw[:40]!r}", field="type") from None


@routes.route("POST", "/elders/{id}/readings", summary="Enter a reading by hand (source manual)", body=ReadingCreate,
              response=ReadingCreated, status=201, roles=WRITERS,
              description="The values as a device sends them (docs/device-protocol.md, \"Reading\"); a wrong one "
                          "answers 422 naming it (`values.systolic_mmhg`) and nothing is stored. Out of range, it "
                          "raises (or is counted on) a vital-sign alarm; a sustained trend raises the community "
                          "doctor's follow-up order.")
async def create(request: ApiRequest) -> ReadingCreated:
    body: ReadingCreate = request.body
    intake = request.require(READING_INTAKE)
    now = utcnow()
    check_time(body.measured_at, now=now, clock_skew=intake.clock_skew, retention=intake.retention)  # 422
    values = parse_values(body.type, body.values, body.measured_at)
    async with request.require(DATABASE).transaction() as session:
        elder = await _elder(session, request.params["id"])
        device = None
        if body.device_id is not None:
            device = await session.get(Device, body.device_id)
            if device is None or device.elder_id != elder.id:
                raise Invalid(f"device {body.device_id} is not elder {elder.id}'s", field="device_id")
        actor = request.actor
        stored = await services.store_reading(
            session, elder=elder, device=device, reading_type=body.type, measured_at=body.measured_at, values=values,
            details={"note": body.note} if body.note else None, source=ReadingSource.MANUAL, actor=actor, now=now,
            tz=centre_zone(request.http.app), merge_window=intake.merge_window,
            entered_by_id=actor.id, entered_by=actor.label[:100])
        record(session, actor, action=services.ENTERED, target_type="elder", target_id=elder.id,
                        details={"reading_id": stored.reading.id, "type": body.type.value,
                                 "alarm_id": stored.alarm.id if stored.alarm else None,
                                 "follow_up_order": stored.follow_up.number if stored.follow_up else None})
        alarm: Alarm | None = stored.alarm
        created = ReadingCreated.model_validate({
            **ReadingOut.model_validate(stored.reading).model_dump(),
            "alarm_number": alarm.number if alarm else None, "alarm_severity": alarm.severity if alarm else None,
            "follow_up_order_number": stored.follow_up.number if stored.follow_up else None})
    if alarm is not None:
        intake.alarm_committed()  # committed: the vital-sign alarm is offered to an agent at once
    return created


@routes.route("GET", "/elders/{id}/readings", summary="An elder's readings over a time range (the trend)",
              query=ReadingQuery, response=ReadingList, roles=READERS,
              description=f"Measured in [from, to) — by default the last 90 days — the newest first. {_READ_AUDIT}")
async def index(request: ApiRequest) -> ReadingList:
    query: ReadingQuery = request.query
    until = query.until or utcnow()
    since = query.since or until - DEFAULT_RANGE
    if since >= until:
        raise Invalid("from must be before to", field="from")
    async with request.require(DATABASE).transaction() as session:
        elder = await _elder(session, request.params["id"])
        grounds = await grounds_for(session, request.user.user_id, elder.id, call_id=query.call_id,
                                    order_id=query.order_id, now=utcnow())
        rows = await services.list_readings(session, elder.id, reading_type=query.type, since=since, until=until,
                                            limit=query.limit)
        record_read(session, request.actor, services.READINGS_READ, elder.id, grounds,
                    type=query.type.value if query.type else None, count=len(rows))
        return ReadingList(items=[ReadingOut.model_validate(row) for row in rows], since=since, until=until)


@routes.route("GET", "/elders/{id}/thresholds", summary="An elder's limits for every reading type and measure",
              query=ThresholdQuery, response=ThresholdList, roles=READERS,
              description=f"Each with its source: `default` (clinical guidance, docs/architecture.md) or `elder` "
                          f"(set for this elder, with the doctor, who set it and when). {_READ_AUDIT}")
async def thresholds(request: ApiRequest) -> ThresholdList:
    query: ThresholdQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        elder = await _elder(session, request.params["id"])
        grounds = await grounds_for(session, request.user.user_id, elder.id, call_id=query.call_id,
                                    order_id=query.order_id, now=utcnow())
        items = await services.thresholds_of(session, elder, today=dt.datetime.now(
            centre_zone(request.http.app)).date())
        record_read(session, request.actor, services.THRESHOLDS_READ, elder.id, grounds)
        return ThresholdList(items=[MeasureThreshold.model_validate(item) for item in items])


@routes.route("PUT", "/elders/{id}/thresholds/{type}", summary="Set an elder's own limits for a reading type",
              body=ThresholdSet, response=ThresholdList, roles=THRESHOLD_SETTERS,
              description="On the instruction of the elder's community doctor (`doctor_contact_id`: their contact of "
                          "role doctor). Replaces the elder's limits of the measures named; the others keep theirs. "
                          "Limits run low to high (critical_low < high_low < target_high < high_high < "
                          "critical_high), else 422 naming the one out of order. Who set them and when are kept, "
                          "and audited.")
async def set_thresholds(request: ApiRequest) -> ThresholdList:
    body: ThresholdSet = request.body
    reading_type = _type_of(request.params["type"])
    async with request.require(DATABASE).transaction() as session:
        elder = await _elder(session, request.params["id"])
        await services.set_thresholds(
            session, elder, reading_type, {measure: limits.model_dump() for measure, limits in body.measures.items()},
            doctor_contact_id=body.doctor_contact_id, note=body.note, actor=request.actor, now=utcnow())
        items = await services.thresholds_of(session, elder, today=dt.datetime.now(
            centre_zone(request.http.app)).date())
        return ThresholdList(items=[MeasureThreshold.model_validate(item) for item in items
                                    if item["type"] is reading_type])


@routes.route("DELETE", "/elders/{id}/thresholds/{type}", summary="Back to the default limits for a reading type",
              response=ThresholdList, roles=THRESHOLD_SETTERS, description="Audited.")
async def clear_thresholds(request: ApiRequest) -> ThresholdList:
    reading_type = _type_of(request.params["type"])
    async with request.require(DATABASE).transaction() as session:
        elder = await _elder(session, request.params["id"])
        await services.clear_thresholds(session, elder, reading_type, actor=request.actor)
        items = await services.thresholds_of(session, elder, today=dt.datetime.now(
            centre_zone(request.http.app)).date())
        return ThresholdList(items=[MeasureThreshold.model_validate(item) for item in items
                                    if item["type"] is reading_type])
