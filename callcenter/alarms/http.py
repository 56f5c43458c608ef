"""/api/v1/alarms: device and sensor alarms at the centre. Read: agents, supervisors, auditors (and admins);
take, respond, resolve and enter by hand: agents and supervisors (and admins); the answer-time figures:
supervisors and auditors (and admins).

The list carries no elder's name, address, position or device details. Every answer that carries one alarm with its
elder (the detail, and the answers of entry, take, respond and resolve) shows part of the elder's file — their name
and address, where they were, what the device said — and is audited as ``elder.alarm`` with the alarm's work order
as its grounds (elders.access), in the answer's own transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from callcenter.alarms import services
from callcenter.alarms.distribution import ALARM_DISTRIBUTOR
from callcenter.alarms.intake import ALARM_INTAKE
from callcenter.alarms.models import AlarmType
from callcenter.alarms.priority import band
from callcenter.alarms.schemas import (
    AlarmCreate,
    AlarmDetail,
    AlarmPage,
    AlarmQuery,
    AnswerTimeFigures,
    AnswerTimes,
    AnswerTimesQuery,
    Resolution,
    TargetShare,
    Transition,
)
from callcenter.api.context import DATABASE, centre_zone
from callcenter.api.errors import Invalid
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.db.base import utcnow
from callcenter.elders.access import ReadGrounds, record_read
from callcenter.users.models import Role

routes = ApiRoutes("alarms")
READERS = (Role.AGENT, Role.SUPERVISOR, Role.AUDITOR)
HANDLERS = (Role.AGENT, Role.SUPERVISOR)
REPORT_READERS = (Role.SUPERVISOR, Role.AUDITOR)
DEFAULT_REPORT_RANGE = dt.timedelta(days=7)
# The audit action of an answer that showed an alarm's elder (``GET /audit?action=elder.`` lists it with the other
# reads of elders' files), and the answer's fields that are part of the file: named in the entry, never their values.
ELDER_READ = "elder.alarm"
_ELDER_FIELDS = ("elder_name", "elder_address", "location", "payload")


async def _detail(request: ApiRequest, alarm_id: int) -> AlarmDetail:
    async with request.require(DATABASE).transaction() as session:
        alarm = await services.get_alarm(session, alarm_id)
        detail = await services.describe(session, alarm)
        if alarm.elder_id is not None:
            shown = sorted(name for name in _ELDER_FIELDS if detail.get(name))
            record_read(session, request.actor, ELDER_READ, alarm.elder_id,
                        ReadGrounds(order_id=alarm.work_order_id), alarm_id=alarm.id, fields=shown)
        return AlarmDetail.model_validate(detail)


@routes.route("GET", "/alarms", summary="List alarms: unresolved first, the most severe first, then the newest",
              query=AlarmQuery, response=AlarmPage, roles=READERS)
async def index(request: ApiRequest) -> AlarmPage:
    """Without where they were or the devices' details: those are read one alarm at a time."""
    query: AlarmQuery = request.query
    async with request.require(DATABASE).transaction(read_only=True) as session:
        alarms, total = await services.list_alarms(session, state=query.state, alarm_type=query.type,
                                                   elder_id=query.elder_id, limit=query.limit, offset=query.offset)
        return AlarmPage.of((services.summaries(alarms), total), query)


def _figures(alarm_type: AlarmType | None, entry: dict[str, Any]) -> AnswerTimeFigures:
    shares = []
    for target in services.ANSWER_TARGETS:
        within, judged = entry[f"within_{target.key}"], entry[f"judged_{target.key}"]
        percent = round(100 * within / judged, 2) if judged else None
        shares.append(TargetShare(within_seconds=int(target.within.total_seconds()),
                                  target_percent=target.share_percent, within=within, judged=judged,
                                  percent=percent, met=None if percent is None else percent >= target.share_percent))
    return AnswerTimeFigures(type=alarm_type, alarms=entry["alarms"], answered=entry["answered"],
                             overflowed=entry["overflowed"], longest_seconds=entry["longest_seconds"], targets=shares)


@routes.route("GET", "/alarms/answer-times", summary="How fast alarms were taken, per type, against TEC Quality's "
              "targets (97.5 % within 60 s, 99 % within 180 s)", query=AnswerTimesQuery, response=AnswerTimes,
              roles=REPORT_READERS)
