"""The care-call planner and outcomes against the real outbound engine (its AMI scripted): one call per schedule
due on the centre's local day, never twice; the keys become care records; a check-in missed after every try
raises an emergency order and tells the cascade's hook in the same transaction; quiet hours hold the calls."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Invalid
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor, record
from callcenter.care_calls.models import EXCEPTIONS, CareOutcome, CareRecord, CareSchedule, Recurrence
from callcenter.care_calls.services import CareCalls
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.outbound.models import JobState, OutboundJob
from tests.unit.care_calls.helpers import answer, elder, service, zone_at
from tests.unit.outbound.test_dialer import ANSWERED

ACTOR = Actor(None, "test")


async def _schedule(care: CareCalls, db: Database, elder_id: int, recurrence: Recurrence = Recurrence.DAILY,
                    window: tuple[str, str] = ("09:00", "17:00"), **fields: object) -> int:
    async with db.transaction() as session:
        schedule = await care.create_schedule(session, elder_id, recurrence=recurrence, window_start=window[0],
                                              window_end=window[1], actor=ACTOR, **fields)  # type: ignore[arg-type]
        return schedule.id


async def _records(db: Database) -> list[CareRecord]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(CareRecord).order_by(CareRecord.id))).all())


async def _jobs(db: Database) -> list[OutboundJob]:
    async with db.transaction(read_only=True) as session:
        return list((await session.scalars(select(OutboundJob).order_by(OutboundJob.id))).all())


async def test_each_schedule_due_today_is_planned_once_even_across_restarts(db: Database, settings: Settings) -> None:
    care, _, _ = service(db, settings, timezone=zone_at(12))
    today = care.today()
    daily, weekly, other_day, custom, not_today, paused, over, second = [
        await elder(db, phone=f"1380013800{n}", name=f"老人{n}") for n in range(8)]
    await _schedule(care, db, daily)
    await _schedule(care, db, weekly, Recurrence.WEEKLY, weekdays=[today.isoweekday()])
    await _schedule(care, db, other_day, Recurrence.WEEKLY, weekdays=[today.isoweekday() % 7 + 1])
    await _schedule(care, db, custom, Recurrence.CUSTOM, dates=[today, today + dt.timedelta(days=3)])
    await _schedule(care, db, not_today, Recurrence.CUSTOM, dates=[today + dt.timedelta(days=1)])
    await _schedule(care, db, paused, active=False)
    await _schedule(care, db, over, window=("09:00", "10:00"))  # its window is over at 12:xx: nothing today
    await _schedule(care, db, second)
    planned = await care.plan()
    assert sorted(r.elder_id for r in planned) == [daily, weekly, custom, second]
    assert {r.local_date for r in planned} == {today}
    jobs = await _jobs(db)
    assert len(jobs) == 4
    job = next(j for j in jobs if j.elder_id == daily)
    assert (job.purpose.value, job.owner, job.target, job.window_start, job.window_end) == (
        "care_call", "care_calls", "13800138000", "09:00", "17:00")
    assert (job.max_attempts, job.retry_seconds, job.quiet_hours, job.dial_basis) == (3, 900, True, "elder")
    assert job.expires_at == dt.datetime.combine(today, dt.time(17), tzinfo=ZoneInfo(zone_at(12))).astimezone(dt.UTC)
    assert job.script["choices"] == {"1": "well", "2": "call_back", "0": "agent"}
    # Planned again, and by a new instance (a restart): nothing more.
    assert await care.plan() == []
    restarted, _, _ = service(db, settings, timezone=zone_at(12))
    assert await restarted.plan() == []
    assert len(await _jobs(db)) == 4 and len(await _records(db)) == 4


async def test_today_is_the_centres_local_day(db: Database, settings: Settings) -> None:
    care, _, _ = service(db, settings, timezone="Asia/Shanghai")
    assert care.today(dt.datetime(2026, 3, 1, 17, 0, tzinfo=dt.UTC)) == dt.date(2026, 3, 2)
    assert care.today(dt.datetime(2026, 3, 1, 15, 59, tzinfo=dt.UTC)) == dt.date(2026, 3, 1)
    assert care.local_moment(dt.date(2026, 3, 2), "09:00") == dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


async def test_a_greeting_due_today_is_said_on_the_check_in_call(db: Database, settings: Settings) -> None:
    care, _, _ = service(db, settings, timezone=zone_at(12))
    today = care.today()
    born = today.replace(year=today.year - 80) if (today.month, today.day) != (2, 29) else dt.date(1948, 2, 29)
    both = await elder(db, birth_date=born)
    greeting_only = await elder(db, phone="13800138009", birth_date=born)
    await _schedule(care, db, both)
    await _schedule(care, db, both, Recurrence.BIRTHDAY, birthday_calendar="solar")
    await _schedule(care, db, greeting_only, Recurrence.BIRTHDAY, birthday_calendar="solar")
    planned = await care.plan()
    assert sorted((r.elder_id, r.kind, r.occasion) for r in planned) == [
        (both, "check_in", None), (both, "greeting", "birthday"), (greeting_only, "greeting", "birthday")]
    jobs = {j.elder_id: j for j in await _jobs(db)}
    assert len(await _jobs(db)) == 2
    assert jobs[both].script["prompts"] == ["care-greeting-birthday", "outbound-checkin"]
    assert jobs[greeting_only].script["prompts"] == ["care-greeting-birthday"]
    assert not jobs[greeting_only].script["choices"]


@pytest.mark.parametrize(("key", "outcome", "exception"), [
    ("1", CareOutcome.WELL, False), ("2", CareOutcome.CALL_BACK, True), ("0", CareOutcome.AGENT, False),
    (None, CareOutcome.NO_KEY, True)])
async def test_the_answer_becomes_the_care_record(db: Database, settings: Settings, key: str | None,
                                                  outcome: CareOutcome, exception: bool) -> None:
    care, dialer, ami = service(db, settings, timezone=zone_at(12))
    ami.outcomes["13800138000"] = ANSWERED
    elder_id = await elder(db)
    await _schedule(care, db, elder_id)
    await care.plan()
    await answer(db, dialer, key)
    [stored] = await _records(db)
    assert (stored.outcome, stored.digit, stored.attempts) == (outcome, key, 1)
    assert len(stored.call_ids) == 1 and stored.completed_at is not None
    assert stored.work_order_id is None  # only a missed check-in raises an order
    assert (stored.outcome in EXCEPTIONS) is exception


async def test_a_check_in_missed_after_three_tries_raises_an_order_and_tells_the_cascade(
        db: Database, settings: Settings) -> None:
    now = [utcnow() + dt.timedelta(seconds=1)]
    care, dialer, ami = service(db, settings, clock=lambda: now[0], timezone=zone_at(12))
    heard: list[tuple[int, int, int]] = []

    async def cascade(session: AsyncSession, elder_id: int, order_id: int, record_id: int) -> None:
        heard.append((elder_id, order_id, record_id))
        record(session, ACTOR, action="test.cascade_started", target_type="work_order", target_id=order_id)

    care.on_missed(cascade)
    elder_id = await elder(db)
    await _schedule(care, db, elder_id)
    [planned] = await care.plan()
    for attempt in range(3):
        await dialer.run_round()
        await dialer.drain()
        assert len(ami.sent) == attempt + 1
        now[0] += dt.timedelta(seconds=901)  # 3 tries, 15 minutes apart
    [stored] = await _records(db)
    assert (stored.outcome, stored.attempts, len(stored.call_ids)) == (CareOutcome.MISSED, 3, 3)
    assert (await _jobs(db))[0].state is JobState.FAILED
    async with db.transaction(read_only=True) as session:
        order = await session.get(WorkOrder, stored.work_order_id)
        assert order is not None
        assert (order.kind, order.priority, order.elder_id, order.title) == (
            WorkOrderKind.EMERGENCY, 2, elder_id, "今日关爱电话无人接听")
        started = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action == "test.cascade_started"))).all()
    assert heard == [(elder_id, order.id, planned.id)]
    assert [a.target_id for a in started] == [str(order.id)], "the hook's writes commit with the escalation"


async def test_a_failing_hook_leaves_nothing_half_written(db: Database, settings: Settings) -> None:
    now = [utcnow() + dt.timedelta(seconds=1)]
    care, dialer, _ = service(db, settings, clock=lambda: now[0], timezone=zone_at(12), care_calls_attempts=1)

    async def broken(_session: AsyncSession, _elder: int, _order: int, _record: int) -> None:
        raise RuntimeError("the cascade could not start")

    care.on_missed(broken)
    await _schedule(care, db, await elder(db))
    await care.plan()
    await dialer.run_round()
    await dialer.drain()  # the attempt's end is rolled back with the hook's failure
    [stored] = await _records(db)
    assert stored.outcome is CareOutcome.PLANNED and stored.work_order_id is None
    async with db.transaction(read_only=True) as session:
        assert (await session.scalars(select(WorkOrder))).all() == []


async def test_quiet_hours_refuse_a_window_inside_them_and_hold_one_that_overlaps(
        db: Database, settings: Settings) -> None:
    zone = zone_at(7)  # 07:MM local: inside the default quiet hours 21:00-08:00
    care, dialer, ami = service(db, settings, timezone=zone)
    elder_id = await elder(db)
    with pytest.raises(Invalid, match="quiet hours") as refused:
        await _schedule(care, db, elder_id, window=("22:00", "23:30"))
    assert refused.value.field == "window_start"
    with pytest.raises(Invalid, match="quiet hours"):
        await _schedule(care, db, elder_id, window=("05:00", "08:00"))
    await _schedule(care, db, elder_id, window=("06:00", "10:00"))
    await care.plan()
    await dialer.run_round()
    await dialer.drain()
    assert ami.sent == [], "nothing is dialled in the quiet hours"
    [job] = await _jobs(db)
    assert job.next_attempt_at.astimezone(ZoneInfo(zone)).time() == dt.time(8, 0)
    async with db.transaction(read_only=True) as session:
        assert len((await session.scalars(select(CareSchedule))).all()) == 1


async def test_bad_schedules_name_their_field_and_store_nothing(db: Database, settings: Settings) -> None:
    care, _, _ = service(db, settings, timezone="Asia/Shanghai")
    today = care.today()
    elder_id = await elder(db)
    no_phone = await elder(db, phone=None)
    cases: list[tuple[dict[str, object], str, str]] = [
        ({"window": ("9:00", "11:00")}, "window_start", "HH:MM"),
        ({"window": ("09:00", "24:00")}, "window_end", "HH:MM"),
        ({"window": ("11:00", "09:00")}, "window_end", "end after it starts"),
        ({"starts_on": today - dt.timedelta(days=1)}, "starts_on", "past"),
        ({"ends_on": today - dt.timedelta(days=1)}, "ends_on", "end before"),
        ({"recurrence": Recurrence.WEEKLY}, "weekdays", "weekdays"),
        ({"recurrence": Recurrence.WEEKLY, "weekdays": [8]}, "weekdays", "weekdays"),
        ({"recurrence": Recurrence.CUSTOM, "dates": [today - dt.timedelta(days=2)]}, "dates", "past"),
        ({"recurrence": Recurrence.CUSTOM}, "dates", "dates"),
        ({"weekdays": [1]}, "weekdays", "only a weekly"),
        ({"recurrence": Recurrence.FESTIVALS, "festivals": ["qixi"]}, "festivals", "no festival"),
        ({"recurrence": Recurrence.BIRTHDAY}, "birth_date", "date of birth"),
        ({"elder": no_phone}, "phone", "no phone number"),
    ]
    for fields, field, message in cases:
        arguments = dict(fields)
        window = arguments.pop("window", ("09:00", "11:00"))
        recurrence = arguments.pop("recurrence", Recurrence.DAILY)
        target = arguments.pop("elder", elder_id)
        with pytest.raises(Invalid, match=message) as refused:
            await _schedule(care, db, target, recurrence, window, **arguments)  # type: ignore[arg-type]
        assert refused.value.field == field, (fields, refused.value.field)
    async with db.transaction(read_only=True) as session:
        assert (await session.scalars(select(CareSchedule))).all() == []
        assert (await session.scalars(select(AuditEntry).where(AuditEntry.action.like("care_schedule%")))).all() == []
