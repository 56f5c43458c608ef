"""Deadlines on the Chinese working calendar (seed 8.4.1.3), with the clock controlled."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from callcenter.orders.deadlines import add_working_days, due_at_for, due_soon_at, is_working_day
from callcenter.orders.models import WorkOrderKind
from callcenter.orders.services import raise_order

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI)


def test_the_calendar_knows_the_national_day_holiday_and_its_make_up_saturday() -> None:
    assert not is_working_day(dt.date(2026, 10, 1))  # a Thursday in the holiday
    assert not is_working_day(dt.date(2026, 10, 7))
    assert is_working_day(dt.date(2026, 10, 10))  # a Saturday worked to make up for it
    assert not is_working_day(dt.date(2026, 10, 11))  # an ordinary Sunday
    assert add_working_days(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)


def test_a_complaint_received_before_the_holiday_is_due_after_five_working_days() -> None:
    due = due_at_for(WorkOrderKind.COMPLAINT, local(2026, 9, 30, 10, 0), SHANGHAI)
    # 8, 9, 10 (Saturday, make-up), 12, 13 October: due by the end of the 13th, local time.
    assert due == local(2026, 10, 14, 0, 0)
    # Without the calendar, five weekdays after 30 September would have ended on 7 October.
    assert due is not None and due > local(2026, 10, 8, 0, 0)


def test_a_complaint_received_on_a_holiday_starts_counting_on_the_next_working_day() -> None:
    assert due_at_for(WorkOrderKind.COMPLAINT, local(2026, 10, 3, 15, 0), SHANGHAI) == local(2026, 10, 14, 0, 0)


def test_the_forwarding_bodys_earlier_deadline_wins() -> None:
    earlier = local(2026, 10, 9, 17, 0)
    assert due_at_for(WorkOrderKind.COMPLAINT, local(2026, 9, 30, 10, 0), SHANGHAI,
                      external_deadline=earlier) == earlier
    later = local(2026, 10, 20, 17, 0)
    assert due_at_for(WorkOrderKind.COMPLAINT, local(2026, 9, 30, 10, 0), SHANGHAI,
                      external_deadline=later) == local(2026, 10, 14, 0, 0)


def test_hours_based_deadlines_and_the_escalation_point() -> None:
    received = local(2026, 9, 30, 10, 0)
    consultation = due_at_for(WorkOrderKind.CONSULTATION, received, SHANGHAI)
    assert consultation == received + dt.timedelta(hours=48)
    assert due_soon_at(received, consultation) == received + dt.timedelta(hours=36)
    assert due_at_for(WorkOrderKind.DEVICE_FAULT, received, SHANGHAI) == received + dt.timedelta(hours=48)
    assert due_at_for(WorkOrderKind.EMERGENCY, received, SHANGHAI) is None


def test_a_year_the_calendar_does_not_cover_falls_back_to_weekdays() -> None:
    assert is_working_day(dt.date(2099, 1, 5))  # a Monday
    assert not is_working_day(dt.date(2099, 1, 4))  # a Sunday
    with pytest.raises(ValueError):
        add_working_days(dt.date(2026, 1, 1), 0)


async def test_raising_a_complaint_sets_its_deadline_and_source(db) -> None:  # type: ignore[no-untyped-def]
    async with db.transaction() as session:
        by_ivr = await raise_order(session, kind=WorkOrderKind.COMPLAINT, actor_label="ivr",
                                   now=local(2026, 9, 30, 10, 0).astimezone(dt.UTC))
        by_agent = await raise_order(session, kind=WorkOrderKind.COMPLAINT, actor_label="agent01",
                                     complaint={"external_deadline": local(2026, 10, 9, 0, 0)},
                                     now=local(2026, 9, 30, 10, 0).astimezone(dt.UTC))
        assert by_ivr.complaint is not None and by_ivr.complaint.source == "ivr"
        assert by_ivr.due_at == local(2026, 10, 14, 0, 0)
        assert by_agent.complaint is not None and by_agent.complaint.source == "call"
        assert by_agent.due_at == local(2026, 10, 9, 0, 0)
