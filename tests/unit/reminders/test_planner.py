"""The reminder planner against the real outbound engine (its AMI scripted) and the SMS service: medication times
made once in the centre's local day, quiet hours holding the call, a visit tomorrow reminded once, a missing
measurement found, and the outcomes from the engine."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.api.errors import Invalid
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.notifications.models import Purpose, SmsMessage
from callcenter.outbound.models import JobState
from callcenter.readings.models import ReadingType
from callcenter.reminders.models import Channel, Days, MedicationReminder, ReminderKind, ReminderOutcome
from tests.unit.care_calls.helpers import answer
from tests.unit.outbound.test_dialer import ANSWERED
from tests.unit.reminders.helpers import (
    ACTOR,
    elder,
    jobs,
    local_now,
    logs,
    medication,
    plan,
    reading,
    service,
    zone_at,
)


async def test_bad_reminders_name_their_field_and_store_nothing(db: Database, settings: Settings) -> None:
    reminders, *_ = service(db, settings, timezone="Asia/Shanghai")
    elder_id = await elder(db)
    no_phone = await elder(db, phone=None, name="李伯")
    cases: list[tuple[int, dict[str, object], str]] = [
        (elder_id, {"times": ["8:00"]}, "times"), (elder_id, {"times": ["24:00"]}, "times"),
        (elder_id, {"times": []}, "times"), (elder_id, {"times": ["08:00"], "days": Days.WEEKDAYS}, "weekdays"),
        (elder_id, {"times": ["08:00"], "weekdays": [1]}, "weekdays"),
        (no_phone, {"times": ["08:00"]}, "phone"), (no_phone, {"times": ["08:00"], "channel": Channel.SMS}, "phone"),
        (elder_id, {"times": ["08:00"], "channel": Channel.BOTH, "sms_label": "早饭后半小时吃的那两种降压药" * 4},
         "sms_label"),
    ]
    for target, fields, field in cases:
        with pytest.raises(Invalid) as refused:
            async with db.transaction() as session:
                await reminders.create(session, target, medication="药", actor=ACTOR, **fields)  # type: ignore[arg-type]
        assert refused.value.field == field, (fields, refused.value)
    async with db.transaction(read_only=True) as session:
        assert (await session.scalars(select(MedicationReminder))).all() == []
    # A short label fits: stored sealed with the medicine; the times sorted, once each.
    made = await medication(reminders, db, elder_id, ["20:00", "08:00", "08:00"], Channel.BOTH, sms_label="早饭后")
    assert made.times == ["08:00", "20:00"]


async def test_a_medication_time_is_made_once_across_rounds_and_restarts(db: Database, settings: Settings) -> None:
    zone = zone_at(12)
    reminders, *_ = service(db, settings, timezone=zone)
    now = local_now(zone)
    elder_id = await elder(db)
    other = await elder(db, phone="13800138001", name="李伯")
    on_time = now.strftime("%H:%M")
    earlier = (now - dt.timedelta(hours=2)).strftime("%H:%M")  # past: a reminder hours late is worse than none
    later = (now + dt.timedelta(hours=1)).strftime("%H:%M")
    reminder = await medication(reminders, db, elder_id, [earlier, on_time, later])
    not_today = now.date().isoweekday() % 7 + 1
    await medication(reminders, db, other, [on_time], days=Days.WEEKDAYS, weekdays=[not_today])
    made = await reminders.plan()
    assert [(r.kind, r.source_id, r.local_date, r.due_time) for r in made] == [
        (ReminderKind.MEDICATION, reminder.id, now.date(), on_time)]
    [job] = await jobs(db)
    assert (job.purpose.value, job.owner, job.owner_ref, job.target, job.elder_id, job.quiet_hours) == (
        "reminder", "reminders", made[0].id, "13800138000", elder_id, True)
    assert job.script["prompts"] == ["reminder-medication"] and job.script["choices"] == {"1": "acknowledged"}
    assert "氨氯地平" not in str(job.script), "the call names no medicine"
    assert await reminders.plan() == []
    restarted, *_ = service(db, settings, timezone=zone)
    assert await restarted.plan() == []
    assert len(await jobs(db)) == 1 and len(await logs(db)) == 1


async def test_the_day_is_the_centres_local_day_and_an_sms_names_no_medicine(
        db: Database, settings: Settings) -> None:
    # 16:25 UTC on 1 March is 00:25 on 2 March in Shanghai: the 00:10 dose is 2 March's (1 March's 23:50 is over
    # half an hour past: not made).
    now = dt.datetime(2026, 3, 1, 16, 25, tzinfo=dt.UTC)
    reminders, *_ = service(db, settings, clock=lambda: now, timezone="Asia/Shanghai")
    elder_id = await elder(db, name="王桂兰")
    await medication(reminders, db, elder_id, ["00:10", "23:50"], Channel.SMS)
    [made] = await reminders.plan(now)
    assert (made.local_date, made.due_time, made.outcome, made.job_id) == (
        dt.date(2026, 3, 2), "00:10", ReminderOutcome.SMS_SENT, None)
    # 23:55 on 2 March: the 23:50 dose; just after midnight, it is still made once (yesterday's key).
    late = dt.datetime(2026, 3, 2, 15, 55, tzinfo=dt.UTC)
    after_midnight = dt.datetime(2026, 3, 2, 16, 2, tzinfo=dt.UTC)
    [evening] = await reminders.plan(late)
    assert (evening.local_date, evening.due_time) == (dt.date(2026, 3, 2), "23:50")
    assert [r.due_time for r in await reminders.plan(after_midnight)] == []
    async with db.transaction(read_only=True) as session:
        message = await session.get(SmsMessage, made.sms_id)
    assert message is not None and message.purpose is Purpose.REMINDER and message.template == "reminder"
    assert message.body == "温馨提示：王某某今天00:10有服药提醒，请留意。" and "氨氯地平" not in message.body


async def test_a_reminder_at_22_00_is_held_by_the_quiet_hours(db: Database, settings: Settings) -> None:
    zone = zone_at(22)  # inside the default quiet hours 21:00-08:00
    reminders, dialer, ami, _ = service(db, settings, timezone=zone)
    elder_id = await elder(db)
    await medication(reminders, db, elder_id, [local_now(zone).strftime("%H:%M")], Channel.BOTH)
    [made] = await reminders.plan()
    assert made.job_id is not None and made.sms_id is not None
    await dialer.run_round()
    await dialer.drain()
    assert ami.sent == [], "nothing is dialled in the quiet hours"
    [job] = await jobs(db)
    assert job.state is JobState.QUEUED
    assert job.next_attempt_at.astimezone(ZoneInfo(zone)).time() == dt.time(8, 0)


@pytest.mark.parametrize(("key", "outcome"), [("1", ReminderOutcome.ACKNOWLEDGED),
                                               (None, ReminderOutcome.ANSWERED_NO_KEY)])
async def test_the_answer_is_the_outcome(db: Database, settings: Settings, key: str | None,
                                         outcome: ReminderOutcome) -> None:
    zone = zone_at(12)
    reminders, dialer, ami, _ = service(db, settings, timezone=zone)
    ami.outcomes["13800138000"] = ANSWERED
    await medication(reminders, db, await elder(db), [local_now(zone).strftime("%H:%M")])
    await reminders.plan()
    await answer(db, dialer, key)
    [stored] = await logs(db)
    assert (stored.outcome, stored.digit, stored.attempts, len(stored.call_ids)) == (outcome, key, 1, 1)
    assert stored.completed_at is not None


async def test_never_answered_is_unanswered_after_every_try(db: Database, settings: Settings) -> None:
    zone = zone_at(12)
    now = [utcnow() + dt.timedelta(seconds=1)]
    reminders, dialer, ami, _ = service(db, settings, clock=lambda: now[0], timezone=zone)
    await medication(reminders, db, await elder(db), [local_now(zone).strftime("%H:%M")])
    await reminders.plan()
    for attempt in range(2):
        await dialer.run_round()
        await dialer.drain()
        assert len(ami.sent) == attempt + 1
        now[0] += dt.timedelta(seconds=301)
    [stored] = await logs(db)
    assert (stored.outcome, stored.attempts, len(stored.call_ids)) == (ReminderOutcome.UNANSWERED, 2, 2)


async def test_a_paused_reminder_cancels_its_call_not_reached_yet(db: Database, settings: Settings) -> None:
    zone = zone_at(22)  # held by the quiet hours: still queued when it is paused
    reminders, *_ = service(db, settings, timezone=zone)
    elder_id = await elder(db)
    made = await medication(reminders, db, elder_id, [local_now(zone).strftime("%H:%M")])
    await reminders.plan()
    async with db.transaction() as session:  # a new name for the medicine leaves today's call as it is
        await reminders.update(session, elder_id, made.id, {"medication": "苯磺酸氨氯地平片"}, actor=ACTOR)
    assert (await logs(db))[0].outcome is ReminderOutcome.PLANNED
    async with db.transaction() as session:
        await reminders.update(session, elder_id, made.id, {"active": False}, actor=ACTOR)
    [stored] = await logs(db)
    [job] = await jobs(db)
    assert stored.outcome is ReminderOutcome.CANCELLED and job.state is JobState.CANCELLED
    assert await reminders.plan() == []


async def test_a_visit_tomorrow_is_reminded_once_in_the_daytime_window(db: Database, settings: Settings) -> None:
    zone = zone_at(10)  # inside CC_REMINDERS_WINDOW 09:00-11:00
    reminders, *_ = service(db, settings, timezone=zone)
    today = reminders.today()
    tomorrow, later = today + dt.timedelta(days=1), today + dt.timedelta(days=2)
    due, not_yet, ended = [await elder(db, phone=f"1380013800{n}", name=f"老人{n}") for n in range(3)]
    plan_id = await plan(db, due, started_on=today - dt.timedelta(days=89), next_visit_due=tomorrow)
    await plan(db, not_yet, started_on=today, next_visit_due=later)
    await plan(db, ended, started_on=today, next_visit_due=tomorrow, active=False)
    [made] = await reminders.plan()
    assert (made.kind, made.source_id, made.elder_id, made.due_time) == (ReminderKind.VISIT, plan_id, due, "09:00")
    [job] = await jobs(db)
    assert (job.window_start, job.window_end, job.script["prompts"]) == ("09:00", "11:00", ["reminder-visit"])
    assert job.expires_at == dt.datetime.combine(today, dt.time(11), tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)
    assert await reminders.plan() == []
    restarted, *_ = service(db, settings, timezone=zone)
    assert await restarted.plan() == [] and len(await logs(db)) == 1
    # Once the window has closed, nothing is made that day (a platform down through it).
    closed, *_ = service(db, settings, timezone=zone_at(12))
    await plan(db, not_yet, started_on=today, next_visit_due=closed.today() + dt.timedelta(days=1))
    assert await closed.plan() == []


async def test_a_missing_measurement_is_reminded_once_per_elder_and_day(db: Database, settings: Settings) -> None:
    zone = zone_at(10)
    reminders, *_ = service(db, settings, timezone=zone)
    today = reminders.today()
    yesterday_noon = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(12), tzinfo=ZoneInfo(zone))
    missing, measured, new_plan = [await elder(db, phone=f"1380013800{n}", name=f"老人{n}") for n in range(3)]
    started = today - dt.timedelta(days=30)
    daily_bp = {"measure": "blood_pressure", "every_days": 1, "times": "08:00"}
    weekly_weight = {"measure": "weight", "every_days": 7}
    first = await plan(db, missing, started_on=started, next_visit_due=today + dt.timedelta(days=60),
                       measurements=[daily_bp, weekly_weight, {"measure": "mood", "every_days": 1}])
    second = await plan(db, missing, started_on=started, next_visit_due=today + dt.timedelta(days=60),
                        measurements=[{"measure": "glucose", "every_days": 3}])
    await reading(db, missing, ReadingType.WEIGHT, yesterday_noon - dt.timedelta(days=3))
    # Today's blood pressure does not count for yesterday's.
    await reading(db, missing, ReadingType.BLOOD_PRESSURE, yesterday_noon + dt.timedelta(days=1))
    await plan(db, measured, started_on=started, next_visit_due=today + dt.timedelta(days=60),
               measurements=[daily_bp])
    await reading(db, measured, ReadingType.BLOOD_PRESSURE, yesterday_noon)
    await plan(db, new_plan, started_on=today - dt.timedelta(days=1), next_visit_due=today + dt.timedelta(days=60),
               measurements=[{"measure": "weight", "every_days": 7}])  # not a whole week yet
    [made] = await reminders.plan()
    assert (made.kind, made.source_id, made.elder_id) == (ReminderKind.MEASUREMENT, missing, missing)
    assert made.details["missing"] == [
        {"plan_id": first, "measure": "blood_pressure", "every_days": 1},
        {"plan_id": second, "measure": "glucose", "every_days": 3}]
    [job] = await jobs(db)
    assert job.script["prompts"] == ["reminder-measurement"] and job.window_start == "09:00"
    assert await reminders.plan() == []
    assert len(await logs(db)) == 1


async def test_visits_and_measurements_are_looked_for_every_quarter_hour(db: Database, settings: Settings) -> None:
    reminders, *_ = service(db, settings, timezone=zone_at(12), reminders_window="09:00-23:00")
    start = utcnow()
    assert await reminders.plan(start) == []
    today = reminders.today(start)
    elder_id = await elder(db)
    await plan(db, elder_id, started_on=today, next_visit_due=today + dt.timedelta(days=1))
    assert await reminders.plan(start + dt.timedelta(minutes=1)) == [], "not looked for again yet"
    [made] = await reminders.plan(start + dt.timedelta(minutes=15))
    assert (made.kind, made.elder_id) == (ReminderKind.VISIT, elder_id)


async def test_a_process_that_looked_before_another_committed_makes_nothing_twice(
        db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    zone = zone_at(12)
    first, *_ = service(db, settings, timezone=zone)
    second, *_ = service(db, settings, timezone=zone)
    elder_id = await elder(db)
    other = await elder(db, phone="13800138001", name="李伯")
    await medication(first, db, elder_id, [local_now(zone).strftime("%H:%M")])
    [made] = await first.plan()

    async def nothing_made_yet(*_args: object) -> set[tuple[object, ...]]:
        return set()

    monkeypatch.setattr(second, "_made", nothing_made_yet)  # it read before the first process committed
    late = await medication(first, db, other, [local_now(zone).strftime("%H:%M")])
    assert [(r.source_id, r.elder_id) for r in await second.plan()] == [(late.id, other)]
    assert len(await logs(db)) == 2 and len(await jobs(db)) == 2, "the first reminder once, the new one once"
    assert made.id in {r.id for r in await logs(db)}