async def answer_times(request: ApiRequest) -> AnswerTimes:
    """Of the alarms received in [from, to) — by default the last 7 days. The service-level reports' alarm
    figures; the supervisors watch them, auditors check them."""
    query: AnswerTimesQuery = request.query
    now = utcnow()
    until = query.until or now
    since = query.since or until - DEFAULT_REPORT_RANGE
    if since >= until:
        raise Invalid("from must be before to", field="from")
    async with request.require(DATABASE).transaction(read_only=True) as session:
        figures = await services.answer_times(session, since=since, until=until, now=now)
    ordered = sorted(figures, key=lambda alarm_type: (band(alarm_type), alarm_type.value))
    total: dict[str, Any] = {}
    for entry in figures.values():
        for key, value in entry.items():
            if key == "longest_seconds":
                total[key] = max(total.get(key) or 0.0, value) if value is not None else total.get(key)
            else:
                total[key] = total.get(key, 0) + value
    empty = {"alarms": 0, "answered": 0, "overflowed": 0, "longest_seconds": None,
             **{f"{kind}_{target.key}": 0 for target in services.ANSWER_TARGETS for kind in ("within", "judged")}}
    return AnswerTimes(since=since, until=until, types=[_figures(t, figures[t]) for t in ordered],
                       total=_figures(None, total or empty))


@routes.route("GET", "/alarms/{id}", summary="Read an alarm: the elder, the device, where, the device's details",
              response=AlarmDetail, roles=READERS)
async def show(request: ApiRequest) -> AlarmDetail:
    return await _detail(request, request.params["id"])


@routes.route("POST", "/alarms", summary="Enter an alarm by hand (source manual)", body=AlarmCreate,
              response=AlarmDetail, status=201, roles=HANDLERS)
async def create(request: ApiRequest) -> AlarmDetail:
    """For an alarm that reached the centre another way (a relative phoned in a fall). Its emergency work order is
    raised with it, as for a device's."""
    body: AlarmCreate = request.body
    intake = request.require(ALARM_INTAKE)
    async with request.require(DATABASE).transaction() as session:
        alarm = await services.create_manual(
            session, alarm_type=body.type, elder_id=body.elder_id, device_id=body.device_id, severity=body.severity,
            occurred_at=body.occurred_at, location=body.location.model_dump(mode="json") if body.location else None,
            note=body.note, actor=request.actor, tz=centre_zone(request.http.app), clock_skew=intake.clock_skew)
        alarm_id = alarm.id
    request.require(ALARM_DISTRIBUTOR).wake()  # committed: offered to an agent at once
    return await _detail(request, alarm_id)


@routes.route("POST", "/alarms/{id}/take", summary="Take an alarm (new → taken)", body=Transition,
              response=AlarmDetail, roles=HANDLERS, errors=(409,),
              description="Send the version you read: an alarm another agent took first, or changed since, answers "
                          "409 and stays theirs.")
async def take(request: ApiRequest) -> AlarmDetail:
    body: Transition = request.body
    async with request.require(DATABASE).transaction() as session:
        alarm = await services.take(session, request.params["id"], version=body.version, actor=request.actor)
    request.require(ALARM_DISTRIBUTOR).wake()  # its card leaves the other panels, its agent is busy or free
    return await _detail(request, alarm.id)


@routes.route("POST", "/alarms/{id}/respond", summary="Mark help on its way (taken → responding)", body=Transition,
              response=AlarmDetail, roles=HANDLERS, errors=(409,),
              description="By the agent who took it, or a supervisor; a stale version or another state answers 409.")
async def respond(request: ApiRequest) -> AlarmDetail:
    body: Transition = request.body
    async with request.require(DATABASE).transaction() as session:
        alarm = await services.respond(session, request.params["id"], version=body.version, actor=request.actor,
                                       role=request.user.role)
    request.require(ALARM_DISTRIBUTOR).wake()  # its card leaves the other panels, its agent is busy or free
    return await _detail(request, alarm.id)


@routes.route("POST", "/alarms/{id}/resolve", summary="Resolve an alarm with its outcome", body=Resolution,
              response=AlarmDetail, roles=HANDLERS, errors=(409,),
              description="From taken or responding, by the agent who took it or a supervisor: genuine, false or "
                          "test, with a note. Its work order follows its own workflow. A stale version answers 409.")
async def resolve(request: ApiRequest) -> AlarmDetail:
    body: Resolution = request.body
    async with request.require(DATABASE).transaction() as session:
        alarm = await services.resolve(session, request.params["id"], version=body.version, outcome=body.outcome,
                                       note=body.note, actor=request.actor, role=request.user.role)
    request.require(ALARM_DISTRIBUTOR).wake()  # its card leaves the other panels, its agent is busy or free
    return await _detail(request, alarm.id)
