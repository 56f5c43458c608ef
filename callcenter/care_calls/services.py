"""Proactive care calls (issue 16, seed 5.8): schedules, the daily planner, care records, and a missed check-in's
escalation.

**Schedules** are validated here, whoever writes them (the API, "enable for all living alone", the automatic
schedules of CC_CARE_CALLS_AUTO): a window is ``HH:MM``-``HH:MM`` within one local day and not wholly inside the
quiet hours (CC_OUTBOUND_QUIET_HOURS: such a window would never be dialled, so it is refused; one that overlaps
them is dialled only once they end, by the outbound engine), a schedule never starts in the past, and every error
names its field with nothing stored.

**The planner** (a periodic job, and at once when a schedule is written) makes one care record and one outbound
job for each schedule due on the centre's local day (CC_TIMEZONE) whose window has not closed yet. The record is
unique per schedule and day, so a day's call is planned once, across rounds and restarts. An elder's greetings of
the day ride on their check-in call (the greeting is said first) or, without one, share one greeting call.

**Outcomes** come from the outbound engine (``on_attempt_ended``, in its transaction): 1 → well, 2 → call back,
0 → put through to the hotline queue, answered without a key → "answered, call back" (``no_key``); never
answered after every try (CC_CARE_CALLS_ATTEMPTS, CC_CARE_CALLS_RETRY_SECONDS), or its window closed first →
missed: an emergency work order for the elder, then every ``on_missed`` callback (the contact cascade) in the
same transaction. Call-backs, spoken answers and missed check-ins are the page's exceptions until an agent
records how they were dealt with.

SMS: a greeting or a missed check-in's notice by SMS would be sent here, beside the call, through the
notifications domain's service once it exists (``callcenter/notifications/``, listed before this plugin): see
``_greeting_by_sms``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.care_calls.lunar import Festival, festivals_on, is_birthday, lunar_birthday
from callcenter.care_calls.models import (
    CHECK_INS,
    EXCEPTIONS,
    BirthdayCalendar,
    CareOutcome,
    CareRecord,
    CareSchedule,
    Recurrence,
)
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.dial_policy.services import DialBasis
from callcenter.elders.models import Elder, LivingSituation
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.outbound.models import JobState, OutboundJob, OutboundPurpose
from callcenter.outbound.policy import DailyWindow, clock_time, parse_quiet_hours
from callcenter.outbound.services import AttemptEnded, OutboundDialer, dialable, enqueue
from callcenter.periodic import PeriodicJob

log = get_logger(__name__)

OWNER = "care_calls"  # the outbound jobs' owner
CHECK_IN, GREETING = "check_in", "greeting"
CHECK_IN_SCRIPT: dict[str, Any] = {
    "prompts": ["outbound-checkin"], "choices": {"1": "well", "2": "call_back", "0": "agent"},
    "replies": {"1": ["outbound-checkin-ok"], "2": ["outbound-checkin-callback"]}, "agent_keys": ["0"],
    "agent_queue": "hotline", "no_key_prompts": ["outbound-no-key"],
}
_CHOICES = {"well": CareOutcome.WELL, "call_back": CareOutcome.CALL_BACK, "agent": CareOutcome.AGENT}
GREETING_PROMPTS: dict[str, str] = {
    "birthday": "care-greeting-birthday", Festival.SPRING: "care-greeting-spring-festival",
    Festival.LANTERN: "care-greeting-lantern", Festival.DRAGON_BOAT: "care-greeting-dragon-boat",
    Festival.MID_AUTUMN: "care-greeting-mid-autumn", Festival.DOUBLE_NINTH: "care-greeting-double-ninth",
}
LIVING_ALONE = (LivingSituation.ALONE, LivingSituation.EMPTY_NEST)
# A missed check-in's work order: an emergency (an elder living alone who cannot be reached may be lying hurt), a
# step below a live SOS (1).
MISSED_PRIORITY = 2
MISSED_TITLE = "今日关爱电话无人接听"
FIRST_PLAN_SECONDS = 5.0
MAX_DATES = 366
SYSTEM = Actor(None, OWNER)

# callback(session, elder_id, work_order_id, care_record_id), awaited in the transaction that records the miss.
MissedHandler = Callable[[AsyncSession, int, int, int], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleFields:
    """A schedule as written (a new one, or an existing one with a change applied), before it is checked."""

    recurrence: Recurrence
    window_start: str
    window_end: str
    weekdays: list[int]
    dates: list[str]
    festivals: list[str]
    birthday_calendar: BirthdayCalendar | None
    starts_on: dt.date
    ends_on: dt.date | None


def check_window(start: str, end: str, quiet: DailyWindow | None) -> None:
    """``Invalid`` naming the field: not ``HH:MM``, not ending after it starts within the day, or wholly inside the
    quiet hours (it would never be dialled)."""
    try:
        opens = clock_time(start, field="window_start")
    except ValueError as error:
        raise Invalid(str(error), field="window_start") from None
    try:
        closes = clock_time(end, field="window_end")
    except ValueError as error:
        raise Invalid(str(error), field="window_end") from None
    if closes <= opens:
        raise Invalid(f"the window must end after it starts, within one day ({start}-{end})", field="window_end")
    if quiet is not None:
        minutes = range(opens.hour * 60 + opens.minute, closes.hour * 60 + closes.minute)
        if all(quiet.contains(dt.time(m // 60, m % 60)) for m in minutes):
            raise Invalid(f"the window {start}-{end} lies wholly inside the quiet hours "
                          f"({quiet.start:%H:%M}-{quiet.end:%H:%M}, CC_OUTBOUND_QUIET_HOURS): no call could be made",
                          field="window_start")


def check_schedule(fields: ScheduleFields, elder: Elder, *, today: dt.date, quiet: DailyWindow | None,
                   new: bool) -> None:
    """Every rule of a schedule, ``Invalid`` naming the field of the first broken one."""
    check_window(fields.window_start, fields.window_end, quiet)
    if new and fields.starts_on < today:
        raise Invalid(f"a schedule cannot start in the past ({fields.starts_on}; today is {today})",
                      field="starts_on")
    if fields.ends_on is not None and fields.ends_on < fields.starts_on:
        raise Invalid("the schedule would end before it starts", field="ends_on")
    if fields.recurrence is Recurrence.WEEKLY:
        if not fields.weekdays or any(not 1 <= day <= 7 for day in fields.weekdays):
            raise Invalid("a weekly schedule lists its weekdays, 1 (Monday) to 7 (Sunday)", field="weekdays")
    elif fields.weekdays:
        raise Invalid("only a weekly schedule has weekdays", field="weekdays")
    if fields.recurrence is Recurrence.CUSTOM:
        if not fields.dates or len(fields.dates) > MAX_DATES:
            raise Invalid(f"a custom schedule lists its dates (1 to {MAX_DATES})", field="dates")
        past = sorted(day for day in fields.dates if dt.date.fromisoformat(day) < today)
        if past and new:
            raise Invalid(f"dates in the past: {', '.join(past)} (today is {today})", field="dates")
    elif fields.dates:
        raise Invalid("only a custom schedule has dates", field="dates")
    if fields.recurrence is Recurrence.FESTIVALS:
        if not fields.festivals:
            raise Invalid("name at least one festival", field="festivals")
    elif fields.festivals:
        raise Invalid("only a festivals schedule has festivals", field="festivals")
    if fields.recurrence is Recurrence.BIRTHDAY:
        if fields.birthday_calendar is None:
            raise Invalid("say whether the birthday is kept by the solar or the lunar calendar",
                          field="birthday_calendar")
        if elder.birth_date is None:
            raise Invalid(f"{elder.full_name} has no date of birth on file: add it to the elder's record",
                          field="birth_date")
        if fields.birthday_calendar is BirthdayCalendar.LUNAR:
            try:
                lunar_birthday(elder.birth_date)
            except ValueError as error:
                raise Invalid(str(error), field="birth_date") from None
    elif fields.birthday_calendar is not None:
        raise Invalid("only a birthday schedule has a birthday calendar", field="birthday_calendar")


def due_on(schedule: CareSchedule, day: dt.date, birth_date: dt.date | None) -> list[str]:
    """What ``schedule`` calls for on ``day``: ``["check_in"]``, the greetings' occasions (``birthday``, a
    festival), or nothing."""
    if not schedule.active or day < schedule.starts_on or (schedule.ends_on is not None and day > schedule.ends_on):
        return []
    match schedule.recurrence:
        case Recurrence.DAILY:
            return [CHECK_IN]
        case Recurrence.WEEKLY:
            return [CHECK_IN] if day.isoweekday() in schedule.weekdays else []
        case Recurrence.CUSTOM:
            return [CHECK_IN] if day.isoformat() in schedule.dates else []
        case Recurrence.BIRTHDAY:
            lunar = schedule.birthday_calendar is BirthdayCalendar.LUNAR
            return ["birthday"] if birth_date is not None and is_birthday(day, birth_date, lunar=lunar) else []
        case Recurrence.FESTIVALS:
            return [f.value for f in festivals_on(day) if f.value in schedule.festivals]
    return []


async def get_schedule(session: AsyncSession, elder_id: int, schedule_id: int) -> CareSchedule:
    schedule = await session.get(CareSchedule, schedule_id)
    if schedule is None or schedule.elder_id != elder_id:
        raise NotFound(f"elder {elder_id} has no care schedule {schedule_id}", field="schedule_id")
    return schedule


async def get_elder(session: AsyncSession, elder_id: int) -> Elder:
    elder = await session.get(Elder, elder_id)
    if elder is None:
        raise NotFound(f"no elder {elder_id}", field="id")
    return elder


def _festival_names(raw: Iterable[str]) -> list[str]:
    names = []
    for name in raw:
        try:
            names.append(Festival(name).value)
        except ValueError:
            raise Invalid(f"{name!r} is no festival ({', '.join(f.value for f in Festival)})",
                          field="festivals") from None
    return sorted(set(names), key=[f.value for f in Festival].index)


class CareCalls:
    """The domain's service: schedules' writes, the planner's rounds, the outbound engine's outcomes and the
    ``on_missed`` registry."""

    def __init__(self, db: Database, settings: Settings, dialer: OutboundDialer, *,
                 known_prompts: frozenset[str] | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._db = db
        self._settings = settings
        self._zone = ZoneInfo(settings.timezone)
        self._quiet = parse_quiet_hours(settings.outbound_quiet_hours)
        self._dialer = dialer
        self._known_prompts = known_prompts
        self._clock = clock
        self._missed: list[MissedHandler] = []
        self._planner = PeriodicJob("care-call-planner", self._plan_round, first_run_seconds=FIRST_PLAN_SECONDS,
                                    interval_seconds=settings.care_calls_plan_seconds)
        dialer.on_attempt_ended(OWNER, self.attempt_ended)

    # -- the registry the contact cascade uses -------------------------------------------------------------------
    def on_missed(self, callback: MissedHandler) -> None:
        """``callback(session, elder_id, work_order_id, care_record_id)`` is awaited when a check-in is missed, in
        the transaction that raises its work order: what it writes commits with it (the cascade domain starts a
        cascade here)."""
        self._missed.append(callback)

    # -- time ----------------------------------------------------------------------------------------------------
    def today(self, now: dt.datetime | None = None) -> dt.date:
        return (now or self._clock()).astimezone(self._zone).date()

    def local_moment(self, day: dt.date, clock: str) -> dt.datetime:
        """``clock`` (``HH:MM``) on ``day`` in the centre's zone, in UTC."""
        time = clock_time(clock, field="window")
        return dt.datetime.combine(day, time, tzinfo=self._zone).astimezone(dt.UTC)

    # -- schedules -----------------------------------------------------------------------------------------------
    async def create_schedule(self, session: AsyncSession, elder_id: int, *, recurrence: Recurrence,
                              window_start: str, window_end: str, actor: Actor, weekdays: Iterable[int] = (),
                              dates: Iterable[dt.date] = (), festivals: Iterable[str] | None = None,
                              birthday_calendar: BirthdayCalendar | None = None, starts_on: dt.date | None = None,
                              ends_on: dt.date | None = None, active: bool = True, note: str | None = None,
                              automatic: bool = False) -> CareSchedule:
        elder = await get_elder(session, elder_id)
        dialable(elder.phone or "", via_trunk=True, field="phone")
        today = self.today()
        if recurrence is Recurrence.FESTIVALS and festivals is None:
            festivals = [f.value for f in Festival]
        if recurrence is Recurrence.BIRTHDAY and birthday_calendar is None:
            birthday_calendar = BirthdayCalendar.LUNAR
        fields = ScheduleFields(recurrence=recurrence, window_start=window_start, window_end=window_end,
                                weekdays=sorted(set(weekdays)), dates=sorted({d.isoformat() for d in dates}),
                                festivals=_festival_names(festivals or ()), birthday_calendar=birthday_calendar,
                                starts_on=starts_on or today, ends_on=ends_on)
        check_schedule(fields, elder, today=today, quiet=self._quiet, new=True)
        schedule = CareSchedule(elder_id=elder.id, active=active, automatic=automatic, note=note,
                                created_by=actor.label[:100], **dataclasses.asdict(fields))
        session.add(schedule)
        await session.flush()
        record(session, actor, action="care_schedule.created", target_type="care_schedule", target_id=schedule.id,
               details={"elder_id": elder.id, "recurrence": recurrence.value,
                        "window": f"{window_start}-{window_end}", "automatic": automatic})
        return schedule

    async def update_schedule(self, session: AsyncSession, elder_id: int, schedule_id: int, changes: dict[str, Any],
                              *, actor: Actor) -> CareSchedule:
        """Apply ``changes`` (the fields given); the whole schedule is checked again. A start date may move only to
        today or later."""
        schedule = await get_schedule(session, elder_id, schedule_id)
        elder = await get_elder(session, elder_id)
        today = self.today()
        current = ScheduleFields(
            recurrence=schedule.recurrence, window_start=schedule.window_start, window_end=schedule.window_end,
            weekdays=list(schedule.weekdays), dates=list(schedule.dates), festivals=list(schedule.festivals),
            birthday_calendar=schedule.birthday_calendar, starts_on=schedule.starts_on, ends_on=schedule.ends_on)
        updates: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "weekdays":
                value = sorted(set(value))
            elif name == "dates":
                value = sorted({d.isoformat() for d in value})
                past = [d for d in value if d < today.isoformat() and d not in schedule.dates]
                if past:
                    raise Invalid(f"dates in the past: {', '.join(past)} (today is {today})", field="dates")
            elif name == "festivals":
                value = _festival_names(value)
            elif name == "starts_on" and value < today:
                raise Invalid(f"a schedule cannot start in the past ({value}; today is {today})", field="starts_on")
            if name in {f.name for f in dataclasses.fields(ScheduleFields)}:
                updates[name] = value
        fields = dataclasses.replace(current, **updates)
        check_schedule(fields, elder, today=today, quiet=self._quiet, new=False)
        for name, value in {**dataclasses.asdict(fields), **{k: v for k, v in changes.items()
                                                             if k in ("active", "note")}}.items():
            setattr(schedule, name, value)
        schedule.updated_at = utcnow()
        record(session, actor, action="care_schedule.updated", target_type="care_schedule", target_id=schedule.id,
               details={"elder_id": elder_id, "changed": sorted(changes)})
        return schedule

    async def delete_schedule(self, session: AsyncSession, elder_id: int, schedule_id: int, *,
                              actor: Actor) -> None:
        """Remove a schedule; its care records stay. A check-in of an elder living alone while CC_CARE_CALLS_AUTO
        is on is refused (the planner would make a new one): pause it instead."""
        schedule = await get_schedule(session, elder_id, schedule_id)
        if self._settings.care_calls_auto == "on" and schedule.recurrence in CHECK_INS:
            elder = await get_elder(session, elder_id)
            if elder.living_situation in LIVING_ALONE:
                raise Conflict("CC_CARE_CALLS_AUTO is on and this elder lives alone: the planner would make a new "
                               "check-in; pause this one instead", field="active")
        # Today's call not reached yet is stopped with it.
        planned = (await session.scalars(select(CareRecord).where(
            CareRecord.schedule_id == schedule.id, CareRecord.outcome == CareOutcome.PLANNED))).all()
        for care in planned:
            if care.job_id is not None:
                await self._cancel_job(session, care.job_id)
        await session.delete(schedule)
        record(session, actor, action="care_schedule.deleted", target_type="care_schedule", target_id=schedule_id,
               details={"elder_id": elder_id, "recurrence": schedule.recurrence.value})

    async def _cancel_job(self, session: AsyncSession, job_id: int) -> None:
        job = await session.get(OutboundJob, job_id, with_for_update=True)
        if job is not None and job.state is JobState.QUEUED:
            job.state, job.outcome, job.finished_at = JobState.CANCELLED, "cancelled", self._clock()
            for care in (await session.scalars(select(CareRecord).where(CareRecord.job_id == job_id))).all():
                care.outcome, care.completed_at = CareOutcome.CANCELLED, self._clock()

    async def enable_for_living_alone(self, session: AsyncSession, *, actor: Actor,
                                      window: tuple[str, str] | None = None) -> tuple[list[int], list[int]]:
        """A daily check-in for every elder living alone or in an empty nest who has none: (the schedules made,
        the elders left out for want of a dialable number). Audited once."""
        start, end = window or tuple(self._settings.care_calls_window.split("-"))
        check_window(start, end, self._quiet)
        has_check_in = select(CareSchedule.elder_id).where(CareSchedule.recurrence.in_(tuple(CHECK_INS)))
        elders = (await session.scalars(select(Elder).where(
            Elder.living_situation.in_(LIVING_ALONE), Elder.id.not_in(has_check_in)).order_by(Elder.id))).all()
        made: list[int] = []
        no_phone: list[int] = []
        today = self.today()
        for elder in elders:
            try:
                dialable(elder.phone or "", via_trunk=True)
            except Invalid:
                no_phone.append(elder.id)
                continue
            schedule = CareSchedule(elder_id=elder.id, recurrence=Recurrence.DAILY, window_start=start,
                                    window_end=end, weekdays=[], dates=[], festivals=[], starts_on=today,
                                    active=True, automatic=True, created_by=actor.label[:100])
            session.add(schedule)
            await session.flush()
            made.append(schedule.id)
        if made or actor is not SYSTEM:
            record(session, actor, action="care_schedule.enabled_for_living_alone", target_type="care_schedule",
                   details={"created": len(made), "without_phone": no_phone, "window": f"{start}-{end}"})
        return made, no_phone

    # -- the planner ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._planner.start()

    async def stop(self) -> None:
        await self._planner.stop()

    def wake(self) -> None:
        """Plan now (a schedule was written)."""
        self._planner.run_soon()

    async def _plan_round(self) -> None:
        planned = await self.plan()
        if planned:
            log.info("care_calls.planned", records=len(planned))

    async def plan(self, now: dt.datetime | None = None) -> list[CareRecord]:
        """Today's care records and calls not planned yet (each schedule at most once a day). Returns the new
        records."""
        now = now or self._clock()
        today = self.today(now)
        async with self._db.transaction() as session:
            if self._settings.care_calls_auto == "on":
                await self.enable_for_living_alone(session, actor=SYSTEM)
            rows = (await session.execute(
                select(CareSchedule, Elder).join(Elder, Elder.id == CareSchedule.elder_id)
                .where(CareSchedule.active.is_(True), CareSchedule.starts_on <= today,
                       CareSchedule.id.not_in(select(CareRecord.schedule_id).where(
                           CareRecord.local_date == today, CareRecord.schedule_id.is_not(None))))
                .order_by(CareSchedule.elder_id, CareSchedule.id))).all()
            by_elder: dict[int, tuple[Elder, list[tuple[CareSchedule, str]], list[tuple[CareSchedule, list[str]]]]]
            by_elder = {}
            for schedule, elder in rows:
                occasions = due_on(schedule, today, elder.birth_date)
                if not occasions or self.local_moment(today, schedule.window_end) <= now:
                    continue  # not due today, or its window is over (the platform was down through it)
                _, check_ins, greetings = by_elder.setdefault(elder.id, (elder, [], []))
                if occasions == [CHECK_IN]:
                    check_ins.append((schedule, CHECK_IN))
                else:
                    greetings.append((schedule, occasions))
            created: list[CareRecord] = []
            for elder, check_ins, greetings in by_elder.values():
                created += await self._plan_elder(session, elder, check_ins, greetings, today, now)
        return created

    async def _plan_elder(self, session: AsyncSession, elder: Elder, check_ins: list[tuple[CareSchedule, str]],
                          greetings: list[tuple[CareSchedule, list[str]]], today: dt.date,
                          now: dt.datetime) -> list[CareRecord]:
        greeting_prompts = [GREETING_PROMPTS[o] for _, occasions in greetings for o in occasions]
        records: list[CareRecord] = []
        calls: list[tuple[CareSchedule, str, list[str], list[CareRecord]]] = []
        for index, (schedule, _) in enumerate(check_ins):
            record_ = self._record(elder, schedule, today, CHECK_IN, None)
            prompts = greeting_prompts if index == 0 else []  # the greetings are said on the first check-in
            shared = [self._record(elder, s, today, GREETING, ",".join(o)) for s, o in greetings] if index == 0 else []
            calls.append((schedule, CHECK_IN, prompts, [record_, *shared]))
        if not check_ins and greetings:
            first = greetings[0][0]
            calls.append((first, GREETING, greeting_prompts,
                          [self._record(elder, s, today, GREETING, ",".join(o)) for s, o in greetings]))
        for schedule, kind, prompts, members in calls:
            session.add_all(members)
            await session.flush()
            records += members
            script = dict(CHECK_IN_SCRIPT, prompts=[*prompts, *CHECK_IN_SCRIPT["prompts"]]) if kind == CHECK_IN \
                else {"prompts": prompts}
            try:
                job = await enqueue(
                    session, purpose=OutboundPurpose.CARE_CALL, owner=OWNER, owner_ref=members[0].id,
                    target=elder.phone or "", script=script, created_by=OWNER, elder_id=elder.id,
                    language=elder.language if elder.language in ("zh-CN", "en") else "zh-CN",
                    max_attempts=self._settings.care_calls_attempts,
                    retry_seconds=self._settings.care_calls_retry_seconds,
                    ring_seconds=self._settings.outbound_ring_seconds,
                    window=(schedule.window_start, schedule.window_end),
                    expires_at=self.local_moment(today, schedule.window_end), known_prompts=self._known_prompts,
                    dial_basis=DialBasis.ELDER)
            except Invalid as error:  # no dialable number any more: an exception for the agents, not a call
                for member in members:
                    member.outcome, member.completed_at = CareOutcome.MISSED, now
                    member.details = {"not_called": error.message, "field": error.field}
                log.warning("care_calls.not_called", elder_id=elder.id, care_record_id=members[0].id,
                            field=error.field)
                continue
            for member in members:
                member.job_id = job.id
            self._greeting_by_sms(elder, kind, prompts)
        if records:
            self._dialer.wake()
        return records

    def _greeting_by_sms(self, elder: Elder, kind: str, greeting_prompts: list[str]) -> None:
        """Where an SMS greeting will be sent once the notifications domain (``callcenter/notifications/``, built
        separately) is listed before this plugin: its service, required in ``plugin.py``, would be given the elder
        and the occasion's template here, in the planner's transaction. Nothing is sent today."""
        return None

    @staticmethod
    def _record(elder: Elder, schedule: CareSchedule, day: dt.date, kind: str, occasion: str | None) -> CareRecord:
        return CareRecord(elder_id=elder.id, schedule_id=schedule.id, local_date=day, kind=kind, occasion=occasion,
                          window_start=schedule.window_start, window_end=schedule.window_end,
                          outcome=CareOutcome.PLANNED, attempts=0, call_ids=[], callback_call_ids=[], details={},
                          planned_at=utcnow())

    # -- outcomes ------------------------------------------------------------------------------------------------
    async def attempt_ended(self, session: AsyncSession, ended: AttemptEnded) -> None:
        """The outbound engine's news of one of our calls (its transaction): the records' tries and calls, and
        once the job is over, their outcomes — a missed check-in escalated."""
        members = (await session.scalars(select(CareRecord).where(CareRecord.job_id == ended.job_id)
                                          .order_by(CareRecord.id).with_for_update())).all()
        if not members:
            return
        now = self._clock()
        job = await session.get(OutboundJob, ended.job_id)
        for care in members:
            if ended.attempt:
                care.attempts = max(care.attempts, ended.attempt)
                care.last_attempt_at = now
            if ended.call_id is not None and ended.call_id not in care.call_ids:
                care.call_ids = [*care.call_ids, ended.call_id]
            if not ended.final or care.outcome is not CareOutcome.PLANNED:
                continue
            care.outcome = self._outcome(care, ended, job)
            care.digit = job.digit if job is not None else None
            care.completed_at = now
            log.info("care_calls.outcome", care_record_id=care.id, elder_id=care.elder_id, kind=care.kind,
                     outcome=care.outcome.value, attempts=care.attempts)
            if care.outcome is CareOutcome.MISSED:
                await self._escalate(session, care)

    @staticmethod
    def _outcome(care: CareRecord, ended: AttemptEnded, job: OutboundJob | None) -> CareOutcome:
        if ended.job_state is JobState.CANCELLED:
            return CareOutcome.CANCELLED
        if ended.job_state is not JobState.DONE:  # failed (every try unanswered) or expired (the window closed)
            return CareOutcome.UNANSWERED if care.kind == GREETING else CareOutcome.MISSED
        if care.kind == GREETING:
            return CareOutcome.GREETED
        return _CHOICES.get(job.outcome if job is not None and job.outcome else "", CareOutcome.NO_KEY)

    async def _escalate(self, session: AsyncSession, care: CareRecord) -> None:
        """No response to today's check-in: an emergency work order for the elder, then the ``on_missed``
        callbacks (the contact cascade), all in this transaction."""
        order = await raise_order(
            session, kind=WorkOrderKind.EMERGENCY, priority=MISSED_PRIORITY, actor_label=OWNER,
            elder_id=care.elder_id, title=MISSED_TITLE,
            description=f"{care.local_date} 的关爱电话（{care.window_start}-{care.window_end}）"
                        f"拨打 {care.attempts} 次均无人接听，请尽快联系老人或上门查看。",
            details={"care_record_id": care.id, "attempts": care.attempts, "local_date": care.local_date.isoformat()})
        care.work_order_id = order.id
        log.warning("care_calls.missed", care_record_id=care.id, elder_id=care.elder_id, work_order_id=order.id,
                    attempts=care.attempts)
        for callback in self._missed:
            await callback(session, care.elder_id, order.id, care.id)

    # -- exceptions ----------------------------------------------------------------------------------------------
    async def handle(self, session: AsyncSession, record_id: int, *, note: str, user_id: int | None,
                     actor: Actor) -> CareRecord:
        """An exception dealt with: who, when and how (409 for a record that is no exception or already dealt
        with)."""
        care = await session.get(CareRecord, record_id, with_for_update=True)
        if care is None:
            raise NotFound(f"no care record {record_id}", field="id")
        if care.outcome not in EXCEPTIONS:
            raise Conflict(f"care record {record_id} is {care.outcome.value}: nothing to follow up",
                           field="outcome")
        if care.handled_at is not None:
            raise Conflict(f"care record {record_id} was dealt with by {care.handled_by}", field="handled_at")
        care.handled_by_id, care.handled_by, care.handled_at = user_id, actor.label[:100], self._clock()
        care.handling_note = note
        record(session, actor, action="care_record.handled", target_type="care_record", target_id=care.id,
               details={"elder_id": care.elder_id, "outcome": care.outcome.value})
        return care


async def work_order_numbers(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return dict((await session.execute(select(WorkOrder.id, WorkOrder.number).where(
        WorkOrder.id.in_(wanted)))).all())
