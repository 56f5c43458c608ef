"""Reminders (issue 16): medication times, a missing measurement of a chronic-disease plan, a visit tomorrow.

**Medication reminders** are validated here, whoever writes them: times ``HH:MM`` of the centre's local day
(CC_TIMEZONE), every day or on weekdays, by call, SMS or both. A call needs a dialable number on the elder's file
(``phone``); an SMS must fit one message with the elder's label (``sms_label``); each error names its field with
nothing stored.

**The planner** (a periodic job every CC_REMINDERS_PLAN_SECONDS, and at once when a reminder is written) makes, in
one transaction per round, the reminders that are due and not made yet:

- a medication time reached in the last ``LATE`` minutes (a platform down longer than that skips it: a reminder
  hours late is worse than none): a call (expiring ``MEDICATION_EXPIRY`` after the time) and/or an SMS;
- a follow-up visit of an active chronic-disease plan due tomorrow (``next_visit_due``): a call today in
  CC_REMINDERS_WINDOW;
- a measurement a plan expects (``measurements``: a reading type every so many days) with no reading of that type
  in the last that many local days: one call today in CC_REMINDERS_WINDOW per elder, whatever the number of plans
  or measures.

Each is one ``reminder_log`` row, unique per (kind, source, local date, due time): a reminder is made once, across
rounds, restarts and processes. Calls are the outbound engine's (purpose ``reminder``: the quiet hours,
CC_OUTBOUND_QUIET_HOURS, hold them); their prompts name no medicine, measure or condition. **Outcomes** come from
the engine (``on_attempt_ended``): 1 → acknowledged, answered without a key, never answered (or its time passed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.dial_policy.services import DialBasis
from callcenter.elders.models import Elder
from callcenter.health_records.models import ChronicPlan
from callcenter.logs import get_logger
from callcenter.notifications.models import Purpose
from callcenter.notifications.services import NotificationService
from callcenter.outbound.models import JobState, OutboundPurpose
from callcenter.outbound.policy import clock_time
from callcenter.outbound.services import AttemptEnded, OutboundDialer, cancel_jobs, dialable, enqueue
from callcenter.periodic import PeriodicJob
from callcenter.readings.models import Reading, ReadingType
from callcenter.reminders.models import (
    Channel,
    Days,
    MedicationReminder,
    ReminderKind,
    ReminderLog,
    ReminderOutcome,
)

log = get_logger(__name__)

OWNER = "reminders"  # the outbound jobs' owner
PROMPTS = {ReminderKind.MEDICATION: "reminder-medication", ReminderKind.MEASUREMENT: "reminder-measurement",
           ReminderKind.VISIT: "reminder-visit"}
THANKS = "reminder-thanks"
ACKNOWLEDGED = "acknowledged"
SMS_TEMPLATE = "reminder"
# The SMS's {what} and {when} when the reminder has no label of its own: no medicine named.
SMS_WHAT = {"zh-CN": "服药提醒", "en": "medication"}
SMS_WHEN = {"zh-CN": "今天{time}", "en": "at {time}"}
LATE = dt.timedelta(minutes=30)  # a medication time this far past is still reminded (a restart, a slow round)
MEDICATION_EXPIRY = dt.timedelta(hours=2)  # a medication call not reached by then is dropped (quiet hours)
MEDICATION_ATTEMPTS, MEDICATION_RETRY_SECONDS = 2, 300
DAYTIME_ATTEMPTS, DAYTIME_RETRY_SECONDS = 2, 1800
MAX_TIMES = 12
# Visits tomorrow and missing measurements are looked for at most this often (medication times every round): they
# change by the day, and the measurement scan reads every active plan. The log's key keeps each once regardless.
DAYTIME_SCAN = dt.timedelta(minutes=15)
FIRST_PLAN_SECONDS = 5.0
LANGUAGES = ("zh-CN", "en")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def script(kind: ReminderKind) -> dict[str, Any]:
    """What the person hears: the kind's prompt, 1 to acknowledge (thanked), nothing else."""
    return {"prompts": [PROMPTS[kind]], "choices": {"1": ACKNOWLEDGED}, "replies": {"1": [THANKS]}}


def check_times(times: Iterable[str]) -> list[str]:
    """The times as stored (``HH:MM``, sorted, once each); ``Invalid`` naming ``times`` otherwise."""
    given = list(times)
    if not 1 <= len(given) <= MAX_TIMES:
        raise Invalid(f"list 1 to {MAX_TIMES} times of day (HH:MM)", field="times")
    for value in given:
        if not isinstance(value, str) or not _TIME.fullmatch(value):
            raise Invalid(f"{value!r} is not a time of day HH:MM (00:00 to 23:59)", field="times")
    return sorted(set(given))


