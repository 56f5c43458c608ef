"""/api/v1/elders/{id}/care-schedules, /api/v1/care-calls and /api/v1/care-records: proactive care calls.

Read: agents, supervisors, auditors (and admins). Schedules and exceptions are written by agents and supervisors;
"enable for all living alone" by supervisors. Every write is audited in its transaction.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.context import DATABASE
from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.care_calls.models import EXCEPTIONS, CareOutcome, CareRecord, CareSchedule
from callcenter.care_calls.schemas import (
    CareCallOut,
    CareRecordOut,
    CareRecordPage,
    CareRecordQuery,
    DayItem,
    DayOut,
    DayQuery,
    EnabledOut,
    EnableLivingAlone,
    HandleBody,
    ScheduleCreate,
    ScheduleList,
    ScheduleOut,
    ScheduleUpdate,
)
from callcenter.care_calls.services import CareCalls, due_on, get_elder, get_schedule, work_order_numbers
from callcenter.db.paging import paginate
from callcenter.dial_policy.services import DialPurpose
from callcenter.elders.models import Elder
from callcenter.follow_up_calls.http import FOLLOW_UP_DIALER
from callcenter.follow_up_calls.services import DialTarget
from callcenter.users.models import Role

routes = ApiRoutes("care-calls")
CARE_CALLS = web.AppKey("care_calls", CareCalls)
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)
WRITERS = (Role.SUPERVISOR, Role.AGENT)


@routes.route("GET", "/elders/{id}/care-schedules", summary="An elder's care-call schedules",
              response=ScheduleList, roles=READERS)
async def schedules(request: ApiRequest) -> ScheduleList:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        await get_elder(session, request.params["id"])
        rows = (await session.scalars(select(CareSchedule).where(CareSchedule.elder_id == request.params["id"])
                                      .order_by(CareSchedule.id))).all()
        return ScheduleList(items=[ScheduleOut.model_validate(row) for row in rows])


@routes.route("POST", "/elders/{id}/care-schedules", summary="Schedule care calls for an elder",
              body=ScheduleCreate, response=ScheduleOut, status=201, roles=WRITERS)
async def create_schedule(request: ApiRequest) -> ScheduleOut:
    """A check-in (daily, weekly on ``weekdays``, or on custom ``dates``) or a greeting (``birthday``, solar or
    lunar from the elder's date of birth; ``festivals`` of the Chinese calendar), in a window of the local day.
    422 naming the field: a window not ``HH:MM``, not ending after it starts, or wholly inside the quiet hours
    (CC_OUTBOUND_QUIET_HOURS); a start or a date in the past; an elder without a dialable number or (birthdays)
    without a date of birth. Today's call is planned at once when it is due and its window is still open."""
    body: ScheduleCreate = request.body
    service = request.require(CARE_CALLS)
    async with request.require(DATABASE).transaction() as session:
        schedule = await service.create_schedule(
            session, request.params["id"], recurrence=body.recurrence, window_start=body.window_start,
            window_end=body.window_end, weekdays=body.weekdays, dates=body.dates, festivals=body.festivals,
            birthday_calendar=body.birthday_calendar, starts_on=body.starts_on, ends_on=body.ends_on,
            active=body.active, note=body.note, actor=request.actor)
        created = ScheduleOut.model_validate(schedule)
    service.wake()
    return created


@routes.route("PATCH", "/elders/{id}/care-schedules/{schedule_id}", summary="Change or pause a care-call schedule",
              body=ScheduleUpdate, response=ScheduleOut, roles=WRITERS)
async def update_schedule(request: ApiRequest) -> ScheduleOut:
    """``active: false`` pauses it (nothing more is planned; a call already planned today still goes). 422 as for
    a new schedule."""
    body: ScheduleUpdate = request.body
    service = request.require(CARE_CALLS)
    async with request.require(DATABASE).transaction() as session:
        schedule = await service.update_schedule(session, request.params["id"], request.params["schedule_id"],
                                                 body.model_dump(exclude_unset=True), actor=request.actor)
        updated = ScheduleOut.model_validate(schedule)
    service.wake()
    return updated


@routes.route("DELETE", "/elders/{id}/care-schedules/{schedule_id}", summary="Remove a care-call schedule",
              response=ScheduleOut, roles=WRITERS, errors=(409,))
async def delete_schedule(request: ApiRequest) -> ScheduleOut:
    """Answers the schedule as it was. Its care records stay; today's call not yet reached is stopped. 409: a
    check-in of an elder living alone while CC_CARE_CALLS_AUTO is on (pause it instead)."""
    async with request.require(DATABASE).transaction() as session:
        schedule = await get_schedule(session, request.params["id"], request.params["schedule_id"])
        removed = ScheduleOut.model_validate(schedule)
        await request.require(CARE_CALLS).delete_schedule(session, request.params["id"],
                                                          request.params["schedule_id"], actor=request.actor)
    return removed


@routes.route("POST", "/care-schedules/enable-living-alone", summary="Daily check-ins for every elder living alone",
              body=EnableLivingAlone, response=EnabledOut, roles=(Role.SUPERVISOR,))
async def enable_living_alone(request: ApiRequest) -> EnabledOut:
    """A daily check-in for each elder whose living situation is alone or empty nest and who has no check-in
    schedule yet, in the window given (CC_CARE_CALLS_WINDOW when absent). Elders without a dialable number are
    listed, not scheduled. Running it again makes nothing new."""
    body: EnableLivingAlone = request.body
    if (body.window_start is None) != (body.window_end is None):
        raise Invalid("give both ends of the window, or neither", field="window_end")
    window = (body.window_start, body.window_end) if body.window_start and body.window_end else None
    service = request.require(CARE_CALLS)
    async with request.require(DATABASE).transaction() as session:
        made, no_phone = await service.enable_for_living_alone(session, actor=request.actor, window=window)
    service.wake()
    return EnabledOut(created=len(made), schedule_ids=made, without_phone=no_phone)


@routes.route("GET", "/care-calls", summary="A day's care calls: planned, outcomes and exceptions",
              query=DayQuery, response=DayOut, roles=READERS)
async def day(request: ApiRequest) -> DayOut:
    """The care records of the centre's local ``date`` (today when absent) and the schedules due that day not
    planned yet (outcome ``due``), by window then elder. ``exception``: a call back asked for (2), a spoken answer
    without a key, a missed check-in (its emergency order named) — until someone records how it was dealt with."""
    query: DayQuery = request.query
    service = request.require(CARE_CALLS)
    date = query.date or service.today()
    async with request.require(DATABASE).transaction(read_only=True) as session:
        records = (await session.execute(
            select(CareRecord, Elder.full_name).join(Elder, Elder.id == CareRecord.elder_id)
            .where(CareRecord.local_date == date))).all()
        planned = {care.schedule_id for care, _ in records}
        schedules = (await session.execute(
            select(CareSchedule, Elder).join(Elder, Elder.id == CareSchedule.elder_id)
            .where(CareSchedule.active.is_(True), CareSchedule.starts_on <= date))).all()
        orders = await work_order_numbers(session, (care.work_order_id for care, _ in records))
    items = [DayItem(record_id=care.id, schedule_id=care.schedule_id, elder_id=care.elder_id, elder_name=name,
                     kind=care.kind, occasion=care.occasion, window_start=care.window_start,
                     window_end=care.window_end, outcome=care.outcome.value, exception=_open_exception(care),
                     attempts=care.attempts, last_attempt_at=care.last_attempt_at, completed_at=care.completed_at,
                     work_order_id=care.work_order_id, work_order_number=orders.get(care.work_order_id or 0),
                     handled_by=care.handled_by, handled_at=care.handled_at, handling_note=care.handling_note,
                     callback_call_ids=care.callback_call_ids) for care, name in records]
    for schedule, elder in schedules:
        if schedule.id in planned:
            continue
        occasions = due_on(schedule, date, elder.birth_date)
        if occasions:
            items.append(DayItem(
                record_id=None, schedule_id=schedule.id, elder_id=elder.id, elder_name=elder.full_name,
                kind="check_in" if occasions == ["check_in"] else "greeting",
                occasion=None if occasions == ["check_in"] else ",".join(occasions),
                window_start=schedule.window_start, window_end=schedule.window_end, outcome="due", exception=False,
                attempts=0, last_attempt_at=None, completed_at=None, work_order_id=None, work_order_number=None,
                handled_by=None, handled_at=None, handling_note=None, callback_call_ids=[]))
    items.sort(key=lambda item: (not item.exception, item.window_start, item.elder_name, item.record_id or 0))
    counts: dict[str, int] = {}
    for item in items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    return DayOut(date=date, items=items, counts=counts)


def _open_exception(care: CareRecord) -> bool:
    return care.outcome in EXCEPTIONS and care.handled_at is None


@routes.route("GET", "/care-records", summary="Care records, newest first", query=CareRecordQuery,
              response=CareRecordPage, roles=READERS)
async def records(request: ApiRequest) -> CareRecordPage:
    query: CareRecordQuery = request.query
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise Invalid("from must not be after to", field="from")
    statement = select(CareRecord).order_by(CareRecord.local_date.desc(), CareRecord.id.desc())
    if query.elder_id is not None:
        statement = statement.where(CareRecord.elder_id == query.elder_id)
    if query.outcome is not None:
        statement = statement.where(CareRecord.outcome == query.outcome)
    if query.exceptions or query.open:
        statement = statement.where(CareRecord.outcome.in_(tuple(EXCEPTIONS)))
    if query.open:
        statement = statement.where(CareRecord.handled_at.is_(None))
    if query.date_from is not None:
        statement = statement.where(CareRecord.local_date >= query.date_from)
    if query.date_to is not None:
        statement = statement.where(CareRecord.local_date <= query.date_to)
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return CareRecordPage.of(await paginate(session, statement, limit=query.limit, offset=query.offset), query)


@routes.route("GET", "/care-records/{id}", summary="Read a care record", response=CareRecordOut, roles=READERS)
async def show_record(request: ApiRequest) -> CareRecordOut:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        care = await session.get(CareRecord, request.params["id"])
        if care is None:
            raise NotFound(f"no care record {request.params['id']}", field="id")
        return CareRecordOut.model_validate(care)


@routes.route("POST", "/care-records/{id}/handle", summary="Record how a care-call exception was dealt with",
              body=HandleBody, response=CareRecordOut, roles=WRITERS, errors=(409,))
async def handle(request: ApiRequest) -> CareRecordOut:
    """For a call back asked for, a spoken answer without a key, or a missed check-in: who dealt with it, when and
    how. 409: the record is no exception, or was dealt with already."""
    body: HandleBody = request.body
    async with request.require(DATABASE).transaction() as session:
        care = await request.require(CARE_CALLS).handle(session, request.params["id"], note=body.note,
                                                         user_id=request.user.user_id, actor=request.actor)
        return CareRecordOut.model_validate(care)


@routes.route("POST", "/care-records/{id}/call", summary="Call the elder back: rings your phone first",
              response=CareCallOut, status=201, roles=WRITERS, errors=(404, 409, 422, 503))
async def call(request: ApiRequest) -> CareCallOut:
    """The one-click call of the follow-up calls (``/work-orders/{id}/follow-up-call``): your account's extension
    rings, and when you answer, the elder's number on file is dialled through the trunk, recorded; the call is
    added to the record's ``callback_call_ids``. 409: your account has no extension, no trunk is configured or
    your phone is already ringing for it; 422: no dialable number; 503: Asterisk is not reachable (nothing
    recorded)."""
    record_id: int = request.params["id"]

    async def target(session: AsyncSession) -> DialTarget:
        care = await session.get(CareRecord, record_id, with_for_update=True)
        if care is None:
            raise NotFound(f"no care record {record_id}", field="id")
        if care.outcome is CareOutcome.PLANNED:
            raise Conflict("today's care call is still being made: wait for its outcome", field="outcome")

        async def linked(session: AsyncSession, call_id: int) -> None:
            care.callback_call_ids = [*care.callback_call_ids, call_id]

        return DialTarget(care.elder_id, f"关爱回电 {care.id}", DialPurpose.CARE_CALL_BACK, linked=linked)

    placed = await request.http.app[FOLLOW_UP_DIALER].dial_elder(
        ("care", record_id), target, user_id=request.user.user_id, username=request.user.username)
    return CareCallOut(record_id=record_id, call_id=placed.call_id, linkedid=placed.linkedid,
                       extension=placed.extension, number=placed.number, started_at=placed.started_at)