def check_weekdays(days: Days, weekdays: Iterable[int]) -> list[int]:
    chosen = sorted(set(weekdays))
    if days is Days.WEEKDAYS:
        if not chosen or any(not 1 <= day <= 7 for day in chosen):
            raise Invalid("list the weekdays, 1 (Monday) to 7 (Sunday)", field="weekdays")
    elif chosen:
        raise Invalid("only a reminder on weekdays lists weekdays", field="weekdays")
    return chosen


def language_of(elder: Elder) -> str:
    return elder.language if elder.language in LANGUAGES else "zh-CN"


def due_on(reminder: MedicationReminder, day: dt.date) -> bool:
    return reminder.active and (reminder.days is Days.DAILY or day.isoweekday() in reminder.weekdays)


@dataclasses.dataclass(frozen=True, slots=True)
class Due:
    """One reminder to make: its key, whom, and the call's window or expiry."""

    kind: ReminderKind
    source_id: int
    local_date: dt.date
    due_time: str
    elder: Elder
    channel: Channel
    window: tuple[str, str] | None
    expires_at: dt.datetime
    details: dict[str, Any]
    sms_label: str | None = None


class Reminders:
    """The domain's service: medication reminders' writes, the planner's rounds and the engine's outcomes."""

    def __init__(self, db: Database, settings: Settings, dialer: OutboundDialer, sms: NotificationService, *,
                 known_prompts: frozenset[str] | None = None, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._db = db
        self._settings = settings
        self._zone = ZoneInfo(settings.timezone)
        self._dialer = dialer
        self._sms = sms
        self._known_prompts = known_prompts
        self._clock = clock
        start, end = settings.reminders_window.split("-")
        self._window = (start, end)
        self._sms_prefix = f"【{settings.sms_signature}】" if settings.sms_signature else ""
        # The platform starts and stops this job (plugin.py); ``wake`` brings its round forward.
        self.planner = PeriodicJob("reminder-planner", self._plan_round, first_run_seconds=FIRST_PLAN_SECONDS,
                                   interval_seconds=settings.reminders_plan_seconds)
        self._last_daytime_scan: dt.datetime | None = None  # this process's last visit and measurement scan
        dialer.on_attempt_ended(OWNER, self.attempt_ended)

    # -- time ----------------------------------------------------------------------------------------------------
    def today(self, now: dt.datetime | None = None) -> dt.date:
        return (now or self._clock()).astimezone(self._zone).date()

    def local_moment(self, day: dt.date, clock: str) -> dt.datetime:
        """``clock`` (``HH:MM``) on ``day`` in the centre's zone, in UTC."""
        time = clock_time(clock, field="time")
        return dt.datetime.combine(day, time, tzinfo=self._zone).astimezone(dt.UTC)

    # -- medication reminders ------------------------------------------------------------------------------------
    def _check_sms(self, elder: Elder, label: str | None) -> None:
        """The longest SMS this reminder could send fits one message: ``Invalid`` naming ``sms_label``."""
        language = language_of(elder)
        values = {"elder_name": elder.full_name, "what": label or SMS_WHAT[language],
                  "when": SMS_WHEN[language].format(time="00:00")}
        try:
            self._sms.templates.render(SMS_TEMPLATE, values, language, prefix=self._sms_prefix)
        except Invalid as error:
            raise Invalid(error.message, field="sms_label") from None

    def _check(self, elder: Elder, channel: Channel, sms_label: str | None) -> None:
        dialable(elder.phone or "", via_trunk=True, field="phone")  # an SMS goes to the same number
        if channel is not Channel.CALL:
            self._check_sms(elder, sms_label)

    async def create(self, session: AsyncSession, elder_id: int, *, medication: str, times: Iterable[str],
                     actor: Actor, days: Days = Days.DAILY, weekdays: Iterable[int] = (),
                     channel: Channel = Channel.CALL, active: bool = True,
                     sms_label: str | None = None) -> MedicationReminder:
        elder = await get_elder(session, elder_id)
        stored_times = check_times(times)
        stored_weekdays = check_weekdays(days, weekdays)
        self._check(elder, channel, sms_label)
        reminder = MedicationReminder(elder_id=elder.id, medication=medication, sms_label=sms_label,
                                      times=stored_times, days=days, weekdays=stored_weekdays, channel=channel,
                                      active=active, created_by=actor.label[:100])
        session.add(reminder)
        await session.flush()
        record(session, actor, action="medication_reminder.created", target_type="medication_reminder",
               target_id=reminder.id, details={"elder_id": elder.id, "times": stored_times, "days": days.value,
                                               "channel": channel.value, "active": active})
        return reminder

    async def update(self, session: AsyncSession, elder_id: int, reminder_id: int, changes: dict[str, Any], *,
                     actor: Actor) -> MedicationReminder:
        """Apply ``changes`` (the fields given); the whole reminder is checked again. A reminder paused, or whose
        times, days or channel change, stops its calls not reached yet (a cancelled time is not made again)."""
        reminder = await get_reminder(session, elder_id, reminder_id)
        elder = await get_elder(session, elder_id)
        days = Days(changes.get("days", reminder.days))
        times = check_times(changes["times"]) if "times" in changes else reminder.times
        weekdays = check_weekdays(days, changes.get("weekdays", [] if days is Days.DAILY else reminder.weekdays))
        channel = Channel(changes.get("channel", reminder.channel))
        label = changes.get("sms_label", reminder.sms_label)
        self._check(elder, channel, label)
        reminder.times, reminder.days, reminder.weekdays, reminder.channel = times, days, weekdays, channel
        reminder.sms_label = label
        if "medication" in changes:
            reminder.medication = changes["medication"]
        if "active" in changes:
            reminder.active = bool(changes["active"])
        if not reminder.active or {"times", "days", "weekdays", "channel"} & set(changes):
            # Today's call not reached yet is stopped; a time still ahead today is made at its time as usual.
            await self._cancel_planned(session, ReminderKind.MEDICATION, reminder.id)
        record(session, actor, action="medication_reminder.updated", target_type="medication_reminder",
               target_id=reminder.id, details={"elder_id": elder_id, "changed": sorted(changes)})
        return reminder

    async def delete(self, session: AsyncSession, elder_id: int, reminder_id: int, *, actor: Actor) -> None:
        reminder = await get_reminder(session, elder_id, reminder_id)
        await self._cancel_planned(session, ReminderKind.MEDICATION, reminder.id)
        await session.delete(reminder)
        record(session, actor, action="medication_reminder.deleted", target_type="medication_reminder",
               target_id=reminder_id, details={"elder_id": elder_id})

    async def _cancel_planned(self, session: AsyncSession, kind: ReminderKind, source_id: int) -> None:
        planned = (await session.scalars(select(ReminderLog).where(
            ReminderLog.kind == kind, ReminderLog.source_id == source_id,
            ReminderLog.outcome == ReminderOutcome.PLANNED).with_for_update())).all()
        jobs = [row.job_id for row in planned if row.job_id is not None]
        cancelled = set(await cancel_jobs(session, jobs, reason="reminder changed"))
        for row in planned:
            if row.job_id in cancelled:
                row.outcome, row.completed_at = ReminderOutcome.CANCELLED, self._clock()

    # -- the planner ---------------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Plan now (a reminder was written)."""
        self.planner.run_soon()

    async def _plan_round(self) -> None:
        made = await self.plan()
        if made:
            log.info("reminders.planned", reminders=len(made))

    async def plan(self, now: dt.datetime | None = None) -> list[ReminderLog]:
        """The reminders due now and not made yet (each once). Returns the new log rows."""
        now = now or self._clock()
        today = self.today(now)
        async with self._db.transaction() as session:
            due = await self._due_medication(session, now, today)
            daytime = self._last_daytime_scan is None or self.today(self._last_daytime_scan) != today \
                or now - self._last_daytime_scan >= DAYTIME_SCAN
            if daytime:
                due += [*await self._due_visits(session, now, today), *await self._due_measurements(session, now,
                                                                                                  today)]
            made = [row for item in due if (row := await self._make(session, item, now)) is not None]
        if daytime:
            self._last_daytime_scan = now
        if any(row.job_id is not None for row in made):
            self._dialer.wake()
        if any(row.sms_id is not None for row in made):
            self._sms.wake()
        return made

    async def _made(self, session: AsyncSession, kind: ReminderKind, days: Iterable[dt.date]) -> set[tuple[Any, ...]]:
        rows = (await session.execute(select(ReminderLog.source_id, ReminderLog.local_date, ReminderLog.due_time)
                                      .where(ReminderLog.kind == kind,
                                             ReminderLog.local_date.in_(list(days))))).all()
        return {tuple(row) for row in rows}

    async def _due_medication(self, session: AsyncSession, now: dt.datetime, today: dt.date) -> list[Due]:
        days = [today - dt.timedelta(days=1), today]  # a time just before midnight, made just after it
        made = await self._made(session, ReminderKind.MEDICATION, days)
        rows = (await session.execute(select(MedicationReminder, Elder).join(
            Elder, Elder.id == MedicationReminder.elder_id).where(MedicationReminder.active.is_(True))
            .order_by(MedicationReminder.id))).all()
        due: list[Due] = []
        for reminder, elder in rows:
            for day in days:
                if not due_on(reminder, day):
                    continue
                for time in reminder.times:
                    moment = self.local_moment(day, time)
                    if not moment <= now < moment + LATE or (reminder.id, day, time) in made:
                        continue
                    due.append(Due(ReminderKind.MEDICATION, reminder.id, day, time, elder, reminder.channel,
                                   None, moment + MEDICATION_EXPIRY, {}, reminder.sms_label))
        return due

    def _daytime(self, today: dt.date, now: dt.datetime) -> dt.datetime | None:
        """The end of today's reminder window, or None once it has passed."""
        closes = self.local_moment(today, self._window[1])
        return closes if now < closes else None

    async def _due_visits(self, session: AsyncSession, now: dt.datetime, today: dt.date) -> list[Due]:
        closes = self._daytime(today, now)
        if closes is None:
            return []
        made = await self._made(session, ReminderKind.VISIT, [today])
        rows = (await session.execute(select(ChronicPlan, Elder).join(Elder, Elder.id == ChronicPlan.elder_id).where(
            ChronicPlan.active.is_(True), ChronicPlan.next_visit_due == today + dt.timedelta(days=1))
            .order_by(ChronicPlan.id))).all()
        return [Due(ReminderKind.VISIT, plan.id, today, self._window[0], elder, Channel.CALL, self._window, closes,
                    {"plan_id": plan.id, "visit_due": plan.next_visit_due.isoformat()})
                for plan, elder in rows if (plan.id, today, self._window[0]) not in made]

    async def _due_measurements(self, session: AsyncSession, now: dt.datetime, today: dt.date) -> list[Due]:
        """Per elder, the measures their active plans expect that have no reading in their last period (the
        ``every_days`` local days before today), when the plan has run at least that long."""
        closes = self._daytime(today, now)
        if closes is None:
            return []
        made = await self._made(session, ReminderKind.MEASUREMENT, [today])
        rows = (await session.execute(select(ChronicPlan, Elder).join(Elder, Elder.id == ChronicPlan.elder_id).where(
            ChronicPlan.active.is_(True), ChronicPlan.started_on < today).order_by(ChronicPlan.elder_id,
                                                                                   ChronicPlan.id))).all()
        known = {t.value for t in ReadingType}
        missing: dict[int, tuple[Elder, list[dict[str, Any]]]] = {}
        period_end = self.local_moment(today, "00:00")
        for plan, elder in rows:
            if (elder.id, today, self._window[0]) in made:
                continue
            for expected in plan.measurements or []:
                measure, every = expected.get("measure"), expected.get("every_days")
                if measure not in known or not isinstance(every, int) or every < 1:
                    continue  # a measure no device or form records as a reading: nothing to look for
                first = today - dt.timedelta(days=every)
                if plan.started_on > first:
                    continue  # the plan has not run a whole period yet
                seen = await session.scalar(select(Reading.id).where(
                    Reading.elder_id == elder.id, Reading.type == ReadingType(measure),
                    Reading.measured_at >= self.local_moment(first, "00:00"),
                    Reading.measured_at < period_end).limit(1))
                if seen is None:
                    missing.setdefault(elder.id, (elder, []))[1].append(
                        {"plan_id": plan.id, "measure": measure, "every_days": every})
        return [Due(ReminderKind.MEASUREMENT, elder.id, today, self._window[0], elder, Channel.CALL, self._window,
                    closes, {"missing": wanted}) for elder, wanted in missing.values()]

    async def _make(self, session: AsyncSession, due: Due, now: dt.datetime) -> ReminderLog | None:
        """The log row, then the call and/or the SMS, in the planner's transaction. What cannot be made is logged
        ``failed`` with the reason (no personal data: the field and the message). None when another process has
        made it meanwhile (the unique key refuses the second row; this round carries on with the rest)."""
        elder = due.elder
        row = ReminderLog(kind=due.kind, elder_id=elder.id, source_id=due.source_id, local_date=due.local_date,
                          due_time=due.due_time, channel=due.channel, outcome=ReminderOutcome.PLANNED, attempts=0,
                          call_ids=[], details=dict(due.details), planned_at=now)
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another process made it since this round looked: once is enough
            log.info("reminders.made_elsewhere", kind=due.kind.value, source_id=due.source_id)
            return None
        language = language_of(elder)
        problems: dict[str, Any] = {}
        if due.channel is not Channel.SMS:
            try:
                job = await enqueue(
                    session, purpose=OutboundPurpose.REMINDER, owner=OWNER, owner_ref=row.id,
                    target=elder.phone or "", script=script(due.kind), created_by=OWNER, elder_id=elder.id,
                    language=language, max_attempts=MEDICATION_ATTEMPTS if due.window is None else DAYTIME_ATTEMPTS,
                    retry_seconds=MEDICATION_RETRY_SECONDS if due.window is None else DAYTIME_RETRY_SECONDS,
                    ring_seconds=self._settings.outbound_ring_seconds, window=due.window,
                    expires_at=due.expires_at, known_prompts=self._known_prompts, dial_basis=DialBasis.ELDER)
                row.job_id = job.id
            except Invalid as error:
                problems["call"] = {"error": error.message, "field": error.field}
        if due.channel is not Channel.CALL:
            values = {"elder_name": elder.full_name, "what": due.sms_label or SMS_WHAT[language],
                      "when": SMS_WHEN[language].format(time=due.due_time)}
            try:
                message = await self._sms.queue(session, to=elder.phone or "", template=SMS_TEMPLATE, values=values,
                                                purpose=Purpose.REMINDER, language=language, elder_id=elder.id)
                row.sms_id = message.id
            except Invalid as error:
                problems["sms"] = {"error": error.message, "field": error.field}
        if problems:
            row.details = {**row.details, "not_made": problems}
        if row.job_id is None:  # no call to wait for: the outcome is known now
            row.outcome = ReminderOutcome.SMS_SENT if row.sms_id is not None else ReminderOutcome.FAILED
            row.completed_at = now
        if problems:
            log.warning("reminders.not_made", reminder_log_id=row.id, kind=due.kind.value, elder_id=elder.id,
                        fields=sorted(p["field"] for p in problems.values()))
        return row

    # -- outcomes ------------------------------------------------------------------------------------------------
    async def attempt_ended(self, session: AsyncSession, ended: AttemptEnded) -> None:
        """The outbound engine's news of one of our calls (its transaction): tries, calls and the outcome."""
        row = (await session.scalars(select(ReminderLog).where(ReminderLog.job_id == ended.job_id)
                                     .with_for_update())).first()
        if row is None:
            return
        if ended.attempt:
            row.attempts = max(row.attempts, ended.attempt)
        if ended.call_id is not None and ended.call_id not in row.call_ids:
            row.call_ids = [*row.call_ids, ended.call_id]
        if not ended.final or row.outcome is not ReminderOutcome.PLANNED:
            return
        if ended.job_state is JobState.CANCELLED:
            row.outcome = ReminderOutcome.CANCELLED
        elif ended.job_state is not JobState.DONE:  # every try unanswered, or its time passed first
            row.outcome = ReminderOutcome.UNANSWERED
        elif ended.choice == ACKNOWLEDGED:
            row.outcome = ReminderOutcome.ACKNOWLEDGED
        else:
            row.outcome = ReminderOutcome.ANSWERED_NO_KEY
        row.digit, row.completed_at = ended.digit, self._clock()
        log.info("reminders.outcome", reminder_log_id=row.id, kind=row.kind.value, elder_id=row.elder_id,
                 outcome=row.outcome.value, attempts=row.attempts)


async def get_elder(session: AsyncSession, elder_id: int) -> Elder:
    elder = await session.get(Elder, elder_id)
    if elder is None:
        raise NotFound(f"no elder {elder_id}", field="id")
    return elder


async def get_reminder(session: AsyncSession, elder_id: int, reminder_id: int) -> MedicationReminder:
    reminder = await session.get(MedicationReminder, reminder_id)
    if reminder is None or reminder.elder_id != elder_id:
        raise NotFound(f"elder {elder_id} has no medication reminder {reminder_id}", field="reminder_id")
    return reminder
